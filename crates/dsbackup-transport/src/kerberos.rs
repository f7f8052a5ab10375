//! Kerberos for the client and the server runtime: where a client's service tickets come from
//! ([`Tickets`], fetched from the KDC on first use and again once expired), and the acceptor
//! a server makes per bind from its keytab (`ServerOptions::kerberos`: Kerberos and SPNEGO).

use std::sync::Arc;

use dsbackup_krb::{
    AcceptorInputs, Credential, KerberosAcceptor, KerberosTime, PrincipalName, Secret,
};
use dsbackup_krb::{MechFactory, SpnegoAcceptor};
use dsbackup_ntlm::{Acceptor as NtlmAcceptor, AcceptorConfig as NtlmConfig, ServerInputs};
use dsbackup_proto::{AuthType, SecurityFactory, SecurityProvider, SpnegoMechanism};
use tokio::sync::Mutex;

use crate::kdc::{KdcClient, KdcError};

use crate::nonce;
pub use dsbackup_krb::{AcceptorConfig, ServiceKeys, encode_keytab, parse_keytab};

/// A ticket is fetched again when it ends within this many seconds.
const RENEW_MARGIN: i64 = 60;

/// Bound on one KDC exchange: short enough that SPNEGO can still fall back on NTLM within a
/// connection's deadline when the KDC does not answer.
const KDC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// How long Kerberos found unavailable (no KDC answering, the principal unknown) is taken as
/// such without asking the KDC again: the associations of one run do not each wait for it.
const UNAVAILABLE_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// Where a client's service tickets come from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TicketSource {
    /// A service ticket ready to present (a credential cache held it, or a test made it).
    Ticket(Box<Credential>),
    /// A ticket-granting ticket to ask the KDC for service tickets with (a `kinit` cache).
    Tgt(Box<Credential>),
    /// The AS exchange for `user@realm` with a password or long-term keys (a keytab), then
    /// the TGS exchange.
    Login {
        /// The user.
        user: String,
        /// The realm (upper case).
        realm: String,
        /// The password or keys.
        secret: Secret,
    },
}

/// A client's Kerberos credentials for one service: the service ticket is fetched on first use,
/// kept, and fetched again once it nears its end; every association presents it with a fresh
/// authenticator. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct Tickets {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: TicketSource,
    spn: PrincipalName,
    /// The KDC: host and port, resolved at each exchange.
    kdc: Option<(String, u16)>,
    /// The TGT and the service ticket obtained so far.
    cache: Mutex<(Option<Credential>, Option<Credential>)>,
    /// Kerberos found unavailable ([`KdcError::is_unavailable`]), and when.
    unavailable: std::sync::Mutex<Option<(KdcError, tokio::time::Instant)>>,
}

fn now() -> KerberosTime {
    KerberosTime(nonce::unix_now().0)
}

