//! The `ntdsbcli` API as blocking calls, for programs without an async runtime (and for the C
//! library built on this crate).
//!
//! The calls run on a runtime of the crate's own: two worker threads, started at the first
//! [`Client::new`] and shared by every blocking client of the process. A backup session runs
//! as one task of that runtime that owns the [`crate::BackupSession`] and its open file, and
//! takes the caller's requests in order; the caller's thread waits for each answer. Do not call
//! these functions from inside an async runtime (they block the thread; tokio refuses to wait
//! inside its own workers).
//!
//! ```no_run
//! use dsbackup_client::blocking::Client;
//! use dsbackup_client::{BackupType, ClientConfig, Credentials};
//!
//! # fn example() -> Result<(), dsbackup_client::Error> {
//! let client = Client::new(
//!     ClientConfig::new("dc1.corp.example")
//!         .credentials(Credentials::from_password("svc-backup", "CORP", "s3cret!")),
//! )?;
//! let mut session = client.backup_prepare(BackupType::Full)?;
//! let mut buffer = vec![0; 64 * 1024];
//! for entry in session.database_names()? {
//!     let size = session.open_file(&entry.name)?;
//!     let mut total = 0;
//!     loop {
//!         let n = session.read(&mut buffer)?;
//!         if n == 0 {
//!             break; // the end of the file
//!         }
//!         total += n as u64; // write buffer[..n] somewhere
//!     }
//!     assert_eq!(total, size);
//!     session.close_file()?;
//! }
//! session.end()?; // DsBackupEnd: every binding closed, whatever happened before
//! # Ok(())
//! # }
//! ```

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use dsbackup_proto::{NameEntry, Status};
use dsbackup_transport::TransportError;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{mpsc, oneshot};

use crate::backup::FileReader;
use crate::client::ClientConfig;
use crate::error::Error;
use crate::manifest::BackupType;
use crate::restore::Registration;

/// A client whose calls block the calling thread (see [`crate::Client`] for what each does).
#[derive(Clone, Debug)]
pub struct Client {
    client: crate::Client,
    runtime: Handle,
    keep_alive: Duration,
}

impl Client {
    /// A client with `config`. Nothing is connected until a call.
    ///
    /// # Errors
    /// As [`crate::Client::new`]; [`Error::Transport`] when the runtime's threads cannot be
    /// started.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        Ok(Self {
            client: crate::Client::new(config)?,
            runtime: runtime()?,
            keep_alive: KEEP_ALIVE,
        })
    }

    /// How long a backup session of this client waits for its caller before it sends
    /// `HrRBackupPing` ([`KEEP_ALIVE`] by default): shorter than the server's idle limit.
    #[must_use]
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }

    /// The asynchronous client behind this one.
    pub fn as_async(&self) -> &crate::Client {
        &self.client
    }

    /// `DsIsNTDSOnline` ([`crate::Client::is_ntds_online`]).
    ///
    /// # Errors
    /// As [`crate::Client::is_ntds_online`].
    pub fn is_ntds_online(&self) -> Result<bool, Error> {
        self.runtime.block_on(self.client.is_ntds_online())
    }

    /// `DsSetCurrentBackupLog` ([`crate::Client::set_current_backup_log`]).
    ///
    /// # Errors
    /// As [`crate::Client::set_current_backup_log`].
    pub fn set_current_backup_log(&self, log: u32) -> Result<(), Error> {
        self.runtime
            .block_on(self.client.set_current_backup_log(log))
    }

    /// `DsBackupPrepare` ([`crate::Client::backup_prepare`]): the session runs as a task of
    /// the crate's runtime.
    ///
    /// # Errors
    /// As [`crate::Client::backup_prepare`].
    pub fn backup_prepare(&self, backup_type: BackupType) -> Result<BackupSession, Error> {
        let session = self
            .runtime
            .block_on(self.client.backup_prepare(backup_type))?;
        let token = Bytes::copy_from_slice(session.expiry_token());
        let (requests, receiver) = mpsc::channel(1);
        self.runtime
            .spawn(serve(session, receiver, self.keep_alive));
        Ok(BackupSession {
            requests,
            token,
            file_open: false,
        })
    }

    /// `DsRestorePrepare` ([`crate::Client::restore_prepare`]).
    ///
    /// # Errors
    /// As [`crate::Client::restore_prepare`].
    pub fn restore_prepare(
        &self,
        rt_flag: u32,
        token: Option<&[u8]>,
    ) -> Result<RestoreSession, Error> {
        let session = self
            .runtime
            .block_on(self.client.restore_prepare(rt_flag, token))?;
        Ok(RestoreSession {
            session,
            runtime: self.runtime.clone(),
        })
    }
}

