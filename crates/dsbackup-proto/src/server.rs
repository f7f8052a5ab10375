//! The server side of a connection-oriented association ([`ServerAssociation`]).

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::assoc::{self, AuthContext, Fragmenter, Limits, MIN_FRAG_SIZE, Reassembly, StubKind};
use crate::chain::Chain;
use crate::drep::DataRep;
use crate::error::{ApiMisuse, DecodeError, EncodeError, ProtocolError};
use crate::header::{CommonHeader, PacketType, PfcFlags};
use crate::pdu::{
    AlterContextResp, AuthVerifier, Bind, BindAck, BindNak, ContextResult, DecodeLimits, Fault,
    FaultStatus, Pdu, PduBody, PortAny, PresentationContext, ProviderReason, RejectReason, Request,
    Shutdown,
};
use crate::security::{AuthLevel, AuthStep, AuthType, Protection, SecurityError, SecurityProvider};
use crate::syntax::{BindTimeFeatures, SyntaxId};
use crate::trailer;
use crate::uuid::Uuid;

/// An interface the server serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Its abstract syntax: UUID and version. A client proposing the same major version and a
    /// minor version up to this one is accepted.
    pub syntax: SyntaxId,
    /// Number of operations: opnums `0..opnums` exist.
    pub opnums: u16,
    /// The lowest auth level a call must come at (`AuthLevel::NONE` for anonymous calls).
    pub min_auth_level: AuthLevel,
}

/// Makes an acceptor security provider for an `auth_type` a client asks for, `None` when the
/// type is not supported.
pub type SecurityFactory = Box<dyn FnMut(AuthType) -> Option<Box<dyn SecurityProvider>> + Send>;

/// How a server association negotiates.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The interfaces served; [`ServerEvent::Request`] names them by index.
    pub interfaces: Vec<Interface>,
    /// Fragment sizes and reassembly bounds.
    pub limits: Limits,
    /// The association group this connection is in (allocated by the caller): the one the
    /// bind asks to join when it may join it, else a new one. A bind naming a group other than
    /// this one is refused with a bind_nak (the group does not exist, or is not the client's).
    pub assoc_group_id: u32,
    /// Byte order of every PDU and stub this server sends.
    pub drep: DataRep,
    /// `sec_addr` of the bind_ack (the listening port, as text).
    pub secondary_address: PortAny,
    /// Grant `PFC_CONC_MPX` when a client asks.
    pub conc_mpx: bool,
    /// Grant header signing when a client asks ([MS-RPCE §3.3.1.5.2.2]).
    ///
    /// [MS-RPCE §3.3.1.5.2.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    pub header_signing: bool,
    /// Bind-time features answered in a `negotiate_ack` ([MS-RPCE §3.3.1.5.3]).
    ///
    /// [MS-RPCE §3.3.1.5.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    pub bind_time_features: BindTimeFeatures,
}

impl ServerConfig {
    /// A configuration serving `interfaces` with the default limits, little-endian, in
    /// association group `assoc_group_id`.
    pub fn new(interfaces: Vec<Interface>, assoc_group_id: u32) -> Self {
        Self {
            interfaces,
            limits: Limits::server(),
            assoc_group_id,
            drep: DataRep::LITTLE_ENDIAN,
            secondary_address: PortAny::new("135"),
            conc_mpx: true,
            header_signing: true,
            bind_time_features: BindTimeFeatures::KEEP_CONNECTION_ON_ORPHAN,
        }
    }
}

/// A request to execute: one whole call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerRequest {
    /// `call_id`: answer with [`ServerAssociation::respond`] or [`ServerAssociation::fault`].
    pub call_id: u32,
    /// `p_cont_id`.
    pub p_cont_id: u16,
    /// Index of the interface in [`ServerConfig::interfaces`].
    pub interface: usize,
    /// `opnum`, below the interface's count.
    pub opnum: u16,
    /// `object`, if the client sent one.
    pub object: Option<Uuid>,
    /// The whole input stub.
    pub stub: Bytes,
    /// The byte order of the stub (the client's).
    pub drep: DataRep,
    /// The association's auth level (`AuthLevel::NONE` without authentication).
    pub auth_level: AuthLevel,
}

/// What the association reports to its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A bind was accepted (the bind_ack is queued).
    Bound {
        /// The association group.
        assoc_group_id: u32,
        /// The group the client asked to join (0 for a new one).
        requested_assoc_group_id: u32,
        /// Negotiated size of the fragments the server sends.
        max_xmit_frag: u16,
        /// Largest fragment the server accepts.
        max_recv_frag: u16,
    },
    /// The security handshake completed at this type and level.
    Authenticated {
        /// `auth_type`.
        auth_type: AuthType,
        /// `auth_level`, bound to the association from now on.
        auth_level: AuthLevel,
    },
    /// A call to execute.
    Request(ServerRequest),
    /// The client sent a co_cancel for a call (answer it as usual, or with
    /// `nca_s_fault_cancel`).
    Cancelled {
        /// `call_id`.
        call_id: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitingBind,
    Bound,
}

/// A negotiated presentation context.
#[derive(Clone, Copy, Debug)]
struct Context {
    p_cont_id: u16,
    abstract_syntax: SyntaxId,
    interface: usize,
}

/// A request being reassembled.
#[derive(Debug)]
struct Incoming {
    p_cont_id: u16,
    opnum: u16,
    object: Option<Uuid>,
    /// The interface, or the fault the call gets once whole.
    verdict: Result<usize, FaultStatus>,
    /// The stub so far (empty and counting fragments only for a refused call).
    reassembly: Reassembly,
}

/// What the server sends back when it refuses a PDU.
#[derive(Clone, Copy, Debug)]
enum Answer {
    BindNak(u32, RejectReason),
    Fault(u32, FaultStatus),
    /// A fault without `PFC_DID_NOT_EXECUTE`, naming a context: Samba's (and Windows') answer
    /// to fragments out of order, which it gives on the call the fragments belong to.
    FaultNoGuarantee(u32, u16, FaultStatus),
    /// No answer: the connection is closed (a PDU whose body does not decode, as Samba).
    Close,
}

/// A refusal: the error that fails the association and the PDU answering it.
#[derive(Debug)]
struct Refusal {
    error: ProtocolError,
    answer: Answer,
}

impl Refusal {
    fn proto(call_id: u32, error: impl Into<ProtocolError>) -> Self {
        Self {
            error: error.into(),
            answer: Answer::Fault(call_id, FaultStatus::PROTO_ERROR),
        }
    }

    fn denied(call_id: u32, error: impl Into<ProtocolError>) -> Self {
        Self {
            error: error.into(),
            answer: Answer::Fault(call_id, FaultStatus::ACCESS_DENIED),
        }
    }

    /// A protocol error about a call's fragments: the fault names the call and its context and
    /// does not set `PFC_DID_NOT_EXECUTE`, as Samba answers.
    fn fragments(call_id: u32, p_cont_id: u16, error: impl Into<ProtocolError>) -> Self {
        Self {
            error: error.into(),
            answer: Answer::FaultNoGuarantee(call_id, p_cont_id, FaultStatus::PROTO_ERROR),
        }
    }

    fn nak(call_id: u32, reason: RejectReason, error: impl Into<ProtocolError>) -> Self {
        Self {
            error: error.into(),
            answer: Answer::BindNak(call_id, reason),
        }
    }
}

