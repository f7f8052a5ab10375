//! The mock domain controller's configuration ([`MockConfig`]).

use core::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dsbackup_ntlm::NtHash;
use dsbackup_proto::iface::Interface;
use dsbackup_proto::{AuthLevel, Limits, Status};
use dsbackup_transport::ServerOptions;
use serde::Deserialize;

use crate::faults::{FaultScript, StatusFault};

/// Whether the directory service runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DsMode {
    /// The directory service is running: backups are possible, restores are refused.
    #[default]
    Online,
    /// Directory Services Restore Mode: restores are possible, backups are refused.
    #[serde(alias = "restore_mode")]
    Restore,
}

/// The privileges of a user, as the server's token would carry them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Privileges {
    /// SeBackupPrivilege: ad_backup.
    pub backup: bool,
    /// SeRestorePrivilege (and Administrators): ad_restore.
    pub restore: bool,
}

impl Privileges {
    /// No privilege.
    pub const NONE: Self = Self {
        backup: false,
        restore: false,
    };
    /// Backup only.
    pub const BACKUP: Self = Self {
        backup: true,
        restore: false,
    };
    /// Restore only.
    pub const RESTORE: Self = Self {
        backup: false,
        restore: true,
    };
    /// Backup and restore.
    pub const ALL: Self = Self {
        backup: true,
        restore: true,
    };
}

/// A user the mock knows.
#[derive(Clone, PartialEq, Eq)]
pub struct MockUser {
    /// The account name (compared case-insensitively).
    pub name: String,
    /// The NT hash (MD4 of the UTF-16LE password), what an NTLM acceptor needs.
    pub nt_hash: [u8; 16],
    /// What the user may do.
    pub privileges: Privileges,
}

impl MockUser {
    /// A user with a password.
    pub fn with_password(name: impl Into<String>, password: &str, privileges: Privileges) -> Self {
        Self {
            name: name.into(),
            nt_hash: nt_hash(password),
            privileges,
        }
    }

    /// A user given by NT hash.
    pub fn with_nt_hash(
        name: impl Into<String>,
        nt_hash: [u8; 16],
        privileges: Privileges,
    ) -> Self {
        Self {
            name: name.into(),
            nt_hash,
            privileges,
        }
    }
}

impl fmt::Debug for MockUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockUser")
            .field("name", &self.name)
            .field("nt_hash", &"<redacted>")
            .field("privileges", &self.privileges)
            .finish()
    }
}

/// The NT hash of a password: MD4 of its UTF-16LE encoding ([MS-NLMP §3.3.1] NTOWFv1).
///
/// [MS-NLMP §3.3.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/
pub(crate) fn nt_hash(password: &str) -> [u8; 16] {
    *NtHash::from_password(password).as_bytes()
}

