//! The client: one TCP connection and one [`ClientAssociation`] per [`Association`], driven by
//! a task; calls from any number of tasks multiplexed on it by call id.
//!
//! ```text
//!  caller tasks ──Command::Call{stub, oneshot}──► driver task ──frames──► writer task ──► TCP
//!        ▲                                          │  ▲
//!        └────────── oneshot: Reply / error ◄───────┘  └── FramedRead<OwnedFrames> ◄── TCP
//! ```
//!
//! - The bind (and its NTLM legs: bind, bind_ack, auth3) and the interface-version fallback
//!   run before the driver starts: [`Association::connect`] returns a bound association.
//! - A semaphore of `Limits::max_calls_in_flight` permits bounds the calls in flight; a
//!   permit is released when the state machine frees the call's slot (its response, fault or
//!   cancellation), not when the caller gives up.
//! - Every inbound fragment goes through the state machine, which verifies (and unseals) it
//!   at integrity and privacy; one that fails fails the association, and every call in flight
//!   gets the error.
//!
//! # Cancel safety
//! [`Association::call`] and [`Binding::call`] are cancel-safe in the sense that matters on
//! the wire: dropping the future (a `select!` that lost, a task aborted, the deadline passed)
//! cancels the call on the association: a `co_cancel` if its request went out whole, the rest
//! of its request if it went out in part (Windows and Samba ignore an `orphaned`), nothing if
//! none of it did. Other calls are not disturbed; the dropped call's answer, if it comes, is
//! discarded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use dsbackup_krb::Offer;
use dsbackup_krb::{InitiatorInputs, KerberosInitiator, SpnegoInitiator};
use dsbackup_ntlm::{ClientInputs, Credentials, Initiator, InitiatorConfig};
use dsbackup_proto::{
    ApiMisuse, AuthLevel, Chain, ClientAssociation, ClientConfig, ClientEvent, ContextOutcome,
    ContextReport, DataRep, Limits, SecurityError, SecurityProvider, SyntaxId, Uuid, frame_len,
};
use futures_util::{FutureExt as _, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::codec::{Decoder, FramedRead};
use tokio_util::sync::CancellationToken;

use crate::codec::{FrameCodec, FrameError};
use crate::error::TransportError;
use crate::kerberos::Tickets;
use crate::metrics::{Gauge, Kind, Metrics};
use crate::nonce;
use crate::tap::{Tap, TapEnds, Tapped};
use crate::writer::write_frames;

/// How a client authenticates.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No authentication (`RPC_C_AUTHN_LEVEL_NONE`).
    #[default]
    None,
    /// NTLMv2 (auth type 10) at `level`: connect, packet integrity or packet privacy.
    Ntlm {
        /// Who to log on as.
        credentials: Credentials,
        /// `RPC_C_AUTHN_LEVEL_CONNECT`, `_PKT_INTEGRITY` or `_PKT_PRIVACY`.
        level: AuthLevel,
    },
    /// Kerberos (auth type 16, DCE style) at `level`, presenting a service ticket for the
    /// server's SPN (fetched by [`Tickets`] on the first connection, from a credential cache,
    /// a keytab or a password); every association sends a fresh authenticator.
    Kerberos {
        /// Where the service ticket comes from.
        tickets: Tickets,
        /// `RPC_C_AUTHN_LEVEL_CONNECT`, `_PKT_INTEGRITY` or `_PKT_PRIVACY`.
        level: AuthLevel,
    },
    /// SPNEGO (auth type 9, RPC_C_AUTHN_GSS_NEGOTIATE), as Windows' Negotiate binds: Kerberos
    /// first (the same tickets as [`ClientAuth::Kerberos`]), NTLM after it when `ntlm` is
    /// given. NTLM is used when Kerberos is not possible for the server (no `tickets`; or no
    /// KDC, the KDC out of reach, the KDC not knowing the principal:
    /// [`KdcError::is_unavailable`](crate::KdcError::is_unavailable)) or the server chooses
    /// it. Without `ntlm`, Kerberos is required: a server choosing NTLM is refused as a
    /// downgrade ([`SecurityError::Downgrade`]).
    Negotiate {
        /// Where the service ticket comes from; `None`: no Kerberos.
        tickets: Option<Tickets>,
        /// NTLM's credentials; `None`: no NTLM.
        ntlm: Option<Credentials>,
        /// `RPC_C_AUTHN_LEVEL_CONNECT`, `_PKT_INTEGRITY` or `_PKT_PRIVACY`.
        level: AuthLevel,
    },
}

