//! [`Client`]: one server, one identity (`DsSetAuthIdentity`), the calls that need no session,
//! and the two kinds of session.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dsbackup_ntlm::Credentials;
use dsbackup_proto::iface::ad_backup::{
    self, AdBackupRequest, AdBackupResponse, HrRBackupPrepareRequest,
};
use dsbackup_proto::iface::ad_restore::{
    self, AdRestoreRequest, AdRestoreResponse, HrRIsNTDSOnlineRequest,
    HrRRestoreCheckLogsForBackupRequest, HrRRestorePrepareRequest,
    HrRRestoreSetCurrentLogNumberRequest,
};
use dsbackup_proto::{AuthLevel, DataRep};
use dsbackup_proto::{ExpiryToken, Status};
use dsbackup_transport::{ClientAuth, ClientOptions, Registry, Tap, Tickets};

use crate::backup::BackupSession;
use crate::error::Error;
use crate::manifest::BackupType;
use crate::restore::RestoreSession;
use crate::rpc::{Rpc, check, wrong_response};

/// `g_wszBackupAnnotation`: the annotation a backup names itself with.
pub const BACKUP_ANNOTATION: &str = "NTDS Backup Interface";

/// Whether `size` may be asked for by one read: Microsoft documents `DsBackupRead`'s buffer
/// (and `DsBackupOpenFile`'s read hint) as a multiple of 8 KiB and at least 24 KiB; this
/// client also keeps it at most 16 MiB (`ad_backup::MAX_READ_SIZE`).
pub const fn is_valid_read_size(size: u32) -> bool {
    size >= 24 * 1024 && size.is_multiple_of(8 * 1024) && size <= ad_backup::MAX_READ_SIZE
}

/// How the client finds the server's ad_backup and ad_restore endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Ask the endpoint mapper on this TCP port (135 on a DC).
    Mapper {
        /// The endpoint mapper's port.
        port: u16,
    },
    /// Both interfaces on this fixed TCP port (a DC's NTDS `TCP/IP Port` setting).
    Port(u16),
}

impl Default for Endpoint {
    fn default() -> Self {
        Self::Mapper { port: 135 }
    }
}

/// The settings of a [`Client`]: [`ClientConfig::new`] gives the defaults for a server, a
/// builder method per field changes one (the fields can also be set in place; new ones may be
/// added, so the struct is built only through `new`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The server: a host name or an address.
    pub server: String,
    /// Who to authenticate as (`DsSetAuthIdentity`) with NTLM; `None` binds without
    /// authentication (unless [`kerberos`](Self::kerberos) is set).
    pub credentials: Option<Credentials>,
    /// Kerberos tickets for the server's SPN: when set, the client authenticates with
    /// Kerberos (auth type 16) instead of NTLM.
    pub kerberos: Option<Tickets>,
    /// Bind with SPNEGO (auth type 9): Kerberos first when [`kerberos`](Self::kerberos) is
    /// set, NTLM with [`credentials`](Self::credentials) as its fallback (see
    /// [`ClientConfig::spnego`]), rather than Kerberos (auth type 16) or NTLM (10) alone.
    pub spnego: bool,
    /// The auth level: packet privacy by default.
    pub auth_level: AuthLevel,
    /// Where the interfaces are.
    pub endpoint: Endpoint,
    /// Bound on connecting and binding (with authentication).
    pub connect_timeout: Duration,
    /// Bound on one call.
    pub call_timeout: Duration,
    /// Bytes asked for by one `HrRBackupRead`: as `DsBackupRead`'s buffer, a multiple of
    /// 8 KiB, at least 24 KiB ([`is_valid_read_size`]), and at most 16 MiB; `None` (the
    /// default): by level, [`default_read_size`].
    pub read_size: Option<u32>,
    /// `HrRBackupRead` calls kept in flight while a file is read; `None` (the default): by
    /// level, [`default_reads_in_flight`].
    pub reads_in_flight: Option<usize>,
    /// Largest fragment sent and received (the server may negotiate it down).
    pub max_frag: u16,
    /// The byte order of the PDUs and stubs sent: little-endian by default, as Windows sends;
    /// big-endian is legal NDR that every server must accept (answers are read in whatever
    /// order their headers declare).
    pub drep: DataRep,
    /// Where to copy every PDU of every connection (a capture file); none by default.
    pub tap: Option<Tap>,
}

