//! The client side of a connection-oriented association ([`ClientAssociation`]).

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::assoc::{
    self, AuthContext, Fragmenter, Limits, MIN_FRAG_SIZE, Opened, Reassembly, Received, StubKind,
};
use crate::chain::Chain;
use crate::drep::DataRep;
use crate::error::{ApiMisuse, EncodeError, ProtocolError};
use crate::header::{CommonHeader, PacketType, PfcFlags};
use crate::pdu::{
    AlterContext, Auth3, Bind, BindAck, CoCancel, ContResult, ContextResult, DecodeLimits, Fault,
    FaultStatus, Orphaned, Pdu, PduBody, PresentationContext, ProviderReason, RejectReason,
    Response, Version,
};
use crate::security::{AuthLevel, AuthStep, Protection, SecurityProvider};
use crate::syntax::{BindTimeFeatures, SyntaxId};
use crate::uuid::Uuid;

/// How a client association negotiates.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Fragment sizes and reassembly bounds.
    pub limits: Limits,
    /// `assoc_group_id` of the bind: 0 for a new group.
    pub assoc_group_id: u32,
    /// Byte order of every PDU and stub this client sends.
    pub drep: DataRep,
    /// Offer bind-time feature negotiation ([MS-RPCE §3.3.1.5.3]) with these features, as an
    /// extra context after the first interface.
    ///
    /// [MS-RPCE §3.3.1.5.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    pub bind_time_features: Option<BindTimeFeatures>,
    /// Ask for `PFC_CONC_MPX` (fragments of several responses may interleave).
    pub conc_mpx: bool,
    /// Ask for header signing, `PFC_SUPPORT_HEADER_SIGN` ([MS-RPCE §3.3.1.5.2.2]).
    ///
    /// [MS-RPCE §3.3.1.5.2.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    pub header_signing: bool,
    /// `auth_level` when a security provider is given (default packet privacy).
    pub auth_level: AuthLevel,
    /// `auth_context_id` of the security context.
    pub auth_context_id: u32,
    /// The first `call_id` (never 0); later ones count up.
    pub first_call_id: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            limits: Limits::client(),
            assoc_group_id: 0,
            drep: DataRep::LITTLE_ENDIAN,
            bind_time_features: None,
            conc_mpx: false,
            header_signing: true,
            auth_level: AuthLevel::PKT_PRIVACY,
            auth_context_id: 0,
            first_call_id: 1,
        }
    }
}

/// What became of one proposed presentation context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextOutcome {
    /// Accepted with this transfer syntax.
    Accepted(SyntaxId),
    /// The bind-time feature negotiation answer: the features the server supports.
    NegotiateAck(BindTimeFeatures),
    /// Rejected (user or provider rejection) for `reason`.
    Rejected {
        /// `result`.
        result: ContResult,
        /// `reason`.
        reason: ProviderReason,
    },
}

/// The outcome of one proposed context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextReport {
    /// `p_cont_id` as proposed.
    pub p_cont_id: u16,
    /// The abstract syntax proposed.
    pub abstract_syntax: SyntaxId,
    /// What the server answered.
    pub outcome: ContextOutcome,
}

/// What the association reports to its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The bind was accepted: the association is usable (the auth3 leg, if any, is queued).
    Bound {
        /// Negotiated size of the fragments this client sends.
        max_xmit_frag: u16,
        /// Largest fragment this client accepts.
        max_recv_frag: u16,
        /// The association group the server put the connection in.
        assoc_group_id: u32,
        /// `PFC_CONC_MPX` negotiated.
        conc_mpx: bool,
        /// Header signing negotiated.
        header_signing: bool,
    },
    /// The server refused the bind.
    BindRejected {
        /// `provider_reject_reason`.
        reason: RejectReason,
        /// The protocol versions the server supports.
        versions: Vec<Version>,
    },
    /// The results of a bind or alter_context, one per proposed context.
    ContextResults(Vec<ContextReport>),
    /// A call completed with its output stub.
    Response {
        /// `call_id`.
        call_id: u32,
        /// The whole output stub, as the fragments' stubs (slices of the received frames, not
        /// copies): [`Chain::to_bytes`] joins them.
        stub: Chain,
        /// The byte order of the stub (the server's).
        drep: DataRep,
    },
    /// A call failed with a fault.
    Fault {
        /// `call_id`.
        call_id: u32,
        /// `status`.
        status: FaultStatus,
        /// `PFC_DID_NOT_EXECUTE`: the server guarantees the call did not run.
        did_not_execute: bool,
    },
    /// A cancelled call released its slot (its response, if any, was dropped).
    Cancelled {
        /// `call_id`.
        call_id: u32,
    },
    /// The server sent a shutdown: finish the calls in flight and open no more.
    Shutdown,
}

/// The state of the association.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    /// Waiting for the answer to the bind of this call id.
    BindSent(u32),
    /// Waiting for the alter_context_resp carrying the next security token.
    AuthAlterSent(u32),
    Bound,
}

impl State {
    const fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::BindSent(_) => "binding",
            Self::AuthAlterSent(_) => "authenticating",
            Self::Bound => "bound",
        }
    }
}

/// A proposed or negotiated presentation context.
#[derive(Clone, Copy, Debug)]
struct Context {
    p_cont_id: u16,
    abstract_syntax: SyntaxId,
    accepted: bool,
}