/// The server end of one association, sans-IO ([C706 §12.6], [MS-RPCE §3.3.2]).
///
/// ```text
///                 bind ─► bind_ack                  auth3 / alter_context legs
///  AwaitingBind ────────────────────► Bound ──────────────────────────► Bound, authenticated
///       │        (first security leg)   (handshake in progress)
///       └─ bind refused ─► bind_nak ─► failed
///
///  Bound: request fragments ─► Event::Request ─► respond() | fault() ─► responses | fault
///         alter_context ─► alter_context_resp (new contexts; a leg while authenticating)
///         co_cancel ─► Event::Cancelled; orphaned ─► ignored (as Windows and Samba)
///         second bind ─► bind_nak; alter_context re-authenticating ─► fault; both fail it
///  any:   a protocol error ─► fault (nca_s_proto_error or access denied), failed for good
/// ```
///
/// How the server answers what it refuses (the choices of Windows as Samba's
/// `python/samba/tests/dcerpc/raw_protocol.py` records them, and Samba's `dcesrv_core.c`):
///
/// Refused, the association goes on (faults with `PFC_DID_NOT_EXECUTE`):
/// - a request on a context not negotiated: fault `nca_s_unk_if`;
/// - an opnum at or past the interface's count: fault `nca_s_op_rng_error`;
/// - an auth level under the interface's minimum: fault access denied (5);
/// - more calls in flight than the limit: fault `nca_s_server_too_busy`.
///
/// Refused, the association fails:
/// - a bind of another version (rpc_vers other than 5, minor above 1) or data representation
///   (EBCDIC characters, floats other than IEEE), or any PDU but a bind first: bind_nak
///   `protocol_version_not_supported` naming 5.0, as Samba and Windows answer;
/// - a bind with too many contexts, an unknown auth type, or a context without transfer
///   syntaxes: bind_nak (`local_limit_exceeded`, `authentication_type_not_recognized`,
///   `reason_not_specified`). Small or odd fragment sizes are not refused: both directions get
///   the client's smaller size raised to 2048, lowered to the server's limit and rounded down
///   to a multiple of 8, as Windows and Samba negotiate;
/// - a second bind on a bound association: bind_nak `reason_not_specified`, as Samba;
/// - a bind whose credentials the security provider refuses at once (a Kerberos ticket for
///   another service, expired, skewed or replayed): bind_nak `invalid_checksum`, the reason
///   Samba gives a bind its security mechanism refuses;
/// - an alter_context carrying a verifier once authenticated (changing the level or type):
///   fault access denied, as Samba's `dcesrv_auth_alter`;
/// - a fragment whose signature fails, a request after a failed auth3: fault access denied;
/// - a request stub past the budget or with too many fragments: fault access denied (Samba's
///   rule for its 4 MiB request limit);
/// - a bind naming an association group that does not exist: bind_nak `reason_not_specified`;
/// - fragments out of order (a middle fragment without a first, another call's fragment while a
///   request is being received, with or without `PFC_CONC_MPX`): fault `nca_s_proto_error`
///   without `PFC_DID_NOT_EXECUTE`, on the unfinished call (on the new one with
///   `PFC_CONC_MPX`), as Samba;
/// - a PDU that does not decode or is unexpected: fault `nca_s_proto_error` (with
///   `PFC_DID_NOT_EXECUTE`); a co_cancel or orphaned is never refused (Windows and Samba ignore
///   them whatever their header says).
///
/// A request on an unknown context faults naming context 0, as Windows and Samba do. Every
/// difference from Samba's answers that remains is listed in docs/CONFORMANCE.md.
///
/// After a failure [`poll_transmit`](ServerAssociation::poll_transmit) still yields the
/// answer (bind_nak or fault): send it, then close the connection.
///
/// [C706 §12.6]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
/// [MS-RPCE §3.3.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
pub struct ServerAssociation {
    config: ServerConfig,
    factory: Option<SecurityFactory>,
    state: Result<State, ProtocolError>,
    auth: Option<AuthContext>,
    /// An auth3 failed: every request gets access denied ([MS-RPCE §3.3.3.4.3] as Samba).
    auth_invalid: bool,
    /// The client's bind or alter_context set `PFC_SUPPORT_HEADER_SIGN`.
    client_header_signing: bool,
    contexts: Vec<Context>,
    max_xmit_frag: u16,
    max_recv_frag: u16,
    conc_mpx: bool,
    incoming: BTreeMap<u32, Incoming>,
    /// The call being reassembled, for the no-interleaving rule.
    receiving: Option<u32>,
    /// Calls handed to the driver and not answered yet: call id to `p_cont_id`.
    dispatched: BTreeMap<u32, u16>,
    sending: VecDeque<Fragmenter>,
    control: VecDeque<Bytes>,
    events: VecDeque<ServerEvent>,
    /// Bytes handed out by `poll_transmit` and not reported written yet.
    unwritten: usize,
    /// Bytes handed out, and reported written, since the association began.
    emitted: u64,
    written: u64,
    /// Answered calls whose last fragment is handed out but not written: where each ends in
    /// the stream of bytes handed out.
    answered: VecDeque<u64>,
    /// Response fragments cut and protected together, not handed out yet; with whether each
    /// is its call's last.
    ready: VecDeque<(Chain, bool)>,
    /// Request stub bytes the association may hold in reassembly (the driver's share of a
    /// budget across associations).
    reassembly_allowance: usize,
}

impl core::fmt::Debug for ServerAssociation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerAssociation")
            .field("state", &self.state)
            .field("auth", &self.auth)
            .field("contexts", &self.contexts)
            .field("max_xmit_frag", &self.max_xmit_frag)
            .field("max_recv_frag", &self.max_recv_frag)
            .field("dispatched", &self.dispatched.len())
            .finish_non_exhaustive()
    }
}

impl ServerAssociation {
    /// A fresh association awaiting a bind; `factory` makes acceptors for the auth types
    /// supported (none: every authenticated bind is refused).
    ///
    /// # Errors
    /// [`ApiMisuse::InvalidConfig`] for fragment sizes under 1432.
    pub fn new(config: ServerConfig, factory: Option<SecurityFactory>) -> Result<Self, ApiMisuse> {
        config.limits.check()?;
        Ok(Self {
            max_xmit_frag: config.limits.max_xmit_frag,
            max_recv_frag: config.limits.max_recv_frag,
            config,
            factory,
            state: Ok(State::AwaitingBind),
            auth: None,
            auth_invalid: false,
            client_header_signing: false,
            contexts: Vec::new(),
            conc_mpx: false,
            incoming: BTreeMap::new(),
            receiving: None,
            dispatched: BTreeMap::new(),
            sending: VecDeque::new(),
            control: VecDeque::new(),
            events: VecDeque::new(),
            unwritten: 0,
            emitted: 0,
            written: 0,
            answered: VecDeque::new(),
            ready: VecDeque::new(),
            reassembly_allowance: usize::MAX,
        })
    }

    /// Feeds one whole received fragment.
    ///
    /// # Errors
    /// The [`ProtocolError`] that failed the association (see the table in the type's docs);
    /// its answer is still queued for [`poll_transmit`](Self::poll_transmit).
    pub fn handle_frame(&mut self, frame: Bytes) -> Result<(), ProtocolError> {
        let state = self.state.clone()?;
        match self.dispatch(state, frame) {
            Ok(()) => Ok(()),
            Err(Refusal { error, answer }) => {
                self.sending.clear();
                self.ready.clear();
                self.control.clear();
                self.incoming.clear();
                self.dispatched.clear();
                let pdu = match answer {
                    Answer::BindNak(call_id, reason) => self
                        .control_pdu(call_id, PduBody::BindNak(BindNak::new(reason)))
                        .map(Some),
                    Answer::Fault(call_id, status) => self.fault_pdu(call_id, 0, status).map(Some),
                    Answer::FaultNoGuarantee(call_id, p_cont_id, status) => self
                        .fault_pdu_with(call_id, p_cont_id, status, false)
                        .map(Some),
                    Answer::Close => Ok(None),
                };
                if let Ok(Some(pdu)) = pdu {
                    self.control.push_back(pdu);
                }
                self.state = Err(error.clone());
                Err(error)
            }
        }
    }

