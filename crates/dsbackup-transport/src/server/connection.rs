//! The task of one connection: frames in, the association's state machine, calls out to
//! their interfaces, answers to the writer task.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use dsbackup_proto::ndr::{ContextHandle, NdrReader};
use dsbackup_proto::{
    AuthLevel, Chain, CommonHeader, DataRep, FaultStatus, Interface, PacketType, Pdu, PduBody,
    PortAny, RejectReason, ServerAssociation, ServerConfig, ServerEvent, ServerRequest,
};
use futures_util::FutureExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

use super::groups::requested_group;
use super::interface::{AssocState, HandleTable};
use super::listener::send_bind_nak;
use super::reader::FrameReader;
use super::slots::{Phase, Slot, Status};
use super::{CallContext, CallError, ConnectionTap, RpcInterface, Shared, Verdict};
use crate::metrics::{Gauge, Kind, Metrics};
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
        let needs_auth = is_bind && asks_for_authentication(&first, &served);
        if is_bind && tap.as_mut().is_some_and(|tap| !tap.accept_bind()) {
            tracing::debug!(peer = %remote_addr, "bind refused by the connection hook");
            send_bind_nak(&mut write, &first, RejectReason::REASON_NOT_SPECIFIED).await;
            return;
        }
        let group = shared
            .groups
            .join(requested_group(&first), remote_addr.ip());
        config.assoc_group_id = group.id;
        let factory =
            crate::kerberos::acceptor_factory(options.ntlm.clone(), options.kerberos.clone());
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
            gone: shared.kill.child_token(),
            running: 0,
            ready: VecDeque::new(),
            waiting: HashMap::new(),
            authenticated: false,
        };
        // Whatever ends the connection, the calls still running are dropped with it: their
        // answers have nowhere to go, and what they hold is released now.
        let _calls = driver.gone.clone().drop_guard();
        let mut sent = SendShare::new(&shared);
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
            sent.set(assoc.queued_bytes());
            if assoc.error().is_some() {
                break;
            }
            if assoc.has_room() {
                if sent.under_budget() {
                    driver.start_ready();
                } else if assoc.queued_bytes() == 0 && driver.running == 0 {
                    // Over the server's budget: one call at a time, once the last is written.
                    driver.start_next();
                }
            }
            if grace.is_some() && driver.running == 0 {
                break;
            }
            let has_handles = state.has_handles();
            slot.set(Status {
                phase: if driver.authenticated {
                    Phase::Authenticated
                } else if assoc.is_bound() && assoc.is_authenticating() {
                    Phase::Handshaking
                } else if assoc.is_bound() {
                    Phase::Bound
                } else {
                    Phase::Connected
                },
                // Calls waiting for the peer to take the answers queued do not count: a peer
                // that pipelines calls and never reads is not protected by them.
                busy: driver.running > 0
                    || (!driver.ready.is_empty() && assoc.queued_bytes() == 0)
                    || has_handles,
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
            // An anonymous bind to an interface that asks for authentication has as long as a
            // handshake would have had to begin one (an alter_context may still bring it).
            if !assoc.is_bound()
                || assoc.is_authenticating()
                || (needs_auth && !driver.authenticated)
            {
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

/// Whether a bind asks for a presentation context whose interface requires authentication.
fn asks_for_authentication(bind: &Bytes, served: &[Arc<dyn RpcInterface>]) -> bool {
    let Ok(Pdu {
        body: PduBody::Bind(bind),
        ..
    }) = Pdu::decode(bind.clone())
    else {
        return false;
    };
    bind.p_context_elem.iter().any(|context| {
        served.iter().any(|interface| {
            interface.syntax() == context.abstract_syntax
                && interface.min_auth_level() > AuthLevel::NONE
        })
    })
}

/// One connection's bytes of answers, counted in the server's send budget
/// (`ServerOptions::send_budget`); given back when dropped.
struct SendShare {
    metrics: Metrics,
    max: usize,
    held: usize,
}

impl SendShare {
    fn new(shared: &Shared) -> Self {
        Self {
            metrics: shared.metrics.clone(),
            max: shared.options.send_budget,
            held: 0,
        }
    }

    /// Records that the connection holds `bytes` of answers now.
    fn set(&mut self, bytes: usize) {
        let total = self.metrics.send_queued();
        if bytes > self.held {
            total.fetch_add(bytes - self.held, Ordering::AcqRel);
        } else {
            total.fetch_sub(self.held - bytes, Ordering::AcqRel);
        }
        self.held = bytes;
    }

    /// Whether the server's connections together hold less than the budget.
    fn under_budget(&self) -> bool {
        self.metrics.send_queued().load(Ordering::Acquire) < self.max
    }
}

impl Drop for SendShare {
    fn drop(&mut self) {
        self.set(0);
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
    /// Cancelled when the connection ends (or the server's shutdown grace is over): the calls
    /// still running are dropped.
    gone: CancellationToken,
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

    /// Starts the first call ready, if any.
    fn start_next(&mut self) {
        if let Some(job) = self.ready.pop_front() {
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
        let gone = self.gone.clone();
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
                () = gone.cancelled() => Err(CallError::Fault(FaultStatus::CANT_PERFORM)),
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
