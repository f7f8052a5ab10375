//! The KDC exchanges on the network ([RFC 4120 §7.2]): UDP first for short requests, TCP (a
//! 4-byte big-endian length before each message) when the request is long or the KDC answers
//! `KRB_ERR_RESPONSE_TOO_BIG`. The messages themselves come from `dsbackup-krb`'s state
//! machines; this module adds the sockets, the clock and the randomness.
//!
//! [RFC 4120 §7.2]: https://www.rfc-editor.org/rfc/rfc4120#section-7.2

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dsbackup_krb::{
    AsExchange, AsStep, Credential, EncType, Inputs, KerberosTime, KrbError, PrincipalName, Secret,
    TgsExchange,
};
use dsbackup_krb::{ErrorCode, KdcReply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use crate::nonce;

/// Largest request sent over UDP; longer ones go over TCP ([RFC 4120 §7.2.1] leaves the limit
/// to the client, 1465 is what MIT uses).
///
/// [RFC 4120 §7.2.1]: https://www.rfc-editor.org/rfc/rfc4120#section-7.2.1
const UDP_LIMIT: usize = 1465;
/// Largest reply accepted over TCP (a ticket with a large PAC is a few KiB).
const MAX_REPLY: usize = 1 << 20;

/// Why getting a ticket failed (`Clone`, as [`TransportError`](crate::TransportError) is).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KdcError {
    /// The KDC could not be reached, or the connection failed.
    #[error("KDC {addr}: {source}")]
    Io {
        /// The KDC.
        addr: SocketAddr,
        /// What failed (shared by the clones).
        source: std::sync::Arc<std::io::Error>,
    },
    /// No KDC answered in time.
    #[error("no answer from the KDC at {0}")]
    TimedOut(SocketAddr),
    /// The KDC refused, or its answer failed our checks.
    #[error(transparent)]
    Kerberos(#[from] KrbError),
    /// The KDC's name does not resolve.
    #[error("cannot resolve the KDC {host}: {reason}")]
    Resolve {
        /// The name.
        host: String,
        /// Why.
        reason: String,
    },
    /// A ticket is needed from a KDC and none was named.
    #[error("no KDC to ask for a ticket")]
    NoKdc,
    /// The ticket (or the TGT) of a credential cache has expired: `kinit` again.
    #[error("the ticket has expired (run kinit again)")]
    Expired,
}

impl KdcError {
    /// Whether the KDC, or the ticket itself, refused the credentials (rather than the network
    /// failing): a wrong password, an unknown client or service, clocks too far apart, an
    /// expired ticket, an answer that does not decrypt with our key.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Kerberos(_) | Self::Expired)
    }

    /// Whether Kerberos is not possible for the server at all, rather than refused: no KDC
    /// named, a KDC that cannot be reached or resolved, a KDC that does not know the service
    /// or the client principal. SPNEGO falls back on NTLM then, as Windows' Negotiate and
    /// Samba's client do; a wrong password, clocks apart or an expired ticket stay failures.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::NoKdc | Self::Io { .. } | Self::TimedOut(_) | Self::Resolve { .. } => true,
            Self::Kerberos(KrbError::Kdc { code, .. }) => matches!(
                *code,
                ErrorCode::KDC_ERR_S_PRINCIPAL_UNKNOWN | ErrorCode::KDC_ERR_C_PRINCIPAL_UNKNOWN
            ),
            Self::Kerberos(_) | Self::Expired => false,
        }
    }
}

/// A KDC to ask for tickets.
#[derive(Clone, Debug)]
pub struct KdcClient {
    addr: SocketAddr,
    timeout: Duration,
}

/// The caller's time and randomness for one request.
fn inputs() -> Result<Inputs, std::io::Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Inputs {
        now: KerberosTime(i64::try_from(now.as_secs()).unwrap_or(i64::MAX)),
        usec: now.subsec_micros(),
        nonce: u32::from_be_bytes(nonce::random()?),
        confounder: nonce::random()?,
    })
}

