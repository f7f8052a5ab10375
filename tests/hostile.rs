//! The client against a server that lies: an ad_backup that sends fewer or more bytes than the
//! file's size, or a read whose conformance is not the request's `cbBuffer`, or a server that
//! does not speak RPC; each the peer's fault, told apart from the caller's misuse.

use std::sync::Arc;

use bytes::Bytes;
use dsbackup_client::{BackupType, Client, ClientConfig, Endpoint, Error, Status};
use dsbackup_proto::iface::ad_backup::{
    self, AdBackupRequest, AdBackupResponse, HrRBackupCloseResponse, HrRBackupEndResponse,
    HrRBackupGetAttachmentInformationResponse, HrRBackupOpenFileResponse, HrRBackupPrepareResponse,
    HrRBackupReadResponse,
};
use dsbackup_proto::ndr::ContextHandle;
use dsbackup_proto::{AuthLevel, BftKind, DataRep, ExpiryToken, NameEntry, SyntaxId};
use dsbackup_transport::{
    CallContext, CallError, CallFuture, RpcInterface, RunningServer, Server, ServerOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::assert_no_bindings;

const SIZE: i64 = 100_000;
const NAME: &str = r"\\LIAR\C$\ntds.dit";

#[derive(Clone, Copy, Debug)]
enum Lie {
    /// The file ends (a read of 0 bytes) halfway.
    Short,
    /// Every read is full: the file never ends.
    Long,
    /// The conformance of the bytes is larger than the read asked for.
    Conformance,
}

struct Liar(Lie);

impl RpcInterface for Liar {
    fn syntax(&self) -> SyntaxId {
        ad_backup::INTERFACE.syntax()
    }

    fn opnums(&self) -> u16 {
        9
    }

    fn call(
        self: Arc<Self>,
        ctx: CallContext,
        opnum: u16,
        stub: Bytes,
        drep: DataRep,
    ) -> CallFuture {
        Box::pin(async move {
            let request = AdBackupRequest::decode(opnum, drep, &stub)?;
            let handle = ContextHandle {
                attributes: 0,
                uuid: dsbackup_proto::Uuid::from_str_const("11111111-2222-3333-4444-555555555555"),
            };
            let response = match request {
                AdBackupRequest::HrRBackupPrepare(_) => {
                    AdBackupResponse::HrRBackupPrepare(HrRBackupPrepareResponse::new(
                        handle,
                        &ExpiryToken {
                            tombstone_lifetime_days: 180,
                            backup_time: 0,
                        },
                    ))
                }
                AdBackupRequest::HrRBackupGetAttachmentInformation(_) => {
                    AdBackupResponse::HrRBackupGetAttachmentInformation(
                        HrRBackupGetAttachmentInformationResponse::new(
                            &[NameEntry::new(BftKind::NTDS_DATABASE, NAME)],
                            Status::SUCCESS,
                        ),
                    )
                }
                AdBackupRequest::HrRBackupOpenFile(_) => {
                    AdBackupResponse::HrRBackupOpenFile(HrRBackupOpenFileResponse {
                        pli_file_size: SIZE,
                        status: Status::SUCCESS,
                    })
                }
                AdBackupRequest::HrRBackupRead(read) => {
                    // Each read returns 30 000 bytes (or none after 60 000, for `Short`).
                    let call = ctx.call_id();
                    let len = match self.0 {
                        Lie::Short if call > 5 => 0,
                        _ => 30_000,
                    };
                    let mut response = HrRBackupReadResponse::new(
                        read.cb_buffer,
                        Bytes::from(vec![7; len]),
                        Status::SUCCESS,
                    );
                    if let Lie::Conformance = self.0 {
                        response.pb_buffer.max_count = read.cb_buffer + 1;
                    }
                    AdBackupResponse::HrRBackupRead(response)
                }
                AdBackupRequest::HrRBackupClose(_) => {
                    AdBackupResponse::HrRBackupClose(HrRBackupCloseResponse {
                        status: Status::SUCCESS,
                    })
                }
                AdBackupRequest::HrRBackupEnd(_) => {
                    AdBackupResponse::HrRBackupEnd(HrRBackupEndResponse {
                        ph_context: ContextHandle::NULL,
                        status: Status::SUCCESS,
                    })
                }
                _ => return Err(CallError::Fault(dsbackup_proto::FaultStatus::CANT_PERFORM)),
            };
            Ok(response.encode(ctx.reply_drep())?.into())
        })
    }
}

async fn liar(lie: Lie) -> (RunningServer, Client) {
    let mut options = ServerOptions::default();
    options.epm_listen = None;
    let mut server = Server::new(options);
    server.register(Arc::new(Liar(lie)));
    let server = server.start().await.unwrap();
    let mut config = ClientConfig::new("127.0.0.1")
        .auth_level(AuthLevel::NONE)
        .endpoint(Endpoint::Port(server.local_addr().port()));
    config.read_size = Some(32 * 1024);
    config.reads_in_flight = Some(3);
    (server, Client::new(config).unwrap())
}

async fn read_with(lie: Lie) -> Error {
    let (server, client) = liar(lie).await;
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    let name = session.database_names().await.unwrap()[0].name.clone();
    let mut reader = session.open_file(&name).await.unwrap();
    let error = reader.read_to_vec().await.unwrap_err();
    drop(reader);
    session.end().await.unwrap();
    assert_no_bindings(&client);
    server.shutdown().await;
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_ends_early_is_a_protocol_error() {
    let error = read_with(Lie::Short).await;
    assert!(
        matches!(
            error,
            Error::Protocol {
                call: "HrRBackupRead",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("of its 100000 bytes"), "{error}");
    assert!(error.is_peer_fault() && !error.is_misuse(), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_longer_than_announced_is_a_protocol_error() {
    let error = read_with(Lie::Long).await;
    assert!(
        matches!(
            error,
            Error::Protocol {
                call: "HrRBackupRead",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("longer than its 100000 bytes"),
        "{error}"
    );
    assert!(error.is_peer_fault() && !error.is_misuse(), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_answer_larger_than_asked_is_refused() {
    let error = read_with(Lie::Conformance).await;
    assert!(
        matches!(
            error,
            Error::BadResponse {
                call: "HrRBackupRead",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_peer_fault() && !error.is_misuse(), "{error:?}");
}

/// A server that answers the bind with bytes that are not an RPC PDU broke the protocol: the
/// client's error says it is the peer's fault, not the caller's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_answered_with_bytes_that_are_not_rpc_is_the_peers_fault() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut bind = [0_u8; 16];
        socket.read_exact(&mut bind).await.unwrap();
        socket
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        // Held open until the client gives up on it.
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
    });
    let config = ClientConfig::new("127.0.0.1")
        .auth_level(AuthLevel::NONE)
        .endpoint(Endpoint::Port(port));
    let client = Client::new(config).unwrap();
    let error = client.backup_prepare(BackupType::Full).await.unwrap_err();
    assert!(error.is_peer_fault(), "{error:?}");
    assert!(!error.is_misuse(), "{error:?}");
    assert!(error.status().is_none(), "{error:?}");
    assert_no_bindings(&client);
    server.await.unwrap();
}

/// What the caller asks wrongly is the caller's fault, and not the server's: a read size
/// against DsBackupRead's rule, a read from a reader that already failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_mistakes_are_misuse_not_the_peers_fault() {
    let mut config = ClientConfig::new("127.0.0.1").auth_level(AuthLevel::NONE);
    config.read_size = Some(10_000);
    let error = Client::new(config).unwrap_err();
    assert!(error.is_misuse() && !error.is_peer_fault(), "{error:?}");

    let (server, client) = liar(Lie::Conformance).await;
    let mut session = client.backup_prepare(BackupType::Full).await.unwrap();
    let name = session.database_names().await.unwrap()[0].name.clone();
    let mut reader = session.open_file(&name).await.unwrap();
    let first = reader.next_chunk().await.unwrap_err();
    assert!(first.is_peer_fault(), "{first:?}");
    let again = reader.next_chunk().await.unwrap_err();
    assert!(again.is_misuse() && !again.is_peer_fault(), "{again:?}");
    drop(reader);
    session.end().await.unwrap();
    assert_no_bindings(&client);
    server.shutdown().await;
}