    /// Answers a dispatched call with its NDR-encoded output `stub` (in this server's byte
    /// order), fragmented to the negotiated size.
    ///
    /// # Errors
    /// [`ApiMisuse::UnknownCallId`] for a call not dispatched (or already answered,
    /// orphaned); [`ApiMisuse::AssociationFailed`] once the association has failed.
    pub fn respond(&mut self, call_id: u32, stub: impl Into<Chain>) -> Result<(), ApiMisuse> {
        self.usable()?;
        let p_cont_id = self.take_dispatched(call_id)?;
        self.sending.push_back(Fragmenter::new(
            call_id,
            StubKind::Response { p_cont_id },
            self.config.drep,
            stub.into(),
            self.max_xmit_frag,
            self.auth.as_ref(),
        )?);
        Ok(())
    }

    /// Answers a dispatched call with a fault.
    ///
    /// # Errors
    /// As [`respond`](Self::respond).
    pub fn fault(&mut self, call_id: u32, status: FaultStatus) -> Result<(), ApiMisuse> {
        self.usable()?;
        let p_cont_id = self.take_dispatched(call_id)?;
        let pdu = self
            .fault_pdu(call_id, p_cont_id, status)
            .map_err(ApiMisuse::Encode)?;
        self.control.push_back(pdu);
        Ok(())
    }

    /// Queues a shutdown: the client should open no more calls on this connection.
    ///
    /// # Errors
    /// [`ApiMisuse::AssociationFailed`] once the association has failed.
    pub fn shutdown(&mut self) -> Result<(), ApiMisuse> {
        self.usable()?;
        let pdu = self
            .control_pdu(0, PduBody::Shutdown(Shutdown))
            .map_err(ApiMisuse::Encode)?;
        self.control.push_back(pdu);
        Ok(())
    }

    /// The next PDU to write, if any, as a chain of segments to write in order (a large
    /// response stub is not copied into its fragments). After a failure, the last answer
    /// (bind_nak or fault).
    ///
    /// Report each frame's bytes once written with [`transmitted`](Self::transmitted): while
    /// `Limits::max_send_queue` bytes handed out are unwritten, no response fragment is cut
    /// (the small control PDUs, bind_ack, fault, shutdown, still come).
    pub fn poll_transmit(&mut self) -> Option<Chain> {
        let busy =
            !self.ready.is_empty() || self.sending.front().is_some_and(Fragmenter::in_progress);
        if (!busy || self.state.is_err())
            && let Some(pdu) = self.control.pop_front()
        {
            return Some(self.emit(Chain::from(pdu)));
        }
        if self.ready.is_empty() {
            if self.unwritten >= self.config.limits.max_send_queue {
                return None;
            }
            if let Err(error) = self.cut() {
                self.state = Err(error);
                return None;
            }
        }
        let (frame, last) = self.ready.pop_front()?;
        let frame = self.emit(frame);
        if last {
            self.answered.push_back(self.emitted);
        }
        Some(frame)
    }

    /// Cuts the next fragments of the calls answered into `ready`: one, or on a protected
    /// association up to [`PROTECT_BATCH`] protected together (running on from one answer into
    /// the next), as many as the send queue's room takes (the first always).
    fn cut(&mut self) -> Result<(), ProtocolError> {
        let Some(fragmenter) = self.sending.front_mut() else {
            return Ok(());
        };
        let auth = self
            .auth
            .as_mut()
            .filter(|auth| auth.protection() != Protection::None);
        let Some(auth) = auth else {
            let Some((pdu, stub)) = fragmenter.next_fragment() else {
                return Ok(());
            };
            let last = fragmenter.is_done();
            if last {
                self.sending.pop_front();
            }
            let frame = assoc::encode_protected(pdu, stub, None)?;
            self.ready.push_back((frame, last));
            return Ok(());
        };
        let room = self
            .config
            .limits
            .max_send_queue
            .saturating_sub(self.unwritten);
        let mut cut = 0_usize;
        let mut batch = Vec::with_capacity(PROTECT_BATCH);
        // Whether each fragment of the batch is its call's last.
        let mut lasts = Vec::with_capacity(PROTECT_BATCH);
        // The calls answered one after the other: a batch runs on into the next answer.
        while batch.len() < PROTECT_BATCH && (batch.is_empty() || cut < room) {
            let Some(fragmenter) = self.sending.front_mut() else {
                break;
            };
            let Some((pdu, stub)) = fragmenter.next_fragment() else {
                self.sending.pop_front();
                continue;
            };
            let last = fragmenter.is_done();
            if last {
                self.sending.pop_front();
            }
            cut = cut.saturating_add(stub.len());
            batch.push((pdu, stub));
            lasts.push(last);
        }
        let frames = assoc::encode_protected_batch(batch, auth)?;
        self.ready.extend(frames.into_iter().zip(lasts));
        Ok(())
    }

    /// Counts a frame handed out.
    fn emit(&mut self, frame: Chain) -> Chain {
        self.unwritten = self.unwritten.saturating_add(frame.len());
        self.emitted = self
            .emitted
            .saturating_add(u64::try_from(frame.len()).unwrap_or(u64::MAX));
        frame
    }

    /// The driver wrote `bytes` more of the frames [`poll_transmit`](Self::poll_transmit)
    /// handed out (in order): room for more fragments, and the calls whose last byte is now
    /// written stop counting as in flight.
    pub fn transmitted(&mut self, bytes: usize) {
        self.unwritten = self.unwritten.saturating_sub(bytes);
        self.written = self
            .written
            .saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX))
            .min(self.emitted);
        while self
            .answered
            .front()
            .is_some_and(|&end| end <= self.written)
        {
            self.answered.pop_front();
        }
    }

    /// Bytes of answers the association holds: handed out and unwritten, and not cut yet.
    pub fn queued_bytes(&self) -> usize {
        self.sending
            .iter()
            .map(Fragmenter::remaining)
            .chain(self.ready.iter().map(|(frame, _)| frame.len()))
            .fold(self.unwritten, usize::saturating_add)
    }

    /// Whether the answers queued are under `Limits::max_send_queue`: while not, a driver
    /// reads no further request and starts no further call.
    pub fn has_room(&self) -> bool {
        self.queued_bytes() < self.config.limits.max_send_queue
    }

    /// Calls in flight: being received, dispatched and unanswered, or answered and not
    /// wholly written (what `Limits::max_calls_in_flight` bounds).
    pub fn calls_in_flight(&self) -> usize {
        let cut_whole = self.ready.iter().filter(|(_, last)| *last).count();
        self.incoming.len()
            + self.dispatched.len()
            + self.sending.len()
            + cut_whole
            + self.answered.len()
    }

    /// Request stub bytes held by the requests being reassembled.
    pub fn reassembly_bytes(&self) -> usize {
        self.incoming
            .values()
            .map(|incoming| incoming.reassembly.len())
            .fold(0, usize::saturating_add)
    }

    /// Bounds [`reassembly_bytes`](Self::reassembly_bytes) (default: no bound but
    /// `Limits::max_stub_len` per call): a request fragment that would take the association
    /// past it fails the association with a fault `nca_s_server_too_busy`. A server sets it,
    /// before each frame, to what its budget across associations leaves this one.
    pub fn set_reassembly_allowance(&mut self, bytes: usize) {
        self.reassembly_allowance = bytes;
    }

    /// Whether a bind was accepted (and the association has not failed).
    pub fn is_bound(&self) -> bool {
        matches!(self.state, Ok(State::Bound))
    }

    /// Whether a security handshake started and has not completed.
    pub fn is_authenticating(&self) -> bool {
        self.auth
            .as_ref()
            .is_some_and(|auth| !auth.provider.is_established())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Largest fragment to accept from the client: the `max_frag` for
    /// [`frame_len`](crate::framing::frame_len).
    pub fn max_recv_frag(&self) -> u16 {
        self.max_recv_frag
    }

    /// The error that failed the association, if it failed.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.state.as_ref().err()
    }

    /// Who authenticated on this association, once the handshake completed (`None` without
    /// authentication or for an anonymous logon).
    pub fn peer_identity(&self) -> Option<crate::security::PeerIdentity> {
        self.auth
            .as_ref()
            .filter(|auth| auth.provider.is_established())
            .and_then(|auth| auth.provider.peer_identity())
    }

    /// The association's auth type and level once a security context exists.
    pub fn auth(&self) -> Option<(AuthType, AuthLevel)> {
        self.auth
            .as_ref()
            .map(|auth| (auth.auth_type, auth.auth_level))
    }
}