impl KdcClient {
    /// A client of the KDC at `addr` (port 88 as a rule).
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            timeout: Duration::from_secs(10),
        }
    }

    /// Bounds each exchange (10 s unless told).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn io(&self, source: std::io::Error) -> KdcError {
        KdcError::Io {
            addr: self.addr,
            source: std::sync::Arc::new(source),
        }
    }

    /// Sends one request and returns the reply, over UDP or TCP.
    ///
    /// # Errors
    /// [`KdcError::Io`] or [`KdcError::TimedOut`].
    pub async fn send(&self, request: &[u8]) -> Result<Vec<u8>, KdcError> {
        if request.len() <= UDP_LIMIT {
            let reply = timeout(self.timeout, self.udp(request))
                .await
                .map_err(|_| KdcError::TimedOut(self.addr))??;
            let too_big = matches!(
                KdcReply::decode(&reply),
                Ok(KdcReply::Error(err)) if err.code == ErrorCode::KRB_ERR_RESPONSE_TOO_BIG
            );
            if !too_big {
                return Ok(reply);
            }
        }
        timeout(self.timeout, self.tcp(request))
            .await
            .map_err(|_| KdcError::TimedOut(self.addr))?
    }

    async fn udp(&self, request: &[u8]) -> Result<Vec<u8>, KdcError> {
        let local: SocketAddr = if self.addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local).await.map_err(|e| self.io(e))?;
        socket.connect(self.addr).await.map_err(|e| self.io(e))?;
        socket.send(request).await.map_err(|e| self.io(e))?;
        let mut buf = vec![0u8; 65_536];
        let n = socket.recv(&mut buf).await.map_err(|e| self.io(e))?;
        buf.truncate(n);
        Ok(buf)
    }

    async fn tcp(&self, request: &[u8]) -> Result<Vec<u8>, KdcError> {
        let mut stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| self.io(e))?;
        let len = u32::try_from(request.len())
            .map_err(|_| self.io(std::io::Error::other("request too long")))?;
        let mut framed = Vec::with_capacity(request.len() + 4);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(request);
        stream.write_all(&framed).await.map_err(|e| self.io(e))?;
        let len = stream.read_u32().await.map_err(|e| self.io(e))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_REPLY {
            return Err(self.io(std::io::Error::other("KDC reply too long")));
        }
        let mut reply = Vec::new();
        (&mut stream)
            .take(len as u64)
            .read_to_end(&mut reply)
            .await
            .map_err(|e| self.io(e))?;
        if reply.len() != len {
            return Err(self.io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(reply)
    }

    /// A ticket-granting ticket for `user@realm` (the AS exchange, with pre-authentication).
    ///
    /// # Errors
    /// [`KdcError::Kerberos`] with the KDC's refusal (`KDC_ERR_PREAUTH_FAILED` for a wrong
    /// password), or a network error.
    pub async fn tgt(
        &self,
        user: &str,
        realm: &str,
        secret: Secret,
    ) -> Result<Credential, KdcError> {
        let (mut exchange, mut request) =
            AsExchange::new(user, realm, secret, &inputs().map_err(|e| self.io(e))?);
        // Two rounds: without pre-authentication, then with it.
        for _ in 0..3 {
            let reply = self.send(&request).await?;
            match exchange.handle(&reply, &inputs().map_err(|e| self.io(e))?)? {
                AsStep::Send(next) => request = next,
                AsStep::Done(credential) => return Ok(*credential),
            }
        }
        Err(KdcError::Kerberos(KrbError::Mismatch(
            "the AS exchange did not end",
        )))
    }

    /// A service ticket for `service` from a TGT (the TGS exchange).
    ///
    /// # Errors
    /// [`KdcError::Kerberos`] with the KDC's refusal (`KDC_ERR_S_PRINCIPAL_UNKNOWN`), or a
    /// network error.
    pub async fn service_ticket(
        &self,
        tgt: &Credential,
        service: &PrincipalName,
    ) -> Result<Credential, KdcError> {
        self.service_ticket_with_etypes(tgt, service, &EncType::SUPPORTED)
            .await
    }

    /// [`service_ticket`](Self::service_ticket) with a session key of one of `etypes` only
    /// (see [`TgsExchange::with_etypes`]).
    ///
    /// # Errors
    /// As [`service_ticket`](Self::service_ticket); `KDC_ERR_ETYPE_NOSUPP` when the service
    /// takes none of `etypes`.
    pub async fn service_ticket_with_etypes(
        &self,
        tgt: &Credential,
        service: &PrincipalName,
        etypes: &[EncType],
    ) -> Result<Credential, KdcError> {
        let inputs = inputs().map_err(|e| self.io(e))?;
        let (exchange, request) = TgsExchange::with_etypes(tgt, service, &inputs, etypes);
        let reply = self.send(&request).await?;
        Ok(exchange.handle(&reply)?)
    }
}
