//! Whole calls over DCE/RPC, in memory: proto's client association with the NTLM initiator at
//! packet privacy, proto's server association with the NTLM acceptor looking users up in the
//! [`MockDc`], and [`MockDc::serve_stub`] answering. This is the server-runtime glue minus the
//! sockets.

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dsbackup_ntlm::{
    Acceptor, AcceptorConfig, ClientInputs, Credentials, Initiator, InitiatorConfig, ServerInputs,
};
use dsbackup_proto::iface::ad_backup::{
    AdBackupRequest, AdBackupResponse, BACKUP_TYPE_FULL, HrRBackupCloseRequest,
    HrRBackupEndRequest, HrRBackupGetAttachmentInformationRequest, HrRBackupGetBackupLogsRequest,
    HrRBackupOpenFileRequest, HrRBackupPrepareRequest, HrRBackupReadRequest,
};
use dsbackup_proto::iface::ad_restore::{
    AdRestoreRequest, AdRestoreResponse, HrRIsNTDSOnlineRequest,
};
use dsbackup_proto::{
    AuthLevel, AuthStep, AuthType, ClientAssociation, ClientConfig, ClientEvent, DataRep,
    FaultStatus, Protection, SecurityError, SecurityProvider, ServerAssociation, ServerConfig,
    ServerEvent, Status,
};
use sha2::{Digest, Sha256};

use super::{ByteOrders, Caller, ConnectionId, MockDc, Principal};
use crate::config::{MockConfig, Privileges};
use crate::sample::{SampleManifest, SampleSpec, generate_sample_set};

/// The acceptor, remembering who logged on (the association does not expose it on this
/// branch; the transport glue reads `ServerAssociation::peer_identity` instead).
#[derive(Debug)]
struct Recording {
    inner: Acceptor,
    who: Arc<Mutex<Option<Principal>>>,
}

impl SecurityProvider for Recording {
    fn auth_type(&self) -> AuthType {
        self.inner.auth_type()
    }

    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        let step = self.inner.step(peer_token)?;
        if let Some(identity) = self.inner.identity() {
            *self.who.lock().unwrap() = Some(Principal {
                user: identity.user.clone(),
                domain: identity.domain.clone(),
            });
        }
        Ok(step)
    }

    fn is_established(&self) -> bool {
        self.inner.is_established()
    }

    fn signature_len(&self) -> usize {
        self.inner.signature_len()
    }

    fn wrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &mut [u8],
    ) -> Result<(), SecurityError> {
        self.inner.wrap(protection, pdu, stub, signature)
    }

    fn unwrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &[u8],
    ) -> Result<(), SecurityError> {
        self.inner.unwrap(protection, pdu, stub, signature)
    }
}

struct Wire {
    dc: MockDc,
    client: ClientAssociation,
    server: ServerAssociation,
    who: Arc<Mutex<Option<Principal>>>,
    contexts: Vec<u16>,
    now: SystemTime,
    faults: crate::faults::ConnectionFaults,
    client_error: Option<dsbackup_proto::ProtocolError>,
    /// The byte order the server's response headers declare (its own, whatever the caller's).
    reply_drep: DataRep,
}

impl Wire {
    /// A client calling in `drep` and a server answering in little-endian, as Samba and Windows
    /// do whatever the caller's byte order.
    fn connect(dc: &MockDc, user: &str, password: &str, drep: DataRep) -> Self {
        let who = Arc::new(Mutex::new(None));
        let recorder = Arc::clone(&who);
        let store = Arc::new(dc.clone());
        let factory: dsbackup_proto::SecurityFactory = Box::new(move |auth_type| {
            (auth_type == AuthType::WINNT).then(|| {
                let config = AcceptorConfig::new(store.clone(), "DC1", "CORP", "corp.example");
                let inputs = ServerInputs {
                    server_challenge: [7; 8],
                    timestamp: 133_000_000_000_000_000,
                };
                Box::new(Recording {
                    inner: Acceptor::new(config, inputs),
                    who: Arc::clone(&recorder),
                }) as Box<dyn SecurityProvider>
            })
        });
        let server_config = ServerConfig::new(dc.server_interfaces(), 1);
        let reply_drep = server_config.drep;
        let server = ServerAssociation::new(server_config, Some(factory)).unwrap();
        let initiator = Initiator::new(
            InitiatorConfig::new(Credentials::from_password(user, "CORP", password)),
            ClientInputs {
                client_challenge: [1, 2, 3, 4, 5, 6, 7, 8],
                random_session_key: [0xA5; 16],
                timestamp: 133_000_000_000_000_000,
            },
        );
        let mut client_config = ClientConfig::default();
        client_config.drep = drep;
        client_config.auth_level = AuthLevel::PKT_PRIVACY;
        let client = ClientAssociation::new(client_config, Some(Box::new(initiator))).unwrap();
        let mut wire = Self {
            dc: dc.clone(),
            client,
            server,
            who,
            contexts: Vec::new(),
            now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            faults: crate::faults::ConnectionFaults::new(dc.faults().clone()),
            client_error: None,
            reply_drep,
        };
        let syntaxes: Vec<_> = dc.server_interfaces().iter().map(|i| i.syntax).collect();
        wire.contexts = wire.client.bind(&syntaxes).unwrap();
        wire.pump();
        assert!(wire.client.is_bound());
        wire
    }