impl ServerAssociation {
    /// The association's state, unless it has failed: a request after that is misuse.
    fn usable(&self) -> Result<State, ApiMisuse> {
        self.state.clone().map_err(ApiMisuse::AssociationFailed)
    }

    fn take_dispatched(&mut self, call_id: u32) -> Result<u16, ApiMisuse> {
        self.dispatched
            .remove(&call_id)
            .ok_or(ApiMisuse::UnknownCallId { call_id })
    }

    fn control_pdu(&self, call_id: u32, body: PduBody) -> Result<Bytes, EncodeError> {
        let mut pdu = Pdu::new(call_id, body);
        pdu.drep = self.config.drep;
        pdu.to_bytes()
    }

    /// A fault, unsigned as Windows and Samba send them. `PFC_DID_NOT_EXECUTE` for the statuses
    /// the runtime itself returns before running the call.
    fn fault_pdu(
        &self,
        call_id: u32,
        p_cont_id: u16,
        status: FaultStatus,
    ) -> Result<Bytes, EncodeError> {
        let did_not_execute = matches!(
            status,
            FaultStatus::UNK_IF
                | FaultStatus::PROTO_ERROR
                | FaultStatus::OP_RNG_ERROR
                | FaultStatus::ACCESS_DENIED
                | FaultStatus::SERVER_TOO_BUSY
                | NO_CALL_ACTIVE
                | FaultStatus::SEC_PKG_ERROR
        );
        self.fault_pdu_with(call_id, p_cont_id, status, did_not_execute)
    }

    fn fault_pdu_with(
        &self,
        call_id: u32,
        p_cont_id: u16,
        status: FaultStatus,
        did_not_execute: bool,
    ) -> Result<Bytes, EncodeError> {
        let mut fault = Fault::new(p_cont_id, status);
        // Windows sends a nonzero alloc_hint in a fault (raw_protocol.py asserts it); Samba 24.
        fault.alloc_hint = 24;
        let mut pdu = Pdu::new(call_id, PduBody::Fault(fault));
        pdu.drep = self.config.drep;
        if did_not_execute {
            pdu.pfc_flags |= PfcFlags::DID_NOT_EXECUTE;
        }
        pdu.to_bytes()
    }

    fn decode_limits(&self) -> DecodeLimits {
        let mut limits = DecodeLimits::default().with_max_frag_length(self.max_recv_frag);
        // Counted against `Limits::max_contexts` after decoding, to answer with a bind_nak.
        limits.max_context_elems = u8::MAX;
        limits
    }

    fn dispatch(&mut self, state: State, frame: Bytes) -> Result<(), Refusal> {
        let header = match CommonHeader::decode(&frame) {
            // Only version 5.0 ([MS-RPCE §1.7]; our decoder also reads the 5.1 of C706, which
            // Samba and Windows refuse as they refuse any other version).
            Ok(header) if header.rpc_vers_minor != 0 => {
                let error = DecodeError::UnsupportedVersion {
                    rpc_vers: CommonHeader::RPC_VERS,
                    rpc_vers_minor: header.rpc_vers_minor,
                };
                return self.undecodable(state, &frame, error);
            }
            Ok(header) => header,
            Err(error) => return self.undecodable(state, &frame, error),
        };
        let call_id = header.call_id;
        if header.ptype == PacketType::REQUEST {
            return self.request(state, call_id, frame);
        }
        let pdu = match Pdu::decode_with(frame.clone(), &self.decode_limits()) {
            Ok(pdu) => pdu,
            Err(error) => return self.body_undecodable(state, &header, &frame, error),
        };
        match (state, pdu.body) {
            (State::AwaitingBind, PduBody::Bind(bind)) => {
                self.bind(call_id, pdu.pfc_flags, &bind, pdu.auth_verifier)
            }
            (State::Bound, PduBody::Bind(_)) => Err(Refusal::nak(
                call_id,
                RejectReason::REASON_NOT_SPECIFIED,
                ProtocolError::UnexpectedPdu {
                    expected: BOUND_EXPECTS,
                    got: PacketType::BIND,
                },
            )),
            (State::Bound, PduBody::AlterContext(alter)) => self.alter_context(
                call_id,
                pdu.pfc_flags,
                &alter.p_context_elem,
                pdu.auth_verifier,
            ),
            (State::Bound, PduBody::Auth3(_)) => self.auth3(call_id, pdu.auth_verifier),
            (State::Bound, PduBody::CoCancel(_)) => {
                if self.incoming.contains_key(&call_id) || self.dispatched.contains_key(&call_id) {
                    self.events.push_back(ServerEvent::Cancelled { call_id });
                }
                Ok(())
            }
            // An orphaned is ignored, as Samba's server does (its sources say Windows does
            // the same): a request being received stays unfinished, and the next call's first
            // fragment is a protocol error on it.
            (State::Bound, PduBody::Orphaned(_)) => Ok(()),
            // Anything but a bind first: a bind_nak protocol_version_not_supported, as Samba
            // answers.
            (State::AwaitingBind, body) => Err(Refusal::nak(
                call_id,
                RejectReason::PROTOCOL_VERSION_NOT_SUPPORTED,
                ProtocolError::UnexpectedPdu {
                    expected: &[PacketType::BIND],
                    got: body.ptype(),
                },
            )),
            (state, body) => Err(Refusal::proto(
                call_id,
                ProtocolError::UnexpectedPdu {
                    expected: match state {
                        State::AwaitingBind => &[PacketType::BIND],
                        State::Bound => BOUND_EXPECTS,
                    },
                    got: body.ptype(),
                },
            )),
        }
    }