/// The configuration of a [`MockDc`](crate::MockDc): a plain struct, a builder
/// ([`MockConfig::builder`]), and a TOML form for `dsbackup mock-dc --config`.
///
/// ```toml
/// dc_name = "DC1"
/// domain = "CORP"
/// root = "ntds"                  # relative to the config file
/// # state_dir = "/var/lib/mock"  # default: <root>/.dsbackup-mock
/// min_auth_level = "packet_integrity"   # none | connect | packet_integrity | packet_privacy
/// mode = "online"                # or "restore"
/// tombstone_lifetime_days = 180
/// idle_timeout_secs = 600
///
/// [[users]]
/// name = "svc-backup"
/// password = "Passw0rd!"
/// privileges = ["backup"]
///
/// [[users]]
/// name = "Administrator"
/// nt_hash = "8846f7eaee8fb117ad06bdd830b7586c"
/// privileges = ["backup", "restore"]
///
/// # The server's limits against hostile peers (each optional; these are the defaults).
/// [server]
/// max_associations = 256
/// max_associations_per_address = 64
/// bind_timeout_ms = 3000          # the bind whole, after the accept
/// handshake_timeout_ms = 10000    # bind and NTLM handshake done, after the accept
/// fragment_timeout_ms = 10000     # a fragment whole, after its first byte
/// idle_without_handle_ms = 60000  # bound, no context handle, no call
/// idle_with_handle_ms = 900000    # holding a backup or restore session's handle
/// send_timeout_ms = 30000         # answers queued, none taken by the peer
/// reassembly_budget = 67108864    # request bytes in reassembly, all connections
/// max_send_queue = 8388608        # bytes of answers queued per connection
/// send_budget = 67108864          # bytes of answers queued, all connections
/// listen_backlog = 4096           # connections queued for the accept loop
///
/// [faults]
/// refuse_binds = false
/// drop_after_calls = 100
/// [[faults.status]]
/// interface = "ad_backup"
/// opnum = 3
/// status = 0x57
/// [[faults.delay]]
/// interface = "ad_backup"
/// opnum = 4
/// millis = 20
/// ```
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// The DC's NetBIOS name, used in the UNC names of the backup set.
    pub dc_name: String,
    /// The NetBIOS domain name; a caller's domain must be this, the DC's name (a local
    /// account) or empty.
    pub domain: String,
    /// The NTDS directory (see [`crate::ntds`]).
    pub root: PathBuf,
    /// Where session snapshots and the restore marker live (default `<root>/.dsbackup-mock`).
    pub state_dir: Option<PathBuf>,
    /// The directory part of the UNC names after `\\<dc_name>\` (default `C$\Windows\NTDS`).
    pub unc_directory: String,
    /// The users.
    pub users: Vec<MockUser>,
    /// The lowest authentication level a call may come with (default packet integrity).
    pub min_auth_level: AuthLevel,
    /// Online or restore mode.
    pub mode: DsMode,
    /// The tombstone lifetime written into expiry tokens.
    pub tombstone_lifetime_days: u32,
    /// A session that has seen no call for this long is ended.
    pub idle_timeout: Duration,
    /// The most bytes one `HrRBackupRead` returns (the server may return fewer than asked).
    pub max_read_chunk: u32,
    /// Seed of the context-handle generator.
    pub handle_seed: u64,
    /// The faults in force at start.
    pub faults: FaultScript,
    /// The server's limits against hostile peers.
    pub server: ServerLimits,
}

/// The server's limits against hostile peers (see `dsbackup_transport::ServerOptions`, where
/// each is explained, and `Limits::max_send_queue`); the defaults are the transport's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerLimits {
    /// Associations at once; when full, idle unauthenticated ones make room.
    pub max_associations: usize,
    /// Associations at once from one client address.
    pub max_associations_per_address: usize,
    /// The bind whole, after the accept.
    pub bind_timeout: Duration,
    /// Bind and security handshake done, after the accept.
    pub handshake_timeout: Duration,
    /// A fragment whole, after its first byte.
    pub fragment_timeout: Duration,
    /// Idle limit of a bound association holding no context handle.
    pub idle_without_handle: Duration,
    /// Idle limit of an association holding a context handle.
    pub idle_with_handle: Duration,
    /// Answers queued and none taken by the peer for this long: closed.
    pub send_timeout: Duration,
    /// Request bytes in reassembly across all connections.
    pub reassembly_budget: usize,
    /// Bytes of answers queued per connection.
    pub max_send_queue: usize,
    /// Bytes of answers queued across all connections.
    pub send_budget: usize,
    /// Connections queued for the accept loop (`listen`'s backlog).
    pub listen_backlog: u32,
}

impl Default for ServerLimits {
    fn default() -> Self {
        let options = ServerOptions::default();
        Self {
            max_associations: options.max_associations,
            max_associations_per_address: options.max_associations_per_address,
            bind_timeout: options.bind_timeout,
            handshake_timeout: options.handshake_timeout,
            fragment_timeout: options.fragment_timeout,
            idle_without_handle: options.idle_without_handle,
            idle_with_handle: options.idle_timeout,
            send_timeout: options.send_timeout,
            reassembly_budget: options.reassembly_budget,
            max_send_queue: Limits::server().max_send_queue,
            send_budget: options.send_budget,
            listen_backlog: options.listen_backlog,
        }
    }
}