    /// Moves PDUs both ways and serves every request, until nothing moves.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(pdu) = self.client.poll_transmit() {
                self.server.handle_frame(pdu.to_bytes()).unwrap();
                moved = true;
            }
            while let Some(event) = self.server.poll_event() {
                if let ServerEvent::Request(request) = event {
                    let caller = Caller {
                        principal: self.who.lock().unwrap().clone(),
                        auth_level: request.auth_level,
                        connection: ConnectionId(1),
                    };
                    let iface = MockDc::SERVED_INTERFACES[request.interface];
                    match self.dc.serve_stub(
                        &caller,
                        self.now,
                        iface,
                        request.opnum,
                        ByteOrders::new(request.drep, self.reply_drep),
                        &request.stub,
                    ) {
                        Ok(reply) => self
                            .server
                            .respond(request.call_id, reply.response)
                            .unwrap(),
                        Err(error) => self
                            .server
                            .fault(request.call_id, error.fault_status())
                            .unwrap(),
                    }
                    moved = true;
                }
            }
            while let Some(pdu) = self.server.poll_transmit() {
                let mut pdu = pdu.to_vec();
                if pdu.get(2) == Some(&2) && self.faults.response_fragment() {
                    crate::faults::corrupt_fragment(&mut pdu);
                }
                if let Err(error) = self.client.handle_frame(Bytes::from(pdu)) {
                    self.client_error = Some(error);
                    return;
                }
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    /// Makes a call; its response stub and the byte order its header declares.
    fn call_raw(
        &mut self,
        context: usize,
        opnum: u16,
        stub: Vec<u8>,
    ) -> Result<(Bytes, DataRep), FaultStatus> {
        let call_id = self
            .client
            .call(self.contexts[context], opnum, None, Bytes::from(stub))
            .unwrap();
        self.pump();
        while let Some(event) = self.client.poll_event() {
            match event {
                ClientEvent::Response {
                    call_id: id,
                    stub,
                    drep,
                } if id == call_id => return Ok((stub.to_bytes(), drep)),
                ClientEvent::Fault {
                    call_id: id,
                    status,
                    ..
                } if id == call_id => return Err(status),
                _ => {}
            }
        }
        panic!("no answer to call {call_id}");
    }

    fn backup(&mut self, request: AdBackupRequest) -> AdBackupResponse {
        let drep = DataRep::LITTLE_ENDIAN;
        let (stub, reply_drep) = self
            .call_raw(0, request.opnum(), request.encode(drep).unwrap())
            .unwrap();
        AdBackupResponse::decode(request.opnum(), reply_drep, &stub).unwrap()
    }
}

fn fixture() -> (tempfile::TempDir, SampleManifest, MockDc) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ntds");
    let manifest = generate_sample_set(
        &root,
        &SampleSpec {
            database_size: 200 * 1024 + 3,
            log_count: 3,
            log_size: 30 * 1024,
            with_patch_file: true,
            patch_size: 4000,
            seed: 3,
            ..SampleSpec::default()
        },
    )
    .unwrap();
    let config = MockConfig::builder("DC1", &root)
        .domain("CORP")
        .user("svc-backup", "Backup1!", Privileges::BACKUP)
        .user("nobody", "Nobody1!", Privileges::NONE)
        .build();
    let dc = MockDc::new(config).unwrap();
    (tmp, manifest, dc)
}

