//! The server runtime: listeners, one task per association driving a [`ServerAssociation`],
//! calls dispatched to [`RpcInterface`]s in tasks of their own.
//!
//! ```text
//!  TcpListener ──accept──► connection task ─┬─ FramedRead<FrameCodec> ─► ServerAssociation
//!  (and the endpoint-mapper listener)       │        events: Request ─► call task ─► interface
//!                                           │        respond()/fault() ◄── Done ◄──┘
//!                                           └─ writer task ◄── poll_transmit()
//! ```
//!
//! What the runtime takes on, so interfaces do not have to:
//! - contexts, fragment sizes, association groups, NTLM (against the credential store of
//!   [`ServerOptions::ntlm`]); the auth level is bound to the association (an alter_context
//!   that tries to change it is refused with access denied and the association closed);
//! - the interface's minimum auth level (access denied, `PFC_DID_NOT_EXECUTE`), unknown
//!   opnums (`nca_s_op_rng_error`), bad stubs ([`CallError::BadStub`], `rpc_x_bad_stub_data`),
//!   context handles not of this association (`nca_s_fault_context_mismatch`), too many calls
//!   (`nca_s_server_too_busy`), stubs past `Limits::max_stub_len`;
//! - ordering: calls of one association run concurrently, except those naming the same
//!   context handle (an opnum for which [`RpcInterface::takes_context_handle`] is true), which
//!   run one after the other in arrival order;
//! - context handles: each association keeps a table of the handles its calls registered
//!   ([`CallContext::register_context_handle`]); when the association dies, each is run down
//!   ([`RpcInterface::rundown`]);
//! - bounds on associations (an excess connection gets a bind_nak `local_limit_exceeded`),
//!   on idle time, and a graceful shutdown (stop accepting, send shutdown PDUs, let the calls
//!   in flight finish within a grace period, close).
//!
//! The endpoint mapper and mgmt are served by every server ([`epm`], [`mgmt`]). A test server
//! may misbehave on the wire through a [`ConnectionHook`] ([`hook`]).

pub mod epm;
pub mod hook;
pub mod mgmt;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use dsbackup_ntlm::{Acceptor, AcceptorConfig, ServerInputs};
use dsbackup_proto::ndr::{ContextHandle, NdrReader};
use dsbackup_proto::{
    AuthLevel, AuthType, BindNak, Chain, CommonHeader, DataRep, EncodeError, FaultStatus,
    Interface, Limits, NdrError, PacketType, Pdu, PduBody, PeerIdentity, PortAny, RejectReason,
    SecurityFactory, SecurityProvider, ServerAssociation, ServerConfig, ServerEvent, ServerRequest,
    SyntaxId, Uuid,
};
use futures_util::FutureExt;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codec::FrameCodec;
use crate::metrics::{Gauge, Kind, Metrics, Snapshot};
use crate::nonce;
use crate::tap::{Tap, TapEnds, Tapped};
use crate::writer::write_frames;

pub use self::hook::{ConnectionHook, ConnectionTap, Verdict};

/// The future of a call: the NDR-encoded output stub (in [`CallContext::reply_drep`]) or
/// the error to fault the call with. The stub is a [`Chain`], so that an answer carrying a
/// large buffer (a backup read) is fragmented and written without being copied; a `Bytes`
/// or `Vec<u8>` stub converts with `into()`.
pub type CallFuture = Pin<Box<dyn Future<Output = Result<Chain, CallError>> + Send + 'static>>;