impl ClientAuth {
    /// NTLM at `level`.
    pub fn ntlm(credentials: Credentials, level: AuthLevel) -> Self {
        Self::Ntlm { credentials, level }
    }

    /// The auth level the association runs at.
    pub fn level(&self) -> AuthLevel {
        match self {
            Self::None => AuthLevel::NONE,
            Self::Ntlm { level, .. }
            | Self::Kerberos { level, .. }
            | Self::Negotiate { level, .. } => *level,
        }
    }
}

/// How a client connects, binds and calls.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Authentication.
    pub auth: ClientAuth,
    /// Byte order of the PDUs and stubs this client sends.
    pub drep: DataRep,
    /// Fragment sizes, calls in flight, reassembly bounds.
    pub limits: Limits,
    /// Bound on the TCP connect and on the bind (with its authentication legs).
    pub connect_timeout: Duration,
    /// Deadline of a call made without one ([`Binding::call`]).
    pub call_timeout: Duration,
    /// The endpoint mapper's TCP port, for bindings without an endpoint (135).
    pub epm_port: u16,
    /// The association group to join (that of an open association, see
    /// [`Association::assoc_group_id`]); 0 for a new one.
    pub assoc_group_id: u32,
    /// Where to copy every PDU sent and received (a capture file); none by default.
    pub tap: Option<Tap>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            auth: ClientAuth::None,
            drep: DataRep::LITTLE_ENDIAN,
            limits: Limits::client(),
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(60),
            epm_port: 135,
            assoc_group_id: 0,
            tap: None,
        }
    }
}

impl ClientOptions {
    /// Default options authenticating with `auth`.
    pub fn with_auth(auth: ClientAuth) -> Self {
        Self {
            auth,
            ..Self::default()
        }
    }

    async fn security(&self) -> Result<Option<Box<dyn SecurityProvider>>, TransportError> {
        Ok(match &self.auth {
            ClientAuth::None => None,
            ClientAuth::Ntlm { credentials, level } => {
                Some(Box::new(ntlm_initiator(credentials, *level)?))
            }
            ClientAuth::Kerberos { tickets, level } => {
                Some(Box::new(kerberos_initiator(tickets, *level).await?))
            }
            ClientAuth::Negotiate {
                tickets,
                ntlm,
                level,
            } => Some(Box::new(
                spnego_initiator(tickets.as_ref(), ntlm.as_ref(), *level).await?,
            )),
        })
    }
}

/// An NTLM initiator with fresh randomness.
fn ntlm_initiator(
    credentials: &Credentials,
    level: AuthLevel,
) -> Result<Initiator, TransportError> {
    let inputs = ClientInputs {
        client_challenge: nonce::random()?,
        random_session_key: nonce::random()?,
        timestamp: nonce::filetime_now(),
    };
    // NTLM asks for signing and sealing only when the level needs them: at connect it asks
    // for neither, as a Samba server insists (docs/PEERS.md).
    Ok(Initiator::new(
        InitiatorConfig::for_protection(credentials.clone(), level.protection()),
        inputs,
    ))
}

/// SPNEGO offering Kerberos when a ticket can be had, then NTLM when allowed.
async fn spnego_initiator(
    tickets: Option<&Tickets>,
    ntlm: Option<&Credentials>,
    level: AuthLevel,
) -> Result<SpnegoInitiator, TransportError> {
    let mut offers = Vec::new();
    if let Some(tickets) = tickets {
        match kerberos_initiator(tickets, level).await {
            Ok(kerberos) => offers.push(Offer::kerberos(kerberos)),
            Err(TransportError::Kdc(error)) if ntlm.is_some() && error.is_unavailable() => {
                tracing::warn!(%error, spn = ?tickets.spn(), "no Kerberos ticket: NTLM inside SPNEGO");
            }
            Err(error) => return Err(error),
        }
    }
    if let Some(credentials) = ntlm {
        offers.push(Offer::ntlm(Box::new(ntlm_initiator(credentials, level)?)));
    }
    if offers.is_empty() {
        // Neither tickets nor NTLM credentials: nothing to offer.
        return Err(TransportError::Misuse(ApiMisuse::Security(
            SecurityError::NoCommonMechanism,
        )));
    }
    Ok(SpnegoInitiator::new(offers))
}

