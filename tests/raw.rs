//! A backup driven through raw `Binding::call`s with the request and response types of
//! `dsbackup_proto::iface::ad_backup` (not the client crate): every file byte for byte, for
//! full and logs-only backups, at each auth level the mock accepts.

use bytes::Bytes;
use dsbackup_client::{AuthLevel, Credentials};
use dsbackup_mock::serve::ServeOptions;
use dsbackup_proto::iface::ad_backup::{
    BACKUP_TYPE_FULL, BACKUP_TYPE_LOGS_ONLY, HrRBackupCloseRequest, HrRBackupCloseResponse,
    HrRBackupEndRequest, HrRBackupEndResponse, HrRBackupGetAttachmentInformationRequest,
    HrRBackupGetAttachmentInformationResponse, HrRBackupGetBackupLogsRequest,
    HrRBackupGetBackupLogsResponse, HrRBackupOpenFileRequest, HrRBackupOpenFileResponse,
    HrRBackupPrepareRequest, HrRBackupPrepareResponse, HrRBackupReadRequest, HrRBackupReadResponse,
    INTERFACE,
};
use dsbackup_proto::ndr::{ContextHandle, Ndr, decode_stub, encode_stub};
use dsbackup_proto::{FaultStatus, Status, SyntaxId};
use dsbackup_transport::{Binding, ClientAuth, ClientOptions, TransportError};

use crate::common::{BACKUP_USER, Dc, PASSWORD, sha256, small_spec};

const READ_SIZE: u32 = 100_000;

fn ad_backup() -> SyntaxId {
    SyntaxId::new(
        INTERFACE.uuid,
        INTERFACE.version_major,
        INTERFACE.version_minor,
    )
}

fn options(level: AuthLevel) -> ClientOptions {
    let auth = if level == AuthLevel::NONE {
        ClientAuth::None
    } else {
        ClientAuth::ntlm(
            Credentials::from_password(BACKUP_USER, "CORP", PASSWORD),
            level,
        )
    };
    ClientOptions::with_auth(auth)
}

async fn call<Req: Ndr, Resp: Ndr>(
    binding: &Binding,
    opnum: u16,
    request: &Req,
) -> Result<Resp, TransportError> {
    let stub = encode_stub(request, binding.drep())?;
    let reply = binding.call(opnum, Bytes::from(stub)).await?;
    Ok(decode_stub(reply.drep, &reply.stub.to_bytes(), "response")?)
}

/// The file name at the end of a UNC path.
fn base_name(unc: &str) -> &str {
    unc.rsplit('\\').next().unwrap_or(unc)
}

