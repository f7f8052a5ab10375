//! The options every command that talks to a server shares, and the [`Client`] they build.

use std::time::Duration;

use clap::{Args, ValueEnum};
use dsbackup_client::{AuthLevel, Client, ClientConfig, Endpoint};

use crate::creds;

/// How to reach and authenticate to the server.
#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// The domain controller: host name or address.
    #[arg(long, short = 's')]
    pub(crate) server: String,
    /// A fixed TCP port for ad_backup and ad_restore, instead of asking the endpoint mapper.
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// The endpoint mapper's TCP port.
    #[arg(long, default_value_t = 135)]
    pub(crate) epm_port: u16,
    /// The account (DsSetAuthIdentity): `user`, `DOMAIN\user` (or `DOMAIN/user`), or
    /// `user@REALM` (sent whole, with no domain, for the server to resolve, as Samba's tools
    /// do); a domain written here wins over --domain. Its password comes from
    /// DSBACKUP_PASSWORD (or its NT hash from DSBACKUP_NT_HASH), else a prompt.
    #[arg(long, short = 'u')]
    pub(crate) user: Option<String>,
    /// The account's domain (NetBIOS name), for a --user without one.
    #[arg(long, short = 'd', default_value = "")]
    pub(crate) domain: String,
    /// The RPC authentication level.
    #[arg(long, value_enum, default_value_t = Auth::Privacy)]
    pub(crate) auth: Auth,
    /// Seconds to connect and bind.
    #[arg(long, default_value_t = 10)]
    pub(crate) connect_timeout: u64,
    /// Seconds one call may take.
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout: u64,
    /// Bytes asked for by each HrRBackupRead (at most 16 MiB).
    #[arg(long, default_value_t = 256 * 1024)]
    pub(crate) read_size: u32,
    /// HrRBackupRead calls kept in flight.
    #[arg(long, default_value_t = 4)]
    pub(crate) reads_in_flight: usize,
}

/// `--auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Auth {
    /// No authentication (RPC_C_AUTHN_LEVEL_NONE).
    None,
    /// NTLM at connect level: authenticated, not signed.
    Connect,
    /// NTLM, every PDU signed (packet integrity).
    Integrity,
    /// NTLM, every PDU signed and sealed (packet privacy).
    Privacy,
}

impl Auth {
    pub(crate) fn level(self) -> AuthLevel {
        match self {
            Self::None => AuthLevel::NONE,
            Self::Connect => AuthLevel::CONNECT,
            Self::Integrity => AuthLevel::PKT_INTEGRITY,
            Self::Privacy => AuthLevel::PKT_PRIVACY,
        }
    }
}

impl ConnectArgs {
    /// The client: credentials from the environment or a prompt when authenticating.
    ///
    /// # Errors
    /// No user with an auth level above none; no password; a bad read size.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let mut config = ClientConfig::new(self.server.clone()).auth_level(self.auth.level());
        config = config.endpoint(match self.port {
            Some(port) => Endpoint::Port(port),
            None => Endpoint::Mapper {
                port: self.epm_port,
            },
        });
        if self.auth != Auth::None {
            let user = self.user.as_deref().ok_or_else(|| {
                anyhow::anyhow!(
                    "--user is needed at --auth {:?} (or use --auth none)",
                    self.auth
                )
            })?;
            let account = creds::Account::parse(user, &self.domain);
            if let Some(ignored) = &account.ignored_domain {
                eprintln!(
                    "dsbackup: warning: --domain {ignored} is ignored: --user {user:?} names its \
                     own domain"
                );
            }
            config = config.credentials(creds::resolve(&account.user, &account.domain)?);
        }
        config.connect_timeout = Duration::from_secs(self.connect_timeout);
        config.call_timeout = Duration::from_secs(self.timeout);
        config.read_size = self.read_size;
        config.reads_in_flight = self.reads_in_flight;
        Ok(Client::new(config)?)
    }
}