#[derive(Debug)]
enum CallState {
    /// Request fragments not all sent.
    Sending,
    /// Request sent, no response fragment yet.
    Waiting,
    /// Response being reassembled.
    Receiving(Reassembly),
    /// Cancelled with co_cancel: whatever arrives is dropped.
    Cancelled,
}

/// The client end of one association, sans-IO ([C706 §12.6], [MS-RPCE §3.3.3]).
///
/// ```text
///            bind()                    bind_ack (+ auth3 queued)
///  Idle ───────────────► BindSent ───────────────────────────────► Bound ◄─┐
///                           │  bind_ack with Continue(token):              │ alter_context_resp
///                           │  alter_context queued ──► AuthAlterSent ─────┘
///                           │
///                           └─ bind_nak / fault ──► failed (BindRejected / AssociationFault)
///
///  Bound: call() ─► request fragments ─► response fragments ─► Event::Response
///                                      └► fault ─► Event::Fault
///         alter_context() ─► alter_context ─► alter_context_resp ─► Event::ContextResults
///         cancel() ─► co_cancel (request sent) | rest of the request sent | nothing
///  any state: a protocol error ─► failed, for good (later requests: AssociationFailed)
/// ```
///
/// The driver feeds whole frames (see [`frame_len`](crate::framing::frame_len), with
/// [`ClientAssociation::max_recv_frag`]) to [`handle_frame`](ClientAssociation::handle_frame),
/// writes what [`poll_transmit`](ClientAssociation::poll_transmit) gives, and reads
/// [`poll_event`](ClientAssociation::poll_event). Nothing here reads a clock: the association
/// has no timer of its own (idle and call timeouts belong to the driver, which cancels calls).
///
/// A call end to end, with a server association standing in for the network:
///
/// ```
/// use bytes::Bytes;
/// use dsbackup_proto::{
///     AuthLevel, ClientAssociation, ClientConfig, ClientEvent, Interface, ProtocolError,
///     ServerAssociation, ServerConfig, ServerEvent, SyntaxId, Uuid,
/// };
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ad_backup = SyntaxId::new(
///     Uuid::from_str_const("ecec0d70-a603-11d0-96b1-00a0c91ece30"),
///     1,
///     0,
/// );
/// let mut client = ClientAssociation::new(ClientConfig::default(), None)?;
/// let interface = Interface { syntax: ad_backup, opnums: 9, min_auth_level: AuthLevel::NONE };
/// let mut server = ServerAssociation::new(ServerConfig::new(vec![interface], 1), None)?;
///
/// // What a transport does: write every PDU poll_transmit gives; feed every whole frame read
/// // (split with frame_len(buf, max_recv_frag())) to handle_frame.
/// fn shuttle(c: &mut ClientAssociation, s: &mut ServerAssociation) -> Result<(), ProtocolError> {
///     while let Some(pdu) = c.poll_transmit() {
///         s.handle_frame(pdu.to_bytes())?;
///     }
///     while let Some(pdu) = s.poll_transmit() {
///         c.handle_frame(pdu.to_bytes())?;
///     }
///     Ok(())
/// }
///
/// let contexts = client.bind(&[ad_backup])?;
/// shuttle(&mut client, &mut server)?;
/// assert!(client.is_bound());
///
/// let call_id = client.call(contexts[0], 8, None, Bytes::from_static(b"ping"))?;
/// shuttle(&mut client, &mut server)?;
/// while let Some(event) = server.poll_event() {
///     if let ServerEvent::Request(request) = event {
///         server.respond(request.call_id, Bytes::from_static(b"pong"))?;
///     }
/// }
/// shuttle(&mut client, &mut server)?;
/// let response = std::iter::from_fn(|| client.poll_event()).find_map(|event| match event {
///     ClientEvent::Response { call_id: id, stub, .. } if id == call_id => Some(stub.to_bytes()),
///     _ => None,
/// });
/// assert_eq!(response, Some(Bytes::from_static(b"pong")));
/// # Ok(())
/// # }
/// ```
///
/// Fragments of different calls never interleave on the wire: a call's request fragments go out
/// contiguously, and control PDUs (alter_context, co_cancel, orphaned) only between calls. On
/// receive, fragments of two calls may interleave only when `PFC_CONC_MPX` was negotiated.
///
/// # Errors
/// [`handle_frame`](Self::handle_frame) fails with a [`ProtocolError`], the peer's doing, and
/// the association is then failed for good. Every request ([`bind`](Self::bind),
/// [`call`](Self::call), ...) fails with an [`ApiMisuse`], the caller's, and leaves the
/// association as it was; on a failed association that is [`ApiMisuse::AssociationFailed`],
/// whose source is the peer's error.
///
/// [C706 §12.6]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
/// [MS-RPCE §3.3.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
pub struct ClientAssociation {
    config: ClientConfig,
    state: Result<State, ProtocolError>,
    auth: Option<AuthContext>,
    contexts: Vec<Context>,
    /// The contexts proposed by the outstanding bind or alter_context.
    proposed: Vec<PresentationContext>,
    next_call_id: u32,
    next_p_cont_id: u16,
    /// Negotiated transmit size.
    max_xmit_frag: u16,
    /// Largest fragment accepted: ours, or the server's `max_xmit_frag` if larger.
    max_recv_frag: u16,
    conc_mpx: bool,
    header_signing: bool,
    assoc_group_id: u32,
    /// Outstanding pure alter_context (no security token), by call id.
    alter_sent: Option<u32>,
    calls: BTreeMap<u32, CallState>,
    /// Calls whose fragments are still to go out, in order.
    sending: VecDeque<Fragmenter>,
    /// Control PDUs, sent between calls.
    control: VecDeque<Bytes>,
    events: VecDeque<ClientEvent>,
    /// The call whose response is being reassembled (without CONC_MPX only one may be).
    receiving: Option<u32>,
}

impl core::fmt::Debug for ClientAssociation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientAssociation")
            .field("state", &self.state)
            .field("auth", &self.auth)
            .field("max_xmit_frag", &self.max_xmit_frag)
            .field("calls_in_flight", &self.calls.len())
            .finish_non_exhaustive()
    }
}