    /// The answer to a frame that does not decode (or of another version): a bind_nak before
    /// the bind is accepted (`protocol_version_not_supported` for another version) and for a
    /// bind after it; nothing for a co_cancel or an orphaned, which Windows and Samba ignore
    /// whatever their header says; a fault for the rest.
    fn undecodable(&self, state: State, frame: &[u8], error: DecodeError) -> Result<(), Refusal> {
        let (ptype, call_id) = assoc::raw_call_id(frame).unwrap_or((0, 0));
        Err(match state {
            State::Bound if ptype == PacketType::BIND.0 => Refusal::nak(
                call_id,
                RejectReason::REASON_NOT_SPECIFIED,
                ProtocolError::UnexpectedPdu {
                    expected: BOUND_EXPECTS,
                    got: PacketType::BIND,
                },
            ),
            State::Bound if ptype == PacketType::CO_CANCEL.0 || ptype == PacketType::ORPHANED.0 => {
                return Ok(());
            }
            State::AwaitingBind if ptype == PacketType::BIND.0 => {
                // Another version, EBCDIC characters or non-IEEE floats: Samba and Windows
                // answer protocol_version_not_supported, naming 5.0.
                let reason = if matches!(
                    error,
                    DecodeError::UnsupportedVersion { .. }
                        | DecodeError::InvalidField {
                            field: "packed_drep",
                            ..
                        }
                ) {
                    RejectReason::PROTOCOL_VERSION_NOT_SUPPORTED
                } else {
                    RejectReason::REASON_NOT_SPECIFIED
                };
                Refusal::nak(call_id, reason, error)
            }
            // Any other PDU first is taken for a bind of another kind, as Samba does.
            State::AwaitingBind => {
                Refusal::nak(call_id, RejectReason::PROTOCOL_VERSION_NOT_SUPPORTED, error)
            }
            State::Bound => Refusal::proto(call_id, error),
        })
    }

    /// The answer to a PDU of a valid header whose body or auth trailer does not decode: a
    /// bind's broken trailer gets a bind_nak `protocol_version_not_supported`, and a bind or
    /// alter_context without a trailer and shorter than its fields no answer at all (the
    /// connection closes), as Samba answers; a co_cancel or orphaned is ignored; the rest as
    /// [`undecodable`](Self::undecodable).
    fn body_undecodable(
        &self,
        state: State,
        header: &CommonHeader,
        frame: &[u8],
        error: DecodeError,
    ) -> Result<(), Refusal> {
        let trailer = header.auth_length > 0
            || match &error {
                DecodeError::Truncated { what, .. } | DecodeError::InvalidField { what, .. } => {
                    *what == "sec_trailer"
                }
                _ => false,
            };
        match (state, header.ptype) {
            (_, PacketType::CO_CANCEL | PacketType::ORPHANED) if state == State::Bound => Ok(()),
            (State::AwaitingBind, PacketType::BIND) if trailer => Err(Refusal::nak(
                header.call_id,
                RejectReason::PROTOCOL_VERSION_NOT_SUPPORTED,
                error,
            )),
            (_, PacketType::BIND | PacketType::ALTER_CONTEXT)
                if header.auth_length == 0 && matches!(error, DecodeError::Truncated { .. }) =>
            {
                Err(Refusal {
                    error: error.into(),
                    answer: Answer::Close,
                })
            }
            _ => self.undecodable(state, frame, error),
        }
    }

    fn bind(
        &mut self,
        call_id: u32,
        flags: PfcFlags,
        bind: &Bind,
        verifier: Option<AuthVerifier>,
    ) -> Result<(), Refusal> {
        // The driver put this association in the group the bind names when it could join it
        // (see `ServerConfig::assoc_group_id`): a group that does not exist, or is another
        // client's, gets a bind_nak, as Samba and Windows answer (Samba's raw_protocol tests).
        if bind.assoc_group_id != 0 && bind.assoc_group_id != self.config.assoc_group_id {
            return Err(Refusal::nak(
                call_id,
                RejectReason::REASON_NOT_SPECIFIED,
                ProtocolError::Negotiation {
                    field: "assoc_group_id",
                    reason: "no such association group",
                },
            ));
        }
        let contexts = &bind.p_context_elem;
        let limit = self.config.limits.max_contexts;
        if contexts.is_empty() {
            return Err(Refusal::nak(
                call_id,
                RejectReason::REASON_NOT_SPECIFIED,
                ProtocolError::Negotiation {
                    field: "n_context_elem",
                    reason: "no presentation context",
                },
            ));
        }
        if contexts.len() > limit {
            return Err(Refusal::nak(
                call_id,
                RejectReason::LOCAL_LIMIT_EXCEEDED,
                ProtocolError::LimitExceeded {
                    what: "presentation contexts",
                    value: contexts.len(),
                    limit,
                },
            ));
        }
        if contexts
            .iter()
            .any(|context| context.transfer_syntaxes.is_empty())
        {
            return Err(Refusal::nak(
                call_id,
                RejectReason::REASON_NOT_SPECIFIED,
                ProtocolError::Negotiation {
                    field: "n_transfer_syn",
                    reason: "a presentation context without a transfer syntax",
                },
            ));
        }
        let token = match verifier {
            Some(verifier) => self
                .start_auth(&verifier, flags)
                .map_err(|(reason, error)| Refusal::nak(call_id, reason, error))?,
            None => None,
        };
        let size = negotiated_frag_size(bind, &self.config.limits);
        self.max_xmit_frag = size;
        self.max_recv_frag = size;
        self.conc_mpx = self.config.conc_mpx && flags.contains(PfcFlags::CONC_MPX);
        let results = self.negotiate(contexts, IN_BIND);
        let mut pdu = Pdu::new(
            call_id,
            PduBody::BindAck(BindAck {
                max_xmit_frag: self.max_xmit_frag,
                max_recv_frag: self.max_recv_frag,
                assoc_group_id: self.config.assoc_group_id,
                sec_addr: self.config.secondary_address.clone(),
                p_result_list: results,
            }),
        );
        if self.conc_mpx {
            pdu.pfc_flags |= PfcFlags::CONC_MPX;
        }
        self.queue_answer(pdu, flags, token)?;
        self.state = Ok(State::Bound);
        self.events.push_back(ServerEvent::Bound {
            assoc_group_id: self.config.assoc_group_id,
            requested_assoc_group_id: bind.assoc_group_id,
            max_xmit_frag: self.max_xmit_frag,
            max_recv_frag: self.max_recv_frag,
        });
        self.report_if_established();
        Ok(())
    }

