//! [`MockDc`]: the behaviour of a domain controller's ad_backup and ad_restore interfaces,
//! independent of any transport.
//!
//! Each operation is a method taking the decoded request of `dsbackup_proto::iface`, the
//! [`Caller`] (who, at which authentication level, on which connection) and `now` (passed in, so
//! idle timeouts and token expiry are testable without sleeping), and returning the response
//! with its status. [`MockDc::dispatch_ad_backup`] and [`MockDc::dispatch_ad_restore`] map whole
//! request enums and apply the call faults; [`MockDc::rundown`],
//! [`MockDc::connection_closed`] and [`MockDc::expire_idle`] end sessions whose client is gone.
//!
//! # Statuses
//!
//! Checks run in this order; the first that fails gives the status.
//!
//! | check | status |
//! | --- | --- |
//! | the caller's auth level is below the configured minimum | `ERROR_ACCESS_DENIED` |
//! | the caller lacks the privilege (backup for ad_backup, restore for ad_restore; either for `HrRIsNTDSOnline` and `HrRRestoreCheckLogsForBackup`; none for `HrRBackupPing`, `HrRBackupEnd`, `HrRRestoreEnd`; for `HrRRestoreGetDatabaseLocations`, that of the session named) | `ERROR_ACCESS_DENIED` |
//! | the context handle is null, unknown, or belongs to another connection | `ERROR_INVALID_PARAMETER` |
//! | then each operation's own rules | see the method |
//!
//! The privileges are those of the configured user of the caller's name, when the caller's
//! domain is empty, the configured domain or the DC's name; an anonymous caller has none.
//!
//! A handle the server does not know is `ERROR_INVALID_PARAMETER` (what the public API
//! documents for a bad `hbc`); `hrInvalidHandle` is kept for what the IDL names: a close (or a
//! read) with no file open.

mod backup;
mod buffers;
#[cfg(test)]
mod model_tests;
mod restore;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wire_tests;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dsbackup_ntlm::{CredentialStore, NtHash};
use dsbackup_proto::Interface as ServerInterface;
use dsbackup_proto::iface::Interface;
use dsbackup_proto::iface::ad_backup::{AdBackupRequest, AdBackupResponse};
use dsbackup_proto::iface::ad_restore::{AdRestoreRequest, AdRestoreResponse};
use dsbackup_proto::ndr::{ContextHandle, NdrError};
use dsbackup_proto::{AuthLevel, Chain, DataRep, EncodeError, FaultStatus, Status, Uuid};

use crate::config::{DsMode, MockConfig, Privileges};
use crate::faults::Faults;
use crate::marker::RestoreMarker;
use crate::prng::mix;

use self::backup::BackupSession;
use self::restore::RestoreSession;

/// Identifies one transport connection (association) for the lifetime of the server; the glue
/// picks the numbers, unique per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The account name.
    pub user: String,
    /// The domain the client named (may be empty).
    pub domain: String,
}

/// Who makes a call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Caller {
    /// The authenticated user; `None` for an anonymous (unauthenticated) association.
    pub principal: Option<Principal>,
    /// The authentication level of the association.
    pub auth_level: AuthLevel,
    /// The connection the call came on.
    pub connection: ConnectionId,
}

impl Caller {
    /// An authenticated caller.
    pub fn user(
        user: impl Into<String>,
        domain: impl Into<String>,
        auth_level: AuthLevel,
        connection: ConnectionId,
    ) -> Self {
        Self {
            principal: Some(Principal {
                user: user.into(),
                domain: domain.into(),
            }),
            auth_level,
            connection,
        }
    }

    /// An anonymous caller (auth level none).
    pub fn anonymous(connection: ConnectionId) -> Self {
        Self {
            principal: None,
            auth_level: AuthLevel::NONE,
            connection,
        }
    }
}

