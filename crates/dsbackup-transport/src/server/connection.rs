//! The task of one connection: frames in, the association's state machine, calls out to
//! their interfaces, answers to the writer task.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dsbackup_ntlm::{Acceptor, AcceptorConfig, ServerInputs};
use dsbackup_proto::ndr::{ContextHandle, NdrReader};
use dsbackup_proto::{
    AuthType, Chain, CommonHeader, FaultStatus, Interface, PacketType, PortAny, RejectReason,
    SecurityFactory, SecurityProvider, ServerAssociation, ServerConfig, ServerEvent, ServerRequest,
};
use futures_util::FutureExt;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::codec::FramedRead;

use super::groups::requested_group;
use super::interface::{AssocState, HandleTable};
use super::listener::send_bind_nak;
use super::{CallContext, CallError, ConnectionTap, RpcInterface, Shared, Verdict};
use crate::codec::FrameCodec;
use crate::metrics::{Gauge, Kind};
use crate::nonce;
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
    /// The context handle whose queue the call held, and its place in it.
    chain: Option<(ContextHandle, u64)>,
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
    _permit: OwnedSemaphorePermit,
    _association: Gauge,
}

impl Connection {
    pub(super) fn new(
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

    pub(super) async fn run(self, _task: Gauge) {
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
