//! The server runtime: listeners, one task per association driving a
//! [`ServerAssociation`](dsbackup_proto::ServerAssociation), calls dispatched to
//! [`RpcInterface`]s in tasks of their own.
//!
//! - [`interface`]: the [`RpcInterface`] trait, [`CallContext`], [`CallError`];
//! - `groups`: the association-group table;
//! - `listener`: the accept loop;
//! - `slots`: the association table (eviction, the per-address cap);
//! - `connection`: the task of one connection (`reader`: its fragments in).
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
//! - hostile peers: an association table with a cap per client address, where idle
//!   unauthenticated associations make room for newcomers (`slots`); deadlines for the bind,
//!   the handshake, each fragment, idle associations and answers the peer does not take; a
//!   budget of answer bytes per connection (`Limits::max_send_queue`: the association cuts no
//!   fragment past it, the connection reads no request and starts no call); a budget of
//!   request bytes in reassembly across associations ([`ServerOptions`] has each default);
//! - a graceful shutdown (stop accepting, send shutdown PDUs, let the calls in flight finish
//!   within a grace period, close).
//!
//! The endpoint mapper and mgmt are served by every server ([`epm`], [`mgmt`]). A test server
//! may misbehave on the wire through a [`ConnectionHook`] ([`hook`]).

mod epm;
mod hook;
mod mgmt;

mod connection;
mod groups;
mod interface;
mod listener;
mod reader;
mod slots;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use dsbackup_ntlm::AcceptorConfig;
use dsbackup_proto::{DataRep, Limits};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::connection::ReassemblyBudget;
use self::groups::Groups;
use self::listener::spawn_listener;
use self::slots::Slots;
use crate::metrics::{Metrics, Snapshot};
use crate::tap::Tap;

pub use self::hook::{ConnectionHook, ConnectionTap, Verdict};
pub use self::interface::{CallContext, CallError, CallFuture, RpcInterface};

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
    /// Associations at once (both listeners together). When all are held, a newcomer evicts
    /// the unauthenticated association (bound or not, neither running a call nor holding a
    /// context handle) that made no progress for the longest, one whose security handshake
    /// began less than 3 s ago only after all the others; with none, it gets a bind_nak
    /// `local_limit_exceeded`. Default 256.
    pub max_associations: usize,
    /// Associations at once from one client IP address (past it, as above among that
    /// address's own). Default 64.
    pub max_associations_per_address: usize,
    /// Connections the kernel completes and queues for the accept loop (`listen`'s backlog,
    /// capped by the system's `somaxconn`). Past it, a client's SYN is dropped and its connect
    /// waits for a retransmission (1 s, then 3 s, then 7 s): under a flood of connections a
    /// short queue turns into connect timeouts. Default 4096.
    pub listen_backlog: u32,
    /// A connection must have its bind (its first fragment) whole this long after it was
    /// accepted. Default 3 s.
    pub bind_timeout: Duration,
    /// A connection must have completed its bind, and the security handshake the bind began,
    /// this long after it was accepted; so must one that bound without authentication to an
    /// interface whose `min_auth_level` asks for it. Default 10 s.
    pub handshake_timeout: Duration,
    /// A fragment that began to arrive must be whole within this. Default 10 s.
    pub fragment_timeout: Duration,
    /// A bound association holding no context handle, running no call, is closed after this
    /// long without a sign of life (a request dispatched, a call answered, a handshake leg,
    /// bytes of its answers taken by the peer). Default 60 s.
    pub idle_without_handle: Duration,
    /// The same for an association holding a context handle (a backup or restore session).
    /// Default 15 min.
    pub idle_timeout: Duration,
    /// An association whose answers wait and whose peer takes none of their bytes for this
    /// long is closed. Default 30 s.
    pub send_timeout: Duration,
    /// Request bytes held in reassembly across all associations (each call is also bounded by
    /// `Limits::max_stub_len`): a fragment past it fails its association with a fault
    /// `nca_s_server_too_busy`. Default 64 MiB.
    pub reassembly_budget: usize,
    /// Bytes of answers held across all connections (each is also bounded by
    /// `Limits::max_send_queue`): past it, a connection starts a call only once its own answers
    /// are all written, so that no peer starves and the stalled ones cannot hold more than
    /// this plus one answer each. Default 64 MiB.
    pub send_budget: usize,
    /// How long a graceful shutdown waits for the calls in flight.
    pub shutdown_grace: Duration,
    /// NTLM: the acceptor's names and credential store (`None`: authentication refused).
    pub ntlm: Option<AcceptorConfig>,
    /// Kerberos (auth type 16): the service keys and replay cache of the acceptor (`None`:
    /// refused).
    pub kerberos: Option<dsbackup_krb::AcceptorConfig>,
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
            max_associations_per_address: 64,
            listen_backlog: 4096,
            bind_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(10),
            fragment_timeout: Duration::from_secs(10),
            idle_without_handle: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(15 * 60),
            send_timeout: Duration::from_secs(30),
            reassembly_budget: 64 << 20,
            send_budget: 64 << 20,
            shutdown_grace: Duration::from_secs(10),
            ntlm: None,
            kerberos: None,
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

/// Connections answered with a bind_nak at once; past it, a refused connection is closed
/// without an answer.
const MAX_REFUSING: usize = 64;

/// What the tasks of a running server share.
struct Shared {
    options: ServerOptions,
    metrics: Metrics,
    stop: CancellationToken,
    /// Cancelled when the shutdown grace is over: calls still running are abandoned.
    kill: CancellationToken,
    tracker: TaskTracker,
    slots: Arc<Slots>,
    /// Connections being refused (answered with a bind_nak) at once.
    refusing: Arc<Semaphore>,
    reassembly: Arc<ReassemblyBudget>,
    next_assoc_id: AtomicU64,
    groups: Groups,
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
        let backlog = self.options.listen_backlog;
        let listener = listen(self.options.listen, backlog)?;
        let local_addr = listener.local_addr()?;
        let epm_listener = match self.options.epm_listen {
            Some(addr) => Some(listen(addr, backlog)?),
            None => None,
        };
        let epm_addr = epm_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let metrics = Metrics::new();
        let shared = Arc::new(Shared {
            slots: Arc::new(Slots::new(
                self.options.max_associations,
                self.options.max_associations_per_address,
            )),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
            reassembly: Arc::new(ReassemblyBudget::new(
                metrics.clone(),
                self.options.reassembly_budget,
            )),
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

/// A listener on `addr` with `backlog` (address reuse as `TcpListener::bind` sets it).
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
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