/// A backup session (the `HBC` of `DsBackupPrepare`) whose calls block.
///
/// One file is open at a time: [`open_file`](Self::open_file), [`read`](Self::read) until it
/// returns 0, [`close_file`](Self::close_file). The reads behind [`read`](Self::read) are
/// pipelined as [`crate::FileReader`]'s are. While the session waits for the caller between
/// calls, it sends `HrRBackupPing` every [`KEEP_ALIVE`] ([`Client::keep_alive`]) so that the
/// server does not run an idle session down.
#[derive(Debug)]
pub struct BackupSession {
    requests: mpsc::Sender<Request>,
    token: Bytes,
    file_open: bool,
}

/// How long a [`BackupSession`] waits for its caller before it pings the server: well under
/// the idle limit of a server (ten minutes by default for the mock).
pub const KEEP_ALIVE: Duration = Duration::from_secs(60);

impl BackupSession {
    /// The expiry token, as the server sent it (save it with the backup).
    pub fn expiry_token(&self) -> &[u8] {
        &self.token
    }

    /// Whether a file is open.
    pub fn is_file_open(&self) -> bool {
        self.file_open
    }

    /// `DsBackupGetDatabaseNames`.
    ///
    /// # Errors
    /// As [`crate::BackupSession::database_names`]; [`Error::Misuse`] while a file is open.
    pub fn database_names(&mut self) -> Result<Vec<NameEntry>, Error> {
        self.ask(|reply| Request::DatabaseNames { reply })
    }

    /// `DsBackupGetBackupLogs`.
    ///
    /// # Errors
    /// As [`crate::BackupSession::backup_logs`]; [`Error::Misuse`] while a file is open.
    pub fn backup_logs(&mut self) -> Result<Vec<NameEntry>, Error> {
        self.ask(|reply| Request::BackupLogs { reply })
    }

    /// `DsRestoreGetDatabaseLocations` with the backup session's handle.
    ///
    /// # Errors
    /// As [`crate::BackupSession::database_locations`]; [`Error::Misuse`] while a file is open.
    pub fn database_locations(&mut self) -> Result<Vec<NameEntry>, Error> {
        self.ask(|reply| Request::DatabaseLocations { reply })
    }

    /// `DsBackupTruncateLogs`.
    ///
    /// # Errors
    /// As [`crate::BackupSession::truncate_logs`]; [`Error::Misuse`] while a file is open.
    pub fn truncate_logs(&mut self) -> Result<(), Error> {
        self.ask(|reply| Request::TruncateLogs { reply })
    }

    /// `DsBackupOpenFile`: opens `name` (a UNC path from the lists, without its BFT
    /// character); its size in bytes.
    ///
    /// # Errors
    /// As [`crate::BackupSession::open_file`]; [`Error::Misuse`] while a file is open.
    pub fn open_file(&mut self, name: &str) -> Result<u64, Error> {
        let name = name.to_owned();
        let size = self.ask(|reply| Request::OpenFile { name, reply })?;
        self.file_open = true;
        Ok(size)
    }