/// A Kerberos initiator presenting a ticket of `tickets` with a fresh authenticator.
async fn kerberos_initiator(
    tickets: &Tickets,
    level: AuthLevel,
) -> Result<KerberosInitiator, TransportError> {
    let ticket = tickets.service_ticket().await?;
    let (now, usec) = nonce::unix_now();
    let inputs = InitiatorInputs {
        now: dsbackup_krb::KerberosTime(now),
        usec,
        seq: u32::from_be_bytes(nonce::random()?) & 0x3fff_ffff,
        subkey: nonce::random()?,
        confounders: Box::new(nonce::confounder),
    };
    Ok(KerberosInitiator::new(ticket, level.protection(), inputs))
}

/// The output of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The whole output stub, as its fragments brought it (no copy):
    /// [`Chain::to_bytes`](dsbackup_proto::Chain::to_bytes) joins it.
    pub stub: Chain,
    /// Its byte order (the server's).
    pub drep: DataRep,
}

/// What an empty list of versions reports as rejected.
const NO_INTERFACE: SyntaxId = SyntaxId::new(Uuid::NIL, 0, 0);

type ReplySender = oneshot::Sender<Result<Reply, TransportError>>;

enum Command {
    Call {
        token: u64,
        p_cont_id: u16,
        opnum: u16,
        object: Option<Uuid>,
        stub: Bytes,
        reply: ReplySender,
        permit: OwnedSemaphorePermit,
        gauge: Gauge,
    },
    Cancel {
        token: u64,
    },
    AlterContext {
        interfaces: Vec<SyntaxId>,
        reply: oneshot::Sender<Result<Vec<ContextReport>, TransportError>>,
    },
}

/// What every handle of one association shares.
#[derive(Debug)]
struct Shared {
    commands: mpsc::UnboundedSender<Command>,
    permits: Arc<Semaphore>,
    next_token: AtomicU64,
    stop: CancellationToken,
    finished: CancellationToken,
    peer: SocketAddr,
    drep: DataRep,
    max_xmit_frag: u16,
    assoc_group_id: u32,
    auth_level: AuthLevel,
    call_timeout: Duration,
    metrics: Metrics,
}

impl core::fmt::Debug for Command {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Call { token, opnum, .. } => write!(f, "Call(token {token}, opnum {opnum})"),
            Self::Cancel { token } => write!(f, "Cancel(token {token})"),
            Self::AlterContext { interfaces, .. } => write!(f, "AlterContext({interfaces:?})"),
        }
    }
}

/// One bound association: a cheap `Clone` handle on the task that drives it.
///
/// The association lives while a handle (or a [`Binding`] on it) exists and it is not closed;
/// dropping the last handle closes the connection.
#[derive(Clone, Debug)]
pub struct Association {
    shared: Arc<Shared>,
}

/// Tokens of an association that a registry keeps to close it without keeping it alive.
#[derive(Clone, Debug)]
pub(crate) struct CloseHandle {
    stop: CancellationToken,
    finished: CancellationToken,
}

impl CloseHandle {
    pub(crate) fn is_finished(&self) -> bool {
        self.finished.is_cancelled()
    }

    pub(crate) async fn close(&self) {
        self.stop.cancel();
        self.finished.cancelled().await;
    }
}

impl Association {
    /// Connects to `addr` and binds the first of `versions` the server accepts (in order:
    /// a bind with the first, then an alter_context per further one while the server
    /// rejects the abstract syntax). Returns the association and the accepted context.
    ///
    /// # Errors
    /// [`TransportError::Io`], [`TransportError::TimedOut`] (connect and bind together take
    /// longer than `options.connect_timeout`), [`TransportError::BindRejected`],
    /// [`TransportError::InterfaceRejected`], [`TransportError::Protocol`] (an
    /// authentication failure included).
    pub async fn connect(
        addr: SocketAddr,
        versions: &[SyntaxId],
        options: &ClientOptions,
    ) -> Result<(Self, u16, SyntaxId), TransportError> {
        Self::connect_with(addr, versions, options, &Metrics::new()).await
    }