/// An interface served by a [`Server`].
///
/// ```
/// use std::sync::Arc;
///
/// use bytes::Bytes;
/// use dsbackup_proto::{AuthLevel, DataRep, SyntaxId, Uuid};
/// use dsbackup_transport::{CallContext, CallError, CallFuture, RpcInterface};
///
/// /// Opnum 0 returns its input.
/// struct Echo;
///
/// impl RpcInterface for Echo {
///     fn syntax(&self) -> SyntaxId {
///         SyntaxId::new(Uuid::from_str_const("6b6f6f6c-0000-4000-8000-000000000001"), 1, 0)
///     }
///     fn opnums(&self) -> u16 {
///         1
///     }
///     fn min_auth_level(&self) -> AuthLevel {
///         AuthLevel::PKT_PRIVACY
///     }
///     fn call(self: Arc<Self>, _: CallContext, _: u16, stub: Bytes, _: DataRep) -> CallFuture {
///         Box::pin(async move { Ok::<_, CallError>(stub.into()) })
///     }
/// }
/// ```
pub trait RpcInterface: Send + Sync + 'static {
    /// The abstract syntax: UUID and version (a client's minor version up to this one is
    /// accepted).
    fn syntax(&self) -> SyntaxId;

    /// Number of operations: opnums `0..opnums()` exist; others fault `nca_s_op_rng_error`.
    fn opnums(&self) -> u16;

    /// The annotation in the endpoint map.
    fn annotation(&self) -> &str {
        ""
    }

    /// The lowest auth level a call must come at (`AuthLevel::NONE`: anonymous calls).
    fn min_auth_level(&self) -> AuthLevel {
        AuthLevel::NONE
    }

    /// Whether the first parameter of `opnum`'s request is a context handle: the runtime
    /// then faults a handle that is not the association's with
    /// `nca_s_fault_context_mismatch`, and runs calls naming the same handle in order.
    fn takes_context_handle(&self, opnum: u16) -> bool {
        let _ = opnum;
        false
    }

    /// Runs a call; `drep` is the byte order of `stub`.
    fn call(
        self: Arc<Self>,
        ctx: CallContext,
        opnum: u16,
        stub: Bytes,
        drep: DataRep,
    ) -> CallFuture;

    /// Releases a context handle the association registered and did not release, when the
    /// association dies.
    fn rundown(&self, handle: ContextHandle) {
        let _ = handle;
    }
}

/// Why a call faults.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// Fault with this status.
    #[error("fault {0}")]
    Fault(FaultStatus),
    /// The input stub does not decode: `rpc_x_bad_stub_data` (`nca_s_fault_ndr`).
    #[error("bad stub: {0}")]
    BadStub(#[from] NdrError),
    /// The output could not be encoded (a server bug): `nca_s_fault_cant_perform`.
    #[error("output not encodable: {0}")]
    Encode(#[from] EncodeError),
}

impl CallError {
    /// The fault status sent.
    pub fn status(&self) -> FaultStatus {
        match self {
            Self::Fault(status) => *status,
            Self::BadStub(_) => FaultStatus::BAD_STUB_DATA,
            Self::Encode(_) => FaultStatus::CANT_PERFORM,
        }
    }
}

impl From<FaultStatus> for CallError {
    fn from(status: FaultStatus) -> Self {
        Self::Fault(status)
    }
}

/// The context handles of one association.
struct HandleTable {
    handles: HashMap<ContextHandle, Arc<dyn RpcInterface>>,
    /// The association is gone: handles registered now are run down at once.
    closed: bool,
}

/// What the calls of one association share.
struct AssocState {
    id: u64,
    table: Mutex<HandleTable>,
}

impl AssocState {
    fn table(&self) -> std::sync::MutexGuard<'_, HandleTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs down every handle left (once).
    fn run_down(&self) {
        let handles: Vec<_> = {
            let mut table = self.table();
            table.closed = true;
            table.handles.drain().collect()
        };
        for (handle, interface) in handles {
            interface.rundown(handle);
        }
    }
}

/// Who calls, how, and the association's context handles: what an interface gets with each
/// call.
#[derive(Clone)]
pub struct CallContext {
    assoc: Arc<AssocState>,
    interface: Arc<dyn RpcInterface>,
    call_id: u32,
    auth: Option<(AuthType, AuthLevel)>,
    peer: Option<PeerIdentity>,
    local_addr: SocketAddr,
    remote_addr: SocketAddr,
    reply_drep: DataRep,
    stats: Metrics,
}

impl core::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CallContext")
            .field("association_id", &self.assoc.id)
            .field("call_id", &self.call_id)
            .field("auth", &self.auth)
            .field("peer", &self.peer)
            .field("remote_addr", &self.remote_addr)
            .finish_non_exhaustive()
    }
}

impl CallContext {
    /// The association's number on this server (from 1).
    pub fn association_id(&self) -> u64 {
        self.assoc.id
    }

    /// The call's `call_id`.
    pub fn call_id(&self) -> u32 {
        self.call_id
    }

    /// Who authenticated (user and domain from NTLM); `None` for an anonymous caller.
    pub fn peer(&self) -> Option<&PeerIdentity> {
        self.peer.as_ref()
    }

    /// The association's auth level (`AuthLevel::NONE` without authentication).
    pub fn auth_level(&self) -> AuthLevel {
        self.auth.map_or(AuthLevel::NONE, |(_, level)| level)
    }

