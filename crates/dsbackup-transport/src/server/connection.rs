//! The task of one connection: frames in, the association's state machine, calls out to
//! their interfaces, answers to the writer task.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use dsbackup_ntlm::{Acceptor, AcceptorConfig, ServerInputs};
use dsbackup_proto::ndr::{ContextHandle, NdrReader};
use dsbackup_proto::{
    AuthType, Chain, CommonHeader, DataRep, FaultStatus, Interface, PacketType, PortAny,
    RejectReason, SecurityFactory, SecurityProvider, ServerAssociation, ServerConfig, ServerEvent,
    ServerRequest,
};
use futures_util::FutureExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use super::groups::requested_group;
use super::interface::{AssocState, HandleTable};
use super::listener::send_bind_nak;
use super::reader::FrameReader;
use super::slots::{Phase, Slot, Status};
use super::{CallContext, CallError, ConnectionTap, RpcInterface, Shared, Verdict};
use crate::metrics::{Gauge, Kind, Metrics};
use crate::nonce;
use crate::tap::{TapEnds, Tapped};
use crate::writer::write_frames;

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
    /// The context handle the call named, whose next call may start.
    handle: Option<ContextHandle>,
}

/// One association being served.
pub(super) struct Connection {
    shared: Arc<Shared>,
    served: Arc<[Arc<dyn RpcInterface>]>,
    /// The association's configuration, its group chosen when the bind arrives.
    config: ServerConfig,
    state: Arc<AssocState>,
    stream: TcpStream,
    local_addr: SocketAddr,
    remote_addr: SocketAddr,
    slot: Slot,
    _association: Gauge,
}