    pub(crate) async fn connect_with(
        addr: SocketAddr,
        versions: &[SyntaxId],
        options: &ClientOptions,
        metrics: &Metrics,
    ) -> Result<(Self, u16, SyntaxId), TransportError> {
        let deadline = Instant::now() + options.connect_timeout;
        let association_gauge = metrics.gauge(Kind::Association);
        // A Kerberos ticket first (from the KDC, the first time): the server's handshake
        // deadline starts with the connection.
        let security = timeout_at(deadline, options.security())
            .await
            .map_err(|_| TransportError::TimedOut)??;
        let stream = timeout_at(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| TransportError::TimedOut)??;
        stream.set_nodelay(true)?;
        let tapped = match &options.tap {
            Some(tap) => {
                let ends = TapEnds {
                    client: stream.local_addr()?,
                    server: addr,
                };
                Some(Tapped::open(tap.clone(), ends, true))
            }
            None => None,
        };
        let (read, mut write) = stream.into_split();
        let mut config = ClientConfig::default();
        config.limits = options.limits.clone();
        config.drep = options.drep;
        config.auth_level = options.auth.level();
        config.assoc_group_id = options.assoc_group_id;
        let mut assoc = ClientAssociation::new(config, security).map_err(TransportError::misuse)?;
        let mut reader =
            FramedRead::with_capacity(read, OwnedFrames::new(assoc.max_recv_frag()), READ_BUFFER);
        let (p_cont_id, interface, assoc_group_id) = handshake(
            &mut assoc,
            &mut reader,
            &mut write,
            versions,
            deadline,
            metrics,
            tapped.as_ref(),
        )
        .await?;

        let (commands, receiver) = mpsc::unbounded_channel();
        let (frames, frames_rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(options.limits.max_calls_in_flight.max(1)));
        let stop = CancellationToken::new();
        let finished = CancellationToken::new();
        let writer = tokio::spawn(write_frames(
            write,
            frames_rx,
            "client",
            None,
            metrics.gauge(Kind::Task),
        ));
        let shared = Arc::new(Shared {
            commands,
            permits: Arc::clone(&permits),
            next_token: AtomicU64::new(1),
            stop: stop.clone(),
            finished: finished.clone(),
            peer: addr,
            drep: options.drep,
            max_xmit_frag: assoc.max_xmit_frag(),
            assoc_group_id,
            auth_level: options.auth.level(),
            call_timeout: options.call_timeout,
            metrics: metrics.clone(),
        });
        let driver = Driver {
            assoc,
            reader,
            frames,
            commands: receiver,
            permits,
            calls: HashMap::new(),
            tokens: HashMap::new(),
            alter: None,
            shutdown: false,
            metrics: metrics.clone(),
            tapped,
        };
        let task = metrics.gauge(Kind::Task);
        tokio::spawn(driver.run(stop, finished, writer, task, association_gauge));
        Ok((Self { shared }, p_cont_id, interface))
    }

    /// Calls `opnum` on context `p_cont_id` with the NDR-encoded `stub` (in this client's
    /// byte order, [`drep`](Self::drep)); waits for its output until `deadline`.
    ///
    /// # Errors
    /// [`TransportError::Fault`] when the server faults the call; [`TransportError::TimedOut`]
    /// past the deadline (the call is cancelled on the wire); [`TransportError::Closed`] when
    /// the association is or gets closed; [`TransportError::Protocol`] when the peer breaks
    /// the protocol (the association fails).
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call on the wire (see the module docs).
    pub async fn call(
        &self,
        p_cont_id: u16,
        opnum: u16,
        stub: Bytes,
        deadline: Instant,
    ) -> Result<Reply, TransportError> {
        self.call_object(p_cont_id, opnum, None, stub, deadline)
            .await
    }

    /// [`call`](Self::call) with an object UUID in the request.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    ///
    /// # Cancel safety
    /// As [`call`](Self::call).
    pub async fn call_object(
        &self,
        p_cont_id: u16,
        opnum: u16,
        object: Option<Uuid>,
        stub: Bytes,
        deadline: Instant,
    ) -> Result<Reply, TransportError> {
        let shared = &self.shared;
        let permit = timeout_at(deadline, Arc::clone(&shared.permits).acquire_owned())
            .await
            .map_err(|_| TransportError::TimedOut)?
            .map_err(|_| TransportError::Closed)?;
        let token = shared.next_token.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        shared
            .commands
            .send(Command::Call {
                token,
                p_cont_id,
                opnum,
                object,
                stub,
                reply,
                permit,
                gauge: shared.metrics.gauge(Kind::Call),
            })
            .map_err(|_| TransportError::Closed)?;
        let mut guard = CancelOnDrop {
            commands: &shared.commands,
            token,
            armed: true,
        };
        let result = timeout_at(deadline, answer).await;
        match result {
            Ok(Ok(result)) => {
                guard.armed = false;
                result
            }
            Ok(Err(_)) => {
                guard.armed = false;
                Err(TransportError::Closed)
            }
            // The guard cancels the call on the wire.
            Err(_) => Err(TransportError::TimedOut),
        }
    }