    /// The association's auth type, if authenticated.
    pub fn auth_type(&self) -> Option<AuthType> {
        self.auth.map(|(auth_type, _)| auth_type)
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// The address the client connected to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The byte order the output stub is to be encoded in.
    pub fn reply_drep(&self) -> DataRep {
        self.reply_drep
    }

    /// Counters of the server.
    pub fn server_metrics(&self) -> Snapshot {
        self.stats.snapshot()
    }

    /// A fresh context handle (attributes 0, a random UUID), registered to the association.
    ///
    /// # Errors
    /// The OS error when no randomness is available.
    pub fn new_context_handle(&self) -> std::io::Result<ContextHandle> {
        let mut bytes = nonce::random::<16>()?;
        // RFC 4122 version 4, variant 1.
        if let Some(byte) = bytes.get_mut(6) {
            *byte = (*byte & 0x0f) | 0x40;
        }
        if let Some(byte) = bytes.get_mut(8) {
            *byte = (*byte & 0x3f) | 0x80;
        }
        let handle = ContextHandle {
            attributes: 0,
            uuid: Uuid(bytes),
        };
        self.register_context_handle(handle);
        Ok(handle)
    }

    /// Records that `handle` belongs to this association and to the interface of this call:
    /// it is run down when the association dies unless released first.
    pub fn register_context_handle(&self, handle: ContextHandle) {
        let mut table = self.assoc.table();
        if table.closed {
            drop(table);
            self.interface.rundown(handle);
            return;
        }
        table.handles.insert(handle, Arc::clone(&self.interface));
    }

    /// Forgets `handle` (closed by the client); whether it was the association's.
    pub fn release_context_handle(&self, handle: &ContextHandle) -> bool {
        self.assoc.table().handles.remove(handle).is_some()
    }

    /// Whether `handle` is one of the association's.
    pub fn owns_context_handle(&self, handle: &ContextHandle) -> bool {
        self.assoc.table().handles.contains_key(handle)
    }
}

/// How a server listens, authenticates and bounds its peers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Where the interfaces are served (port 0: any free port).
    pub listen: SocketAddr,
    /// Where the separate endpoint-mapper listener is (port 135 by default); `None` for
    /// none (the endpoint mapper is still served on `listen`).
    pub epm_listen: Option<SocketAddr>,
    /// Fragment sizes, calls in flight per association, request stub bounds.
    pub limits: Limits,
    /// Byte order of the PDUs and stubs the server sends.
    pub drep: DataRep,
    /// Associations at once (both listeners together).
    pub max_associations: usize,
    /// An association with no call in flight and nothing received for this long is closed.
    pub idle_timeout: Duration,
    /// How long a graceful shutdown waits for the calls in flight.
    pub shutdown_grace: Duration,
    /// NTLM: the acceptor's names and credential store (`None`: authentication refused).
    pub ntlm: Option<AcceptorConfig>,
    /// The principal name mgmt's `inq_princ_name` answers.
    pub principal_name: String,
    /// Sees each connection's bind, answers and outgoing frames, and may refuse, close or
    /// alter them (fault injection); `None` for a well-behaved server.
    pub hook: Option<Arc<dyn ConnectionHook>>,
    /// Where to copy every PDU of every connection (a capture file); none by default.
    pub capture: Option<Tap>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            epm_listen: Some(SocketAddr::from(([127, 0, 0, 1], 135))),
            limits: Limits::server(),
            drep: DataRep::LITTLE_ENDIAN,
            max_associations: 256,
            idle_timeout: Duration::from_secs(15 * 60),
            shutdown_grace: Duration::from_secs(10),
            ntlm: None,
            principal_name: String::new(),
            hook: None,
            capture: None,
        }
    }
}