impl ServerLimits {
    /// Sets these limits on a server's options.
    pub fn apply(&self, options: &mut ServerOptions) {
        options.max_associations = self.max_associations;
        options.max_associations_per_address = self.max_associations_per_address;
        options.bind_timeout = self.bind_timeout;
        options.handshake_timeout = self.handshake_timeout;
        options.fragment_timeout = self.fragment_timeout;
        options.idle_without_handle = self.idle_without_handle;
        options.idle_timeout = self.idle_with_handle;
        options.send_timeout = self.send_timeout;
        options.reassembly_budget = self.reassembly_budget;
        options.limits.max_send_queue = self.max_send_queue;
        options.send_budget = self.send_budget;
        options.listen_backlog = self.listen_backlog;
    }
}

impl MockConfig {
    /// Default tombstone lifetime (days), the value of Windows Server 2003 SP1 and later.
    pub const DEFAULT_TOMBSTONE_LIFETIME_DAYS: u32 = 180;
    /// Default idle timeout.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
    /// Default largest read.
    pub const DEFAULT_MAX_READ_CHUNK: u32 = 4 * 1024 * 1024;
    /// Default UNC directory.
    pub const DEFAULT_UNC_DIRECTORY: &str = r"C$\Windows\NTDS";

    /// A configuration with defaults for everything but the DC name and the NTDS directory.
    pub fn new(dc_name: impl Into<String>, root: impl Into<PathBuf>) -> Self {
        Self {
            dc_name: dc_name.into(),
            domain: String::new(),
            root: root.into(),
            state_dir: None,
            unc_directory: Self::DEFAULT_UNC_DIRECTORY.to_owned(),
            users: Vec::new(),
            min_auth_level: AuthLevel::PKT_INTEGRITY,
            mode: DsMode::Online,
            tombstone_lifetime_days: Self::DEFAULT_TOMBSTONE_LIFETIME_DAYS,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            max_read_chunk: Self::DEFAULT_MAX_READ_CHUNK,
            handle_seed: 0x6473_6261_636B_7570, // "dsbackup"
            faults: FaultScript::default(),
            server: ServerLimits::default(),
        }
    }

    /// A builder starting from [`MockConfig::new`].
    pub fn builder(dc_name: impl Into<String>, root: impl Into<PathBuf>) -> MockConfigBuilder {
        MockConfigBuilder {
            config: Self::new(dc_name, root),
        }
    }

    /// The state directory in use.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| self.root.join(".dsbackup-mock"))
    }

    /// The user `name` (case-insensitive).
    pub fn user(&self, name: &str) -> Option<&MockUser> {
        self.users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
    }

    /// Loads a TOML configuration file; relative paths in it are relative to its directory.
    ///
    /// # Errors
    /// [`ConfigError::Io`] when the file cannot be read; any error of
    /// [`MockConfig::from_toml_str`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::from_toml_str(&text, base)
    }

    /// Parses a TOML configuration; relative paths are resolved against `base`.
    ///
    /// # Errors
    /// [`ConfigError::Toml`] for bad TOML or unknown keys; [`ConfigError::Invalid`] for a user
    /// without (or with both) `password` and `nt_hash`, a bad hash, an unknown privilege,
    /// auth level or interface.
    pub fn from_toml_str(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        let mut config = Self::new(raw.dc_name, base.join(raw.root));
        config.domain = raw.domain.unwrap_or_default();
        config.state_dir = raw.state_dir.map(|dir| base.join(dir));
        if let Some(dir) = raw.unc_directory {
            config.unc_directory = dir;
        }
        if let Some(level) = raw.min_auth_level {
            config.min_auth_level = parse_auth_level(&level)?;
        }
        config.mode = raw.mode.unwrap_or_default();
        if let Some(days) = raw.tombstone_lifetime_days {
            config.tombstone_lifetime_days = days;
        }
        if let Some(secs) = raw.idle_timeout_secs {
            config.idle_timeout = Duration::from_secs(secs);
        }
        if let Some(chunk) = raw.max_read_chunk {
            config.max_read_chunk = chunk;
        }
        if let Some(seed) = raw.handle_seed {
            config.handle_seed = seed;
        }
        for user in raw.users {
            let mut privileges = Privileges::NONE;
            for privilege in &user.privileges {
                match privilege.to_ascii_lowercase().as_str() {
                    "backup" => privileges.backup = true,
                    "restore" => privileges.restore = true,
                    _ => {
                        return Err(ConfigError::Invalid(
                            "privileges are \"backup\" or \"restore\"",
                        ));
                    }
                }
            }
            let hash = match (user.password, user.nt_hash) {
                (Some(password), None) => nt_hash(&password),
                (None, Some(hex)) => parse_nt_hash(&hex)?,
                _ => {
                    return Err(ConfigError::Invalid(
                        "a user needs exactly one of `password` and `nt_hash`",
                    ));
                }
            };
            config
                .users
                .push(MockUser::with_nt_hash(user.name, hash, privileges));
        }
        if let Some(faults) = raw.faults {
            config.faults = faults.into_script()?;
        }
        if let Some(server) = raw.server {
            server.apply(&mut config.server);
        }
        Ok(config)
    }
}