impl Tickets {
    /// Tickets for `spn` (`host/dc1.corp.example`) from `source`, asking the KDC at `kdc`
    /// (host or address, and port: 88 as a rule) when the source is not a ready ticket.
    pub fn new(source: TicketSource, spn: PrincipalName, kdc: Option<(String, u16)>) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                spn,
                kdc,
                cache: Mutex::new((None, None)),
                unavailable: std::sync::Mutex::new(None),
            }),
        }
    }

    /// A ready service ticket, presented as it is (never renewed).
    pub fn fixed(ticket: Credential) -> Self {
        let spn = ticket.server.clone();
        Self::new(TicketSource::Ticket(Box::new(ticket)), spn, None)
    }

    /// The service principal the tickets are for.
    pub fn spn(&self) -> &PrincipalName {
        &self.inner.spn
    }

    async fn kdc(&self) -> Result<KdcClient, KdcError> {
        let (host, port) = self.inner.kdc.as_ref().ok_or(KdcError::NoKdc)?;
        let addr = crate::resolve::lookup_host(host, *port)
            .await
            .map_err(|error| KdcError::Resolve {
                host: host.clone(),
                reason: error.to_string(),
            })?;
        Ok(KdcClient::new(addr).with_timeout(KDC_TIMEOUT))
    }

    /// A service ticket valid now: the one kept, or a new one from the KDC.
    ///
    /// Kerberos found unavailable ([`KdcError::is_unavailable`]: the KDC out of reach or not
    /// knowing the principal) stays so for five minutes: the same error comes back without
    /// asking the KDC again.
    ///
    /// # Errors
    /// [`KdcError`]: the KDC refused (a wrong password is `KDC_ERR_PREAUTH_FAILED`, an
    /// unknown service `KDC_ERR_S_PRINCIPAL_UNKNOWN`, clocks apart `KRB_AP_ERR_SKEW`), could
    /// not be reached (each exchange is bounded to 3 s), or a ready ticket has expired.
    pub async fn service_ticket(&self) -> Result<Credential, KdcError> {
        let remembered = |slot: &mut Option<(KdcError, tokio::time::Instant)>| {
            slot.as_ref()
                .filter(|(_, at)| at.elapsed() < UNAVAILABLE_FOR)
                .map(|(error, _)| error.clone())
        };
        if let Some(error) = remembered(&mut self.unavailable()) {
            return Err(error);
        }
        let result = self.fetch().await;
        if let Err(error) = &result
            && error.is_unavailable()
        {
            *self.unavailable() = Some((error.clone(), tokio::time::Instant::now()));
        }
        result
    }

    fn unavailable(&self) -> std::sync::MutexGuard<'_, Option<(KdcError, tokio::time::Instant)>> {
        self.inner
            .unavailable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn fetch(&self) -> Result<Credential, KdcError> {
        let soon = KerberosTime(now().0 + RENEW_MARGIN);
        let mut cache = self.inner.cache.lock().await;
        if let Some(ticket) = &cache.1
            && ticket.valid_at(soon)
        {
            return Ok(ticket.clone());
        }
        let tgt = match &self.inner.source {
            TicketSource::Ticket(ticket) => {
                return if ticket.valid_at(now()) {
                    Ok((**ticket).clone())
                } else {
                    Err(KdcError::Expired)
                };
            }
            TicketSource::Tgt(tgt) if tgt.valid_at(soon) => (**tgt).clone(),
            TicketSource::Tgt(_) => return Err(KdcError::Expired),
            TicketSource::Login {
                user,
                realm,
                secret,
            } => match &cache.0 {
                Some(tgt) if tgt.valid_at(soon) => tgt.clone(),
                _ => {
                    let tgt = self.kdc().await?.tgt(user, realm, secret.clone()).await?;
                    cache.0 = Some(tgt.clone());
                    tgt
                }
            },
        };
        let ticket = self
            .kdc()
            .await?
            .service_ticket(&tgt, &self.inner.spn)
            .await?;
        cache.1 = Some(ticket.clone());
        Ok(ticket)
    }
}

/// The acceptors of a server, one per authenticated bind, with the time now and fresh
/// randomness: NTLM (auth type 10) from `ntlm`, Kerberos (auth type 16) from `kerberos`'s
/// keys, and SPNEGO (auth type 9) over whichever of the two the server has (the first of the
/// initiator's list it has: Kerberos, or NTLM when the server has no keytab).
pub(crate) fn acceptor_factory(
    ntlm: Option<NtlmConfig>,
    kerberos: Option<AcceptorConfig>,
) -> Option<SecurityFactory> {
    if ntlm.is_none() && kerberos.is_none() {
        return None;
    }
    let ntlm = move || -> Option<Box<dyn SpnegoMechanism>> {
        let inputs = ServerInputs {
            server_challenge: nonce::random().ok()?,
            timestamp: nonce::filetime_now(),
        };
        Some(Box::new(NtlmAcceptor::new(ntlm.clone()?, inputs)))
    };
    let kerberos = move || -> Option<Box<dyn SpnegoMechanism>> {
        let inputs = AcceptorInputs {
            now: now(),
            seq: u32::from_be_bytes(nonce::random().ok()?) & 0x3fff_ffff,
            subkey: nonce::random().ok()?,
            confounders: Box::new(nonce::confounder),
        };
        Some(Box::new(KerberosAcceptor::new(kerberos.clone()?, inputs)))
    };
    Some(Box::new(move |auth_type| match auth_type {
        AuthType::WINNT => ntlm().map(|m| m as Box<dyn SecurityProvider>),
        AuthType::GSS_KERBEROS => kerberos().map(|m| m as Box<dyn SecurityProvider>),
        AuthType::GSS_NEGOTIATE => {
            let (kerberos, ntlm) = (kerberos.clone(), ntlm.clone());
            let mechanism: MechFactory = Box::new(move |oid| {
                if dsbackup_krb::is_kerberos(oid) {
                    kerberos()
                } else if oid == dsbackup_krb::NTLM_OID {
                    ntlm()
                } else {
                    None
                }
            });
            Some(Box::new(SpnegoAcceptor::new(mechanism)) as Box<dyn SecurityProvider>)
        }
        _ => None,
    }))
}