    /// Proposes further interfaces (an alter_context) and reports what became of each.
    ///
    /// # Errors
    /// [`TransportError::Closed`]; [`TransportError::Protocol`] when the association cannot
    /// alter its context now (another alter_context outstanding, too many contexts).
    pub async fn alter_context(
        &self,
        interfaces: &[SyntaxId],
    ) -> Result<Vec<ContextReport>, TransportError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .commands
            .send(Command::AlterContext {
                interfaces: interfaces.to_vec(),
                reply,
            })
            .map_err(|_| TransportError::Closed)?;
        answer.await.map_err(|_| TransportError::Closed)?
    }

    /// A [`Binding`] for another interface on this association: the first of `versions` the
    /// server accepts, proposed one at a time with alter_context.
    ///
    /// # Errors
    /// [`TransportError::InterfaceRejected`] when none is accepted; as
    /// [`alter_context`](Self::alter_context).
    pub async fn bind_interface(&self, versions: &[SyntaxId]) -> Result<Binding, TransportError> {
        let mut last = None;
        for &version in versions {
            last = Some(version);
            let reports = self.alter_context(&[version]).await?;
            if let Some(report) = reports
                .iter()
                .find(|report| matches!(report.outcome, ContextOutcome::Accepted(_)))
            {
                return Ok(Binding::new(self.clone(), report.p_cont_id, version));
            }
        }
        Err(TransportError::InterfaceRejected {
            interface: last.unwrap_or(NO_INTERFACE),
        })
    }

    /// Closes the association: calls in flight fail with [`TransportError::Closed`], the
    /// connection is shut down; returns when its tasks are gone.
    pub async fn close(&self) {
        self.close_handle().close().await;
    }

    /// Whether the association is closed (or failed).
    pub fn is_closed(&self) -> bool {
        self.shared.finished.is_cancelled()
    }

    pub(crate) fn close_handle(&self) -> CloseHandle {
        CloseHandle {
            stop: self.shared.stop.clone(),
            finished: self.shared.finished.clone(),
        }
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared.peer
    }

    /// The byte order this client encodes stubs in.
    pub fn drep(&self) -> DataRep {
        self.shared.drep
    }

    /// The negotiated size of the fragments this client sends.
    pub fn max_xmit_frag(&self) -> u16 {
        self.shared.max_xmit_frag
    }

    /// The auth level the association runs at.
    pub fn auth_level(&self) -> AuthLevel {
        self.shared.auth_level
    }

    /// The association group the server put the connection in.
    pub fn assoc_group_id(&self) -> u32 {
        self.shared.assoc_group_id
    }

    /// Counters of this association's registry (or its own).
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }
}

/// An interface bound on an association: calls name only an opnum.
#[derive(Debug)]
pub struct Binding {
    association: Association,
    p_cont_id: u16,
    interface: SyntaxId,
    _open: Gauge,
}

impl Binding {
    fn new(association: Association, p_cont_id: u16, interface: SyntaxId) -> Self {
        let open = association.shared.metrics.gauge(Kind::Binding);
        Self {
            association,
            p_cont_id,
            interface,
            _open: open,
        }
    }

    /// Connects to `addr` and binds the first of `versions` the server accepts, on a new
    /// association.
    ///
    /// # Errors
    /// As [`Association::connect`].
    pub async fn connect(
        addr: SocketAddr,
        versions: &[SyntaxId],
        options: &ClientOptions,
    ) -> Result<Self, TransportError> {
        Self::connect_with(addr, versions, options, &Metrics::new()).await
    }

    pub(crate) async fn connect_with(
        addr: SocketAddr,
        versions: &[SyntaxId],
        options: &ClientOptions,
        metrics: &Metrics,
    ) -> Result<Self, TransportError> {
        let (association, p_cont_id, interface) =
            Association::connect_with(addr, versions, options, metrics).await?;
        Ok(Self::new(association, p_cont_id, interface))
    }

