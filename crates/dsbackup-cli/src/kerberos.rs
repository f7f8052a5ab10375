//! Kerberos on the command line: `--auth-type kerberos` with `--realm`, `--kdc`, `--keytab`,
//! `--ccache` and `--spn`, as `kinit` and an MIT-based tool would take them.
//!
//! The service ticket comes from, in this order: a credential cache (`--ccache`, else
//! `KRB5CCNAME` when no user is given) holding it or a TGT; a keytab (`--keytab`) with the
//! user's keys; the user's password (`DSBACKUP_PASSWORD` or a prompt). The realm comes from
//! `--realm`, the cache, or `default_realm` of krb5.conf (`KRB5_CONFIG`, else
//! `/etc/krb5.conf`); the KDC from `--kdc`, the realm's `kdc` lines, or the server itself.
//! The tickets are fetched when the first connection needs them.
//!
//! `--auth-type negotiate` (the default) is SPNEGO as Windows' Negotiate: Kerberos when it can
//! be set up (a realm from `--realm`, `--user user@REALM`, a ccache or krb5.conf, and a
//! ccache, keytab or password), NTLM with the same user and password after it; the NTLM
//! alone when there is no realm (or only an NT hash). The transport also falls back on NTLM
//! when the KDC cannot be reached or does not know the principal, or the server chooses NTLM.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use dsbackup_client::Credentials;
use dsbackup_krb::{KerberosTime, Krb5Conf, PrincipalName, Secret};
use dsbackup_transport::{KdcError, TicketSource, Tickets, TransportError};
use zeroize::Zeroizing;

use crate::creds;

/// How RPC authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AuthType {
    /// NTLMv2 (auth type 10).
    Ntlm,
    /// Kerberos (auth type 16).
    Kerberos,
    /// SPNEGO (auth type 9): Kerberos first, NTLM as its fallback, as Windows' Negotiate.
    Negotiate,
}

impl AuthType {
    /// Whether it takes Kerberos tickets.
    pub(crate) fn is_kerberos(self) -> bool {
        matches!(self, Self::Kerberos | Self::Negotiate)
    }
}

/// The Kerberos options.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct KerberosArgs {
    /// Kerberos realm (default: the ccache's, else krb5.conf's default_realm).
    #[arg(long)]
    pub(crate) realm: Option<String>,
    /// KDC as host or host:port (default: the realm's kdc in krb5.conf, else the server).
    #[arg(long)]
    pub(crate) kdc: Option<String>,
    /// Keytab holding the user's keys.
    #[arg(long)]
    pub(crate) keytab: Option<PathBuf>,
    /// Credential cache (FILE: format) holding a TGT or the service ticket.
    #[arg(long)]
    pub(crate) ccache: Option<PathBuf>,
    /// Service principal of the server (default: `host/SERVER`).
    #[arg(long)]
    pub(crate) spn: Option<String>,
}

impl KerberosArgs {
    /// Whether a Kerberos option was given (they mean nothing to NTLM).
    pub(crate) fn any(&self) -> bool {
        self.realm.is_some()
            || self.kdc.is_some()
            || self.keytab.is_some()
            || self.ccache.is_some()
            || self.spn.is_some()
    }
}

fn now() -> KerberosTime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    KerberosTime(i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
}

fn krb5_conf() -> Krb5Conf {
    let path =
        std::env::var_os("KRB5_CONFIG").map_or_else(|| "/etc/krb5.conf".into(), PathBuf::from);
    std::fs::read_to_string(path)
        .map(|text| Krb5Conf::parse(&text))
        .unwrap_or_default()
}

fn ccache_path(args: &KerberosArgs, user: Option<&str>) -> Option<PathBuf> {
    if let Some(path) = &args.ccache {
        return Some(path.clone());
    }
    if user.is_some() {
        return None;
    }
    let name = std::env::var("KRB5CCNAME").ok()?;
    Some(PathBuf::from(name.strip_prefix("FILE:").unwrap_or(&name)))
}

