//! A big-endian caller against the mock DC: NDR lets a client marshal in either byte order, and
//! the server answers in its own (little-endian, as Samba and Windows do), each reply's stub in
//! the order its own header declares. A context handle the caller marshals big-endian, as the
//! IDL says, is the handle the server handed out.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dsbackup_client::{
    AuthLevel, BackupOptions, Client, ClientConfig, Credentials, DataRep, Endpoint, NoProgress,
    backup_to_dir, restore_from_dir, verify_dir,
};
use dsbackup_mock::serve::ServeOptions;
use dsbackup_proto::iface::ad_backup::{
    BACKUP_TYPE_FULL, HrRBackupEndRequest, HrRBackupEndResponse,
    HrRBackupGetAttachmentInformationRequest, HrRBackupGetAttachmentInformationResponse,
    HrRBackupPrepareRequest, HrRBackupPrepareResponse, INTERFACE,
};
use dsbackup_proto::ndr::{Ndr, decode_stub, encode_stub};
use dsbackup_proto::{Status, SyntaxId};
use dsbackup_transport::{Binding, ClientAuth, ClientOptions, Reply, Tap, TapEvent};

use crate::common::{Dc, PASSWORD, RESTORE_USER, assert_no_bindings, sha256_file, small_spec};

const LEVELS: [AuthLevel; 4] = [
    AuthLevel::NONE,
    AuthLevel::CONNECT,
    AuthLevel::PKT_INTEGRITY,
    AuthLevel::PKT_PRIVACY,
];

/// `packed_drep[0]`: the integer representation in its high nibble (0: big-endian).
const DREP_BIG_ENDIAN: u8 = 0x00;
const DREP_LITTLE_ENDIAN: u8 = 0x10;

/// A DC whose minimum is none; unauthenticated callers act as its administrator (who may back
/// up and restore).
async fn dc() -> Dc {
    let mut serve = ServeOptions::loopback();
    serve.danger_anonymous_user = Some(RESTORE_USER.to_owned());
    Dc::start_served(&small_spec(), AuthLevel::NONE, |b| b, &serve).await
}

/// The first byte of `packed_drep` of every PDU each side sent, collected by a tap.
#[derive(Clone, Default)]
struct Dreps {
    client: Arc<Mutex<Vec<u8>>>,
    server: Arc<Mutex<Vec<u8>>>,
}

impl Dreps {
    fn tap(&self) -> Tap {
        let this = self.clone();
        Tap::new(move |_, event| {
            let (bytes, into) = match event {
                TapEvent::FromClient(bytes) => (bytes, &this.client),
                TapEvent::FromServer(bytes) => (bytes, &this.server),
                _ => return,
            };
            into.lock().unwrap().extend(pdu_dreps(bytes));
        })
    }
}

/// `packed_drep[0]` of each PDU in `bytes` (whole PDUs, back to back); `frag_length` is read in
/// the byte order each header declares.
fn pdu_dreps(mut bytes: &[u8]) -> Vec<u8> {
    let mut dreps = Vec::new();
    while bytes.len() >= 16 {
        let drep = bytes[4];
        let length = [bytes[8], bytes[9]];
        let length = if drep & 0xF0 == DREP_LITTLE_ENDIAN {
            u16::from_le_bytes(length)
        } else {
            u16::from_be_bytes(length)
        };
        dreps.push(drep);
        bytes = &bytes[usize::from(length).clamp(16, bytes.len())..];
    }
    dreps
}