impl ClientAssociation {
    /// A new association; `security` (an initiator) makes it authenticated at
    /// `config.auth_level`.
    ///
    /// # Errors
    /// [`ApiMisuse::InvalidConfig`] for fragment sizes under 1432, or a security provider
    /// with an `auth_level` outside connect..=packet privacy.
    pub fn new(
        config: ClientConfig,
        security: Option<Box<dyn SecurityProvider>>,
    ) -> Result<Self, ApiMisuse> {
        config.limits.check()?;
        if security.is_some()
            && !(AuthLevel::CONNECT..=AuthLevel::PKT_PRIVACY).contains(&config.auth_level)
        {
            return Err(ApiMisuse::InvalidConfig {
                field: "auth_level",
                reason: "an authenticated association needs connect to packet privacy",
            });
        }
        let auth = security.map(|provider| AuthContext {
            auth_type: provider.auth_type(),
            provider,
            auth_level: config.auth_level,
            auth_context_id: config.auth_context_id,
        });
        Ok(Self {
            next_call_id: config.first_call_id.max(1),
            max_xmit_frag: config.limits.max_xmit_frag,
            max_recv_frag: config.limits.max_recv_frag,
            assoc_group_id: config.assoc_group_id,
            config,
            state: Ok(State::Idle),
            auth,
            contexts: Vec::new(),
            proposed: Vec::new(),
            next_p_cont_id: 0,
            conc_mpx: false,
            header_signing: false,
            alter_sent: None,
            calls: BTreeMap::new(),
            sending: VecDeque::new(),
            control: VecDeque::new(),
            events: VecDeque::new(),
            receiving: None,
        })
    }

    /// Queues a bind proposing one context per interface (transfer syntax NDR 2.0), and the
    /// bind-time feature negotiation context if configured. Returns the `p_cont_id` of each
    /// interface, in order.
    ///
    /// # Errors
    /// [`ApiMisuse::InvalidState`] unless the association is new;
    /// [`ApiMisuse::LimitExceeded`] for more contexts than the limit;
    /// [`ApiMisuse::Security`] when the security provider gives no first token.
    pub fn bind(&mut self, interfaces: &[SyntaxId]) -> Result<Vec<u16>, ApiMisuse> {
        let state = self.usable()?;
        if state != State::Idle {
            return Err(ApiMisuse::InvalidState {
                operation: "bind",
                state: state.name(),
            });
        }
        let (ids, proposed) = self.propose(interfaces, self.config.bind_time_features)?;
        let mut pdu = Pdu::new(
            self.allocate_call_id(),
            PduBody::Bind(Bind {
                max_xmit_frag: self.config.limits.max_xmit_frag,
                max_recv_frag: self.config.limits.max_recv_frag,
                assoc_group_id: self.config.assoc_group_id,
                p_context_elem: proposed.clone(),
            }),
        );
        pdu.drep = self.config.drep;
        if self.config.header_signing && self.auth.is_some() {
            pdu.pfc_flags |= PfcFlags::SUPPORT_HEADER_SIGN;
        }
        if self.config.conc_mpx {
            pdu.pfc_flags |= PfcFlags::CONC_MPX;
        }
        if let Some(auth) = &mut self.auth {
            let token = match auth.provider.step(None).map_err(ApiMisuse::Security)? {
                AuthStep::Continue(token) | AuthStep::Complete(Some(token)) => token,
                AuthStep::Complete(None) => Vec::new(),
            };
            pdu.auth_verifier = Some(auth.token_verifier(token));
            pdu.align_auth_pad();
        }
        let bytes = pdu.to_bytes().map_err(ApiMisuse::Encode)?;
        self.state = Ok(State::BindSent(pdu.call_id));
        self.proposed = proposed;
        self.control.push_back(bytes);
        Ok(ids)
    }

    /// Queues an alter_context proposing further interfaces on the bound association. Returns
    /// their `p_cont_id`s; [`ClientEvent::ContextResults`] reports the outcome.
    ///
    /// # Errors
    /// [`ApiMisuse::InvalidState`] unless bound with no other alter_context outstanding;
    /// [`ApiMisuse::LimitExceeded`] for more contexts than the limit.
    pub fn alter_context(&mut self, interfaces: &[SyntaxId]) -> Result<Vec<u16>, ApiMisuse> {
        let state = self.usable()?;
        if state != State::Bound || self.alter_sent.is_some() {
            return Err(ApiMisuse::InvalidState {
                operation: "alter the context",
                state: if self.alter_sent.is_some() {
                    "altering its context"
                } else {
                    state.name()
                },
            });
        }
        let (ids, proposed) = self.propose(interfaces, None)?;
        let call_id = self.allocate_call_id();
        let pdu = self.alter_context_pdu(call_id, proposed.clone());
        self.alter_sent = Some(call_id);
        self.proposed = proposed;
        self.control
            .push_back(pdu.to_bytes().map_err(ApiMisuse::Encode)?);
        Ok(ids)
    }

