//! A scripted DC for hostile-server tests: ad_backup and ad_restore answer what a [`Script`]
//! says (an expiry token of any bytes, files of any names, any restore locations), at auth
//! level none, with none of [`MockDc`](crate::MockDc)'s rules. A test drives the client or the
//! `dsbackup` binary against it and checks what the client refused and what it wrote.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use dsbackup_proto::iface::ad_backup::{
    self, AdBackupRequest, AdBackupResponse, HrRBackupCloseResponse, HrRBackupEndResponse,
    HrRBackupGetAttachmentInformationResponse, HrRBackupGetBackupLogsResponse,
    HrRBackupOpenFileResponse, HrRBackupPrepareResponse, HrRBackupReadResponse,
};
use dsbackup_proto::iface::ad_restore::{
    self, AdRestoreRequest, AdRestoreResponse, HrRRestoreEndResponse,
    HrRRestoreGetDatabaseLocationsResponse, HrRRestorePrepareResponse,
    HrRRestoreRegisterCompleteResponse, HrRRestoreRegisterResponse,
};
use dsbackup_proto::ndr::ContextHandle;
use dsbackup_proto::{DataRep, FaultStatus, NameEntry, Status, SyntaxId, Uuid};
use dsbackup_transport::{
    CallContext, CallError, CallFuture, RpcInterface, RunningServer, Server, ServerOptions,
};

/// What the scripted DC answers.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// The bytes `HrRBackupPrepare` hands out as the expiry token.
    pub token: Bytes,
    /// `HrRBackupGetAttachmentInformation`'s files, with their contents.
    pub databases: Vec<(NameEntry, Bytes)>,
    /// `HrRBackupGetBackupLogs`'s files, with their contents.
    pub logs: Vec<(NameEntry, Bytes)>,
    /// `HrRRestoreGetDatabaseLocations`'s list.
    pub locations: Vec<NameEntry>,
}

/// What the scripted DC saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// `HrRBackupEnd` calls.
    pub backup_ends: u32,
    /// `HrRRestoreRegister` calls.
    pub registers: u32,
}

#[derive(Debug, Default)]
struct State {
    open: Option<(Bytes, usize)>,
    seen: Seen,
}

#[derive(Debug)]
struct Shared {
    script: Script,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The scripted DC on loopback: both interfaces on one port, no endpoint mapper.
#[derive(Debug)]
pub struct ScriptedDc {
    server: RunningServer,
    shared: Arc<Shared>,
}

impl ScriptedDc {
    /// Starts serving `script` on a free loopback port.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(script: Script) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            script,
            state: Mutex::new(State::default()),
        });
        let mut options = ServerOptions::default();
        options.epm_listen = None;
        let mut server = Server::new(options);
        server.register(Arc::new(Backup(Arc::clone(&shared))));
        server.register(Arc::new(Restore(Arc::clone(&shared))));
        let server = server.start().await?;
        Ok(Self { server, shared })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// What it saw so far.
    pub fn seen(&self) -> Seen {
        self.shared.lock().seen
    }

    /// Stops it.
    pub async fn shutdown(&self) {
        self.server.shutdown().await;
    }
}

const HANDLE: ContextHandle = ContextHandle {
    attributes: 0,
    uuid: Uuid::from_str_const("5c71fd7e-0000-4000-8000-00000000beef"),
};

fn entries(files: &[(NameEntry, Bytes)]) -> Vec<NameEntry> {
    files.iter().map(|(entry, _)| entry.clone()).collect()
}

#[derive(Debug)]
struct Backup(Arc<Shared>);

impl RpcInterface for Backup {
    fn syntax(&self) -> SyntaxId {
        ad_backup::INTERFACE.syntax()
    }

    fn opnums(&self) -> u16 {
        ad_backup::INTERFACE.opnums()
    }