impl Connection {
    pub(super) fn new(
        shared: &Arc<Shared>,
        stream: TcpStream,
        served: Arc<[Arc<dyn RpcInterface>]>,
        port: u16,
        slot: Slot,
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
            slot,
            _association: association,
        })
    }

    pub(super) async fn run(self, _task: Gauge) {
        let Self {
            shared,
            served,
            mut config,
            state,
            stream,
            local_addr,
            remote_addr,
            mut slot,
            _association,
        } = self;
        let options = &shared.options;
        let accepted = Instant::now();
        let (read, mut write) = stream.into_split();
        let mut reader = FrameReader::new(read);
        // The bind names the association group to join: read it before making the association.
        let first_by = accepted + options.bind_timeout.min(options.handshake_timeout);
        let first = tokio::select! {
            first = timeout_at(first_by, reader.read_frame()) => match first {
                Ok(Ok(Some(frame))) => frame,
                Err(_) => {
                    tracing::debug!(peer = %remote_addr, "no bind in time: closed");
                    return;
                }
                _ => return,
            },
            () = shared.stop.cancelled() => return,
            () = slot.evicted() => return,
        };
        shared.metrics.frame_in();
        let tapped = options.capture.clone().map(|capture| {
            let ends = TapEnds {
                client: remote_addr,
                server: local_addr,
            };
            Tapped::open(capture, ends, false)
        });
        if let Some(tapped) = &tapped {
            tapped.received(&first);
        }
        let mut tap = options
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
        let factory = crate::kerberos::acceptor_factory(
            options.ntlm.clone().map(ntlm_factory),
            options.kerberos.clone(),
        );
        let mut assoc = match ServerAssociation::new(config, factory) {
            Ok(assoc) => assoc,
            Err(error) => {
                tracing::warn!(%error, "server limits refused");
                return;
            }
        };
        reader.set_max_frag(assoc.max_recv_frag());
        let mut share = ReassemblyShare::new(&shared.reassembly);
        share.feed(&mut assoc, first, remote_addr);
        let (frames, frames_rx) = mpsc::unbounded_channel::<Chain>();
        let (written_tx, mut written_rx) = watch::channel(0_u64);
        let writer = shared.tracker.spawn(write_frames(
            write,
            frames_rx,
            "server",
            Some(written_tx),
            shared.metrics.gauge(Kind::Task),
        ));
        let mut written_seen = 0_u64;
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut driver = Dispatcher {
            shared: Arc::clone(&shared),
            served,
            state: Arc::clone(&state),
            local_addr,
            remote_addr,
            done: done_tx,
            running: 0,
            ready: VecDeque::new(),
            waiting: HashMap::new(),
            authenticated: false,
        };
        // The last sign of life: a call dispatched or answered, a handshake leg, bytes taken.
        let mut activity = Instant::now();
        // Since when answers wait for the peer to take them.
        let mut stalled_since: Option<Instant> = None;
        let mut grace: Option<Instant> = None;
        // The tap asked to close: once the answers queued are written.
        let mut closing = false;
        'serve: loop {
            loop {
                while let Some(frame) = assoc.poll_transmit() {
                    shared.metrics.frame_out();
                    let len = frame.len();
                    let (frame, verdict) = tap_outgoing(tap.as_mut(), frame);
                    // Bytes a tap cut off are never written: count them as taken.
                    assoc.transmitted(len.saturating_sub(frame.len()));
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
                if driver.event(&mut assoc, event) {
                    activity = Instant::now();
                }
            }
            shared.metrics.send_queue(assoc.queued_bytes());
            if assoc.error().is_some() {
                break;
            }
            if assoc.has_room() {
                driver.start_ready();
            }
            if grace.is_some() && driver.running == 0 {
                break;
            }
            let has_handles = state.has_handles();
            slot.set(Status {
                phase: if driver.authenticated {
                    Phase::Authenticated
                } else if assoc.is_bound() {
                    Phase::Bound
                } else {
                    Phase::Connected
                },
                busy: driver.running > 0 || !driver.ready.is_empty() || has_handles,
            });
            // Requests are read only while the answers queued leave room.
            let reading = grace.is_none() && assoc.has_room();
            if reading {
                match reader.next_frame() {
                    Ok(Some(frame)) => {
                        shared.metrics.frame_in();
                        if let Some(tapped) = &tapped {
                            tapped.received(&frame);
                        }
                        share.feed(&mut assoc, frame, remote_addr);
                        continue;
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::debug!(%error, peer = %remote_addr, "connection unframeable");
                        break;
                    }
                }
            }
            if assoc.queued_bytes() == 0 {
                stalled_since = None;
            } else if stalled_since.is_none() {
                stalled_since = Some(Instant::now());
            }
            let mut deadline = Deadline::default();
            if !assoc.is_bound() || assoc.is_authenticating() {
                deadline.arm(
                    accepted + options.handshake_timeout,
                    "handshake not done in time",
                );
            }
            if reading && let Some(since) = reader.partial_since() {
                deadline.arm(
                    since + options.fragment_timeout,
                    "fragment not whole in time",
                );
            }
            if driver.running == 0 {
                let idle = if has_handles {
                    options.idle_timeout
                } else {
                    options.idle_without_handle
                };
                deadline.arm(activity + idle, "idle");
            }
            if let Some(since) = stalled_since {
                deadline.arm(since + options.send_timeout, "answers not taken in time");
            }
            tokio::select! {
                biased;
                done = done_rx.recv() => {
                    let Some(done) = done else { break };
                    driver.finish(&mut assoc, done);
                    closing = tap.as_mut().is_some_and(|tap| tap.on_call() == Verdict::Close);
                    activity = Instant::now();
                }
                changed = written_rx.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let total = *written_rx.borrow_and_update();
                    assoc.transmitted(
                        usize::try_from(total.saturating_sub(written_seen)).unwrap_or(usize::MAX),
                    );
                    written_seen = total;
                    activity = Instant::now();
                    stalled_since = None;
                }
                () = shared.stop.cancelled(), if grace.is_none() => {
                    grace = Some(Instant::now() + options.shutdown_grace);
                    let _ = assoc.shutdown();
                }
                () = sleep_until(grace.unwrap_or(activity)), if grace.is_some() => break,
                () = slot.evicted() => {
                    tracing::debug!(peer = %remote_addr, "association evicted to make room");
                    break;
                }
                filled = reader.fill(), if reading => match filled {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(error) => {
                        tracing::debug!(%error, peer = %remote_addr, "read failed");
                        break;
                    }
                },
                () = sleep_until(deadline.at.unwrap_or(activity)), if deadline.at.is_some() => {
                    tracing::debug!(peer = %remote_addr, why = deadline.why, "association closed");
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

/// The earliest of the limits in force.
#[derive(Default)]
struct Deadline {
    at: Option<Instant>,
    why: &'static str,
}

impl Deadline {
    fn arm(&mut self, at: Instant, why: &'static str) {
        if self.at.is_none_or(|earliest| at < earliest) {
            self.at = Some(at);
            self.why = why;
        }
    }
}

/// The request bytes a server holds in reassembly, across its associations.
#[derive(Debug)]
pub(super) struct ReassemblyBudget {
    /// Counts in the server's metrics.
    metrics: Metrics,
    max: usize,
}

impl ReassemblyBudget {
    pub(super) fn new(metrics: Metrics, max: usize) -> Self {
        Self { metrics, max }
    }

    fn used(&self) -> &AtomicUsize {
        self.metrics.reassembly_bytes()
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.max)
            })
            .is_ok()
    }

    fn give(&self, bytes: usize) {
        let _ = self
            .used()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

/// One association's share of the [`ReassemblyBudget`]; given back when dropped.
struct ReassemblyShare {
    budget: Arc<ReassemblyBudget>,
    held: usize,
}

impl ReassemblyShare {
    fn new(budget: &Arc<ReassemblyBudget>) -> Self {
        Self {
            budget: Arc::clone(budget),
            held: 0,
        }
    }

    /// Hands `frame` to the association, its request bytes taken from the budget first: a
    /// request fragment the budget has no room for fails the association (server too busy).
    fn feed(&mut self, assoc: &mut ServerAssociation, frame: Bytes, peer: SocketAddr) {
        let request =
            CommonHeader::decode(&frame).is_ok_and(|header| header.ptype == PacketType::REQUEST);
        let asked = if request { frame.len() } else { 0 };
        let taken = if asked > 0 && self.budget.try_take(asked) {
            asked
        } else {
            0
        };
        let allowed = self.held + taken;
        assoc.set_reassembly_allowance(allowed);
        if let Err(error) = assoc.handle_frame(frame) {
            tracing::debug!(%error, %peer, "association refused");
        }
        let held = assoc.reassembly_bytes().min(allowed);
        self.budget.give(allowed - held);
        self.held = held;
    }
}

impl Drop for ReassemblyShare {
    fn drop(&mut self) {
        self.budget.give(self.held);
    }
}

/// A call accepted, waiting to start.
struct Job {
    ctx: CallContext,
    interface: Arc<dyn RpcInterface>,
    opnum: u16,
    stub: Bytes,
    drep: DataRep,
    handle: Option<ContextHandle>,
}

/// Hands requests to interfaces and their answers back to the association.
struct Dispatcher {
    shared: Arc<Shared>,
    served: Arc<[Arc<dyn RpcInterface>]>,
    state: Arc<AssocState>,
    local_addr: SocketAddr,
    remote_addr: SocketAddr,
    done: mpsc::UnboundedSender<Done>,
    /// Calls running.
    running: usize,
    /// Calls free to start, in arrival order; started while the answers queued leave room.
    ready: VecDeque<Job>,
    /// Per context handle with a call ready or running: the calls naming it that wait for
    /// it, in arrival order.
    waiting: HashMap<ContextHandle, VecDeque<Job>>,
    /// A peer authenticated.
    authenticated: bool,
}

impl Dispatcher {
    /// Handles an event; whether it is a sign of life.
    fn event(&mut self, assoc: &mut ServerAssociation, event: ServerEvent) -> bool {
        match event {
            ServerEvent::Request(request) => {
                self.request(assoc, request);
                true
            }
            ServerEvent::Authenticated {
                auth_type,
                auth_level,
            } => {
                tracing::debug!(?auth_type, ?auth_level, peer = %self.remote_addr, "authenticated");
                self.authenticated = assoc.peer_identity().is_some();
                true
            }
            ServerEvent::Bound { .. } => true,
            // A cancelled call runs to its end; an orphaned one's answer is dropped by the
            // association (`respond` then reports an unknown call).
            _ => false,
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
        let mut handle = None;
        if interface.takes_context_handle(opnum) {
            let Ok(named) = NdrReader::new(drep, &stub).param::<ContextHandle>() else {
                let _ = assoc.fault(call_id, FaultStatus::BAD_STUB_DATA);
                return;
            };
            if !named.is_null() {
                if !self.state.table().handles.contains_key(&named) {
                    let _ = assoc.fault(call_id, FaultStatus::FAULT_CONTEXT_MISMATCH);
                    return;
                }
                handle = Some(named);
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
        let job = Job {
            ctx,
            interface,
            opnum,
            stub,
            drep,
            handle,
        };
        if let Some(handle) = handle {
            match self.waiting.get_mut(&handle) {
                // A call on the handle is ready or running: this one waits for it.
                Some(queue) => {
                    queue.push_back(job);
                    return;
                }
                None => {
                    self.waiting.insert(handle, VecDeque::new());
                }
            }
        }
        self.ready.push_back(job);
    }

    /// Starts every call ready.
    fn start_ready(&mut self) {
        while let Some(job) = self.ready.pop_front() {
            self.start(job);
        }
    }

    fn start(&mut self, job: Job) {
        let Job {
            ctx,
            interface,
            opnum,
            stub,
            drep,
            handle,
        } = job;
        let call_id = ctx.call_id;
        self.running += 1;
        let done = self.done.clone();
        let kill = self.shared.kill.clone();
        let task = self.shared.metrics.gauge(Kind::Task);
        let call = self.shared.metrics.gauge(Kind::Call);
        self.shared.tracker.spawn(async move {
            let _task = task;
            let _call = call;
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
                handle,
            });
        });
    }

    fn finish(&mut self, assoc: &mut ServerAssociation, done: Done) {
        self.running = self.running.saturating_sub(1);
        if let Some(handle) = done.handle {
            match self.waiting.get_mut(&handle).and_then(VecDeque::pop_front) {
                Some(next) => self.ready.push_back(next),
                None => {
                    self.waiting.remove(&handle);
                }
            }
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