    /// Queues the answer to a bind or alter_context, in the association's byte order, with the
    /// security provider's `token` (when there is one and it is not empty) and, per
    /// [MS-RPCE §3.3.1.5.2.2], `PFC_SUPPORT_HEADER_SIGN` when the client set it in `flags` and
    /// the server supports it.
    ///
    /// [MS-RPCE §3.3.1.5.2.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    fn queue_answer(
        &mut self,
        mut pdu: Pdu,
        flags: PfcFlags,
        token: Option<Vec<u8>>,
    ) -> Result<(), Refusal> {
        pdu.drep = self.config.drep;
        // Granted with or without authentication, as Samba does: MS-RPCE §2.2.2.3 defines the
        // flag on the bind and its answer, whatever the auth level.
        if self.config.header_signing && flags.contains(PfcFlags::SUPPORT_HEADER_SIGN) {
            pdu.pfc_flags |= PfcFlags::SUPPORT_HEADER_SIGN;
        }
        // What a verification trailer's SEC_VT_COMMAND_BITMASK_1 is checked against: whether
        // the client asked, granted or not (Samba's `client_hdr_signing`).
        self.client_header_signing |= flags.contains(PfcFlags::SUPPORT_HEADER_SIGN);
        if let (Some(auth), Some(token)) = (&self.auth, token.filter(|token| !token.is_empty())) {
            pdu.auth_verifier = Some(auth.token_verifier(token));
            pdu.align_auth_pad();
        }
        let bytes = pdu
            .to_bytes()
            .map_err(|error| Refusal::proto(pdu.call_id, ProtocolError::Encode(error)))?;
        self.control.push_back(bytes);
        Ok(())
    }

    fn report_if_established(&mut self) {
        if let Some(auth) = &self.auth
            && auth.provider.is_established()
        {
            self.events.push_back(ServerEvent::Authenticated {
                auth_type: auth.auth_type,
                auth_level: auth.auth_level,
            });
        }
    }

    /// Creates the security context from a bind's (or first alter_context's) verifier and runs
    /// its first leg; returns the token to answer with.
    fn start_auth(
        &mut self,
        verifier: &AuthVerifier,
        flags: PfcFlags,
    ) -> Result<Option<Vec<u8>>, (RejectReason, ProtocolError)> {
        if !(AuthLevel::CONNECT..=AuthLevel::PKT_PRIVACY).contains(&verifier.auth_level) {
            return Err((
                RejectReason::REASON_NOT_SPECIFIED,
                ProtocolError::AuthMismatch {
                    field: "auth_level",
                },
            ));
        }
        let provider = self
            .factory
            .as_mut()
            .and_then(|factory| factory(verifier.auth_type))
            .filter(|provider| provider.auth_type() == verifier.auth_type);
        let Some(mut provider) = provider else {
            return Err((
                RejectReason::AUTHENTICATION_TYPE_NOT_RECOGNIZED,
                ProtocolError::AuthMismatch { field: "auth_type" },
            ));
        };
        // The level of the bind is the level of every fragment that follows: the provider must
        // end its handshake able to give it.
        provider.require(verifier.auth_level.protection());
        // Granted in the answer exactly when asked for and supported (see `queue_answer`).
        provider.header_signing(
            self.config.header_signing && flags.contains(PfcFlags::SUPPORT_HEADER_SIGN),
        );
        let mut auth = AuthContext {
            provider,
            auth_type: verifier.auth_type,
            auth_level: verifier.auth_level,
            auth_context_id: verifier.auth_context_id,
        };
        let token = match auth.provider.step(Some(&verifier.auth_value)) {
            Ok(AuthStep::Continue(token) | AuthStep::Complete(Some(token))) => Some(token),
            Ok(AuthStep::Complete(None)) => None,
            Err(error @ SecurityError::LogonFailure(_)) => {
                return Err((RejectReason::INVALID_CHECKSUM, error.into()));
            }
            // SPNEGO offering nothing the server has: as an auth type it does not have.
            Err(error @ SecurityError::NoCommonMechanism) => {
                return Err((
                    RejectReason::AUTHENTICATION_TYPE_NOT_RECOGNIZED,
                    error.into(),
                ));
            }
            Err(error) => return Err((RejectReason::REASON_NOT_SPECIFIED, error.into())),
        };
        self.auth = Some(auth);
        Ok(token)
    }

    /// One result per proposed context, recording the accepted ones.
    fn negotiate(&mut self, contexts: &[PresentationContext], in_bind: bool) -> Vec<ContextResult> {
        contexts
            .iter()
            .map(|context| self.negotiate_one(context, in_bind))
            .collect()
    }

    fn negotiate_one(&mut self, context: &PresentationContext, in_bind: bool) -> ContextResult {
        // Bind-time features are negotiated by the bind only: in an alter_context the syntax
        // is one more transfer syntax the server does not support, as Samba answers.
        if let Some(features) = context
            .transfer_syntaxes
            .iter()
            .find_map(|syntax| syntax.bind_time_features())
            .filter(|_| in_bind)
        {
            // [MS-RPCE §3.3.1.5.3]: answer with the supported subset of the features.
            return ContextResult::negotiate_ack(features & self.config.bind_time_features);
        }
        if let Some(known) = self
            .contexts
            .iter()
            .find(|known| known.p_cont_id == context.p_cont_id)
        {
            return if known.abstract_syntax == context.abstract_syntax
                && context.transfer_syntaxes.contains(&SyntaxId::NDR)
            {
                ContextResult::acceptance(SyntaxId::NDR)
            } else {
                ContextResult::provider_rejection(
                    ProviderReason::PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED,
                )
            };
        }
        let proposed = context.abstract_syntax;
        let Some(interface) = self.config.interfaces.iter().position(|interface| {
            interface.syntax.uuid == proposed.uuid
                && interface.syntax.version == proposed.version
                && proposed.version_minor <= interface.syntax.version_minor
        }) else {
            return ContextResult::provider_rejection(
                ProviderReason::ABSTRACT_SYNTAX_NOT_SUPPORTED,
            );
        };
        if !context.transfer_syntaxes.contains(&SyntaxId::NDR) {
            return ContextResult::provider_rejection(
                ProviderReason::PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED,
            );
        }
        if self.contexts.len() >= self.config.limits.max_contexts {
            return ContextResult::provider_rejection(ProviderReason::LOCAL_LIMIT_EXCEEDED);
        }
        self.contexts.push(Context {
            p_cont_id: context.p_cont_id,
            abstract_syntax: proposed,
            interface,
        });
        ContextResult::acceptance(SyntaxId::NDR)
    }

    fn alter_context(
        &mut self,
        call_id: u32,
        flags: PfcFlags,
        contexts: &[PresentationContext],
        verifier: Option<AuthVerifier>,
    ) -> Result<(), Refusal> {
        // An empty list, or a context id negotiated for another interface: a protocol error,
        // as Samba answers (C706 §12.6.4.1 has no way to change a context's abstract syntax).
        let changed = contexts.iter().any(|context| {
            self.contexts.iter().any(|known| {
                known.p_cont_id == context.p_cont_id
                    && known.abstract_syntax != context.abstract_syntax
            })
        });
        if contexts.is_empty() || changed {
            return Err(Refusal::proto(
                call_id,
                ProtocolError::Negotiation {
                    field: "p_context_elem",
                    reason: "no context, or a context id of another interface",
                },
            ));
        }
        let established = self
            .auth
            .as_ref()
            .map(|auth| auth.provider.is_established());
        let token = match (verifier, established) {
            (None, Some(false)) => {
                return Err(Refusal::proto(
                    call_id,
                    ProtocolError::AuthMismatch {
                        field: "auth_length",
                    },
                ));
            }
            (None, _) => None,
            (Some(verifier), None) => self
                .start_auth(&verifier, flags)
                .map_err(|(_, error)| Refusal::denied(call_id, error))?,
            (Some(verifier), Some(true)) => {
                // The auth level and type are bound to the association: an alter_context that
                // authenticates again (to change either, or the same) is refused.
                let field = match &self.auth {
                    Some(auth) if auth.auth_type != verifier.auth_type => "auth_type",
                    Some(auth) if auth.auth_level != verifier.auth_level => "auth_level",
                    _ => "auth_context_id",
                };
                // A new security context gets `nca_s_fault_sec_pkg_error`, the same one again
                // access denied, as Samba answers.
                let status = match &self.auth {
                    Some(auth) if auth.auth_context_id != verifier.auth_context_id => {
                        FaultStatus::SEC_PKG_ERROR
                    }
                    _ => FaultStatus::ACCESS_DENIED,
                };
                return Err(Refusal {
                    error: ProtocolError::AuthMismatch { field },
                    answer: Answer::Fault(call_id, status),
                });
            }
            (Some(verifier), Some(false)) => self.auth_leg(call_id, &verifier)?,
        };
        let results = self.negotiate(contexts, !IN_BIND);
        let mut pdu = Pdu::new(
            call_id,
            PduBody::AlterContextResp(AlterContextResp {
                max_xmit_frag: self.max_xmit_frag,
                max_recv_frag: self.max_recv_frag,
                assoc_group_id: self.config.assoc_group_id,
                sec_addr: PortAny::empty(),
                p_result_list: results,
            }),
        );
        // PFC_CONC_MPX asked for in an alter_context is granted there too, as Samba does.
        if self.config.conc_mpx && flags.contains(PfcFlags::CONC_MPX) {
            self.conc_mpx = true;
            pdu.pfc_flags |= PfcFlags::CONC_MPX;
        }
        self.queue_answer(pdu, flags, token)?;
        if established != Some(true) {
            self.report_if_established();
        }
        Ok(())
    }

    /// A further handshake leg on the existing security context.
    fn auth_leg(
        &mut self,
        call_id: u32,
        verifier: &AuthVerifier,
    ) -> Result<Option<Vec<u8>>, Refusal> {
        let Some(auth) = &mut self.auth else {
            return Err(Refusal::proto(
                call_id,
                ProtocolError::AuthMismatch { field: "auth_type" },
            ));
        };
        auth.check_trailer(verifier)
            .map_err(|error| Refusal::denied(call_id, error))?;
        match auth.provider.step(Some(&verifier.auth_value)) {
            Ok(AuthStep::Continue(token) | AuthStep::Complete(Some(token))) => Ok(Some(token)),
            Ok(AuthStep::Complete(None)) => Ok(None),
            Err(error) => Err(Refusal::denied(call_id, error)),
        }
    }

    fn auth3(&mut self, call_id: u32, verifier: Option<AuthVerifier>) -> Result<(), Refusal> {
        let handshaking = self
            .auth
            .as_mut()
            .filter(|auth| !auth.provider.is_established());
        let (Some(verifier), Some(auth)) = (verifier, handshaking) else {
            return Err(Refusal::proto(
                call_id,
                ProtocolError::UnexpectedPdu {
                    expected: BOUND_EXPECTS,
                    got: PacketType::AUTH3,
                },
            ));
        };
        auth.check_trailer(&verifier)
            .map_err(|error| Refusal::proto(call_id, error))?;
        match auth.provider.step(Some(&verifier.auth_value)) {
            Ok(AuthStep::Complete(_)) => self.report_if_established(),
            // Nothing answers an auth3 ([MS-RPCE §3.3.1.5.2.1]): as Samba, remember the
            // failure and refuse the calls that follow with access denied.
            Ok(AuthStep::Continue(_)) | Err(_) => self.auth_invalid = true,
        }
        Ok(())
    }

    /// What a new call gets: its interface, or the fault the runtime answers.
    fn admit(&self, p_cont_id: u16, opnum: u16) -> Result<usize, FaultStatus> {
        let Some(context) = self
            .contexts
            .iter()
            .find(|context| context.p_cont_id == p_cont_id)
        else {
            return Err(FaultStatus::UNK_IF);
        };
        let interface = self
            .config
            .interfaces
            .get(context.interface)
            .ok_or(FaultStatus::UNK_IF)?;
        if self.auth_level() < interface.min_auth_level {
            return Err(FaultStatus::ACCESS_DENIED);
        }
        if opnum >= interface.opnums {
            return Err(FaultStatus::OP_RNG_ERROR);
        }
        if self.calls_in_flight() >= self.config.limits.max_calls_in_flight {
            return Err(FaultStatus::SERVER_TOO_BUSY);
        }
        Ok(context.interface)
    }

    fn auth_level(&self) -> AuthLevel {
        self.auth
            .as_ref()
            .map_or(AuthLevel::NONE, |auth| auth.auth_level)
    }

    fn request(&mut self, state: State, call_id: u32, frame: Bytes) -> Result<(), Refusal> {
        if state != State::Bound {
            return Err(Refusal::nak(
                call_id,
                RejectReason::PROTOCOL_VERSION_NOT_SUPPORTED,
                ProtocolError::UnexpectedPdu {
                    expected: &[PacketType::BIND],
                    got: PacketType::REQUEST,
                },
            ));
        }
        if self.auth_invalid {
            return Err(Refusal::denied(
                call_id,
                SecurityError::LogonFailure("the auth3 leg failed"),
            ));
        }
        if self
            .auth
            .as_ref()
            .is_some_and(|auth| !auth.provider.is_established())
        {
            return Err(Refusal::proto(
                call_id,
                ProtocolError::UnexpectedPdu {
                    expected: &[PacketType::AUTH3, PacketType::ALTER_CONTEXT],
                    got: PacketType::REQUEST,
                },
            ));
        }
        let limits = self.decode_limits();
        let pdu = match assoc::decode_protected(frame, self.auth.as_mut(), &limits) {
            Ok(pdu) => pdu,
            // A verifier that does not verify, or names another security context: as Samba,
            // `nca_s_fault_sec_pkg_error` or access denied, without PFC_DID_NOT_EXECUTE.
            Err(error @ ProtocolError::Security(_)) => {
                return Err(Refusal {
                    error,
                    answer: Answer::FaultNoGuarantee(call_id, 0, FaultStatus::SEC_PKG_ERROR),
                });
            }
            Err(error @ ProtocolError::AuthMismatch { .. }) => {
                return Err(Refusal {
                    error,
                    answer: Answer::FaultNoGuarantee(call_id, 0, FaultStatus::ACCESS_DENIED),
                });
            }
            // A request shorter than its own fields: no answer, the connection closes, as
            // Samba does with a PDU it cannot parse.
            Err(error @ ProtocolError::Malformed(DecodeError::Truncated { .. })) => {
                return Err(Refusal {
                    error,
                    answer: Answer::Close,
                });
            }
            Err(error) => return Err(Refusal::proto(call_id, error)),
        };
        // A verifier on an association without a security context: access denied, as Samba.
        if self.auth.is_none() && pdu.auth_verifier.is_some() {
            return Err(Refusal {
                error: ProtocolError::AuthMismatch {
                    field: "auth_length",
                },
                answer: Answer::FaultNoGuarantee(call_id, 0, FaultStatus::ACCESS_DENIED),
            });
        }
        let PduBody::Request(request) = pdu.body else {
            return Err(Refusal::proto(
                call_id,
                ProtocolError::UnexpectedPdu {
                    expected: BOUND_EXPECTS,
                    got: pdu.body.ptype(),
                },
            ));
        };
        self.request_fragment(call_id, pdu.pfc_flags, pdu.drep, request)
    }

    fn request_fragment(
        &mut self,
        call_id: u32,
        flags: PfcFlags,
        drep: DataRep,
        request: Request,
    ) -> Result<(), Refusal> {
        let first = flags.contains(PfcFlags::FIRST_FRAG);
        let last = flags.contains(PfcFlags::LAST_FRAG);
        // One request at a time is reassembled, with or without PFC_CONC_MPX (which lets calls
        // run concurrently, not their fragments interleave), as Samba and Windows do: another
        // call's fragment is a protocol error, answered on the unfinished call without
        // PFC_CONC_MPX and on the new one with it.
        if let Some(in_progress) = self.receiving
            && in_progress != call_id
        {
            let error = ProtocolError::InterleavedCalls {
                call_id,
                in_progress,
            };
            return Err(match self.incoming.get(&in_progress) {
                Some(unfinished) if !self.conc_mpx => {
                    Refusal::fragments(in_progress, unfinished.p_cont_id, error)
                }
                _ => Refusal::fragments(call_id, request.p_cont_id, error),
            });
        }
        let limits = &self.config.limits;
        if first && flags.contains(PfcFlags::PENDING_CANCEL) {
            // A call cannot start with a cancel pending: Samba answers RPC_S_NO_CALL_ACTIVE
            // and closes.
            return Err(Refusal {
                error: ProtocolError::FragmentOutOfOrder {
                    call_id,
                    reason: "a first fragment with PFC_PENDING_CANCEL",
                },
                answer: Answer::Fault(call_id, NO_CALL_ACTIVE),
            });
        }
        if first {
            if self.incoming.contains_key(&call_id) || self.dispatched.contains_key(&call_id) {
                return Err(Refusal::proto(
                    call_id,
                    ProtocolError::FragmentOutOfOrder {
                        call_id,
                        reason: "a first fragment for a call in progress",
                    },
                ));
            }
            let verdict = self.admit(request.p_cont_id, request.opnum);
            if last {
                return self.complete(call_id, request, verdict, drep);
            }
            let stub = if verdict.is_ok() {
                request.stub
            } else {
                Bytes::new()
            };
            self.check_allowance(call_id, stub.len())?;
            let reassembly = Reassembly::start(drep, stub, limits)
                .map_err(|error| Refusal::denied(call_id, error))?;
            self.incoming.insert(
                call_id,
                Incoming {
                    p_cont_id: request.p_cont_id,
                    opnum: request.opnum,
                    object: request.object,
                    verdict,
                    reassembly,
                },
            );
            self.receiving = Some(call_id);
            return Ok(());
        }
        let Some(incoming) = self.incoming.get_mut(&call_id) else {
            return Err(Refusal::fragments(
                call_id,
                request.p_cont_id,
                ProtocolError::FragmentOutOfOrder {
                    call_id,
                    reason: "a middle fragment without a first one",
                },
            ));
        };
        if incoming.p_cont_id != request.p_cont_id
            || incoming.opnum != request.opnum
            || incoming.reassembly.drep != drep
        {
            return Err(Refusal::proto(
                call_id,
                ProtocolError::FragmentOutOfOrder {
                    call_id,
                    reason: "p_cont_id, opnum or packed_drep changed between fragments",
                },
            ));
        }
        let stub = if incoming.verdict.is_ok() {
            request.stub
        } else {
            Bytes::new()
        };
        self.check_allowance(call_id, stub.len())?;
        let limits = &self.config.limits;
        let Some(incoming) = self.incoming.get_mut(&call_id) else {
            return Ok(());
        };
        incoming
            .reassembly
            .push(stub, limits)
            .map_err(|error| Refusal::denied(call_id, error))?;
        if last {
            self.receiving = None;
            if let Some(incoming) = self.incoming.remove(&call_id) {
                let request = Request {
                    alloc_hint: 0,
                    p_cont_id: incoming.p_cont_id,
                    opnum: incoming.opnum,
                    object: incoming.object,
                    stub: incoming.reassembly.finish().to_bytes(),
                };
                return self.complete(call_id, request, incoming.verdict, drep);
            }
        }
        Ok(())
    }

    /// Refuses `more` request bytes past the reassembly allowance.
    fn check_allowance(&self, call_id: u32, more: usize) -> Result<(), Refusal> {
        let held = self.reassembly_bytes().saturating_add(more);
        if more > 0 && held > self.reassembly_allowance {
            return Err(Refusal {
                error: ProtocolError::LimitExceeded {
                    what: "request bytes being reassembled across associations",
                    value: held,
                    limit: self.reassembly_allowance,
                },
                answer: Answer::Fault(call_id, FaultStatus::SERVER_TOO_BUSY),
            });
        }
        Ok(())
    }

    /// The stub of a whole request without its verification trailer ([MS-RPCE §2.2.2.13], see
    /// [`crate::trailer`]), or `None` when the trailer is refused or does not match the request
    /// (the call then gets access denied, as Samba answers).
    ///
    /// [MS-RPCE §2.2.2.13]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    fn strip_trailer(&self, call_id: u32, request: &Request, drep: DataRep) -> Option<Bytes> {
        let Some(found) = trailer::locate(&request.stub) else {
            return Some(request.stub.clone());
        };
        let abstract_syntax = self
            .contexts
            .iter()
            .find(|context| context.p_cont_id == request.p_cont_id)?
            .abstract_syntax;
        let expected = trailer::Expected {
            client_header_signing: self.client_header_signing,
            pcontext: trailer::PContext {
                abstract_syntax,
                // The only transfer syntax this server accepts.
                transfer_syntax: SyntaxId::NDR,
            },
            header2: trailer::Header2::of_request(drep, call_id, request.p_cont_id, request.opnum),
        };
        found.trailer.ok()?.check(&expected).ok()?;
        Some(request.stub.slice(..found.stub_len))
    }

    /// A whole request: dispatched, or refused with its fault.
    fn complete(
        &mut self,
        call_id: u32,
        request: Request,
        verdict: Result<usize, FaultStatus>,
        drep: DataRep,
    ) -> Result<(), Refusal> {
        match verdict {
            Ok(interface) => {
                let Some(stub) = self.strip_trailer(call_id, &request, drep) else {
                    // As Samba: access denied, naming the call's context, without
                    // PFC_DID_NOT_EXECUTE; the association goes on.
                    let pdu = self
                        .fault_pdu_with(
                            call_id,
                            request.p_cont_id,
                            FaultStatus::ACCESS_DENIED,
                            false,
                        )
                        .map_err(|error| Refusal::proto(call_id, ProtocolError::Encode(error)))?;
                    self.control.push_back(pdu);
                    return Ok(());
                };
                self.dispatched.insert(call_id, request.p_cont_id);
                self.events.push_back(ServerEvent::Request(ServerRequest {
                    call_id,
                    p_cont_id: request.p_cont_id,
                    interface,
                    opnum: request.opnum,
                    object: request.object,
                    stub,
                    drep,
                    auth_level: self.auth_level(),
                }));
            }
            Err(status) => {
                // A context that was never negotiated is not echoed: the fault names context 0,
                // as Windows and Samba answer (raw_protocol.py, test_*_unknown_context).
                let p_cont_id = if status == FaultStatus::UNK_IF {
                    0
                } else {
                    request.p_cont_id
                };
                let pdu = self
                    .fault_pdu(call_id, p_cont_id, status)
                    .map_err(|error| Refusal::proto(call_id, ProtocolError::Encode(error)))?;
                self.control.push_back(pdu);
            }
        }
        Ok(())
    }
}