    fn call(
        self: Arc<Self>,
        ctx: CallContext,
        opnum: u16,
        stub: Bytes,
        drep: DataRep,
    ) -> CallFuture {
        Box::pin(async move {
            let script = &self.0.script;
            let response = match AdBackupRequest::decode(opnum, drep, &stub)? {
                AdBackupRequest::HrRBackupPrepare(_) => {
                    AdBackupResponse::HrRBackupPrepare(HrRBackupPrepareResponse {
                        ph_context: HANDLE,
                        pcb_expiry_token: u32::try_from(script.token.len()).unwrap_or(u32::MAX),
                        ppb_expiry_token: Some(script.token.clone()),
                        status: Status::SUCCESS,
                    })
                }
                AdBackupRequest::HrRBackupGetAttachmentInformation(_) => {
                    AdBackupResponse::HrRBackupGetAttachmentInformation(
                        HrRBackupGetAttachmentInformationResponse::new(
                            &entries(&script.databases),
                            Status::SUCCESS,
                        ),
                    )
                }
                AdBackupRequest::HrRBackupGetBackupLogs(_) => {
                    AdBackupResponse::HrRBackupGetBackupLogs(HrRBackupGetBackupLogsResponse::new(
                        &entries(&script.logs),
                        Status::SUCCESS,
                    ))
                }
                AdBackupRequest::HrRBackupOpenFile(open) => {
                    let file = script
                        .databases
                        .iter()
                        .chain(&script.logs)
                        .find(|(entry, _)| entry.name == open.wsz_attachment_name)
                        .map(|(_, data)| data.clone());
                    let (size, status) = match &file {
                        Some(data) => (
                            i64::try_from(data.len()).unwrap_or(i64::MAX),
                            Status::SUCCESS,
                        ),
                        None => (0, Status::ERROR_INVALID_PARAMETER),
                    };
                    self.0.lock().open = file.map(|data| (data, 0));
                    AdBackupResponse::HrRBackupOpenFile(HrRBackupOpenFileResponse {
                        pli_file_size: size,
                        status,
                    })
                }
                AdBackupRequest::HrRBackupRead(read) => {
                    let mut state = self.0.lock();
                    let data = match &mut state.open {
                        Some((data, offset)) => {
                            let want = usize::try_from(read.cb_buffer).unwrap_or(usize::MAX);
                            let end = offset.saturating_add(want).min(data.len());
                            let chunk = data.slice((*offset).min(end)..end);
                            *offset = end;
                            chunk
                        }
                        None => Bytes::new(),
                    };
                    AdBackupResponse::HrRBackupRead(HrRBackupReadResponse::new(
                        read.cb_buffer,
                        data,
                        Status::SUCCESS,
                    ))
                }
                AdBackupRequest::HrRBackupClose(_) => {
                    self.0.lock().open = None;
                    AdBackupResponse::HrRBackupClose(HrRBackupCloseResponse {
                        status: Status::SUCCESS,
                    })
                }
                AdBackupRequest::HrRBackupEnd(_) => {
                    self.0.lock().seen.backup_ends += 1;
                    AdBackupResponse::HrRBackupEnd(HrRBackupEndResponse {
                        ph_context: ContextHandle::NULL,
                        status: Status::SUCCESS,
                    })
                }
                _ => return Err(CallError::Fault(FaultStatus::CANT_PERFORM)),
            };
            Ok(response.encode(ctx.reply_drep())?.into())
        })
    }
}

#[derive(Debug)]
struct Restore(Arc<Shared>);

impl RpcInterface for Restore {
    fn syntax(&self) -> SyntaxId {
        ad_restore::INTERFACE.syntax()
    }

    fn opnums(&self) -> u16 {
        ad_restore::INTERFACE.opnums()
    }

    fn call(
        self: Arc<Self>,
        ctx: CallContext,
        opnum: u16,
        stub: Bytes,
        drep: DataRep,
    ) -> CallFuture {
        Box::pin(async move {
            let response = match AdRestoreRequest::decode(opnum, drep, &stub)? {
                AdRestoreRequest::HrRRestorePrepare(_) => {
                    AdRestoreResponse::HrRRestorePrepare(HrRRestorePrepareResponse {
                        ph_context: HANDLE,
                        status: Status::SUCCESS,
                    })
                }
                AdRestoreRequest::HrRRestoreGetDatabaseLocations(_) => {
                    AdRestoreResponse::HrRRestoreGetDatabaseLocations(
                        HrRRestoreGetDatabaseLocationsResponse::new(
                            &self.0.script.locations,
                            Status::SUCCESS,
                        ),
                    )
                }
                AdRestoreRequest::HrRRestoreRegister(_) => {
                    self.0.lock().seen.registers += 1;
                    AdRestoreResponse::HrRRestoreRegister(HrRRestoreRegisterResponse {
                        status: Status::SUCCESS,
                    })
                }
                AdRestoreRequest::HrRRestoreRegisterComplete(_) => {
                    AdRestoreResponse::HrRRestoreRegisterComplete(
                        HrRRestoreRegisterCompleteResponse {
                            status: Status::SUCCESS,
                        },
                    )
                }
                AdRestoreRequest::HrRRestoreEnd(_) => {
                    AdRestoreResponse::HrRRestoreEnd(HrRRestoreEndResponse {
                        ph_context: ContextHandle::NULL,
                        status: Status::SUCCESS,
                    })
                }
                _ => return Err(CallError::Fault(FaultStatus::CANT_PERFORM)),
            };
            Ok(response.encode(ctx.reply_drep())?.into())
        })
    }
}