    /// `DsBackupRead`: fills `buf` with the next bytes of the open file (less only at its
    /// end); 0 once every byte came.
    ///
    /// # Errors
    /// As [`crate::FileReader::next_chunk`]; [`Error::Misuse`] when no file is open or its
    /// reads already failed.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = buf.len();
        let chunks = self.ask(|reply| Request::Read { len, reply })?;
        let mut filled = 0;
        for chunk in chunks {
            let end = filled + chunk.len();
            let Some(dst) = buf.get_mut(filled..end) else {
                return Err(Error::Internal(
                    "a read returned more than it was asked for",
                ));
            };
            dst.copy_from_slice(&chunk);
            filled = end;
        }
        Ok(filled)
    }

    /// `DsBackupClose`: closes the open file.
    ///
    /// # Errors
    /// As [`crate::FileReader::close`]; [`Error::Misuse`] when no file is open.
    pub fn close_file(&mut self) -> Result<(), Error> {
        let result = self.ask(|reply| Request::CloseFile { reply });
        self.file_open = false;
        result
    }

    /// `DsBackupEnd` ([`crate::BackupSession::end`]): every binding is closed and the session
    /// is gone whatever the server answers.
    ///
    /// # Errors
    /// As [`crate::BackupSession::end`].
    pub fn end(self) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        if self.requests.blocking_send(Request::End { reply }).is_err() {
            return Err(gone());
        }
        answer.blocking_recv().unwrap_or_else(|_| Err(gone()))
    }

    fn ask<T>(
        &mut self,
        request: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Request,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .blocking_send(request(reply))
            .map_err(|_| gone())?;
        answer.blocking_recv().unwrap_or_else(|_| Err(gone()))
    }
}

/// A restore session whose calls block (see [`crate::RestoreSession`]).
#[derive(Debug)]
pub struct RestoreSession {
    session: crate::RestoreSession,
    runtime: Handle,
}

impl RestoreSession {
    /// `DsRestoreGetDatabaseLocations`.
    ///
    /// # Errors
    /// As [`crate::RestoreSession::database_locations`].
    pub fn database_locations(&self) -> Result<Vec<NameEntry>, Error> {
        self.runtime.block_on(self.session.database_locations())
    }

    /// `DsRestoreRegister`.
    ///
    /// # Errors
    /// As [`crate::RestoreSession::register`].
    pub fn register(&self, registration: &Registration) -> Result<(), Error> {
        self.runtime.block_on(self.session.register(registration))
    }

    /// `DsRestoreRegisterComplete`.
    ///
    /// # Errors
    /// As [`crate::RestoreSession::register_complete`].
    pub fn register_complete(&self, outcome: Status) -> Result<(), Error> {
        self.runtime
            .block_on(self.session.register_complete(outcome))
    }

    /// `DsRestoreEnd`: the binding is closed whatever the server answers.
    ///
    /// # Errors
    /// As [`crate::RestoreSession::end`].
    pub fn end(self) -> Result<(), Error> {
        self.runtime.block_on(self.session.end())
    }
}

type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// What a blocking caller asks of its session's task.
enum Request {
    DatabaseNames {
        reply: Reply<Vec<NameEntry>>,
    },
    BackupLogs {
        reply: Reply<Vec<NameEntry>>,
    },
    DatabaseLocations {
        reply: Reply<Vec<NameEntry>>,
    },
    TruncateLogs {
        reply: Reply<()>,
    },
    OpenFile {
        name: String,
        reply: Reply<u64>,
    },
    Read {
        len: usize,
        reply: Reply<Vec<Bytes>>,
    },
    CloseFile {
        reply: Reply<()>,
    },
    End {
        reply: Reply<()>,
    },
}