/// `HrRBackupRead` calls kept in flight by default at `level`, as measured over loopback with
/// `cargo xtask bench` (README, Performance): 8 at packet integrity and privacy, where 8 ran 10
/// to 20 % faster than 4 (four reads of 256 KiB are about 2 ms of the server's sealing, less
/// than a scheduler's time slice, so the sealing side ran dry whenever the receiving side was
/// descheduled); 4 below them, where 8 cost the client more CPU per byte (twice the bytes in
/// flight, out of the caches) and ran no faster.
pub fn default_reads_in_flight(level: AuthLevel) -> usize {
    if level >= AuthLevel::PKT_INTEGRITY {
        8
    } else {
        4
    }
}

/// Bytes asked for by one `HrRBackupRead` by default at `level`, as measured over loopback with
/// `cargo xtask bench` (README, Performance): 512 KiB at packet integrity and privacy, 256 KiB
/// below. A signed answer is signed fragment by fragment, and a server that signs the
/// fragments of an answer side by side (ours, eight at a time) fills only half its lanes with
/// an answer of 256 KiB in 64 KiB fragments (four, and a scrap); at 512 KiB the mock spent 10
/// to 25 % less CPU per byte and the backup ran as fast or faster. Below integrity nothing is
/// signed, and larger reads only raised the peak RSS.
pub fn default_read_size(level: AuthLevel) -> u32 {
    if level >= AuthLevel::PKT_INTEGRITY {
        512 * 1024
    } else {
        256 * 1024
    }
}

impl ClientConfig {
    /// Defaults for `server`: no credentials yet, packet privacy, the endpoint mapper on 135,
    /// 10 s to connect, 60 s per call, reads of the size [`default_read_size`] says for the
    /// level with as many in flight as [`default_reads_in_flight`] says, 64 KiB fragments.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            credentials: None,
            kerberos: None,
            spnego: false,
            auth_level: AuthLevel::PKT_PRIVACY,
            endpoint: Endpoint::default(),
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(60),
            read_size: None,
            reads_in_flight: None,
            max_frag: u16::MAX,
            drep: DataRep::LITTLE_ENDIAN,
            tap: None,
        }
    }

    /// Bound on connecting and binding (with authentication).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Bound on one call.
    #[must_use]
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Bytes asked for by one `HrRBackupRead` ([`is_valid_read_size`]; checked by
    /// [`Client::new`]).
    #[must_use]
    pub fn read_size(mut self, size: u32) -> Self {
        self.read_size = Some(size);
        self
    }

    /// `HrRBackupRead` calls kept in flight while a file is read (at least 1, at most
    /// [`MAX_READS_IN_FLIGHT`](crate::MAX_READS_IN_FLIGHT)).
    #[must_use]
    pub fn reads_in_flight(mut self, reads: usize) -> Self {
        self.reads_in_flight = Some(reads);
        self
    }

    /// Largest fragment sent and received (the server may negotiate it down).
    #[must_use]
    pub fn max_frag(mut self, size: u16) -> Self {
        self.max_frag = size;
        self
    }

    /// Where to copy every PDU of every connection (a capture file).
    #[must_use]
    pub fn tap(mut self, tap: Tap) -> Self {
        self.tap = Some(tap);
        self
    }

    /// `DsSetAuthIdentity`: the user, domain and password (or NT hash) to authenticate with.
    #[must_use]
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Authenticates with Kerberos, presenting `tickets` (from a credential cache, a keytab
    /// or a password; see [`Tickets`]), rather than NTLM.
    #[must_use]
    pub fn kerberos(mut self, tickets: Tickets) -> Self {
        self.kerberos = Some(tickets);
        self
    }

    /// SPNEGO (auth type 9), as Windows' Negotiate binds: Kerberos with the
    /// [`kerberos`](Self::kerberos) tickets first, NTLM with the
    /// [`credentials`](Self::credentials) when Kerberos is not possible for the server or the
    /// server chooses NTLM. With tickets and no credentials, Kerberos is required (a server
    /// choosing NTLM is refused as a downgrade); with credentials alone, NTLM inside SPNEGO.
    #[must_use]
    pub fn spnego(mut self, spnego: bool) -> Self {
        self.spnego = spnego;
        self
    }

    /// The auth level (connect, packet integrity, packet privacy; none without credentials).
    #[must_use]
    pub fn auth_level(mut self, level: AuthLevel) -> Self {
        self.auth_level = level;
        self
    }

    /// Where the interfaces are.
    #[must_use]
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// The byte order of what the client sends.
    #[must_use]
    pub fn drep(mut self, drep: DataRep) -> Self {
        self.drep = drep;
        self
    }
}

/// A client of one server (the Rust counterpart of calling `ntdsbcli` with a server name after
/// `DsSetAuthIdentity`). Cheap to clone; every binding it opens is counted in its
/// [`registry`](Self::registry).
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

/// What the sessions of a client share.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) server: String,
    pub(crate) endpoint: Endpoint,
    pub(crate) registry: Registry,
    pub(crate) read_size: u32,
    pub(crate) reads_in_flight: usize,
}