/// Builds a [`MockConfig`].
#[derive(Clone, Debug)]
pub struct MockConfigBuilder {
    config: MockConfig,
}

impl MockConfigBuilder {
    /// The NetBIOS domain name.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.config.domain = domain.into();
        self
    }

    /// Adds a user with a password.
    pub fn user(mut self, name: impl Into<String>, password: &str, privileges: Privileges) -> Self {
        self.config
            .users
            .push(MockUser::with_password(name, password, privileges));
        self
    }

    /// Adds a user given by NT hash.
    pub fn user_nt_hash(
        mut self,
        name: impl Into<String>,
        nt_hash: [u8; 16],
        privileges: Privileges,
    ) -> Self {
        self.config
            .users
            .push(MockUser::with_nt_hash(name, nt_hash, privileges));
        self
    }

    /// The state directory.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.state_dir = Some(dir.into());
        self
    }

    /// The lowest authentication level accepted.
    pub fn min_auth_level(mut self, level: AuthLevel) -> Self {
        self.config.min_auth_level = level;
        self
    }

    /// Online or restore mode.
    pub fn mode(mut self, mode: DsMode) -> Self {
        self.config.mode = mode;
        self
    }

    /// The tombstone lifetime in days.
    pub fn tombstone_lifetime_days(mut self, days: u32) -> Self {
        self.config.tombstone_lifetime_days = days;
        self
    }

    /// The idle timeout of sessions.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// The largest read.
    pub fn max_read_chunk(mut self, bytes: u32) -> Self {
        self.config.max_read_chunk = bytes;
        self
    }

    /// The seed of the context-handle generator.
    pub fn handle_seed(mut self, seed: u64) -> Self {
        self.config.handle_seed = seed;
        self
    }

    /// The faults in force at start.
    pub fn faults(mut self, faults: FaultScript) -> Self {
        self.config.faults = faults;
        self
    }

    /// The server's limits against hostile peers.
    pub fn server_limits(mut self, limits: ServerLimits) -> Self {
        self.config.server = limits;
        self
    }

    /// The configuration.
    pub fn build(self) -> MockConfig {
        self.config
    }
}

/// Errors of loading a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown keys.
    #[error("bad configuration: {0}")]
    Toml(String),
    /// A value is not acceptable.
    #[error("bad configuration: {0}")]
    Invalid(&'static str),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    dc_name: String,
    domain: Option<String>,
    root: PathBuf,
    state_dir: Option<PathBuf>,
    unc_directory: Option<String>,
    min_auth_level: Option<String>,
    mode: Option<DsMode>,
    tombstone_lifetime_days: Option<u32>,
    idle_timeout_secs: Option<u64>,
    max_read_chunk: Option<u32>,
    handle_seed: Option<u64>,
    #[serde(default)]
    users: Vec<RawUser>,
    faults: Option<RawFaults>,
    server: Option<RawServer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    max_associations: Option<usize>,
    max_associations_per_address: Option<usize>,
    bind_timeout_ms: Option<u64>,
    handshake_timeout_ms: Option<u64>,
    fragment_timeout_ms: Option<u64>,
    idle_without_handle_ms: Option<u64>,
    idle_with_handle_ms: Option<u64>,
    send_timeout_ms: Option<u64>,
    reassembly_budget: Option<usize>,
    max_send_queue: Option<usize>,
    send_budget: Option<usize>,
    listen_backlog: Option<u32>,
}