#[test]
fn a_full_backup_over_ntlm_packet_privacy_reproduces_every_file() {
    let (_tmp, manifest, dc) = fixture();
    let mut wire = Wire::connect(&dc, "svc-backup", "Backup1!", DataRep::LITTLE_ENDIAN);
    let AdBackupResponse::HrRBackupPrepare(prepared) =
        wire.backup(AdBackupRequest::HrRBackupPrepare(HrRBackupPrepareRequest {
            grbit: 0,
            bt_flag: BACKUP_TYPE_FULL,
            wsz_backup_annotation: "NTDS Backup Interface".into(),
            dw_client_identifier: 77,
        }))
    else {
        panic!("wrong response variant");
    };
    assert_eq!(prepared.status, Status::SUCCESS);
    let h = prepared.ph_context;
    let mut names = Vec::new();
    for request in [
        AdBackupRequest::HrRBackupGetAttachmentInformation(
            HrRBackupGetAttachmentInformationRequest { h_context: h },
        ),
        AdBackupRequest::HrRBackupGetBackupLogs(HrRBackupGetBackupLogsRequest { h_context: h }),
    ] {
        names.extend(match wire.backup(request) {
            AdBackupResponse::HrRBackupGetAttachmentInformation(r) => r.entries().unwrap(),
            AdBackupResponse::HrRBackupGetBackupLogs(r) => r.entries().unwrap(),
            other => panic!("wrong response {other:?}"),
        });
    }
    assert_eq!(names.len(), 2 + 2, "database, patch, logs 2 and 3");
    for entry in &names {
        wire.backup(AdBackupRequest::HrRBackupOpenFile(
            HrRBackupOpenFileRequest {
                h_context: h,
                wsz_attachment_name: entry.name.clone(),
                cb_read_hint_size: 65536,
            },
        ));
        let mut hasher = Sha256::new();
        loop {
            // 64 KiB answers span several fragments of the negotiated size.
            let AdBackupResponse::HrRBackupRead(r) =
                wire.backup(AdBackupRequest::HrRBackupRead(HrRBackupReadRequest {
                    h_context: h,
                    cb_buffer: 65536,
                }))
            else {
                panic!("wrong response variant");
            };
            assert_eq!(r.status, Status::SUCCESS);
            if r.pb_buffer.data.is_empty() {
                break;
            }
            hasher.update(r.pb_buffer.data.to_bytes());
        }
        wire.backup(AdBackupRequest::HrRBackupClose(HrRBackupCloseRequest {
            h_context: h,
        }));
        let file = entry.name.rsplit('\\').next().unwrap();
        let digest: [u8; 32] = hasher.finalize().into();
        assert_eq!(digest, manifest.file(file).unwrap().sha256, "{file}");
    }
    let AdBackupResponse::HrRBackupEnd(ended) =
        wire.backup(AdBackupRequest::HrRBackupEnd(HrRBackupEndRequest {
            ph_context: h,
        }))
    else {
        panic!("wrong response variant");
    };
    assert!(ended.ph_context.is_null());
    assert_eq!(
        wire.who.lock().unwrap().as_ref().map(|p| p.user.as_str()),
        Some("svc-backup")
    );
}

#[test]
fn statuses_and_faults_come_back_over_the_wire_in_big_endian_too() {
    let (_tmp, _manifest, dc) = fixture();
    let drep = DataRep::BIG_ENDIAN;
    let mut wire = Wire::connect(&dc, "nobody", "Nobody1!", drep);
    // An authenticated user without the privilege gets a status, not a fault.
    let request = AdRestoreRequest::HrRIsNTDSOnline(HrRIsNTDSOnlineRequest {});
    let (stub, reply_drep) = wire.call_raw(1, 0, request.encode(drep).unwrap()).unwrap();
    // The server answers in its own byte order, and the stub is in the one its header says.
    assert_eq!(reply_drep, DataRep::LITTLE_ENDIAN);
    let AdRestoreResponse::HrRIsNTDSOnline(r) =
        AdRestoreResponse::decode(0, reply_drep, &stub).unwrap()
    else {
        panic!("wrong response variant");
    };
    assert_eq!(r.status, Status::ERROR_ACCESS_DENIED);
    // A stub that does not decode is a fault.
    assert_eq!(
        wire.call_raw(0, 3, vec![0; 5]),
        Err(FaultStatus::BAD_STUB_DATA)
    );
}

#[test]
fn a_corrupted_response_fragment_fails_the_signature_check() {
    let (_tmp, _manifest, dc) = fixture();
    let mut wire = Wire::connect(&dc, "svc-backup", "Backup1!", DataRep::LITTLE_ENDIAN);
    // The bind_ack and alter_context_resp are not responses: the first response is the next.
    dc.faults().corrupt_response_fragment(Some(1));
    let request = AdBackupRequest::HrRBackupPrepare(HrRBackupPrepareRequest::default());
    wire.client
        .call(
            wire.contexts[0],
            0,
            None,
            Bytes::from(request.encode(DataRep::LITTLE_ENDIAN).unwrap()),
        )
        .unwrap();
    wire.pump();
    assert!(
        matches!(
            wire.client_error,
            Some(dsbackup_proto::ProtocolError::Security(_))
        ),
        "{:?}",
        wire.client_error
    );
}