    /// Calls `opnum` with the deadline `ClientOptions::call_timeout` from now.
    ///
    /// # Errors
    /// As [`Association::call`].
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call on the wire.
    pub async fn call(&self, opnum: u16, stub: Bytes) -> Result<Reply, TransportError> {
        let deadline = Instant::now() + self.association.shared.call_timeout;
        self.call_until(opnum, stub, deadline).await
    }

    /// Calls `opnum`, waiting until `deadline`.
    ///
    /// # Errors
    /// As [`Association::call`].
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call on the wire.
    pub async fn call_until(
        &self,
        opnum: u16,
        stub: Bytes,
        deadline: Instant,
    ) -> Result<Reply, TransportError> {
        self.association
            .call(self.p_cont_id, opnum, stub, deadline)
            .await
    }

    /// The interface version the server accepted.
    pub fn interface(&self) -> SyntaxId {
        self.interface
    }

    /// The presentation context of the interface.
    pub fn p_cont_id(&self) -> u16 {
        self.p_cont_id
    }

    /// The association the binding runs on.
    pub fn association(&self) -> &Association {
        &self.association
    }

    /// The byte order stubs are to be encoded in.
    pub fn drep(&self) -> DataRep {
        self.association.drep()
    }

    /// Closes the binding's association.
    pub async fn close(self) {
        self.association.close().await;
    }
}

/// Cancels a call on the wire when its future is dropped before the answer came.
struct CancelOnDrop<'a> {
    commands: &'a mpsc::UnboundedSender<Command>,
    token: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            // A closed driver has nothing left to cancel.
            let _ = self.commands.send(Command::Cancel { token: self.token });
        }
    }
}

/// Bytes the connection's reader asks the socket for at a time (at least): room for a whole
/// fragment of the largest size, so that a large response arrives in few reads (the default
/// of 8 KiB made a backup read's 5840-byte fragments arrive in about one read each).
const READ_BUFFER: usize = 64 * 1024;

/// Received frames handed to the association at most at once, to be verified together.
const RECEIVE_BATCH: usize = 8;

/// Writes every queued PDU of the association, in order.
async fn flush(
    assoc: &mut ClientAssociation,
    write: &mut OwnedWriteHalf,
    metrics: &Metrics,
    tapped: Option<&Tapped>,
) -> Result<(), TransportError> {
    while let Some(mut frame) = assoc.poll_transmit() {
        metrics.frame_out();
        if let Some(tapped) = tapped {
            tapped.sent(&frame.to_bytes());
        }
        write.write_all_buf(&mut frame).await?;
    }
    Ok(())
}

/// Binds (running the authentication legs) and walks `versions` until one is accepted.
async fn handshake(
    assoc: &mut ClientAssociation,
    reader: &mut FramedRead<OwnedReadHalf, OwnedFrames>,
    write: &mut OwnedWriteHalf,
    versions: &[SyntaxId],
    deadline: Instant,
    metrics: &Metrics,
    tapped: Option<&Tapped>,
) -> Result<(u16, SyntaxId, u32), TransportError> {
    let mut group = 0;
    let mut remaining = versions.iter().copied();
    let first = remaining.next().ok_or(TransportError::InterfaceRejected {
        interface: NO_INTERFACE,
    })?;
    let ids = assoc.bind(&[first]).map_err(TransportError::misuse)?;
    let mut proposed = (first_id(ids)?, first);
    let mut accepted = false;
    loop {
        flush(assoc, write, metrics, tapped).await?;
        let mut rejected = false;
        while let Some(event) = assoc.poll_event() {
            match event {
                ClientEvent::Bound { assoc_group_id, .. } => group = assoc_group_id,
                ClientEvent::ContextResults(reports) => {
                    for report in reports.iter().filter(|r| r.p_cont_id == proposed.0) {
                        match report.outcome {
                            ContextOutcome::Accepted(_) => accepted = true,
                            ContextOutcome::Rejected { .. } => rejected = true,
                            ContextOutcome::NegotiateAck(_) => {}
                        }
                    }
                }
                _ => {}
            }
        }
        // Bound means the security legs are done too (the auth3, if any, is queued).
        if accepted && assoc.is_bound() {
            return Ok((proposed.0, proposed.1, group));
        }
        if rejected && assoc.is_bound() {
            let next = remaining.next().ok_or(TransportError::InterfaceRejected {
                interface: proposed.1,
            })?;
            let ids = assoc
                .alter_context(&[next])
                .map_err(TransportError::misuse)?;
            proposed = (first_id(ids)?, next);
            continue;
        }
        let frame = timeout_at(deadline, reader.next())
            .await
            .map_err(|_| TransportError::TimedOut)?
            .ok_or(TransportError::Closed)?
            .map_err(frame_error)?;
        metrics.frame_in();
        if let Some(tapped) = tapped {
            tapped.received(&frame);
        }
        assoc.handle_frame(frame).map_err(TransportError::peer)?;
    }
}