/// The session's task: takes the requests in order until `End` (or until the caller drops the
/// session, which drops the session and its bindings).
async fn serve(
    mut session: crate::BackupSession,
    mut requests: mpsc::Receiver<Request>,
    keep_alive: Duration,
) {
    while let Some(request) = next(&mut session, &mut requests, keep_alive).await {
        match request {
            Request::DatabaseNames { reply } => {
                let _ = reply.send(session.database_names().await);
            }
            Request::BackupLogs { reply } => {
                let _ = reply.send(session.backup_logs().await);
            }
            Request::DatabaseLocations { reply } => {
                let _ = reply.send(session.database_locations().await);
            }
            Request::TruncateLogs { reply } => {
                let _ = reply.send(session.truncate_logs().await);
            }
            Request::OpenFile { name, reply } => match session.open_file(&name).await {
                Ok(reader) => {
                    let _ = reply.send(Ok(reader.size()));
                    if let Some(end) = serve_file(reader, &mut requests).await {
                        let _ = end.send(session.end().await);
                        return;
                    }
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            },
            Request::Read { reply, .. } => {
                let _ = reply.send(Err(Error::Misuse("no file is open")));
            }
            Request::CloseFile { reply } => {
                let _ = reply.send(Err(Error::Misuse("no file is open")));
            }
            Request::End { reply } => {
                let _ = reply.send(session.end().await);
                return;
            }
        }
    }
}

/// The next request; while none comes for `keep_alive`, `HrRBackupPing` keeps the session
/// alive on the server.
async fn next(
    session: &mut crate::BackupSession,
    requests: &mut mpsc::Receiver<Request>,
    keep_alive: Duration,
) -> Option<Request> {
    loop {
        match session.keep_alive_during(keep_alive, requests.recv()).await {
            Ok(request) => return request,
            Err(error) => tracing::debug!(%error, "Keep-alive failed"),
        }
    }
}

/// Serves the requests while `reader` is open; `Some(reply)` when the caller ended the session
/// (the file is then dropped, and the session ended by the caller of this function).
async fn serve_file(
    mut reader: FileReader<'_>,
    requests: &mut mpsc::Receiver<Request>,
) -> Option<Reply<()>> {
    // What is left of the last piece the reader gave.
    let mut pending = Bytes::new();
    let mut failed = false;
    while let Some(request) = requests.recv().await {
        match request {
            Request::Read { len, reply } => {
                let result = if failed {
                    Err(Error::Misuse("the file's reads already failed"))
                } else {
                    fill(&mut reader, &mut pending, len).await
                };
                failed |= result.is_err();
                let _ = reply.send(result);
            }
            Request::CloseFile { reply } => {
                let _ = reply.send(reader.close().await);
                return None;
            }
            Request::End { reply } => return Some(reply),
            Request::DatabaseNames { reply }
            | Request::BackupLogs { reply }
            | Request::DatabaseLocations { reply } => {
                let _ = reply.send(Err(file_open()));
            }
            Request::TruncateLogs { reply } => {
                let _ = reply.send(Err(file_open()));
            }
            Request::OpenFile { reply, .. } => {
                let _ = reply.send(Err(file_open()));
            }
        }
    }
    None
}

/// Up to `len` bytes of the file, as the pieces that brought them (fewer only at its end).
async fn fill(
    reader: &mut FileReader<'_>,
    pending: &mut Bytes,
    len: usize,
) -> Result<Vec<Bytes>, Error> {
    let mut pieces = Vec::new();
    let mut left = len;
    while left > 0 {
        if pending.is_empty() {
            match reader.next_chunk().await? {
                Some(piece) => *pending = piece,
                None => break,
            }
        }
        let piece = pending.split_to(left.min(pending.len()));
        left -= piece.len();
        pieces.push(piece);
    }
    Ok(pieces)
}

fn file_open() -> Error {
    Error::Misuse("a file is open: close it first")
}

/// The error when the session's task is gone (it failed in a way that dropped the session).
fn gone() -> Error {
    Error::Transport {
        context: "backup session",
        source: TransportError::Closed,
    }
}

/// The runtime the blocking calls run on, started on first use.
fn runtime() -> Result<Handle, Error> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime.handle().clone());
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("dsbackup")
        .enable_all()
        .build()
        .map_err(|source| Error::Transport {
            context: "start the runtime",
            source: TransportError::from(source),
        })?;
    // Two threads may build one at once: the first stored wins, the other is dropped.
    Ok(RUNTIME.get_or_init(|| built).handle().clone())
}