    /// Queues a call of `opnum` on context `p_cont_id` with the NDR-encoded input `stub`
    /// (in this client's byte order); returns its `call_id`.
    ///
    /// # Errors
    /// [`ApiMisuse::InvalidState`] unless bound; [`ApiMisuse::UnknownContext`] for a context
    /// that was never negotiated or was rejected; [`ApiMisuse::LimitExceeded`] when as many
    /// calls as the configured limit are in flight; [`ApiMisuse::AssociationFailed`] once the
    /// association has failed.
    pub fn call(
        &mut self,
        p_cont_id: u16,
        opnum: u16,
        object: Option<Uuid>,
        stub: impl Into<Chain>,
    ) -> Result<u32, ApiMisuse> {
        let state = self.usable()?;
        if !matches!(state, State::Bound) {
            return Err(ApiMisuse::InvalidState {
                operation: "call",
                state: state.name(),
            });
        }
        if !self
            .contexts
            .iter()
            .any(|context| context.p_cont_id == p_cont_id && context.accepted)
        {
            return Err(ApiMisuse::UnknownContext { p_cont_id });
        }
        let limit = self.config.limits.max_calls_in_flight;
        if self.calls.len() >= limit {
            return Err(ApiMisuse::LimitExceeded {
                what: "calls in flight",
                value: self.calls.len() + 1,
                limit,
            });
        }
        let call_id = self.allocate_call_id();
        let fragmenter = Fragmenter::new(
            call_id,
            StubKind::Request {
                p_cont_id,
                opnum,
                object,
            },
            self.config.drep,
            stub.into(),
            self.max_xmit_frag,
            self.auth.as_ref(),
        )?;
        self.sending.push_back(fragmenter);
        self.calls.insert(call_id, CallState::Sending);
        Ok(call_id)
    }