impl Client {
    /// A client with `config`. Nothing is connected until a call.
    ///
    /// # Errors
    /// [`Error::Misuse`] for a read size that breaks [`is_valid_read_size`], or an auth level
    /// above none without credentials.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let read_size = config
            .read_size
            .unwrap_or_else(|| default_read_size(config.auth_level));
        if !is_valid_read_size(read_size) {
            return Err(Error::Misuse(
                "the read size must be a multiple of 8 KiB, at least 24 KiB and at most 16 MiB \
                 (DsBackupRead's rule)",
            ));
        }
        let auth = match (config.kerberos, config.credentials, config.auth_level) {
            (_, _, AuthLevel::NONE) => ClientAuth::None,
            (tickets, ntlm, level) if config.spnego && (tickets.is_some() || ntlm.is_some()) => {
                ClientAuth::Negotiate {
                    tickets,
                    ntlm,
                    level,
                }
            }
            (Some(tickets), _, level) => ClientAuth::Kerberos { tickets, level },
            (None, Some(credentials), level) => ClientAuth::ntlm(credentials, level),
            (None, None, _) => {
                return Err(Error::Misuse(
                    "an auth level above none needs credentials (DsSetAuthIdentity)",
                ));
            }
        };
        let mut options = ClientOptions::with_auth(auth);
        options.connect_timeout = config.connect_timeout;
        options.call_timeout = config.call_timeout;
        options.tap = config.tap;
        options.drep = config.drep;
        options.limits.max_recv_frag = config.max_frag.max(dsbackup_proto::MIN_FRAG_SIZE);
        options.limits.max_xmit_frag = config.max_frag.max(dsbackup_proto::MIN_FRAG_SIZE);
        if let Endpoint::Mapper { port } = config.endpoint {
            options.epm_port = port;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                server: config.server,
                endpoint: config.endpoint,
                registry: Registry::new(options),
                read_size,
                reads_in_flight: config
                    .reads_in_flight
                    .unwrap_or_else(|| default_reads_in_flight(config.auth_level))
                    .max(1),
            }),
        })
    }

    /// The server this client talks to.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// The registry of the bindings this client opened (counts of what is open).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// `DsIsNTDSOnline`: whether the directory service runs (`false`: restore mode).
    ///
    /// # Errors
    /// [`Error::Transport`] or [`Error::Authentication`] when the server cannot be reached or
    /// refuses us; [`Error::Status`] for a failure status.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call and closes the binding it opened; a session the
    /// server had started is run down when that association goes.
    pub async fn is_ntds_online(&self) -> Result<bool, Error> {
        const CALL: &str = "HrRIsNTDSOnline";
        let response = self
            .restore_call(AdRestoreRequest::HrRIsNTDSOnline(HrRIsNTDSOnlineRequest {}))
            .await?;
        let AdRestoreResponse::HrRIsNTDSOnline(response) = response else {
            return Err(wrong_response(CALL));
        };
        check(CALL, response.status)?;
        Ok(response.pf_online != 0)
    }

    /// `DsSetCurrentBackupLog`: sets the server's current backup log number
    /// (`0xFFFFFFFF` disables incremental backups until the next full one).
    ///
    /// # Errors
    /// As [`is_ntds_online`](Self::is_ntds_online).
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call and closes the binding it opened; a session the
    /// server had started is run down when that association goes.
    pub async fn set_current_backup_log(&self, log: u32) -> Result<(), Error> {
        const CALL: &str = "HrRRestoreSetCurrentLogNumber";
        let response = self
            .restore_call(AdRestoreRequest::HrRRestoreSetCurrentLogNumber(
                HrRRestoreSetCurrentLogNumberRequest {
                    dw_current_log: log,
                },
            ))
            .await?;
        let AdRestoreResponse::HrRRestoreSetCurrentLogNumber(response) = response else {
            return Err(wrong_response(CALL));
        };
        check(CALL, response.status)
    }

    /// Whether the logs a backup with `annotation` needs are still on the server: `true` when
    /// they are, `false` when one is gone (`hrLogFileNotFound`).
    ///
    /// # Errors
    /// As [`is_ntds_online`](Self::is_ntds_online); other failure statuses.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call and closes the binding it opened; a session the
    /// server had started is run down when that association goes.
    pub async fn check_logs_for_backup(&self, annotation: &str) -> Result<bool, Error> {
        const CALL: &str = "HrRRestoreCheckLogsForBackup";
        let response = self
            .restore_call(AdRestoreRequest::HrRRestoreCheckLogsForBackup(
                HrRRestoreCheckLogsForBackupRequest {
                    wsz_backup_annotation: annotation.to_owned(),
                },
            ))
            .await?;
        let AdRestoreResponse::HrRRestoreCheckLogsForBackup(response) = response else {
            return Err(wrong_response(CALL));
        };
        if response.status == Status::HR_LOG_FILE_NOT_FOUND {
            return Ok(false);
        }
        check(CALL, response.status)?;
        Ok(true)
    }

    /// `DsBackupPrepare`: starts a backup session (the `HBC`). End it with
    /// [`BackupSession::end`]; dropping it closes its bindings, and the server runs the
    /// session down.
    ///
    /// # Errors
    /// [`Error::Status`] (`hrBackupInProgress`, `ERROR_ACCESS_DENIED`, ...), transport errors;
    /// the binding opened for the call is closed before returning.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call and closes the binding it opened; a session the
    /// server had started is run down when that association goes.
    pub async fn backup_prepare(&self, backup_type: BackupType) -> Result<BackupSession, Error> {
        const CALL: &str = "HrRBackupPrepare";
        let rpc = Rpc::connect(&self.inner, &ad_backup::INTERFACE).await?;
        let request = AdBackupRequest::HrRBackupPrepare(HrRBackupPrepareRequest {
            grbit: 0,
            bt_flag: backup_type.bt_flag(),
            wsz_backup_annotation: BACKUP_ANNOTATION.to_owned(),
            dw_client_identifier: std::process::id(),
        });
        let result = async {
            let AdBackupResponse::HrRBackupPrepare(response) = rpc.backup(&request).await? else {
                return Err(wrong_response(CALL));
            };
            check(CALL, response.status)?;
            if response.ph_context.is_null() {
                return Err(Error::Protocol {
                    call: CALL,
                    reason: "success with a null context handle".to_owned(),
                });
            }
            let token = response.ppb_expiry_token.clone().unwrap_or_default();
            Ok((response.ph_context, token))
        }
        .await;
        match result {
            // The token has one format in the IDL (16 bytes, version 1); a restore of the set
            // needs it, so a server that sends anything else is refused here, before a byte of
            // the backup is written, and the session it opened is ended (DsBackupEnd).
            Ok((handle, token)) if ExpiryToken::decode(&token).is_err() => {
                let len = token.len();
                let session = BackupSession::new(
                    Arc::clone(&self.inner),
                    rpc,
                    handle,
                    Bytes::new(),
                    backup_type,
                );
                if let Err(error) = session.end().await {
                    tracing::debug!(%error, "DsBackupEnd after a refused expiry token failed");
                }
                Err(Error::Protocol {
                    call: CALL,
                    reason: format!(
                        "an expiry token of {len} bytes is not the IDL's 16-byte version 1 format"
                    ),
                })
            }
            Ok((handle, token)) => Ok(BackupSession::new(
                Arc::clone(&self.inner),
                rpc,
                handle,
                token,
                backup_type,
            )),
            Err(error) => {
                rpc.close().await;
                Err(error)
            }
        }
    }

    /// `DsRestorePrepare`: starts a restore session. With `token` (the one saved with the
    /// backup) every restore call is allowed; without, only
    /// [`database_locations`](RestoreSession::database_locations).
    ///
    /// # Errors
    /// [`Error::Status`] (`hrContentsExpired`, `ERROR_ACCESS_DENIED` when the DC is not in
    /// restore mode, ...), transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call and closes the binding it opened; a session the
    /// server had started is run down when that association goes.
    pub async fn restore_prepare(
        &self,
        rt_flag: u32,
        token: Option<&[u8]>,
    ) -> Result<RestoreSession, Error> {
        const CALL: &str = "HrRRestorePrepare";
        let rpc = Rpc::connect(&self.inner, &ad_restore::INTERFACE).await?;
        let mut request = HrRRestorePrepareRequest::new(rt_flag, None::<&ExpiryToken>);
        if let Some(token) = token {
            request.pb_expiry_token = Some(Bytes::copy_from_slice(token));
            request.cb_expiry_token = u32::try_from(token.len())
                .map_err(|_| Error::Misuse("the expiry token is too long"))?;
        }
        let result = async {
            let AdRestoreResponse::HrRRestorePrepare(response) = rpc
                .restore(&AdRestoreRequest::HrRRestorePrepare(request))
                .await?
            else {
                return Err(wrong_response(CALL));
            };
            check(CALL, response.status)?;
            Ok(response.ph_context)
        }
        .await;
        match result {
            Ok(handle) => Ok(RestoreSession::new(rpc, handle)),
            Err(error) => {
                rpc.close().await;
                Err(error)
            }
        }
    }

    /// One ad_restore call on a binding of its own, closed afterwards whatever happened.
    async fn restore_call(&self, request: AdRestoreRequest) -> Result<AdRestoreResponse, Error> {
        let rpc = Rpc::connect(&self.inner, &ad_restore::INTERFACE).await?;
        let result = rpc.restore(&request).await;
        rpc.close().await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read size and reads in flight follow the level unless the caller set them (then at
    /// least one read).
    #[test]
    fn reads_follow_the_level_unless_set() {
        let reads = |config: ClientConfig| {
            let client = Client::new(config).unwrap();
            (client.inner.read_size, client.inner.reads_in_flight)
        };
        let at = |level| {
            ClientConfig::new("dc1")
                .credentials(Credentials::from_password("backup", "CORP", "secret"))
                .auth_level(level)
        };
        assert_eq!(reads(at(AuthLevel::NONE)), (256 * 1024, 4));
        assert_eq!(reads(at(AuthLevel::CONNECT)), (256 * 1024, 4));
        assert_eq!(reads(at(AuthLevel::PKT_INTEGRITY)), (512 * 1024, 8));
        let default = ClientConfig::new("dc1")
            .credentials(Credentials::from_password("backup", "CORP", "secret"));
        assert_eq!(reads(default), (512 * 1024, 8), "privacy by default");
        let set = at(AuthLevel::NONE).read_size(64 * 1024).reads_in_flight(3);
        assert_eq!(reads(set), (64 * 1024, 3));
        assert_eq!(reads(at(AuthLevel::PKT_PRIVACY).reads_in_flight(0)).1, 1);
    }

    #[test]
    fn read_sizes_follow_dsbackupread_rule() {
        for size in [24 * 1024, 32 * 1024, 256 * 1024, 16 * 1024 * 1024] {
            let config = ClientConfig::new("dc1")
                .auth_level(AuthLevel::NONE)
                .read_size(size);
            assert!(Client::new(config).is_ok(), "{size}");
        }
        for size in [
            0,
            1,
            16 * 1024,
            30_000,
            24 * 1024 + 8,
            16 * 1024 * 1024 + 8192,
        ] {
            let config = ClientConfig::new("dc1")
                .auth_level(AuthLevel::NONE)
                .read_size(size);
            let error = Client::new(config).unwrap_err();
            assert!(matches!(error, Error::Misuse(_)), "{size}: {error}");
        }
    }
}