/// A server being configured: register interfaces, then [`start`](Self::start).
pub struct Server {
    options: ServerOptions,
    interfaces: Vec<Arc<dyn RpcInterface>>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("options", &self.options)
            .field(
                "interfaces",
                &self
                    .interfaces
                    .iter()
                    .map(|interface| interface.syntax())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What the tasks of a running server share.
struct Shared {
    options: ServerOptions,
    metrics: Metrics,
    stop: CancellationToken,
    /// Cancelled when the shutdown grace is over: calls still running are abandoned.
    kill: CancellationToken,
    tracker: TaskTracker,
    associations: Arc<Semaphore>,
    next_assoc_id: AtomicU64,
    groups: Groups,
}

/// The association groups of a server. A bind naming a group joins it when the group still has
/// an association from the same client IP address (MS-RPCE's extension of the
/// `assoc_group_id` of [C706 §12.6.4.3]: a connection from another machine should not join);
/// otherwise the association gets a new group.
///
/// [C706 §12.6.4.3]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
#[derive(Debug)]
struct Groups {
    next: AtomicU32,
    /// Live groups: the client address that made each, and how many associations it has.
    live: Arc<Mutex<HashMap<u32, (IpAddr, usize)>>>,
}

/// Membership of one association in a group; leaves it when dropped.
#[derive(Debug)]
struct GroupMember {
    id: u32,
    live: Arc<Mutex<HashMap<u32, (IpAddr, usize)>>>,
}

impl Groups {
    fn new() -> Self {
        Self {
            next: AtomicU32::new(0x0001_0000),
            live: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn join(&self, requested: Option<u32>, client: IpAddr) -> GroupMember {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let joinable = |id: &u32| live.get(id).is_some_and(|(owner, _)| *owner == client);
        let id = match requested.filter(joinable) {
            Some(id) => id,
            None => loop {
                let id = self.next.fetch_add(1, Ordering::Relaxed);
                if id != 0 && !live.contains_key(&id) {
                    break id;
                }
            },
        };
        live.entry(id).or_insert((client, 0)).1 += 1;
        GroupMember {
            id,
            live: Arc::clone(&self.live),
        }
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, count)) = live.get_mut(&self.id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                live.remove(&self.id);
            }
        }
    }
}

/// The `assoc_group_id` a bind asks to join (0, or not a bind: none).
fn requested_group(frame: &Bytes) -> Option<u32> {
    match Pdu::decode(frame.clone()).ok()?.body {
        PduBody::Bind(bind) => Some(bind.assoc_group_id).filter(|&id| id != 0),
        _ => None,
    }
}

/// A running server.
pub struct RunningServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    epm_addr: Option<SocketAddr>,
}

impl core::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RunningServer")
            .field("local_addr", &self.local_addr)
            .field("epm_addr", &self.epm_addr)
            .field("metrics", &self.shared.metrics.snapshot())
            .finish()
    }
}

impl Server {
    /// A server with `options` and no interface yet.
    pub fn new(options: ServerOptions) -> Self {
        Self {
            options,
            interfaces: Vec::new(),
        }
    }

    /// Serves `interface`, listed in the endpoint map and mgmt's `inq_if_ids`.
    ///
    /// Interfaces registered here come before the built-in endpoint mapper and mgmt: one with
    /// their abstract syntax replaces them on the main listener (to mimic another server's
    /// quirks, say).
    pub fn register(&mut self, interface: Arc<dyn RpcInterface>) -> &mut Self {
        self.interfaces.push(interface);
        self
    }

    /// Binds the listeners and starts serving.
    ///
    /// # Errors
    /// The I/O error of binding a listener.
    pub async fn start(self) -> std::io::Result<RunningServer> {
        let listener = TcpListener::bind(self.options.listen).await?;
        let local_addr = listener.local_addr()?;
        let epm_listener = match self.options.epm_listen {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let epm_addr = epm_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let metrics = Metrics::new();
        let shared = Arc::new(Shared {
            associations: Arc::new(Semaphore::new(self.options.max_associations.max(1))),
            options: self.options,
            metrics: metrics.clone(),
            stop: CancellationToken::new(),
            kill: CancellationToken::new(),
            tracker: TaskTracker::new(),
            next_assoc_id: AtomicU64::new(1),
            groups: Groups::new(),
        });
        let address = match local_addr {
            SocketAddr::V4(v4) => v4.ip().octets(),
            SocketAddr::V6(_) => [0; 4],
        };
        let endpoints: Vec<epm::MapEntry> = self
            .interfaces
            .iter()
            .map(|interface| epm::MapEntry {
                syntax: interface.syntax(),
                annotation: interface.annotation().to_owned(),
                port: local_addr.port(),
                address,
            })
            .collect();
        let mapper: Arc<dyn RpcInterface> = Arc::new(epm::EndpointMapper::new(endpoints));
        let management: Arc<dyn RpcInterface> = Arc::new(mgmt::Management::new(
            self.interfaces.iter().map(|i| i.syntax()).collect(),
            shared.options.principal_name.clone(),
        ));
        let mut main: Vec<Arc<dyn RpcInterface>> = self.interfaces;
        main.push(Arc::clone(&mapper));
        main.push(Arc::clone(&management));
        let main: Arc<[Arc<dyn RpcInterface>]> = main.into();
        spawn_listener(&shared, listener, main, local_addr.port());
        if let Some(listener) = epm_listener {
            let served: Arc<[Arc<dyn RpcInterface>]> = vec![mapper, management].into();
            spawn_listener(
                &shared,
                listener,
                served,
                epm_addr.map_or(135, |a| a.port()),
            );
        }
        Ok(RunningServer {
            shared,
            local_addr,
            epm_addr,
        })
    }
}

impl RunningServer {
    /// Where the interfaces are served.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ncacn_ip_tcp:address[port]` of the main listener.
    pub fn string_binding(&self) -> crate::binding::StringBinding {
        crate::binding::StringBinding::tcp(
            self.local_addr.ip().to_string(),
            Some(self.local_addr.port()),
        )
    }