/// The one fragment size both directions use, as Windows and Samba answer (C706 §12.6.3.1
/// leaves the choice to the server): the smaller of the client's two sizes, raised to the 2048 bytes every server
/// accepts (a client offering less, even 0, is not refused), lowered to the server's own limit,
/// rounded down to a multiple of 8.
fn negotiated_frag_size(bind: &Bind, limits: &Limits) -> u16 {
    let client = bind
        .max_xmit_frag
        .min(bind.max_recv_frag)
        .max(MIN_NEGOTIATED_FRAG);
    let size = client.min(limits.max_xmit_frag).min(limits.max_recv_frag);
    (size & !7).max(MIN_FRAG_SIZE)
}

/// `negotiate`'s argument for a bind (its negation for an alter_context).
const IN_BIND: bool = true;

/// Response fragments protected together at most: what a provider can work on side by side
/// (NTLM hashes up to eight at once), and at 64 KiB fragments half a megabyte cut ahead.
const PROTECT_BATCH: usize = 8;

/// RPC_S_NO_CALL_ACTIVE (1725): a request that starts with a cancel pending.
const NO_CALL_ACTIVE: FaultStatus = FaultStatus(0x0000_06bd);

/// The smallest fragment size a bind_ack names, whatever the client offered.
const MIN_NEGOTIATED_FRAG: u16 = 2048;

/// What a bound association accepts.
const BOUND_EXPECTS: &[PacketType] = &[
    PacketType::REQUEST,
    PacketType::ALTER_CONTEXT,
    PacketType::AUTH3,
    PacketType::CO_CANCEL,
    PacketType::ORPHANED,
];