/// Prepares a backup of `bt_flag`, reads every file it lists, ends it; checks each file's
/// SHA-256 against the sample set, returns the names read.
async fn raw_backup(dc: &Dc, binding: &Binding, bt_flag: u32) -> Vec<String> {
    let prepared: HrRBackupPrepareResponse = call(
        binding,
        0,
        &HrRBackupPrepareRequest {
            grbit: 0,
            bt_flag,
            wsz_backup_annotation: INTERFACE.annotation.to_owned(),
            dw_client_identifier: std::process::id(),
        },
    )
    .await
    .unwrap();
    assert_eq!(prepared.status, Status::SUCCESS);
    let handle: ContextHandle = prepared.ph_context;
    assert!(!handle.is_null());
    let mut names = Vec::new();
    if bt_flag == BACKUP_TYPE_FULL {
        let databases: HrRBackupGetAttachmentInformationResponse = call(
            binding,
            2,
            &HrRBackupGetAttachmentInformationRequest { h_context: handle },
        )
        .await
        .unwrap();
        assert_eq!(databases.status, Status::SUCCESS);
        names.extend(databases.entries().unwrap().into_iter().map(|e| e.name));
    }
    let logs: HrRBackupGetBackupLogsResponse = call(
        binding,
        6,
        &HrRBackupGetBackupLogsRequest { h_context: handle },
    )
    .await
    .unwrap();
    assert_eq!(logs.status, Status::SUCCESS);
    names.extend(logs.entries().unwrap().into_iter().map(|e| e.name));
    for name in &names {
        let opened: HrRBackupOpenFileResponse = call(
            binding,
            3,
            &HrRBackupOpenFileRequest {
                h_context: handle,
                wsz_attachment_name: name.clone(),
                cb_read_hint_size: READ_SIZE,
            },
        )
        .await
        .unwrap();
        assert_eq!(opened.status, Status::SUCCESS, "{name}");
        let size = usize::try_from(opened.pli_file_size).unwrap();
        let mut data = Vec::with_capacity(size);
        // Bounded: each read but the last brings READ_SIZE bytes.
        for _ in 0..=size / READ_SIZE as usize + 1 {
            if data.len() == size {
                break;
            }
            let read: HrRBackupReadResponse = call(
                binding,
                4,
                &HrRBackupReadRequest {
                    h_context: handle,
                    cb_buffer: READ_SIZE,
                },
            )
            .await
            .unwrap();
            assert_eq!(read.status, Status::SUCCESS, "{name}");
            assert!(!read.pb_buffer.data.is_empty(), "{name}: an empty read");
            data.extend_from_slice(&read.pb_buffer.data.to_bytes());
        }
        assert_eq!(data.len(), size, "{name}");
        assert_eq!(sha256(&data), dc.sha256(base_name(name)), "{name}");
        let closed: HrRBackupCloseResponse =
            call(binding, 5, &HrRBackupCloseRequest { h_context: handle })
                .await
                .unwrap();
        assert_eq!(closed.status, Status::SUCCESS);
    }
    let ended: HrRBackupEndResponse = call(binding, 1, &HrRBackupEndRequest { ph_context: handle })
        .await
        .unwrap();
    assert_eq!(ended.status, Status::SUCCESS);
    assert!(ended.ph_context.is_null());
    names.iter().map(|n| base_name(n).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_calls_back_up_every_file_at_every_auth_level() {
    let levels = [
        AuthLevel::NONE,
        AuthLevel::CONNECT,
        AuthLevel::PKT_INTEGRITY,
        AuthLevel::PKT_PRIVACY,
    ];
    // The minimum at none: unauthenticated callers act as the backup user.
    let mut serve = ServeOptions::loopback();
    serve.danger_anonymous_user = Some(BACKUP_USER.to_owned());
    let dc = Dc::start_served(&small_spec(), AuthLevel::NONE, |b| b, &serve).await;
    for level in levels {
        let binding = Binding::connect(dc.server.local_addr(), &[ad_backup()], &options(level))
            .await
            .unwrap();
        let full = raw_backup(&dc, &binding, BACKUP_TYPE_FULL).await;
        assert!(full.contains(&"ntds.dit".to_owned()), "{level:?}: {full:?}");
        let logs = raw_backup(&dc, &binding, BACKUP_TYPE_LOGS_ONLY).await;
        assert!(!logs.is_empty(), "{level:?}");
        assert!(
            logs.iter().all(|name| name.ends_with(".log")),
            "{level:?}: {logs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_below_the_minimum_is_refused() {
    let dc = Dc::start_with(&small_spec(), AuthLevel::PKT_PRIVACY).await;
    let binding = Binding::connect(
        dc.server.local_addr(),
        &[ad_backup()],
        &options(AuthLevel::PKT_INTEGRITY),
    )
    .await
    .unwrap();
    let request = HrRBackupPrepareRequest {
        grbit: 0,
        bt_flag: BACKUP_TYPE_FULL,
        wsz_backup_annotation: INTERFACE.annotation.to_owned(),
        dw_client_identifier: 1,
    };
    let error = call::<_, HrRBackupPrepareResponse>(&binding, 0, &request)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::Fault {
                status: FaultStatus::ACCESS_DENIED,
                did_not_execute: true
            }
        ),
        "{error:?}"
    );
    assert_eq!(dc.dc().active_backup(), None);
    // At the minimum, the same call goes through.
    let binding = Binding::connect(
        dc.server.local_addr(),
        &[ad_backup()],
        &options(AuthLevel::PKT_PRIVACY),
    )
    .await
    .unwrap();
    let full = raw_backup(&dc, &binding, BACKUP_TYPE_FULL).await;
    assert!(!full.is_empty());
}