    /// Where the separate endpoint-mapper listener is, if any.
    pub fn epm_addr(&self) -> Option<SocketAddr> {
        self.epm_addr
    }

    /// The server's counters (associations, tasks, calls).
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// A reading of [`metrics`](Self::metrics).
    pub fn snapshot(&self) -> Snapshot {
        self.shared.metrics.snapshot()
    }

    /// Graceful shutdown: stops accepting, sends each association a shutdown PDU, lets calls
    /// in flight finish (within `ServerOptions::shutdown_grace`, after which they are
    /// abandoned), closes every connection; returns when every task is gone.
    pub async fn shutdown(&self) {
        self.shared.stop.cancel();
        self.shared.tracker.close();
        if timeout(
            self.shared.options.shutdown_grace,
            self.shared.tracker.wait(),
        )
        .await
        .is_err()
        {
            tracing::warn!("calls still running after the shutdown grace period: abandoned");
            self.shared.kill.cancel();
            self.shared.tracker.wait().await;
        }
    }
}

fn spawn_listener(
    shared: &Arc<Shared>,
    listener: TcpListener,
    served: Arc<[Arc<dyn RpcInterface>]>,
    port: u16,
) {
    let task = shared.metrics.gauge(Kind::Task);
    let shared_for_task = Arc::clone(shared);
    shared
        .tracker
        .spawn(accept_loop(shared_for_task, listener, served, port, task));
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    served: Arc<[Arc<dyn RpcInterface>]>,
    port: u16,
    _task: Gauge,
) {
    loop {
        let accepted = tokio::select! {
            () = shared.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!(%error, "accept failed");
                continue;
            }
        };
        let task = shared.metrics.gauge(Kind::Task);
        match Arc::clone(&shared.associations).try_acquire_owned() {
            Ok(permit) => {
                let connection =
                    Connection::new(&shared, stream, Arc::clone(&served), port, permit);
                if let Some(connection) = connection {
                    shared.tracker.spawn(connection.run(task));
                }
            }
            Err(_) => {
                shared.tracker.spawn(refuse(stream, task));
            }
        }
    }
}

/// Answers the bind of a connection past `max_associations` with a bind_nak
/// `local_limit_exceeded`, and closes it.
async fn refuse(mut stream: TcpStream, _task: Gauge) {
    let (read, mut write) = stream.split();
    let mut reader = FramedRead::new(read, FrameCodec::default());
    let Ok(Some(Ok(frame))) = timeout(Duration::from_secs(5), reader.next()).await else {
        return;
    };
    send_bind_nak(&mut write, &frame, RejectReason::LOCAL_LIMIT_EXCEEDED).await;
}

/// Answers the bind `frame` with a bind_nak for `reason` and shuts the connection down.
async fn send_bind_nak(
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
    frame: &Bytes,
    reason: RejectReason,
) {
    let call_id = CommonHeader::decode(frame).map_or(0, |header| header.call_id);
    let nak = Pdu::new(call_id, PduBody::BindNak(BindNak::new(reason)));
    if let Ok(bytes) = nak.to_bytes() {
        let _ = write.write_all(&bytes).await;
    }
    let _ = write.shutdown().await;
}

/// Hands an outgoing frame to the connection's tap, if any: what to write, and whether to
/// close afterwards.
fn tap_outgoing(tap: Option<&mut Box<dyn ConnectionTap>>, mut frame: Chain) -> (Chain, Verdict) {
    let verdict = match tap {
        None => Verdict::Continue,
        Some(tap) => tap.outgoing(&mut frame),
    };
    (frame, verdict)
}