fn first_id(ids: Vec<u16>) -> Result<u16, TransportError> {
    ids.first().copied().ok_or(TransportError::Closed)
}

pub(crate) fn frame_error(error: FrameError) -> TransportError {
    match error {
        FrameError::Io(error) => TransportError::from(error),
        FrameError::Malformed(error) => TransportError::Protocol(error.into()),
    }
}

/// The client's framing: as [`FrameCodec`], but each fragment is handed over as the
/// [`BytesMut`] cut from the receive buffer (not frozen), so that at packet privacy the
/// association unseals it where it was received, without copying it first.
#[derive(Clone, Copy, Debug)]
struct OwnedFrames(FrameCodec);

impl OwnedFrames {
    const fn new(max_frag: u16) -> Self {
        Self(FrameCodec::new(max_frag))
    }
}

impl Decoder for OwnedFrames {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        Ok(frame_len(src, self.0.max_frag())?.map(|len| src.split_to(len)))
    }
}

/// A call handed to the association.
struct Pending {
    token: u64,
    /// `None` once the caller gave up.
    reply: Option<ReplySender>,
    _permit: OwnedSemaphorePermit,
    _gauge: Gauge,
}

struct Driver {
    assoc: ClientAssociation,
    reader: FramedRead<OwnedReadHalf, OwnedFrames>,
    frames: mpsc::UnboundedSender<Chain>,
    commands: mpsc::UnboundedReceiver<Command>,
    permits: Arc<Semaphore>,
    calls: HashMap<u32, Pending>,
    tokens: HashMap<u64, u32>,
    alter: Option<oneshot::Sender<Result<Vec<ContextReport>, TransportError>>>,
    /// The server sent a shutdown: no new calls.
    shutdown: bool,
    metrics: Metrics,
    /// The capture of this connection, if one was asked for.
    tapped: Option<Tapped>,
}

/// Cancels a token when dropped: tells `close()` the driver is gone, whatever way it ended.
struct Finished(CancellationToken);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl Driver {
    async fn run(
        mut self,
        stop: CancellationToken,
        finished: CancellationToken,
        writer: tokio::task::JoinHandle<()>,
        task: Gauge,
        association: Gauge,
    ) {
        // Dropped last: the counts are down when `close()` returns.
        let _finished = Finished(finished);
        let _task = task;
        let _association = association;
        let outcome = self.drive(&stop).await;
        tracing::debug!(%outcome, "client association ends");
        self.permits.close();
        for (_, pending) in self.calls.drain() {
            if let Some(reply) = pending.reply {
                let _ = reply.send(Err(outcome.clone()));
            }
        }
        if let Some(reply) = self.alter.take() {
            let _ = reply.send(Err(outcome.clone()));
        }
        // Calls queued and not taken fail with `Closed` as their senders drop.
        self.commands.close();
        drop(self.frames);
        drop(self.reader);
        let abort = writer.abort_handle();
        if timeout(Duration::from_secs(5), writer).await.is_err() {
            abort.abort();
        }
    }

    /// `first`, and the whole frames that came behind it and need no wait (up to
    /// [`RECEIVE_BATCH`]), each counted and tapped; with how the connection ended, if it did
    /// behind them.
    fn received_with(&mut self, first: BytesMut) -> (Vec<BytesMut>, Option<TransportError>) {
        let mut frames = Vec::with_capacity(RECEIVE_BATCH);
        let mut end = None;
        let mut next = Some(first);
        while let Some(frame) = next.take() {
            self.metrics.frame_in();
            if let Some(tapped) = &self.tapped {
                tapped.received(&frame);
            }
            frames.push(frame);
            if frames.len() >= RECEIVE_BATCH {
                break;
            }
            match self.reader.next().now_or_never() {
                Some(Some(Ok(frame))) => next = Some(frame),
                Some(Some(Err(error))) => end = Some(frame_error(error)),
                Some(None) => end = Some(TransportError::Closed),
                None => {}
            }
        }
        (frames, end)
    }