    /// Cancels a call: a co_cancel if its request went out whole, nothing if none of it did.
    /// A request that went out in part is sent to its end: Windows and Samba ignore an
    /// orphaned PDU and take the next call's first fragment for a protocol error on the
    /// unfinished one. Whatever the server sends for the call later is dropped;
    /// [`ClientEvent::Cancelled`] reports when its slot is free.
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownCallId`] for a call not in flight.
    pub fn cancel(&mut self, call_id: u32) -> Result<(), ApiMisuse> {
        self.usable()?;
        let Some(state) = self.calls.get_mut(&call_id) else {
            return Err(ApiMisuse::UnknownCallId { call_id });
        };
        match state {
            CallState::Sending => {
                let started = self
                    .sending
                    .iter()
                    .any(|fragmenter| fragmenter.call_id == call_id && fragmenter.in_progress());
                if started {
                    *state = CallState::Cancelled;
                } else {
                    self.calls.remove(&call_id);
                    self.stop_sending(call_id).map_err(ApiMisuse::Encode)?;
                    self.events.push_back(ClientEvent::Cancelled { call_id });
                }
            }
            CallState::Waiting | CallState::Receiving(_) => {
                // A response being reassembled keeps `receiving`: the rest of its fragments
                // still come contiguously, and are dropped.
                *state = CallState::Cancelled;
                let pdu = self
                    .control_pdu(call_id, PduBody::CoCancel(CoCancel))
                    .map_err(ApiMisuse::Encode)?;
                self.control.push_back(pdu);
            }
            CallState::Cancelled => {}
        }
        Ok(())
    }

    /// Feeds one whole received fragment: [`Bytes`], or a [`BytesMut`](bytes::BytesMut) cut
    /// from the receive buffer, which is unsealed (at packet privacy) where it lies, without a
    /// copy.
    ///
    /// # Errors
    /// Any [`ProtocolError`]: the bytes do not decode, the PDU is unexpected, a fragment is out
    /// of order or past a limit, a signature does not verify, or the bind was refused. The
    /// association is then failed for good.
    pub fn handle_frame(&mut self, frame: impl Received) -> Result<(), ProtocolError> {
        let state = self.state.clone()?;
        let result = self.dispatch(state, frame);
        if let Err(error) = &result {
            self.state = Err(error.clone());
            self.sending.clear();
            self.control.clear();
        }
        result
    }

    /// Feeds several whole received fragments, in the order received: as
    /// [`handle_frame`](Self::handle_frame) on each in turn, except that on an association
    /// protected at integrity or privacy the protected ones are verified (and unsealed)
    /// together, with one [`SecurityProvider::unwrap_batch`].
    /// A driver hands over what its receive buffer holds at once.
    ///
    /// # Errors
    /// As [`handle_frame`](Self::handle_frame): the fragments before the one that failed
    /// are handled (their events queued), those after it are not.
    pub fn handle_frames<R: Received>(
        &mut self,
        frames: impl IntoIterator<Item = R>,
    ) -> Result<(), ProtocolError> {
        self.state.clone()?;
        let result = self.dispatch_batch(frames);
        if let Err(error) = &result {
            self.state = Err(error.clone());
            self.sending.clear();
            self.control.clear();
        }
        result
    }

    /// The next PDU to write, if any, as a chain of segments to write in order.
    pub fn poll_transmit(&mut self) -> Option<Chain> {
        if self.state.is_err() {
            return None;
        }
        let busy = self.sending.front().is_some_and(Fragmenter::in_progress);
        if !busy && let Some(pdu) = self.control.pop_front() {
            return Some(Chain::from(pdu));
        }
        if matches!(self.state, Ok(State::BindSent(_) | State::AuthAlterSent(_))) {
            return None;
        }
        let fragmenter = self.sending.front_mut()?;
        let call_id = fragmenter.call_id;
        let (pdu, stub) = fragmenter.next_fragment()?;
        let done = fragmenter.is_done();
        if done {
            self.sending.pop_front();
            if let Some(state @ CallState::Sending) = self.calls.get_mut(&call_id) {
                *state = CallState::Waiting;
            }
        }
        match assoc::encode_protected(pdu, stub, self.auth.as_mut()) {
            Ok(frame) => Some(frame),
            Err(error) => {
                self.state = Err(error);
                None
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Whether the association is bound (bind accepted, any security handshake complete).
    pub fn is_bound(&self) -> bool {
        matches!(self.state, Ok(State::Bound))
    }

    /// The error that failed the association, if it failed.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.state.as_ref().err()
    }

    /// Largest fragment to accept from the server: the `max_frag` for
    /// [`frame_len`](crate::framing::frame_len). Once bound, the larger of the configured size
    /// and the server's `max_xmit_frag` (Samba never sends fragments under 2048 bytes,
    /// whatever the client announces).
    pub fn max_recv_frag(&self) -> u16 {
        self.max_recv_frag
    }

    /// Negotiated size of the fragments this client sends.
    pub fn max_xmit_frag(&self) -> u16 {
        self.max_xmit_frag
    }

    /// Calls in flight (queued, being sent, awaiting or receiving their response).
    pub fn calls_in_flight(&self) -> usize {
        self.calls.len()
    }
}

/// A received fragment of a batch, opened.
enum Batched<R> {
    /// A stub PDU (response, fault): decoded, or still to verify.
    Opened(Opened),
    /// Any other PDU, handled as [`ClientAssociation::handle_frame`] does.
    Other(R),
}

impl ClientAssociation {
    /// The association's state, unless it has failed: a request after that is misuse.
    fn usable(&self) -> Result<State, ApiMisuse> {
        self.state.clone().map_err(ApiMisuse::AssociationFailed)
    }

    fn allocate_call_id(&mut self) -> u32 {
        let call_id = self.next_call_id;
        // Call ids count up and skip 0 when they wrap.
        self.next_call_id = self.next_call_id.checked_add(1).unwrap_or(1);
        call_id
    }

    /// An alter_context proposing `p_context_elem` on the association's group.
    fn alter_context_pdu(&self, call_id: u32, p_context_elem: Vec<PresentationContext>) -> Pdu {
        let mut pdu = Pdu::new(
            call_id,
            PduBody::AlterContext(AlterContext {
                max_xmit_frag: self.config.limits.max_xmit_frag,
                max_recv_frag: self.config.limits.max_recv_frag,
                assoc_group_id: self.assoc_group_id,
                p_context_elem,
            }),
        );
        pdu.drep = self.config.drep;
        pdu
    }

    fn control_pdu(&self, call_id: u32, body: PduBody) -> Result<Bytes, EncodeError> {
        let mut pdu = Pdu::new(call_id, body);
        pdu.drep = self.config.drep;
        pdu.to_bytes()
    }

    /// Sends no more fragments of `call_id`; if part of it went out, queues an orphaned, so
    /// that the server discards the fragments received ([C706 §12.6.4.8]). Returns whether it
    /// did.
    fn stop_sending(&mut self, call_id: u32) -> Result<bool, EncodeError> {
        let started = self
            .sending
            .iter()
            .position(|fragmenter| fragmenter.call_id == call_id)
            .and_then(|index| self.sending.remove(index))
            .is_some_and(|fragmenter| fragmenter.in_progress());
        if started {
            // INVARIANT: a started call is at the head of `sending`, so the orphaned PDU is the
            // next thing on the wire after its last fragment.
            let pdu = self.control_pdu(call_id, PduBody::Orphaned(Orphaned))?;
            self.control.push_front(pdu);
        }
        Ok(started)
    }

    /// Allocates `p_cont_id`s for `interfaces` (plus a bind-time feature negotiation context).
    fn propose(
        &mut self,
        interfaces: &[SyntaxId],
        features: Option<BindTimeFeatures>,
    ) -> Result<(Vec<u16>, Vec<PresentationContext>), ApiMisuse> {
        let limit = self.config.limits.max_contexts;
        let wanted = self.contexts.len() + interfaces.len();
        if wanted > limit || interfaces.is_empty() {
            return Err(ApiMisuse::LimitExceeded {
                what: "presentation contexts",
                value: wanted,
                limit,
            });
        }
        let mut ids = Vec::with_capacity(interfaces.len());
        let mut proposed = Vec::with_capacity(interfaces.len() + 1);
        for &abstract_syntax in interfaces {
            let p_cont_id = self.next_p_cont_id;
            self.next_p_cont_id = self.next_p_cont_id.wrapping_add(1);
            ids.push(p_cont_id);
            proposed.push(PresentationContext {
                p_cont_id,
                abstract_syntax,
                transfer_syntaxes: vec![SyntaxId::NDR],
            });
        }
        if let (Some(features), Some(&first)) = (features, interfaces.first()) {
            // [MS-RPCE §3.3.1.5.3]: an extra element with the same abstract syntax whose only
            // transfer syntax carries the feature bitmask.
            let p_cont_id = self.next_p_cont_id;
            self.next_p_cont_id = self.next_p_cont_id.wrapping_add(1);
            proposed.push(PresentationContext {
                p_cont_id,
                abstract_syntax: first,
                transfer_syntaxes: vec![SyntaxId::bind_time_feature_negotiation(features)],
            });
        }
        Ok((ids, proposed))
    }

    fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits::default().with_max_frag_length(self.max_recv_frag)
    }

    fn dispatch(&mut self, state: State, frame: impl Received) -> Result<(), ProtocolError> {
        let header = CommonHeader::decode(frame.as_ref())?;
        let limits = self.decode_limits();
        let stub_pdu = matches!(header.ptype, PacketType::RESPONSE | PacketType::FAULT);
        let pdu = if stub_pdu && state == State::Bound {
            assoc::decode_protected(frame, self.auth.as_mut(), &limits)?
        } else {
            Pdu::decode_with(frame.freeze(), &limits)?
        };
        self.dispatch_pdu(state, pdu)
    }

    /// [`handle_frames`](Self::handle_frames) up to the failure, if any.
    fn dispatch_batch<R: Received>(
        &mut self,
        frames: impl IntoIterator<Item = R>,
    ) -> Result<(), ProtocolError> {
        let mut frames = frames.into_iter();
        let protection = self.auth.as_ref().map(AuthContext::protection);
        let batched = self.state == Ok(State::Bound)
            && matches!(
                protection,
                Some(Protection::Integrity | Protection::Privacy)
            );
        if !batched {
            for frame in frames {
                let state = self.state.clone()?;
                self.dispatch(state, frame)?;
            }
            return Ok(());
        }
        // Bound and protected: every stub PDU opened (the verifier's fields checked), the
        // protected ones verified together, then each handled in the order received.
        let limits = self.decode_limits();
        let mut items = Vec::with_capacity(frames.size_hint().0);
        let mut failure = None;
        for frame in frames.by_ref() {
            let stub_pdu = match CommonHeader::decode(frame.as_ref()) {
                Ok(header) => matches!(header.ptype, PacketType::RESPONSE | PacketType::FAULT),
                Err(error) => {
                    failure = Some(error.into());
                    break;
                }
            };
            if !stub_pdu {
                items.push(Batched::Other(frame));
                continue;
            }
            match assoc::open_protected(frame, self.auth.as_ref(), &limits) {
                Ok(opened) => items.push(Batched::Opened(opened)),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let mut sealed: Vec<_> = items
            .iter_mut()
            .filter_map(|item| match item {
                Batched::Opened(Opened::Sealed(sealed)) => Some(sealed.protected()),
                _ => None,
            })
            .collect();
        let mut verified = sealed.len();
        if let (Some(auth), Some(protection)) = (self.auth.as_mut(), protection)
            && let Err(batch) = auth.provider.unwrap_batch(protection, &mut sealed)
        {
            verified = batch.index;
            // Before any failure to open a later frame.
            failure = Some(batch.error.into());
        }
        drop(sealed);
        for item in items {
            match item {
                Batched::Opened(Opened::Pdu(pdu)) => self.dispatch_pdu(State::Bound, pdu)?,
                Batched::Opened(Opened::Sealed(sealed)) => {
                    let Some(left) = verified.checked_sub(1) else {
                        break;
                    };
                    verified = left;
                    let pdu = sealed.decode(&limits)?;
                    self.dispatch_pdu(State::Bound, pdu)?;
                }
                Batched::Other(frame) => {
                    let state = self.state.clone()?;
                    self.dispatch(state, frame)?;
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Acts on one decoded (and verified) PDU received in `state`.
    fn dispatch_pdu(&mut self, state: State, pdu: Pdu) -> Result<(), ProtocolError> {
        match (state, pdu.body) {
            (State::BindSent(call_id), PduBody::BindAck(ack)) if pdu.call_id == call_id => {
                self.negotiate(&ack, pdu.pfc_flags)?;
                self.record_results(&ack.p_result_list)?;
                self.bind_leg(
                    call_id,
                    pdu.auth_verifier.map(|verifier| verifier.auth_value),
                )
            }
            (State::BindSent(call_id), PduBody::BindNak(nak)) if pdu.call_id == call_id => {
                self.events.push_back(ClientEvent::BindRejected {
                    reason: nak.provider_reject_reason,
                    versions: nak.versions,
                });
                Err(ProtocolError::BindRejected(nak.provider_reject_reason))
            }
            (State::AuthAlterSent(call_id), PduBody::AlterContextResp(_))
                if pdu.call_id == call_id =>
            {
                self.bind_leg(
                    call_id,
                    pdu.auth_verifier.map(|verifier| verifier.auth_value),
                )
            }
            (State::BindSent(call_id) | State::AuthAlterSent(call_id), PduBody::Fault(fault))
                if pdu.call_id == call_id =>
            {
                Err(ProtocolError::AssociationFault(fault.status))
            }
            (State::Bound, PduBody::AlterContextResp(resp))
                if self.alter_sent == Some(pdu.call_id) =>
            {
                self.alter_sent = None;
                self.record_results(&resp.p_result_list)
            }
            (State::Bound, PduBody::Fault(fault)) if self.alter_sent == Some(pdu.call_id) => {
                Err(ProtocolError::AssociationFault(fault.status))
            }
            (State::Bound, PduBody::Response(response)) => {
                self.handle_response(pdu.call_id, pdu.pfc_flags, pdu.drep, response)
            }
            (State::Bound, PduBody::Fault(fault)) => {
                self.handle_fault(pdu.call_id, pdu.pfc_flags, &fault)
            }
            (_, PduBody::Shutdown(_)) => {
                self.events.push_back(ClientEvent::Shutdown);
                Ok(())
            }
            (
                State::BindSent(_) | State::AuthAlterSent(_),
                PduBody::BindAck(_) | PduBody::BindNak(_) | PduBody::AlterContextResp(_),
            ) => Err(ProtocolError::UnknownCallId {
                call_id: pdu.call_id,
            }),
            (state, body) => Err(ProtocolError::UnexpectedPdu {
                expected: match state {
                    State::Idle => &[],
                    State::BindSent(_) => &[PacketType::BIND_ACK, PacketType::BIND_NAK],
                    State::AuthAlterSent(_) => &[PacketType::ALTER_CONTEXT_RESP],
                    State::Bound => &[
                        PacketType::RESPONSE,
                        PacketType::FAULT,
                        PacketType::ALTER_CONTEXT_RESP,
                        PacketType::SHUTDOWN,
                    ],
                },
                got: body.ptype(),
            }),
        }
    }

    /// Fragment sizes, group and flags from a bind_ack.
    fn negotiate(&mut self, ack: &BindAck, flags: PfcFlags) -> Result<(), ProtocolError> {
        if ack.max_recv_frag < MIN_FRAG_SIZE {
            return Err(ProtocolError::Negotiation {
                field: "max_recv_frag",
                reason: "under the 1432 bytes every peer must accept",
            });
        }
        // The negotiated transmit size is the smaller of ours and what the server receives.
        self.max_xmit_frag = self.config.limits.max_xmit_frag.min(ack.max_recv_frag);
        // C706 has the server send no more than the client's max_recv_frag, but Samba floors
        // its size at 2048 bytes: accept what the server announced (at most 65535 anyway).
        self.max_recv_frag = self.config.limits.max_recv_frag.max(ack.max_xmit_frag);
        let assoc_group_id = ack.assoc_group_id;
        self.assoc_group_id = assoc_group_id;
        self.conc_mpx = self.config.conc_mpx && flags.contains(PfcFlags::CONC_MPX);
        // [MS-RPCE §3.3.1.5.2.2]: header signing is on when both set PFC_SUPPORT_HEADER_SIGN.
        self.header_signing = self.config.header_signing
            && self.auth.is_some()
            && flags.contains(PfcFlags::SUPPORT_HEADER_SIGN);
        if let Some(auth) = &mut self.auth {
            auth.provider.header_signing(self.header_signing);
        }
        Ok(())
    }

    /// Records the results of the outstanding bind or alter_context.
    fn record_results(&mut self, results: &[ContextResult]) -> Result<(), ProtocolError> {
        let proposed = core::mem::take(&mut self.proposed);
        if results.len() != proposed.len() {
            return Err(ProtocolError::Negotiation {
                field: "n_results",
                reason: "not one result per proposed context",
            });
        }
        let mut reports = Vec::with_capacity(results.len());
        for (context, result) in proposed.iter().zip(results) {
            let outcome = match result.result {
                ContResult::ACCEPTANCE => {
                    if !context.transfer_syntaxes.contains(&result.transfer_syntax) {
                        return Err(ProtocolError::Negotiation {
                            field: "transfer_syntax",
                            reason: "the accepted syntax was not proposed",
                        });
                    }
                    ContextOutcome::Accepted(result.transfer_syntax)
                }
                ContResult::NEGOTIATE_ACK => {
                    ContextOutcome::NegotiateAck(BindTimeFeatures::from_bits_retain(result.reason))
                }
                other => ContextOutcome::Rejected {
                    result: other,
                    reason: result.provider_reason(),
                },
            };
            let is_btfn = context
                .transfer_syntaxes
                .iter()
                .any(|syntax| syntax.bind_time_features().is_some());
            if !is_btfn {
                let accepted = matches!(outcome, ContextOutcome::Accepted(_));
                match self
                    .contexts
                    .iter_mut()
                    .find(|known| known.p_cont_id == context.p_cont_id)
                {
                    Some(known) => known.accepted |= accepted,
                    None => self.contexts.push(Context {
                        p_cont_id: context.p_cont_id,
                        abstract_syntax: context.abstract_syntax,
                        accepted,
                    }),
                }
            }
            reports.push(ContextReport {
                p_cont_id: context.p_cont_id,
                abstract_syntax: context.abstract_syntax,
                outcome,
            });
        }
        self.events.push_back(ClientEvent::ContextResults(reports));
        Ok(())
    }

    /// Runs one leg of the security handshake with the server's token, if any; `leg_call_id` is
    /// the call id of the bind or alter_context answered.
    fn bind_leg(
        &mut self,
        leg_call_id: u32,
        server_token: Option<Bytes>,
    ) -> Result<(), ProtocolError> {
        let Some(auth) = &mut self.auth else {
            return self.bound();
        };
        let Some(token) = server_token else {
            return Err(ProtocolError::AuthMismatch {
                field: "auth_length",
            });
        };
        match auth.provider.step(Some(&token))? {
            AuthStep::Complete(None) => self.bound(),
            AuthStep::Complete(Some(token)) => {
                // The third leg: rpc_auth_3 ([MS-RPCE §3.3.1.5.2.1]) on the call id of the leg
                // it answers, as Windows and impacket send it; nothing answers it.
                let mut pdu = Pdu::new(leg_call_id, PduBody::Auth3(Auth3::default()));
                pdu.drep = self.config.drep;
                pdu.auth_verifier = Some(auth.token_verifier(token));
                pdu.align_auth_pad();
                self.control
                    .push_back(pdu.to_bytes().map_err(ProtocolError::Encode)?);
                self.bound()
            }
            AuthStep::Continue(token) => {
                // Another leg: alter_context with the same contexts ([MS-RPCE §3.3.1.5.2.1]).
                let verifier = auth.token_verifier(token);
                let call_id = self.allocate_call_id();
                let contexts = self
                    .contexts
                    .iter()
                    .map(|context| PresentationContext {
                        p_cont_id: context.p_cont_id,
                        abstract_syntax: context.abstract_syntax,
                        transfer_syntaxes: vec![SyntaxId::NDR],
                    })
                    .collect();
                let mut pdu = self.alter_context_pdu(call_id, contexts);
                pdu.auth_verifier = Some(verifier);
                pdu.align_auth_pad();
                self.control
                    .push_back(pdu.to_bytes().map_err(ProtocolError::Encode)?);
                self.state = Ok(State::AuthAlterSent(call_id));
                Ok(())
            }
        }
    }

    fn bound(&mut self) -> Result<(), ProtocolError> {
        if self.state != Ok(State::Bound) {
            self.state = Ok(State::Bound);
            self.events.push_back(ClientEvent::Bound {
                max_xmit_frag: self.max_xmit_frag,
                max_recv_frag: self.max_recv_frag,
                assoc_group_id: self.assoc_group_id,
                conc_mpx: self.conc_mpx,
                header_signing: self.header_signing,
            });
        }
        Ok(())
    }

    /// Checks the no-interleaving rule for a fragment of `call_id`.
    fn check_interleave(&self, call_id: u32) -> Result<(), ProtocolError> {
        match self.receiving {
            Some(in_progress) if in_progress != call_id && !self.conc_mpx => {
                Err(ProtocolError::InterleavedCalls {
                    call_id,
                    in_progress,
                })
            }
            _ => Ok(()),
        }
    }

    fn handle_response(
        &mut self,
        call_id: u32,
        flags: PfcFlags,
        drep: DataRep,
        response: Response,
    ) -> Result<(), ProtocolError> {
        self.check_interleave(call_id)?;
        let first = flags.contains(PfcFlags::FIRST_FRAG);
        let last = flags.contains(PfcFlags::LAST_FRAG);
        let Some(state) = self.calls.get_mut(&call_id) else {
            return Err(ProtocolError::UnknownCallId { call_id });
        };
        let limits = &self.config.limits;
        match state {
            CallState::Sending => {
                return Err(ProtocolError::FragmentOutOfOrder {
                    call_id,
                    reason: "a response before the request was sent",
                });
            }
            CallState::Waiting if !first => {
                return Err(ProtocolError::FragmentOutOfOrder {
                    call_id,
                    reason: "a middle fragment without a first one",
                });
            }
            CallState::Waiting if last => {
                // One fragment: the stub is a slice of the frame, no copy.
                self.calls.remove(&call_id);
                self.events.push_back(ClientEvent::Response {
                    call_id,
                    stub: Chain::from(response.stub),
                    drep,
                });
                return Ok(());
            }
            CallState::Waiting => {
                *state = CallState::Receiving(Reassembly::start(drep, response.stub, limits)?);
            }
            CallState::Receiving(_) if first => {
                return Err(ProtocolError::FragmentOutOfOrder {
                    call_id,
                    reason: "a second first fragment",
                });
            }
            CallState::Receiving(reassembly) => {
                if reassembly.drep != drep {
                    return Err(ProtocolError::FragmentOutOfOrder {
                        call_id,
                        reason: "packed_drep changed between fragments",
                    });
                }
                reassembly.push(response.stub, limits)?;
            }
            CallState::Cancelled => {
                if last {
                    self.finish_cancelled(call_id);
                } else {
                    self.receiving = Some(call_id);
                }
                return Ok(());
            }
        }
        if last {
            self.receiving = None;
            if let Some(CallState::Receiving(reassembly)) = self.calls.remove(&call_id) {
                self.events.push_back(ClientEvent::Response {
                    call_id,
                    drep: reassembly.drep,
                    stub: reassembly.finish(),
                });
            }
        } else {
            self.receiving = Some(call_id);
        }
        Ok(())
    }

    fn finish_cancelled(&mut self, call_id: u32) {
        self.calls.remove(&call_id);
        if self.receiving == Some(call_id) {
            self.receiving = None;
        }
        self.events.push_back(ClientEvent::Cancelled { call_id });
    }

    fn handle_fault(
        &mut self,
        call_id: u32,
        flags: PfcFlags,
        fault: &Fault,
    ) -> Result<(), ProtocolError> {
        self.check_interleave(call_id)?;
        let Some(state) = self.calls.remove(&call_id) else {
            return Err(ProtocolError::UnknownCallId { call_id });
        };
        if self.receiving == Some(call_id) {
            self.receiving = None;
        }
        if matches!(state, CallState::Sending) {
            // The server may refuse a call before it is whole: send no more of it.
            self.stop_sending(call_id).map_err(ProtocolError::Encode)?;
        }
        if matches!(state, CallState::Cancelled) {
            self.events.push_back(ClientEvent::Cancelled { call_id });
        } else {
            self.events.push_back(ClientEvent::Fault {
                call_id,
                status: fault.status,
                did_not_execute: flags.contains(PfcFlags::DID_NOT_EXECUTE),
            });
        }
        Ok(())
    }
}