/// The byte orders of one call: the request stub's (its PDU header's `packed_drep`) and the
/// one the response PDU's header will declare, which its stub must be encoded in. A server
/// answers in its own data representation whatever the caller's (as Samba and Windows do: the
/// response header carries the server's, little-endian), so the two differ for a big-endian
/// caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteOrders {
    /// The request stub's.
    pub request: DataRep,
    /// The response's.
    pub reply: DataRep,
}

impl ByteOrders {
    /// A request decoded in `request`, its response encoded in `reply`.
    pub const fn new(request: DataRep, reply: DataRep) -> Self {
        Self { request, reply }
    }

    /// Both stubs in `drep`.
    pub const fn both(drep: DataRep) -> Self {
        Self::new(drep, drep)
    }
}

/// A response and the delay the fault script asks for before sending it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply<R> {
    /// The response.
    pub response: R,
    /// How long the transport glue waits before sending it (zero: no delay).
    pub delay: Duration,
}

/// Errors of creating a [`MockDc`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// The NTDS directory is not a readable directory.
    #[error("NTDS directory {path}: {source}")]
    Root {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The state directory cannot be prepared, or its restore marker cannot be read.
    #[error("state directory {path}: {source}")]
    State {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Why [`MockDc::serve_stub`] could not answer with a response stub: each is an RPC fault,
/// not a status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The interface is not one the mock's core serves.
    #[error("{0} is not served by the mock's core")]
    NotServed(Interface),
    /// The opnum is not in the interface's call table (`nca_op_rng_error`).
    #[error("opnum {opnum} is not an operation of {iface}")]
    UnknownOpnum {
        /// The interface.
        iface: Interface,
        /// The opnum.
        opnum: u16,
    },
    /// The request stub does not decode (`nca_s_fault_ndr`).
    #[error("bad request stub: {0}")]
    BadStub(#[source] NdrError),
    /// The response does not encode.
    #[error("response does not encode: {0}")]
    Encode(#[from] EncodeError),
}

impl ServeError {
    /// The fault to answer with.
    pub fn fault_status(&self) -> FaultStatus {
        match self {
            Self::UnknownOpnum { .. } => FaultStatus::OP_RNG_ERROR,
            Self::BadStub(_) => FaultStatus::BAD_STUB_DATA,
            Self::NotServed(_) | Self::Encode(_) => FaultStatus::CANT_PERFORM,
        }
    }
}

/// The NTLM acceptor finds users here: [`MockDc::nt_hash`].
impl CredentialStore for MockDc {
    fn lookup(&self, user: &str, domain: &str) -> Option<NtHash> {
        self.nt_hash(user, domain).map(NtHash::from_bytes)
    }
}

/// The mock domain controller. Clones share one server.
#[derive(Clone, Debug)]
pub struct MockDc {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: MockConfig,
    state_dir: PathBuf,
    faults: Faults,
    state: Mutex<State>,
    read_buffers: buffers::ReadBuffers,
}

#[derive(Debug)]
struct State {
    mode: DsMode,
    /// Counter of the handle generator.
    handles_issued: u64,
    /// The backup session (at most one per server).
    backup: Option<BackupSession>,
    restores: HashMap<ContextHandle, RestoreSession>,
    marker: Option<RestoreMarker>,
    /// The restore session that registered the marker, while it lives.
    marker_owner: Option<ContextHandle>,
    /// The value of the last `HrRRestoreSetCurrentLogNumber`.
    current_log_number: Option<u32>,
    /// Backup sessions ended by their client's `HrRBackupEnd` (not by a rundown).
    backups_ended: u64,
}

/// Where a session's snapshots live, under the state directory.
const SESSIONS_DIR: &str = "sessions";

impl MockDc {
    /// A server over `config`: checks the NTDS directory, prepares the state directory (stale
    /// session snapshots of an earlier run are removed) and reads the restore marker; a marker
    /// that blocks startup puts the server in restore mode.
    ///
    /// # Errors
    /// [`MockError::Root`] when the NTDS directory cannot be read; [`MockError::State`] when the
    /// state directory cannot be created or holds an unreadable marker.
    pub fn new(config: MockConfig) -> Result<Self, MockError> {
        fs::read_dir(&config.root).map_err(|source| MockError::Root {
            path: config.root.clone(),
            source,
        })?;
        let state_dir = config.state_dir();
        let state_error = |source| MockError::State {
            path: state_dir.clone(),
            source,
        };
        let sessions = state_dir.join(SESSIONS_DIR);
        match fs::remove_dir_all(&sessions) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(state_error(e)),
        }
        fs::create_dir_all(&sessions).map_err(state_error)?;
        let marker = RestoreMarker::load(&state_dir).map_err(state_error)?;
        let mode = if marker.as_ref().is_some_and(RestoreMarker::blocks_startup) {
            DsMode::Restore
        } else {
            config.mode
        };
        let faults = Faults::new(config.faults.clone());
        Ok(Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    mode,
                    handles_issued: 0,
                    backup: None,
                    restores: HashMap::new(),
                    marker,
                    marker_owner: None,
                    current_log_number: None,
                    backups_ended: 0,
                }),
                config,
                state_dir,
                faults,
                read_buffers: buffers::ReadBuffers::default(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MockConfig {
        &self.shared.config
    }

    /// The fault script (clones share it: change it while the server runs).
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The state directory in use.
    pub fn state_dir(&self) -> &Path {
        &self.shared.state_dir
    }

    /// The directory service's mode now.
    pub fn mode(&self) -> DsMode {
        self.lock().mode
    }

    /// Switches the directory service online or into restore mode (as a reboot would).
    pub fn set_mode(&self, mode: DsMode) {
        self.lock().mode = mode;
    }

    /// The restore marker, if a restore was registered (by this server or an earlier one on the
    /// same state directory).
    pub fn restore_marker(&self) -> Option<RestoreMarker> {
        self.lock().marker.clone()
    }

    /// How many backup sessions their client ended with `HrRBackupEnd` (a session run down
    /// because its connection went is not counted).
    pub fn backups_ended(&self) -> u64 {
        self.lock().backups_ended
    }

    /// The value of the last `HrRRestoreSetCurrentLogNumber`, if any.
    pub fn current_log_number(&self) -> Option<u32> {
        self.lock().current_log_number
    }

    /// Whether an association at `level` may bind (the transport glue asks before accepting a
    /// bind; every call checks again).
    pub fn accepts_auth_level(&self, level: AuthLevel) -> bool {
        level >= self.shared.config.min_auth_level
    }

    /// The NT hash of `user` in `domain` (for the NTLM acceptor's credential store): the
    /// configured user of that name (case-insensitive) when `domain` is empty, the configured
    /// domain or the DC's name; `None` otherwise.
    pub fn nt_hash(&self, user: &str, domain: &str) -> Option<[u8; 16]> {
        let config = &self.shared.config;
        if !domain_matches(config, domain) {
            return None;
        }
        config.user(user).map(|user| user.nt_hash)
    }

    /// The interfaces the core serves, in the order of [`MockDc::server_interfaces`].
    pub const SERVED_INTERFACES: [Interface; 2] = [Interface::AdBackup, Interface::AdRestore];

    /// The interfaces to register with a server association (`ServerConfig::interfaces`):
    /// ad_backup then ad_restore v1.0, each with every opnum of its call table and the
    /// configured minimum auth level. A request's `interface` index maps back through
    /// [`MockDc::SERVED_INTERFACES`].
    pub fn server_interfaces(&self) -> Vec<ServerInterface> {
        Self::SERVED_INTERFACES
            .iter()
            .map(|iface| {
                let id = iface.id();
                ServerInterface {
                    syntax: id.syntax(),
                    opnums: id.opnums(),
                    min_auth_level: self.shared.config.min_auth_level,
                }
            })
            .collect()
    }

    /// Serves one call from its stub bytes: decodes the request of `opnum` on `iface` in
    /// `orders.request`, dispatches it (faults included), and encodes the response in
    /// `orders.reply` (the byte order the response PDU's header declares), as a chain whose
    /// read data is the buffer the file was read into (not a copy). This is all the
    /// server-runtime glue needs per call.
    ///
    /// # Errors
    /// [`ServeError::NotServed`] for an interface other than ad_backup and ad_restore;
    /// [`ServeError::UnknownOpnum`] for an opnum outside the interface (the glue answers with
    /// the `nca_op_rng_error` fault); [`ServeError::BadStub`] for a stub that does not decode
    /// (`nca_s_fault_ndr`); [`ServeError::Encode`] if the response cannot be encoded (a bug:
    /// the glue answers with a fault).
    pub fn serve_stub(
        &self,
        caller: &Caller,
        now: SystemTime,
        iface: Interface,
        opnum: u16,
        orders: ByteOrders,
        stub: &[u8],
    ) -> Result<Reply<Chain>, ServeError> {
        let decode_error = |error: NdrError| match error {
            NdrError::UnknownOpnum { opnum, .. } => ServeError::UnknownOpnum { iface, opnum },
            error => ServeError::BadStub(error),
        };
        match iface {
            Interface::AdBackup => {
                let request =
                    AdBackupRequest::decode(opnum, orders.request, stub).map_err(decode_error)?;
                let reply = self.dispatch_ad_backup(caller, now, &request);
                Ok(Reply {
                    response: reply.response.encode_chain(orders.reply)?,
                    delay: reply.delay,
                })
            }
            Interface::AdRestore => {
                let request =
                    AdRestoreRequest::decode(opnum, orders.request, stub).map_err(decode_error)?;
                let reply = self.dispatch_ad_restore(caller, now, &request);
                Ok(Reply {
                    response: reply.response.encode_chain(orders.reply)?,
                    delay: reply.delay,
                })
            }
            Interface::Epm | Interface::Mgmt => Err(ServeError::NotServed(iface)),
        }
    }

    /// The handle of the active backup session, if any.
    pub fn active_backup(&self) -> Option<ContextHandle> {
        self.lock().backup.as_ref().map(|session| session.handle)
    }

    /// The handles of the live restore sessions.
    pub fn active_restores(&self) -> Vec<ContextHandle> {
        self.lock().restores.keys().copied().collect()
    }

    /// Serves one ad_backup call: applies the call faults, then the operation.
    pub fn dispatch_ad_backup(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &AdBackupRequest,
    ) -> Reply<AdBackupResponse> {
        let (status, delay) = self
            .shared
            .faults
            .take_call_faults(Interface::AdBackup, request.opnum());
        let response = match status {
            Some(status) => backup::failure(request, status),
            None => match request {
                AdBackupRequest::HrRBackupPrepare(r) => {
                    AdBackupResponse::HrRBackupPrepare(self.backup_prepare(caller, now, r))
                }
                AdBackupRequest::HrRBackupEnd(r) => {
                    AdBackupResponse::HrRBackupEnd(self.backup_end(caller, now, r))
                }
                AdBackupRequest::HrRBackupGetAttachmentInformation(r) => {
                    AdBackupResponse::HrRBackupGetAttachmentInformation(
                        self.backup_get_attachment_information(caller, now, r),
                    )
                }
                AdBackupRequest::HrRBackupOpenFile(r) => {
                    AdBackupResponse::HrRBackupOpenFile(self.backup_open_file(caller, now, r))
                }
                AdBackupRequest::HrRBackupRead(r) => {
                    AdBackupResponse::HrRBackupRead(self.backup_read(caller, now, r))
                }
                AdBackupRequest::HrRBackupClose(r) => {
                    AdBackupResponse::HrRBackupClose(self.backup_close(caller, now, r))
                }
                AdBackupRequest::HrRBackupGetBackupLogs(r) => {
                    AdBackupResponse::HrRBackupGetBackupLogs(
                        self.backup_get_backup_logs(caller, now, r),
                    )
                }
                AdBackupRequest::HrRBackupTruncateLogs(r) => {
                    AdBackupResponse::HrRBackupTruncateLogs(
                        self.backup_truncate_logs(caller, now, r),
                    )
                }
                AdBackupRequest::HrRBackupPing(r) => {
                    AdBackupResponse::HrRBackupPing(self.backup_ping(caller, now, r))
                }
            },
        };
        Reply { response, delay }
    }

    /// Serves one ad_restore call: applies the call faults, then the operation.
    pub fn dispatch_ad_restore(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &AdRestoreRequest,
    ) -> Reply<AdRestoreResponse> {
        let (status, delay) = self
            .shared
            .faults
            .take_call_faults(Interface::AdRestore, request.opnum());
        let response = match status {
            Some(status) => restore::failure(request, status),
            None => match request {
                AdRestoreRequest::HrRIsNTDSOnline(r) => {
                    AdRestoreResponse::HrRIsNTDSOnline(self.is_ntds_online(caller, now, r))
                }
                AdRestoreRequest::HrRRestorePrepare(r) => {
                    AdRestoreResponse::HrRRestorePrepare(self.restore_prepare(caller, now, r))
                }
                AdRestoreRequest::HrRRestoreRegister(r) => {
                    AdRestoreResponse::HrRRestoreRegister(self.restore_register(caller, now, r))
                }
                AdRestoreRequest::HrRRestoreRegisterComplete(r) => {
                    AdRestoreResponse::HrRRestoreRegisterComplete(
                        self.restore_register_complete(caller, now, r),
                    )
                }
                AdRestoreRequest::HrRRestoreGetDatabaseLocations(r) => {
                    AdRestoreResponse::HrRRestoreGetDatabaseLocations(
                        self.restore_get_database_locations(caller, now, r),
                    )
                }
                AdRestoreRequest::HrRRestoreEnd(r) => {
                    AdRestoreResponse::HrRRestoreEnd(self.restore_end(caller, now, r))
                }
                AdRestoreRequest::HrRRestoreSetCurrentLogNumber(r) => {
                    AdRestoreResponse::HrRRestoreSetCurrentLogNumber(
                        self.restore_set_current_log_number(caller, now, r),
                    )
                }
                AdRestoreRequest::HrRRestoreCheckLogsForBackup(r) => {
                    AdRestoreResponse::HrRRestoreCheckLogsForBackup(
                        self.restore_check_logs_for_backup(caller, now, r),
                    )
                }
            },
        };
        Reply { response, delay }
    }

    /// A context handle's connection died (the RPC runtime's rundown): ends its session.
    /// Returns whether there was one.
    pub fn rundown(&self, handle: ContextHandle) -> bool {
        let mut state = self.lock();
        if let Some(session) = state.backup.take_if(|s| s.handle == handle) {
            session.discard();
            return true;
        }
        Self::remove_restore(&mut state, handle)
    }

    /// A connection closed: ends every session opened on it. Returns their handles.
    pub fn connection_closed(&self, connection: ConnectionId) -> Vec<ContextHandle> {
        let mut state = self.lock();
        let mut ended = Vec::new();
        if let Some(session) = state.backup.take_if(|s| s.connection == connection) {
            ended.push(session.handle);
            session.discard();
        }
        let restores: Vec<ContextHandle> = state
            .restores
            .iter()
            .filter(|(_, s)| s.connection == connection)
            .map(|(handle, _)| *handle)
            .collect();
        for handle in restores {
            Self::remove_restore(&mut state, handle);
            ended.push(handle);
        }
        ended
    }

    /// Ends every session that has seen no call for longer than the idle timeout at `now`.
    /// Returns their handles (for the glue to drop from its context-handle table).
    pub fn expire_idle(&self, now: SystemTime) -> Vec<ContextHandle> {
        let timeout = self.shared.config.idle_timeout;
        let mut state = self.lock();
        let mut ended = Vec::new();
        if let Some(session) = state
            .backup
            .take_if(|s| is_idle(s.last_activity, now, timeout))
        {
            ended.push(session.handle);
            session.discard();
        }
        let idle: Vec<ContextHandle> = state
            .restores
            .iter()
            .filter(|(_, s)| is_idle(s.last_activity, now, timeout))
            .map(|(handle, _)| *handle)
            .collect();
        for handle in idle {
            Self::remove_restore(&mut state, handle);
            ended.push(handle);
        }
        ended
    }

    fn remove_restore(state: &mut State, handle: ContextHandle) -> bool {
        if state.marker_owner == Some(handle) {
            state.marker_owner = None;
        }
        state.restores.remove(&handle).is_some()
    }

    /// Checks the caller's auth level and privileges.
    fn authorize(&self, caller: &Caller, need: Need) -> Result<(), Status> {
        if !self.accepts_auth_level(caller.auth_level) {
            return Err(Status::ERROR_ACCESS_DENIED);
        }
        let privileges = self.privileges(caller);
        let allowed = match need {
            Need::Nothing => true,
            Need::Backup => privileges.backup,
            Need::Restore => privileges.restore,
            Need::BackupOrRestore => privileges.backup || privileges.restore,
        };
        if allowed {
            Ok(())
        } else {
            Err(Status::ERROR_ACCESS_DENIED)
        }
    }

    /// The privileges of the caller: those of the configured user of that name, when the
    /// caller's domain is empty, the configured domain or the DC's own name.
    fn privileges(&self, caller: &Caller) -> Privileges {
        let config = &self.shared.config;
        let Some(principal) = &caller.principal else {
            return Privileges::NONE;
        };
        match config.user(&principal.user) {
            Some(user) if domain_matches(config, &principal.domain) => user.privileges,
            _ => Privileges::NONE,
        }
    }

    /// A fresh context handle: deterministic from the seed and a counter, never null, never
    /// one in use.
    fn issue_handle(&self, state: &mut State) -> ContextHandle {
        let seed = self.shared.config.handle_seed;
        loop {
            state.handles_issued = state.handles_issued.wrapping_add(1);
            // `mix` is a bijection, so `high` differs for every counter value: handles stay
            // unique until the counter wraps.
            let high = mix(seed ^ mix(state.handles_issued));
            let low = mix(high ^ seed.rotate_left(32));
            let mut bytes = [0u8; 16];
            let (a, b) = bytes.split_at_mut(8);
            a.copy_from_slice(&high.to_be_bytes());
            b.copy_from_slice(&low.to_be_bytes());
            let handle = ContextHandle {
                attributes: 0,
                uuid: Uuid(bytes),
            };
            let in_use = state.backup.as_ref().is_some_and(|s| s.handle == handle)
                || state.restores.contains_key(&handle);
            if !handle.is_null() && !in_use {
                return handle;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of the state completes before the lock is released; a panic in a test
        // thread must not wedge the other connections.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What an operation needs of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    Nothing,
    Backup,
    Restore,
    BackupOrRestore,
}

/// Whether a caller's domain names this server's accounts: empty, the configured domain, or
/// the DC's own name (a local account).
fn domain_matches(config: &MockConfig, domain: &str) -> bool {
    domain.is_empty()
        || domain.eq_ignore_ascii_case(&config.domain)
        || domain.eq_ignore_ascii_case(&config.dc_name)
}

/// Whether a session last used at `last` is idle past `timeout` at `now`.
fn is_idle(last: SystemTime, now: SystemTime, timeout: Duration) -> bool {
    now.duration_since(last).is_ok_and(|idle| idle > timeout)
}

/// 100 ns intervals from 1601-01-01 to 1970-01-01.
const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

/// A time as a FILETIME (100 ns intervals since 1601-01-01 UTC), saturating at both ends.
pub fn filetime(time: SystemTime) -> u64 {
    let ticks = |d: Duration| u64::try_from(d.as_nanos() / 100).unwrap_or(u64::MAX);
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => FILETIME_UNIX_EPOCH.saturating_add(ticks(after)),
        Err(before) => FILETIME_UNIX_EPOCH.saturating_sub(ticks(before.duration())),
    }
}