/// A call finished.
struct Done {
    call_id: u32,
    result: Result<Chain, CallError>,
    /// The context handle whose queue the call held, and its place in it.
    chain: Option<(ContextHandle, u64)>,
}

/// One association being served.
struct Connection {
    shared: Arc<Shared>,
    served: Arc<[Arc<dyn RpcInterface>]>,
    /// The association's configuration, its group chosen when the bind arrives.
    config: ServerConfig,
    state: Arc<AssocState>,
    stream: TcpStream,
    local_addr: SocketAddr,
    remote_addr: SocketAddr,
    _permit: OwnedSemaphorePermit,
    _association: Gauge,
}

impl Connection {
    fn new(
        shared: &Arc<Shared>,
        stream: TcpStream,
        served: Arc<[Arc<dyn RpcInterface>]>,
        port: u16,
        permit: OwnedSemaphorePermit,
    ) -> Option<Self> {
        let association = shared.metrics.gauge(Kind::Association);
        let local_addr = stream.local_addr().ok()?;
        let remote_addr = stream.peer_addr().ok()?;
        let _ = stream.set_nodelay(true);
        let mut config = ServerConfig::new(
            served
                .iter()
                .map(|interface| Interface {
                    syntax: interface.syntax(),
                    opnums: interface.opnums(),
                    min_auth_level: interface.min_auth_level(),
                })
                .collect(),
            0,
        );
        config.limits = shared.options.limits.clone();
        config.drep = shared.options.drep;
        config.secondary_address = PortAny::new(&port.to_string());
        Some(Self {
            state: Arc::new(AssocState {
                id: shared.next_assoc_id.fetch_add(1, Ordering::Relaxed),
                table: Mutex::new(HandleTable {
                    handles: HashMap::new(),
                    closed: false,
                }),
            }),
            shared: Arc::clone(shared),
            served,
            config,
            stream,
            local_addr,
            remote_addr,
            _permit: permit,
            _association: association,
        })
    }