/// The user name and realm of `--user` for Kerberos: `user@REALM`, `DOMAIN\user`
/// (`DOMAIN/user`), or `user`.
fn split_user(user: &str) -> (&str, Option<&str>) {
    if let Some((name, realm)) = user.rsplit_once('@') {
        return (name, Some(realm));
    }
    let name = user.rsplit(['\\', '/']).next().unwrap_or(user);
    (name, None)
}

/// How the command line authenticates, its secrets resolved.
#[derive(Debug)]
pub(crate) enum Login {
    /// `--auth-type kerberos`.
    Kerberos(Tickets),
    /// `--auth-type negotiate`: Kerberos when it can be set up, NTLM when a user is given.
    Negotiate(Option<Tickets>, Option<Credentials>),
    /// `--auth-type ntlm`.
    Ntlm(Credentials),
}

/// The [`Login`] of `auth_type` for `--user` `user` (`--domain` `domain`) to `server` at
/// `--auth` `level` (its name, for the messages).
///
/// # Errors
/// Kerberos options with `--auth-type ntlm`, no `--user` where one is needed (usage errors);
/// what [`tickets`], [`negotiate`] and [`creds::ntlm`] refuse.
pub(crate) fn login(
    auth_type: AuthType,
    args: &KerberosArgs,
    user: Option<&str>,
    domain: &str,
    server: &str,
    sources: &creds::PasswordArgs,
    level: &str,
) -> Result<Login> {
    if !auth_type.is_kerberos() && args.any() {
        return Err(crate::exit::usage(
            "--realm, --kdc, --keytab, --ccache and --spn need --auth-type kerberos or negotiate",
        ));
    }
    Ok(match auth_type {
        AuthType::Kerberos => Login::Kerberos(tickets(args, user, server, |user, realm| {
            creds::password(user, realm, sources)
        })?),
        AuthType::Negotiate => {
            let (tickets, ntlm) = negotiate(args, user, domain, server, sources, level)?;
            Login::Negotiate(tickets, ntlm)
        }
        AuthType::Ntlm => {
            let user = user.ok_or_else(|| user_needed(level))?;
            Login::Ntlm(creds::ntlm(user, domain, sources, None)?)
        }
    })
}

/// The usage error of a login that needs `--user` at `--auth` `level`.
fn user_needed(level: &str) -> anyhow::Error {
    crate::exit::usage(format!(
        "--user is needed at --auth {level} (or use --auth none)"
    ))
}