    async fn drive(&mut self, stop: &CancellationToken) -> TransportError {
        loop {
            while let Some(frame) = self.assoc.poll_transmit() {
                self.metrics.frame_out();
                if let Some(tapped) = &self.tapped {
                    tapped.sent(&frame.to_bytes());
                }
                if self.frames.send(frame).is_err() {
                    return TransportError::Closed;
                }
            }
            while let Some(event) = self.assoc.poll_event() {
                self.event(event);
            }
            if let Some(error) = self.assoc.error() {
                return TransportError::peer(error.clone());
            }
            if self.shutdown && self.calls.is_empty() {
                return TransportError::Closed;
            }
            tokio::select! {
                biased;
                () = stop.cancelled() => return TransportError::Closed,
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    // Every handle is gone: nobody waits for anything.
                    None => return TransportError::Closed,
                },
                frame = self.reader.next() => match frame {
                    Some(Ok(frame)) => {
                        // With the frames already received behind it: verified together.
                        let (frames, end) = self.received_with(frame);
                        if let Err(error) = self.assoc.handle_frames(frames) {
                            // Answer the calls the failure concerns first (a fault), then fail.
                            while let Some(event) = self.assoc.poll_event() {
                                self.event(event);
                            }
                            return TransportError::peer(error);
                        }
                        if let Some(end) = end {
                            while let Some(event) = self.assoc.poll_event() {
                                self.event(event);
                            }
                            return end;
                        }
                    }
                    Some(Err(error)) => return frame_error(error),
                    None => return TransportError::Closed,
                },
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Call {
                token,
                p_cont_id,
                opnum,
                object,
                stub,
                reply,
                permit,
                gauge,
            } => {
                if self.shutdown {
                    let _ = reply.send(Err(TransportError::Closed));
                    return;
                }
                match self.assoc.call(p_cont_id, opnum, object, stub) {
                    Ok(call_id) => {
                        self.tokens.insert(token, call_id);
                        self.calls.insert(
                            call_id,
                            Pending {
                                token,
                                reply: Some(reply),
                                _permit: permit,
                                _gauge: gauge,
                            },
                        );
                    }
                    Err(error) => {
                        let _ = reply.send(Err(TransportError::misuse(error)));
                    }
                }
            }
            Command::Cancel { token } => {
                if let Some(call_id) = self.tokens.remove(&token)
                    && let Some(pending) = self.calls.get_mut(&call_id)
                {
                    pending.reply = None;
                    tracing::debug!(call_id, "cancelling a call its caller gave up");
                    // Only fails for a call no longer in flight; its event then frees it.
                    let _ = self.assoc.cancel(call_id);
                }
            }
            Command::AlterContext { interfaces, reply } => {
                if self.alter.is_some() {
                    let _ = reply.send(Err(TransportError::Misuse(ApiMisuse::InvalidState {
                        operation: "alter the context",
                        state: "altering its context",
                    })));
                    return;
                }
                match self.assoc.alter_context(&interfaces) {
                    Ok(_) => self.alter = Some(reply),
                    Err(error) => {
                        let _ = reply.send(Err(TransportError::misuse(error)));
                    }
                }
            }
        }
    }

    fn finish(&mut self, call_id: u32, result: Result<Reply, TransportError>) {
        if let Some(pending) = self.calls.remove(&call_id) {
            self.tokens.remove(&pending.token);
            if let Some(reply) = pending.reply {
                let _ = reply.send(result);
            }
        }
    }

    fn event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Response {
                call_id,
                stub,
                drep,
            } => self.finish(call_id, Ok(Reply { stub, drep })),
            ClientEvent::Fault {
                call_id,
                status,
                did_not_execute,
            } => self.finish(
                call_id,
                Err(TransportError::Fault {
                    status,
                    did_not_execute,
                }),
            ),
            ClientEvent::Cancelled { call_id } => self.finish(call_id, Err(TransportError::Closed)),
            ClientEvent::ContextResults(reports) => {
                if let Some(reply) = self.alter.take() {
                    let _ = reply.send(Ok(reports));
                }
            }
            ClientEvent::Shutdown => self.shutdown = true,
            _ => {}
        }
    }
}