    async fn run(self, _task: Gauge) {
        let Self {
            shared,
            served,
            mut config,
            state,
            stream,
            local_addr,
            remote_addr,
            _permit,
            _association,
        } = self;
        let idle_timeout = shared.options.idle_timeout;
        let (read, mut write) = stream.into_split();
        let mut reader = FramedRead::new(read, FrameCodec::default());
        // The bind names the association group to join: read it before making the association.
        let first = tokio::select! {
            first = timeout(idle_timeout, reader.next()) => match first {
                Ok(Some(Ok(frame))) => frame,
                _ => return,
            },
            () = shared.stop.cancelled() => return,
        };
        shared.metrics.frame_in();
        let tapped = shared.options.capture.clone().map(|capture| {
            let ends = TapEnds {
                client: remote_addr,
                server: local_addr,
            };
            Tapped::open(capture, ends, false)
        });
        if let Some(tapped) = &tapped {
            tapped.received(&first);
        }
        let mut tap = shared
            .options
            .hook
            .as_ref()
            .map(|hook| hook.connection(remote_addr));
        let is_bind =
            CommonHeader::decode(&first).is_ok_and(|header| header.ptype == PacketType::BIND);
        if is_bind && tap.as_mut().is_some_and(|tap| !tap.accept_bind()) {
            tracing::debug!(peer = %remote_addr, "bind refused by the connection hook");
            send_bind_nak(&mut write, &first, RejectReason::REASON_NOT_SPECIFIED).await;
            return;
        }
        let group = shared
            .groups
            .join(requested_group(&first), remote_addr.ip());
        config.assoc_group_id = group.id;
        let factory = shared.options.ntlm.clone().map(ntlm_factory);
        let mut assoc = match ServerAssociation::new(config, factory) {
            Ok(assoc) => assoc,
            Err(error) => {
                tracing::warn!(%error, "server limits refused");
                return;
            }
        };
        reader.decoder_mut().set_max_frag(assoc.max_recv_frag());
        if let Err(error) = assoc.handle_frame(first) {
            tracing::debug!(%error, peer = %remote_addr, "bind refused");
        }
        let (frames, frames_rx) = mpsc::unbounded_channel::<Chain>();
        let writer = shared.tracker.spawn(write_frames(
            write,
            frames_rx,
            "server",
            shared.metrics.gauge(Kind::Task),
        ));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut driver = Dispatcher {
            shared: Arc::clone(&shared),
            served,
            state: Arc::clone(&state),
            local_addr,
            remote_addr,
            done: done_tx,
            in_flight: 0,
            chains: HashMap::new(),
            next_seq: 0,
        };
        let mut idle = Instant::now() + idle_timeout;
        let mut grace: Option<Instant> = None;
        // The tap asked to close: once the answers queued are written.
        let mut closing = false;
        'serve: loop {
            loop {
                while let Some(frame) = assoc.poll_transmit() {
                    shared.metrics.frame_out();
                    let (frame, verdict) = tap_outgoing(tap.as_mut(), frame);
                    if let Some(tapped) = tapped.as_ref().filter(|_| !frame.is_empty()) {
                        tapped.sent(&frame.to_bytes());
                    }
                    if !frame.is_empty() {
                        let _ = frames.send(frame);
                    }
                    if verdict == Verdict::Close {
                        tracing::debug!(peer = %remote_addr, "connection closed by the hook");
                        break 'serve;
                    }
                }
                if closing {
                    tracing::debug!(peer = %remote_addr, "connection closed by the hook");
                    break 'serve;
                }
                let Some(event) = assoc.poll_event() else {
                    break;
                };
                driver.event(&mut assoc, event);
            }
            if assoc.error().is_some() {
                break;
            }
            if grace.is_some() && driver.in_flight == 0 {
                break;
            }
            tokio::select! {
                biased;
                done = done_rx.recv() => {
                    let Some(done) = done else { break };
                    driver.finish(&mut assoc, done);
                    closing = tap.as_mut().is_some_and(|tap| tap.on_call() == Verdict::Close);
                    idle = Instant::now() + idle_timeout;
                }
                () = shared.stop.cancelled(), if grace.is_none() => {
                    grace = Some(Instant::now() + shared.options.shutdown_grace);
                    let _ = assoc.shutdown();
                }
                () = sleep_until(grace.unwrap_or(idle)), if grace.is_some() => break,
                frame = reader.next(), if grace.is_none() => match frame {
                    Some(Ok(frame)) => {
                        shared.metrics.frame_in();
                        if let Some(tapped) = &tapped {
                            tapped.received(&frame);
                        }
                        idle = Instant::now() + idle_timeout;
                        if let Err(error) = assoc.handle_frame(frame) {
                            tracing::debug!(%error, peer = %remote_addr, "association refused");
                        }
                    }
                    Some(Err(error)) => {
                        tracing::debug!(%error, peer = %remote_addr, "connection unframeable");
                        break;
                    }
                    None => break,
                },
                () = sleep_until(idle), if driver.in_flight == 0 => {
                    tracing::debug!(peer = %remote_addr, "idle association closed");
                    break;
                }
            }
        }
        state.run_down();
        drop(frames);
        drop(reader);
        let abort = writer.abort_handle();
        if timeout(Duration::from_secs(5), writer).await.is_err() {
            abort.abort();
        }
    }
}

/// Hands requests to interfaces and their answers back to the association.
struct Dispatcher {
    shared: Arc<Shared>,
    served: Arc<[Arc<dyn RpcInterface>]>,
    state: Arc<AssocState>,
    local_addr: SocketAddr,
    remote_addr: SocketAddr,
    done: mpsc::UnboundedSender<Done>,
    in_flight: usize,
    /// Per context handle: the completion of the last call queued on it.
    chains: HashMap<ContextHandle, (u64, oneshot::Receiver<()>)>,
    next_seq: u64,
}

impl Dispatcher {
    fn event(&mut self, assoc: &mut ServerAssociation, event: ServerEvent) {
        match event {
            ServerEvent::Request(request) => self.request(assoc, request),
            ServerEvent::Authenticated {
                auth_type,
                auth_level,
            } => {
                tracing::debug!(?auth_type, ?auth_level, peer = %self.remote_addr, "authenticated");
            }
            // A cancelled call runs to its end; an orphaned one's answer is dropped by the
            // association (`respond` then reports an unknown call).
            _ => {}
        }
    }