impl RawServer {
    fn apply(self, limits: &mut ServerLimits) {
        let ms = Duration::from_millis;
        let set = |target: &mut Duration, value: Option<u64>| {
            if let Some(value) = value {
                *target = ms(value);
            }
        };
        set(&mut limits.bind_timeout, self.bind_timeout_ms);
        set(&mut limits.handshake_timeout, self.handshake_timeout_ms);
        set(&mut limits.fragment_timeout, self.fragment_timeout_ms);
        set(&mut limits.idle_without_handle, self.idle_without_handle_ms);
        set(&mut limits.idle_with_handle, self.idle_with_handle_ms);
        set(&mut limits.send_timeout, self.send_timeout_ms);
        if let Some(max) = self.max_associations {
            limits.max_associations = max;
        }
        if let Some(max) = self.max_associations_per_address {
            limits.max_associations_per_address = max;
        }
        if let Some(budget) = self.reassembly_budget {
            limits.reassembly_budget = budget;
        }
        if let Some(budget) = self.max_send_queue {
            limits.max_send_queue = budget;
        }
        if let Some(budget) = self.send_budget {
            limits.send_budget = budget;
        }
        if let Some(backlog) = self.listen_backlog {
            limits.listen_backlog = backlog;
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    password: Option<String>,
    nt_hash: Option<String>,
    #[serde(default)]
    privileges: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    #[serde(default)]
    status: Vec<RawStatusFault>,
    #[serde(default)]
    delay: Vec<RawDelayFault>,
    drop_after_calls: Option<u64>,
    drop_after_bytes: Option<u64>,
    corrupt_response_fragment: Option<u64>,
    #[serde(default)]
    refuse_binds: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatusFault {
    interface: String,
    opnum: u16,
    status: u32,
    times: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelayFault {
    interface: String,
    opnum: u16,
    millis: u64,
}

impl RawFaults {
    fn into_script(self) -> Result<FaultScript, ConfigError> {
        let iface = |name: &str| {
            name.parse::<Interface>()
                .map_err(|_| ConfigError::Invalid("fault interfaces are ad_backup or ad_restore"))
        };
        let mut script = FaultScript {
            drop_after_calls: self.drop_after_calls,
            drop_after_bytes: self.drop_after_bytes,
            corrupt_response_fragment: self.corrupt_response_fragment,
            refuse_binds: self.refuse_binds,
            ..FaultScript::default()
        };
        for fault in self.status {
            script.statuses.insert(
                (iface(&fault.interface)?, fault.opnum),
                StatusFault {
                    status: Status(fault.status),
                    remaining: fault.times,
                },
            );
        }
        for fault in self.delay {
            script.delays.insert(
                (iface(&fault.interface)?, fault.opnum),
                Duration::from_millis(fault.millis),
            );
        }
        Ok(script)
    }
}

fn parse_auth_level(text: &str) -> Result<AuthLevel, ConfigError> {
    Ok(match text.to_ascii_lowercase().replace('-', "_").as_str() {
        "none" => AuthLevel::NONE,
        "connect" => AuthLevel::CONNECT,
        "packet_integrity" | "integrity" => AuthLevel::PKT_INTEGRITY,
        "packet_privacy" | "privacy" => AuthLevel::PKT_PRIVACY,
        _ => {
            return Err(ConfigError::Invalid(
                "min_auth_level is none, connect, packet_integrity or packet_privacy",
            ));
        }
    })
}

fn parse_nt_hash(text: &str) -> Result<[u8; 16], ConfigError> {
    const BAD: ConfigError = ConfigError::Invalid("nt_hash is 32 hex digits");
    let text = text.trim();
    if text.len() != 32 || !text.is_ascii() {
        return Err(BAD);
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let pair = core::str::from_utf8(pair).map_err(|_| BAD)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| BAD)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nt_hash_of_password_is_md4_of_utf16le() {
        // MS-NLMP §4.2.2.1.2: NTOWFv1("Password").
        assert_eq!(
            nt_hash("Password"),
            [
                0xa4, 0xf4, 0x9c, 0x40, 0x65, 0x10, 0xbd, 0xca, 0xb6, 0x82, 0x4e, 0xe7, 0xc3, 0x0f,
                0xd8, 0x52
            ]
        );
    }

    #[test]
    fn loads_the_documented_toml() {
        let text = r#"
            dc_name = "DC1"
            domain = "CORP"
            root = "ntds"
            min_auth_level = "packet_privacy"
            mode = "restore"
            tombstone_lifetime_days = 60
            idle_timeout_secs = 30

            [[users]]
            name = "svc-backup"
            password = "Password"
            privileges = ["backup"]

            [[users]]
            name = "Administrator"
            nt_hash = "A4F49C406510BDCAB6824EE7C30FD852"
            privileges = ["backup", "restore"]

            [server]
            max_associations = 1000
            handshake_timeout_ms = 2500
            idle_with_handle_ms = 60000
            max_send_queue = 65536
            send_budget = 1048576
            listen_backlog = 128

            [faults]
            refuse_binds = true
            drop_after_calls = 100
            [[faults.status]]
            interface = "ad_backup"
            opnum = 3
            status = 0x57
            times = 1
            [[faults.delay]]
            interface = "ad_restore"
            opnum = 0
            millis = 20
        "#;
        let config = MockConfig::from_toml_str(text, Path::new("/etc/mock")).unwrap();
        assert_eq!(config.dc_name, "DC1");
        assert_eq!(config.root, Path::new("/etc/mock/ntds"));
        assert_eq!(
            config.state_dir(),
            Path::new("/etc/mock/ntds/.dsbackup-mock")
        );
        assert_eq!(config.min_auth_level, AuthLevel::PKT_PRIVACY);
        assert_eq!(config.mode, DsMode::Restore);
        assert_eq!(config.tombstone_lifetime_days, 60);
        assert_eq!(config.idle_timeout, Duration::from_secs(30));
        let server = ServerLimits::default();
        assert_eq!(
            config.server,
            ServerLimits {
                max_associations: 1000,
                handshake_timeout: Duration::from_millis(2500),
                idle_with_handle: Duration::from_secs(60),
                max_send_queue: 65536,
                send_budget: 1 << 20,
                listen_backlog: 128,
                ..server
            }
        );
        assert_eq!(server.bind_timeout, Duration::from_secs(3));
        let backup = config.user("SVC-BACKUP").unwrap();
        assert_eq!(backup.privileges, Privileges::BACKUP);
        assert_eq!(backup.nt_hash, nt_hash("Password"));
        let admin = config.user("administrator").unwrap();
        assert_eq!(admin.nt_hash, nt_hash("Password"));
        assert_eq!(admin.privileges, Privileges::ALL);
        assert!(config.faults.refuse_binds);
        assert_eq!(config.faults.drop_after_calls, Some(100));
        assert_eq!(
            config.faults.statuses[&(Interface::AdBackup, 3)],
            StatusFault {
                status: Status::ERROR_INVALID_PARAMETER,
                remaining: Some(1)
            }
        );
        assert_eq!(
            config.faults.delays[&(Interface::AdRestore, 0)],
            Duration::from_millis(20)
        );
        assert!(
            !format!("{backup:?}").contains("a4"),
            "the hash is not printed"
        );
    }

    #[test]
    fn refuses_bad_users_levels_and_keys() {
        let base = Path::new("/");
        let cases = [
            "dc_name='D'\nroot='r'\n[[users]]\nname='u'\nprivileges=['backup']",
            "dc_name='D'\nroot='r'\n[[users]]\nname='u'\npassword='p'\nnt_hash='00000000000000000000000000000000'",
            "dc_name='D'\nroot='r'\n[[users]]\nname='u'\nnt_hash='abc'",
            "dc_name='D'\nroot='r'\n[[users]]\nname='u'\nnt_hash='zz000000000000000000000000000000'",
            "dc_name='D'\nroot='r'\n[[users]]\nname='u'\npassword='p'\nprivileges=['admin']",
            "dc_name='D'\nroot='r'\nmin_auth_level='weird'",
            "dc_name='D'\nroot='r'\n[[faults.status]]\ninterface='nope'\nopnum=1\nstatus=5",
        ];
        for text in cases {
            assert!(
                matches!(
                    MockConfig::from_toml_str(text, base),
                    Err(ConfigError::Invalid(_))
                ),
                "{text}"
            );
        }
        assert!(matches!(
            MockConfig::from_toml_str("dc_name='D'\nroot='r'\nunknown=1", base),
            Err(ConfigError::Toml(_))
        ));
    }
}
