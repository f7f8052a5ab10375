//! The options every command that talks to a server shares, and the [`Client`] they build.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use dsbackup_client::{AuthLevel, Client, ClientConfig, Endpoint};

use crate::creds;
use crate::pcapng::Capture;

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
    /// do); a domain written here wins over --domain. Its NT hash comes from
    /// DSBACKUP_NT_HASH, else its password from --password-file, --password-command or
    /// DSBACKUP_PASSWORD, else a prompt.
    #[arg(long, short = 'u')]
    pub(crate) user: Option<String>,
    /// The account's domain (NetBIOS name), for a --user without one.
    #[arg(long, short = 'd', default_value = "")]
    pub(crate) domain: String,
    #[command(flatten)]
    pub(crate) password: creds::PasswordArgs,
    /// The RPC authentication level.
    #[arg(long, value_enum, default_value_t = Auth::Privacy)]
    pub(crate) auth: Auth,
    /// The authentication package: negotiate (SPNEGO: Kerberos when a realm is known, with a
    /// ticket from a ccache (--ccache, KRB5CCNAME), a keytab (--keytab) or the password, and
    /// NTLM when Kerberos is not possible or the server chooses it), kerberos alone (NTLM
    /// refused), or ntlm alone.
    #[arg(long, value_enum, default_value = "negotiate")]
    pub(crate) auth_type: crate::kerberos::AuthType,
    #[command(flatten)]
    pub(crate) kerberos: crate::kerberos::KerberosArgs,
    /// Seconds to connect and bind.
    #[arg(long, default_value_t = 10)]
    pub(crate) connect_timeout: u64,
    /// Seconds one call may take.
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout: u64,
    /// Write the traffic to this pcapng file, as it went on the wire (open it with Wireshark or
    /// tshark; `-o ntlmssp.nt_password:PASSWORD` unseals it).
    #[arg(long, value_name = "FILE.pcapng")]
    pub(crate) capture: Option<PathBuf>,
}

/// How a backup reads its files: only the commands that read list these.
#[derive(Debug, Args)]
pub(crate) struct ReadArgs {
    /// Bytes asked for by each HrRBackupRead, a multiple of 8 KiB from 24 KiB to 16 MiB
    /// [default: 524288 at integrity and privacy, 262144 below].
    #[arg(long)]
    pub(crate) read_size: Option<u32>,
    /// HrRBackupRead calls kept in flight [default: 8 at integrity and privacy, 4 below].
    #[arg(long)]
    pub(crate) reads_in_flight: Option<usize>,
}

/// `-q/--quiet`: only the commands that draw progress bars list it.
#[derive(Debug, Args)]
pub(crate) struct ProgressArgs {
    /// No progress bars.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

/// `--auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Auth {
    /// No authentication (RPC_C_AUTHN_LEVEL_NONE).
    None,
    /// Authenticated at connect, not signed.
    Connect,
    /// Every PDU signed (packet integrity).
    Integrity,
    /// Every PDU signed and sealed (packet privacy).
    Privacy,
}

impl Auth {
    /// The value as the command line spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Connect => "connect",
            Self::Integrity => "integrity",
            Self::Privacy => "privacy",
        }
    }

    pub(crate) fn level(self) -> AuthLevel {
        match self {
            Self::None => AuthLevel::NONE,
            Self::Connect => AuthLevel::CONNECT,
            Self::Integrity => AuthLevel::PKT_INTEGRITY,
            Self::Privacy => AuthLevel::PKT_PRIVACY,
        }
    }
}

/// `--server` is a host name or address: a `host:port` is a usage error that names the port
/// flags.
///
/// # Errors
/// A usage error for `host:port` (an IPv6 address, with several colons, passes).
pub(crate) fn check_server(server: &str) -> anyhow::Result<()> {
    if let Some((host, port)) = server.rsplit_once(':')
        && !host.contains(':')
        && port.parse::<u16>().is_ok()
    {
        return Err(crate::exit::usage(format!(
            "--server takes a host name or address, not {server:?}: give {host} to --server, \
             and {port} to --epm-port (the endpoint mapper) or --port (ad_backup itself)"
        )));
    }
    Ok(())
}

impl ConnectArgs {
    /// The client: credentials from the environment or a prompt when authenticating.
    ///
    /// # Errors
    /// No user with an auth level above none; no password; a bad read size.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        self.reading_client(None)
    }

    /// The client, reading backup files as `read` says (the library's defaults without).
    ///
    /// # Errors
    /// As [`client`](Self::client); a read size out of range is a usage error.
    pub(crate) fn reading_client(&self, read: Option<&ReadArgs>) -> anyhow::Result<Client> {
        check_server(&self.server)?;
        let mut config = ClientConfig::new(self.server.clone()).auth_level(self.auth.level());
        config = config.endpoint(match self.port {
            Some(port) => Endpoint::Port(port),
            None => Endpoint::Mapper {
                port: self.epm_port,
            },
        });
        if self.auth != Auth::None {
            use crate::kerberos::Login;
            match crate::kerberos::login(
                self.auth_type,
                &self.kerberos,
                self.user.as_deref(),
                &self.domain,
                &self.server,
                &self.password,
                self.auth.name(),
            )? {
                Login::Kerberos(tickets) => config = config.kerberos(tickets),
                Login::Negotiate(tickets, ntlm) => {
                    config.kerberos = tickets;
                    config.credentials = ntlm;
                    config = config.spnego(true);
                }
                Login::Ntlm(credentials) => config = config.credentials(credentials),
            }
        } else if self.kerberos.any() && !self.auth_type.is_kerberos() {
            return Err(crate::exit::usage(
                "--realm, --kdc, --keytab, --ccache and --spn need --auth-type kerberos or \
                 negotiate",
            ));
        }
        let capture = self.capture.as_deref().map(Capture::create).transpose()?;
        config.tap = crate::wirelog::client_tap(capture);
        config.connect_timeout = Duration::from_secs(self.connect_timeout);
        config.call_timeout = Duration::from_secs(self.timeout);
        if let Some(read) = read {
            config.read_size = read.read_size;
            config.reads_in_flight = read.reads_in_flight;
        }
        Ok(Client::new(config)?)
    }
}