fn client(dc: &Dc, level: AuthLevel, tap: Tap) -> Client {
    let mut config = ClientConfig::new("127.0.0.1")
        .auth_level(level)
        .endpoint(Endpoint::Mapper {
            port: dc.server.local_addr().port(),
        })
        .drep(DataRep::BIG_ENDIAN);
    if level != AuthLevel::NONE {
        config = config.credentials(Credentials::from_password(RESTORE_USER, "CORP", PASSWORD));
    }
    config.tap = Some(tap);
    Client::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_endian_client_backs_up_and_restores_at_every_auth_level() {
    for level in LEVELS {
        let dc = dc().await;
        let dreps = Dreps::default();
        let client = client(&dc, level, dreps.tap());
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("set");
        let summary = backup_to_dir(&client, &out, &BackupOptions::default(), &mut NoProgress)
            .await
            .unwrap_or_else(|error| panic!("{level:?}: backup: {error}"));
        assert_eq!(summary.end_error, None, "{level:?}");
        let manifest = &summary.manifest;
        assert_eq!(manifest.files.len(), 4, "{level:?}");
        for entry in &manifest.files {
            let sample = dc.sample.file(entry.server_name()).unwrap();
            assert_eq!(entry.sha256, hex::encode(sample.sha256), "{level:?}");
            assert_eq!(sha256_file(&out.join(&entry.path)), entry.sha256);
        }
        assert!(verify_dir(&out, &mut NoProgress).unwrap().is_ok());

        let (target, options) = dc.restore_into(tmp.path());
        let restored = restore_from_dir(&client, &out, &options, &mut NoProgress)
            .await
            .unwrap_or_else(|error| panic!("{level:?}: restore: {error}"));
        assert_eq!(restored.bytes, manifest.total_size(), "{level:?}");
        for entry in &manifest.files {
            let path = target.join(entry.server_name());
            assert_eq!(sha256_file(&path), entry.sha256, "{level:?}");
        }
        assert!(!dc.dc().restore_marker().unwrap().blocks_startup());
        assert_no_bindings(&client);
        dc.wait_no_associations().await;

        // Everything went big-endian one way and little-endian the other.
        let sent = dreps.client.lock().unwrap().clone();
        let answered = dreps.server.lock().unwrap().clone();
        assert!(sent.len() > 20 && answered.len() > 20, "{level:?}");
        assert!(sent.iter().all(|&d| d == DREP_BIG_ENDIAN), "{level:?}");
        assert!(
            answered.iter().all(|&d| d == DREP_LITTLE_ENDIAN),
            "{level:?}"
        );
    }
}

fn ad_backup() -> SyntaxId {
    SyntaxId::new(
        INTERFACE.uuid,
        INTERFACE.version_major,
        INTERFACE.version_minor,
    )
}

async fn call(binding: &Binding, opnum: u16, request: &impl Ndr) -> Reply {
    let stub = encode_stub(request, binding.drep()).unwrap();
    binding.call(opnum, Bytes::from(stub)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reply_stub_is_in_the_byte_order_its_header_declares() {
    let dc = dc().await;
    let mut options = ClientOptions::with_auth(ClientAuth::ntlm(
        Credentials::from_password(RESTORE_USER, "CORP", PASSWORD),
        AuthLevel::PKT_INTEGRITY,
    ));
    options.drep = DataRep::BIG_ENDIAN;
    let binding = Binding::connect(dc.server.local_addr(), &[ad_backup()], &options)
        .await
        .unwrap();
    let prepare = HrRBackupPrepareRequest {
        grbit: 0,
        bt_flag: BACKUP_TYPE_FULL,
        wsz_backup_annotation: INTERFACE.annotation.to_owned(),
        dw_client_identifier: 1,
    };
    let reply = call(&binding, 0, &prepare).await;
    // `Reply::drep` is the response header's `packed_drep`.
    assert_eq!(reply.drep, DataRep::LITTLE_ENDIAN);
    let stub = reply.stub.to_bytes();
    let prepared: HrRBackupPrepareResponse = decode_stub(reply.drep, &stub, "prepare").unwrap();
    assert_eq!(prepared.status, Status::SUCCESS);
    // The handle decoded in the declared order is the one the server holds; read in the
    // caller's order its UUID would come out with its first fields swapped.
    let handle = prepared.ph_context;
    assert_eq!(dc.dc().active_backup(), Some(handle));
    let misread: Result<HrRBackupPrepareResponse, _> =
        decode_stub(DataRep::BIG_ENDIAN, &stub, "prepare");
    assert_ne!(misread.map(|r| r.ph_context).ok(), Some(handle));

    // The handle goes back marshalled big-endian, as the IDL says, and is recognised.
    let request = HrRBackupGetAttachmentInformationRequest { h_context: handle };
    let reply = call(&binding, 2, &request).await;
    assert_eq!(reply.drep, DataRep::LITTLE_ENDIAN);
    let listed: HrRBackupGetAttachmentInformationResponse =
        decode_stub(reply.drep, &reply.stub.to_bytes(), "attachments").unwrap();
    assert_eq!(listed.status, Status::SUCCESS);
    let names: Vec<_> = listed
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names[0], r"\\DC1\C$\Windows\NTDS\ntds.dit", "{names:?}");

    let reply = call(&binding, 1, &HrRBackupEndRequest { ph_context: handle }).await;
    let ended: HrRBackupEndResponse =
        decode_stub(reply.drep, &reply.stub.to_bytes(), "end").unwrap();
    assert_eq!(ended.status, Status::SUCCESS);
    assert!(ended.ph_context.is_null());
    assert_eq!(dc.dc().active_backup(), None);
}