/// Kerberos cannot be set up from what was given (no realm, or no password for it): what
/// `negotiate` takes as "NTLM alone".
#[derive(Debug)]
pub(crate) struct NoKerberos(&'static str);

impl std::fmt::Display for NoKerberos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for NoKerberos {}

/// The credentials of `--auth-type negotiate`: the Kerberos tickets when Kerberos can be set
/// up, and NTLM's credentials when `user` is given, the password asked for once.
///
/// # Errors
/// Neither a user nor a credential cache (the usage error NTLM gives); a Kerberos source that
/// was named and fails (an unreadable keytab or ccache); no password for NTLM.
fn negotiate(
    args: &KerberosArgs,
    user: Option<&str>,
    domain: &str,
    server: &str,
    sources: &creds::PasswordArgs,
    level: &str,
) -> Result<(Option<Tickets>, Option<Credentials>)> {
    if user.is_none() && ccache_path(args, None).is_none() {
        return Err(user_needed(level));
    }
    let remembered: RefCell<Option<Zeroizing<String>>> = RefCell::new(None);
    let tickets = match tickets(args, user, server, |user, realm| {
        if !creds::has_password(sources) {
            // An NT hash alone makes no AES key: NTLM only.
            return Err(anyhow::Error::new(NoKerberos(
                "the NT hash is no Kerberos password",
            )));
        }
        let password = creds::password(user, realm, sources)?;
        *remembered.borrow_mut() = Some(password.clone());
        Ok(password)
    }) {
        Ok(tickets) => Some(tickets),
        Err(error) if error.is::<NoKerberos>() => {
            tracing::info!("no Kerberos ({error}): NTLM inside SPNEGO");
            None
        }
        Err(error) => return Err(error),
    };
    let ntlm = user
        .map(|user| creds::ntlm(user, domain, sources, remembered.take()))
        .transpose()?;
    Ok((tickets, ntlm))
}

/// Where the server's service tickets come from, per the module's order; nothing is fetched
/// yet (the first connection asks the KDC).
///
/// # Errors
/// No source of credentials, an unreadable file, or no password.
pub(crate) fn tickets(
    args: &KerberosArgs,
    user: Option<&str>,
    server: &str,
    password: impl FnOnce(&str, &str) -> Result<Zeroizing<String>>,
) -> Result<Tickets> {
    let conf = krb5_conf();
    let spn = PrincipalName::service(
        &args
            .spn
            .clone()
            .unwrap_or_else(|| format!("host/{}", server.to_ascii_lowercase())),
    );
    let cache = match ccache_path(args, user) {
        Some(path) => {
            let bytes = std::fs::read(&path)
                .with_context(|| format!("cannot read the credential cache {}", path.display()))?;
            Some(
                dsbackup_krb::parse_ccache(&bytes)
                    .with_context(|| format!("{}", path.display()))?,
            )
        }
        None => None,
    };
    let (user, user_realm) = match user {
        Some(user) => {
            let (name, realm) = split_user(user);
            (Some(name), realm)
        }
        None => (None, None),
    };
    let realm = args
        .realm
        .as_deref()
        .or(user_realm)
        .map(str::to_owned)
        .or_else(|| cache.as_ref().map(|c| c.realm.clone()))
        .or_else(|| conf.default_realm.clone())
        .ok_or(NoKerberos(
            "no realm: give --realm (or a default_realm in krb5.conf)",
        ))?
        .to_ascii_uppercase();
    let kdc_name = args
        .kdc
        .clone()
        .or_else(|| conf.kdcs_of(&realm).first().map(|k| (*k).to_owned()))
        .unwrap_or_else(|| server.to_owned());
    let kdc = match kdc_name.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => {
            (host.to_owned(), port.parse().unwrap_or(88))
        }
        _ => (kdc_name.clone(), 88),
    };
    let source = if let Some(cache) = &cache {
        if let Some(ticket) = cache.find(&spn, &realm, now()) {
            TicketSource::Ticket(Box::new(ticket.clone()))
        } else {
            let tgt = cache
                .find(&PrincipalName::krbtgt(&realm), &realm, now())
                .ok_or(TransportError::Kdc(KdcError::Expired))
                .context("the credential cache holds no valid TGT for the realm (run kinit)")?;
            TicketSource::Tgt(Box::new(tgt.clone()))
        }
    } else {
        let Some(user) = user else {
            return Err(crate::exit::usage(
                "Kerberos needs --user, --ccache or KRB5CCNAME",
            ));
        };
        let secret = match &args.keytab {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read the keytab {}", path.display()))?;
                let keys: Vec<_> = dsbackup_krb::parse_keytab(&bytes)
                    .with_context(|| format!("{}", path.display()))?
                    .into_iter()
                    .filter(|e| {
                        e.realm.eq_ignore_ascii_case(&realm)
                            && e.principal.components.len() == 1
                            && e.principal
                                .components
                                .first()
                                .is_some_and(|c| c.eq_ignore_ascii_case(user))
                    })
                    .map(|e| e.key)
                    .collect();
                if keys.is_empty() {
                    bail!("the keytab {} has no key of {user}@{realm}", path.display());
                }
                Secret::Keys(keys)
            }
            None => Secret::Password(password(user, &realm)?),
        };
        TicketSource::Login {
            user: user.to_owned(),
            realm: realm.clone(),
            secret,
        }
    };
    Ok(Tickets::new(source, spn, Some(kdc)))
}