    fn request(&mut self, assoc: &mut ServerAssociation, request: ServerRequest) {
        let ServerRequest {
            call_id,
            interface,
            opnum,
            stub,
            drep,
            ..
        } = request;
        let Some(interface) = self.served.get(interface).cloned() else {
            let _ = assoc.fault(call_id, FaultStatus::UNK_IF);
            return;
        };
        let mut chain = None;
        if interface.takes_context_handle(opnum) {
            let Ok(handle) = NdrReader::new(drep, &stub).param::<ContextHandle>() else {
                let _ = assoc.fault(call_id, FaultStatus::BAD_STUB_DATA);
                return;
            };
            if !handle.is_null() {
                if !self.state.table().handles.contains_key(&handle) {
                    let _ = assoc.fault(call_id, FaultStatus::FAULT_CONTEXT_MISMATCH);
                    return;
                }
                chain = Some(handle);
            }
        }
        let ctx = CallContext {
            assoc: Arc::clone(&self.state),
            interface: Arc::clone(&interface),
            call_id,
            auth: assoc.auth(),
            peer: assoc.peer_identity(),
            local_addr: self.local_addr,
            remote_addr: self.remote_addr,
            reply_drep: self.shared.options.drep,
            stats: self.shared.metrics.clone(),
        };
        let (previous, release, chain) = match chain {
            Some(handle) => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let (release, wait) = oneshot::channel();
                let previous = self
                    .chains
                    .insert(handle, (seq, wait))
                    .map(|(_, previous)| previous);
                (previous, Some(release), Some((handle, seq)))
            }
            None => (None, None, None),
        };
        self.in_flight += 1;
        let done = self.done.clone();
        let kill = self.shared.kill.clone();
        let task = self.shared.metrics.gauge(Kind::Task);
        let call = self.shared.metrics.gauge(Kind::Call);
        self.shared.tracker.spawn(async move {
            let _task = task;
            let _call = call;
            if let Some(previous) = previous {
                // Ends when the previous call on the handle is done (its sender dropped).
                let _ = previous.await;
            }
            let run =
                std::panic::AssertUnwindSafe(interface.call(ctx, opnum, stub, drep)).catch_unwind();
            let result = tokio::select! {
                result = run => result.unwrap_or_else(|_| {
                    tracing::error!(call_id, opnum, "interface panicked");
                    Err(CallError::Fault(FaultStatus::CANT_PERFORM))
                }),
                () = kill.cancelled() => Err(CallError::Fault(FaultStatus::CANT_PERFORM)),
            };
            let _ = done.send(Done {
                call_id,
                result,
                chain,
            });
            drop(release);
        });
    }

    fn finish(&mut self, assoc: &mut ServerAssociation, done: Done) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some((handle, seq)) = done.chain
            && self
                .chains
                .get(&handle)
                .is_some_and(|(last, _)| *last == seq)
        {
            self.chains.remove(&handle);
        }
        let answered = match done.result {
            Ok(stub) => assoc.respond(done.call_id, stub),
            Err(error) => {
                tracing::debug!(call_id = done.call_id, %error, "call faulted");
                assoc.fault(done.call_id, error.status())
            }
        };
        if let Err(error) = answered {
            // An orphaned call, or an association already failed.
            tracing::debug!(call_id = done.call_id, %error, "answer dropped");
        }
    }
}

/// Makes an NTLM acceptor (fresh server challenge, current time) per authenticated bind.
fn ntlm_factory(config: AcceptorConfig) -> SecurityFactory {
    Box::new(move |auth_type| {
        if auth_type != AuthType::WINNT {
            return None;
        }
        let inputs = ServerInputs {
            server_challenge: nonce::random().ok()?,
            timestamp: nonce::filetime_now(),
        };
        Some(Box::new(Acceptor::new(config.clone(), inputs)) as Box<dyn SecurityProvider>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_joined_from_its_own_client_address_only_while_it_lives() {
        let groups = Groups::new();
        let here = IpAddr::from([127, 0, 0, 1]);
        let there = IpAddr::from([127, 0, 0, 2]);
        let first = groups.join(None, here);
        let second = groups.join(Some(first.id), here);
        assert_eq!(second.id, first.id);
        // Another machine, or a group nobody made: a new group.
        let stranger = groups.join(Some(first.id), there);
        assert_ne!(stranger.id, first.id);
        let made_up = groups.join(Some(0xdead_0000), here);
        assert_ne!(made_up.id, 0xdead_0000);
        let id = first.id;
        drop((first, second));
        // The group died with its last association.
        assert_ne!(groups.join(Some(id), here).id, id);
    }

    #[test]
    fn call_errors_map_to_the_fault_statuses_clients_expect() {
        assert_eq!(
            CallError::from(NdrError::UnknownOpnum {
                interface: "x",
                opnum: 9
            })
            .status(),
            FaultStatus::BAD_STUB_DATA
        );
        assert_eq!(
            CallError::from(FaultStatus::FAULT_CONTEXT_MISMATCH).status(),
            FaultStatus::FAULT_CONTEXT_MISMATCH
        );
    }
}
