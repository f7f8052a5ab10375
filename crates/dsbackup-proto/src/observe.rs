//! A third party's view of one association: the PDUs of both directions, in the order they
//! went by, followed as the two ends follow them (what `dsbackup inspect` shows, and what
//! Wireshark's DCE/RPC dissector does).
//!
//! ```text
//! bind / alter_context      p_cont_id -> abstract syntax (proposed); a handshake token
//! bind_ack / alter_ctx_resp results in proposal order: accepted or dropped; a handshake token
//! auth3 (or alter_context)  the last token: with an [`Eavesdropper`], the keys of both directions
//! request FIRST..LAST       call_id -> (context, opnum); the stub reassembled, decoded on LAST
//! response / fault          the opnum of the request with the same call_id
//! ```
//!
//! The observer reuses the associations' own code: a protected fragment goes through the
//! same verifier checks, signature check and unsealing as an association's received fragment
//! (with the keys an [`Eavesdropper`] derived from the handshake it saw), and a stub is put
//! back together by the same reassembly, under the same [`Limits`]. Each direction has its own
//! keys and sequence numbers, as the two ends do.
//!
//! Sans-IO like the rest of the crate: [`Observer::observe`] takes one frame and answers what
//! it learnt as an [`Observation`]; the caller renders it.

use core::fmt;
use std::collections::HashMap;

use bytes::Bytes;

use crate::assoc::{AuthContext, Limits, Reassembly, decode_protected};
use crate::drep::DataRep;
use crate::error::{DecodeError, ProtocolError};
use crate::header::PfcFlags;
use crate::iface::{DecodedStub, Direction, Interface, decode_stub};
use crate::ndr::NdrError;
use crate::pdu::{
    AuthVerifier, ContResult, ContextResult, DecodeLimits, Pdu, PduBody, PresentationContext,
};
use crate::security::{AuthLevel, AuthType, Protection, SecurityError, SpnegoMechanism};
use crate::syntax::SyntaxId;

/// Which end sent a PDU (known from its type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// The client: bind, alter_context, auth3, request, co_cancel, orphaned.
    Client,
    /// The server: bind_ack, bind_nak, alter_context_resp, response, fault, shutdown.
    Server,
}

impl Sender {
    /// The end that sends PDUs of this body.
    pub fn of(body: &PduBody) -> Self {
        match body {
            PduBody::Bind(_)
            | PduBody::AlterContext(_)
            | PduBody::Auth3(_)
            | PduBody::Request(_)
            | PduBody::CoCancel(_)
            | PduBody::Orphaned(_) => Self::Client,
            PduBody::BindAck(_)
            | PduBody::BindNak(_)
            | PduBody::AlterContextResp(_)
            | PduBody::Response(_)
            | PduBody::Fault(_)
            | PduBody::Shutdown(_) => Self::Server,
        }
    }
}

/// The keys of an observed security context: one provider per direction of travel, each
/// [`unwrap`](crate::SecurityProvider::unwrap)ping that direction's fragments in order (and, inside
/// SPNEGO, [`verify_mic`](SpnegoMechanism::verify_mic)ing that direction's mechanism list MIC
/// first).
pub struct ObservedKeys {
    /// Reads what the client sends.
    pub from_client: Box<dyn SpnegoMechanism>,
    /// Reads what the server sends.
    pub from_server: Box<dyn SpnegoMechanism>,
}

impl fmt::Debug for ObservedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservedKeys").finish_non_exhaustive()
    }
}

/// Follows the handshake of one security context from the tokens both ends send.
pub trait HandshakeObserver: Send + fmt::Debug {
    /// Takes a token `sender` sent; the keys of both directions once the tokens so far
    /// establish the context (`None` while more are needed).
    ///
    /// # Errors
    /// [`SecurityError`] when the token is malformed or the keys cannot be derived (with NTLM,
    /// a password that is not the user's).
    fn token(
        &mut self,
        sender: Sender,
        token: &[u8],
    ) -> Result<Option<ObservedKeys>, SecurityError>;
}

/// What an observer knows beyond the wire (a password): a [`HandshakeObserver`] for each
/// security context of an authentication type it can follow.
pub trait Eavesdropper: Send + fmt::Debug {
    /// A fresh follower of a handshake of `auth_type`; `None` when this type is not followed.
    fn handshake(&self, auth_type: AuthType) -> Option<Box<dyn HandshakeObserver>>;
}

/// What the observer made of one PDU's handshake token.
#[derive(Debug)]
pub enum Handshake {
    /// The handshake goes on (or no [`Eavesdropper`] follows it).
    Pending,
    /// The token completed the handshake: the keys of both directions are derived.
    Keys,
    /// The keys cannot be derived; later protected fragments of this context say why.
    Failed(SecurityError),
    /// The eavesdropper does not follow this authentication type.
    NotFollowed(AuthType),
}

/// Why a protected fragment's stub cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObserveError {
    /// No handshake of this `auth_context_id` went by.
    #[error("no handshake seen for auth_context_id {0}")]
    NoHandshake(u32),
    /// The handshake is not over.
    #[error("the handshake of auth_context_id {0} is not complete")]
    Incomplete(u32),
    /// The eavesdropper does not follow this authentication type.
    #[error("auth type {}: not followed", .0.name().unwrap_or("unknown"))]
    NotFollowed(AuthType),
    /// The handshake went by, and its keys could not be derived.
    #[error("no session keys: {0}")]
    NoKeys(SecurityError),
    /// The fragment does not verify or does not unseal with the keys.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// The protection of a request, response or fault.
#[derive(Debug)]
pub enum Protected {
    /// No verifier, or one at a level that signs nothing: the stub as it came.
    Clear,
    /// Signed: its signature verified (with the keys).
    Verified,
    /// Signed, not checked (no keys: no eavesdropper, or the handshake was not followed).
    Unchecked,
    /// Sealed, and unsealed with the keys: the plaintext stub.
    Unsealed(Bytes),
    /// Sealed, and no eavesdropper was given: the stub cannot be read.
    Sealed,
    /// Signed or sealed, and checking it failed (for a sealed stub, it cannot be read).
    Failed {
        /// Whether the stub is sealed.
        sealed: bool,
        /// Why.
        error: ObserveError,
    },
}

impl Protected {
    /// Whether the stub was sealed on the wire.
    pub fn is_sealed(&self) -> bool {
        matches!(
            self,
            Self::Unsealed(_) | Self::Sealed | Self::Failed { sealed: true, .. }
        )
    }
}

/// Which half of a call a stub PDU carries, faults included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// A request stub: the `[in]` parameters.
    Request,
    /// A response stub: the `[out]` parameters and the status.
    Response,
    /// A fault in place of the response: no parameters.
    Fault,
}

impl Half {
    /// `request`, `response` or `fault`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
            Self::Fault => "fault",
        }
    }

    /// The direction of its stub; `None` for a fault.
    pub fn direction(self) -> Option<Direction> {
        match self {
            Self::Request => Some(Direction::Request),
            Self::Response => Some(Direction::Response),
            Self::Fault => None,
        }
    }
}

/// A stub decoded, and the bytes past its last parameter (peers pad some stubs:
/// rpcclient's sealed `ept_map` request carries 60 such bytes, which tshark shows as extra
/// stub data).
#[derive(Debug)]
pub struct Decoded {
    /// The parameters.
    pub stub: DecodedStub,
    /// What follows the last parameter (usually empty).
    pub trailing: Bytes,
}

/// Decodes `stub` as call `opnum` of `iface`, keeping bytes past the last parameter apart.
///
/// # Errors
/// [`NdrError`] when the parameters do not decode.
pub fn decode_call(
    iface: Interface,
    opnum: u16,
    direction: Direction,
    drep: DataRep,
    stub: &Bytes,
) -> Result<Decoded, NdrError> {
    match decode_stub(iface, opnum, direction, drep, stub) {
        Ok(decoded) => Ok(Decoded {
            stub: decoded,
            trailing: Bytes::new(),
        }),
        Err(NdrError::TrailingBytes { count, .. }) => {
            let end = stub.len().saturating_sub(count);
            let decoded = decode_stub(
                iface,
                opnum,
                direction,
                drep,
                stub.get(..end).unwrap_or(stub),
            )?;
            Ok(Decoded {
                stub: decoded,
                trailing: stub.slice(end..),
            })
        }
        Err(error) => Err(error),
    }
}

/// Why the parameters of a call are not shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The stub does not decode as the call's parameters.
    #[error(transparent)]
    Ndr(#[from] NdrError),
    /// The stub crossed a [`Limits`] bound while being put back together.
    #[error("{0}: not decoded")]
    Limit(ProtocolError),
    /// The context's transfer syntax is not NDR 2.0.
    #[error("the transfer syntax is not NDR 2.0: not decoded")]
    NotNdr20,
    /// A fragment could not be read for its protection (sealed without keys, or failing its
    /// check): the fragment's [`Protected`] says why.
    #[error("a fragment of the stub could not be read: not decoded")]
    Unreadable,
}

/// What the observer knows of the call a stub PDU belongs to, told at its last fragment (or
/// at its fault).
#[derive(Debug)]
pub struct ObservedCall {
    /// The abstract syntax of its presentation context.
    pub syntax: SyntaxId,
    /// The interface, when it is one this crate decodes.
    pub iface: Option<Interface>,
    /// The operation.
    pub opnum: u16,
    /// The half this PDU ends.
    pub half: Half,
    /// The parameters: `None` for a fault and for an interface this crate does not decode.
    pub params: Option<Result<Decoded, CallError>>,
}

/// What one PDU told the observer.
#[derive(Debug)]
pub struct Observation {
    /// The PDU as it went on the wire (a sealed stub still sealed).
    pub pdu: Pdu,
    /// Who sent it.
    pub sender: Sender,
    /// For a PDU carrying a handshake token: what came of it.
    pub handshake: Option<Handshake>,
    /// For a request, response or fault: its protection.
    pub protection: Option<Protected>,
    /// For the last fragment of a call, or its fault: the call.
    pub call: Option<ObservedCall>,
}

/// A presentation context of the association.
#[derive(Debug, Clone, Copy)]
struct Context {
    syntax: SyntaxId,
    iface: Option<Interface>,
    /// Whether the accepted transfer syntax is NDR 2.0; `true` until an answer says otherwise.
    ndr20: bool,
}

/// The security context of one `auth_context_id`, as far as it was followed.
#[derive(Debug, Default)]
struct Security {
    /// The `auth_type` and `auth_level` of its first token.
    trailer: Option<(AuthType, AuthLevel)>,
    handshake: Option<Box<dyn HandshakeObserver>>,
    /// The keys: (client to server, server to client), bound to the trailer's fields.
    keys: Option<(AuthContext, AuthContext)>,
    failure: Option<ObserveError>,
}

/// A stub being put back together, or why it cannot be.
#[derive(Debug)]
enum Partial {
    Collecting(Reassembly),
    /// A fragment could not be read for its protection (already said on that fragment).
    Unreadable,
    /// A bound was crossed.
    Limit(ProtocolError),
}

/// The observer of one association (one TCP connection, both directions).
#[derive(Debug)]
pub struct Observer {
    eavesdropper: Option<Box<dyn Eavesdropper>>,
    limits: Limits,
    decode_limits: DecodeLimits,
    contexts: HashMap<u16, Context>,
    /// The contexts of the last bind or alter_context, in order, awaiting their results (used
    /// as they are when the input holds no answer).
    proposed: Vec<(u16, Context)>,
    /// Outstanding calls: call_id -> (p_cont_id, opnum).
    calls: HashMap<u32, (u16, u16)>,
    /// Stubs in fragments, by call_id and half (`true`: request).
    partials: HashMap<(u32, bool), Partial>,
    security: HashMap<u32, Security>,
}

impl Observer {
    /// An observer that unseals and verifies what `eavesdropper` (if any) can follow, with
    /// [`Observer::limits`].
    pub fn new(eavesdropper: Option<Box<dyn Eavesdropper>>) -> Self {
        Self::with_limits(eavesdropper, Self::limits())
    }

    /// An observer under other limits.
    pub fn with_limits(eavesdropper: Option<Box<dyn Eavesdropper>>, limits: Limits) -> Self {
        Self {
            eavesdropper,
            limits,
            decode_limits: DecodeLimits::default(),
            contexts: HashMap::new(),
            proposed: Vec::new(),
            calls: HashMap::new(),
            partials: HashMap::new(),
            security: HashMap::new(),
        }
    }

    /// The default limits: stubs up to 64 MiB in up to 65536 fragments (what a capture of a
    /// backup holds), 4096 calls outstanding and 64 contexts.
    pub fn limits() -> Limits {
        Limits {
            max_stub_len: 64 << 20,
            max_fragments_per_call: 65_536,
            max_calls_in_flight: 4096,
            max_contexts: 64,
            ..Limits::client()
        }
    }

    /// Calls outstanding and stubs being put back together: what the observer holds.
    pub fn pending(&self) -> (usize, usize) {
        (self.calls.len(), self.partials.len())
    }

    /// Stub bytes held in reassembly.
    pub fn held_bytes(&self) -> usize {
        self.partials
            .values()
            .map(|partial| match partial {
                Partial::Collecting(reassembly) => reassembly.len(),
                Partial::Unreadable | Partial::Limit(_) => 0,
            })
            .sum()
    }

    /// Follows one whole PDU.
    ///
    /// # Errors
    /// [`DecodeError`] when `frame` is not a PDU (the observer's state is unchanged).
    pub fn observe(&mut self, frame: Bytes) -> Result<Observation, DecodeError> {
        let pdu = Pdu::decode_with(frame.clone(), &self.decode_limits)?;
        let sender = Sender::of(&pdu.body);
        let mut observation = Observation {
            pdu,
            sender,
            handshake: None,
            protection: None,
            call: None,
        };
        match &observation.pdu.body {
            PduBody::Bind(bind) => self.propose(&bind.p_context_elem),
            PduBody::AlterContext(alter) => self.propose(&alter.p_context_elem),
            PduBody::BindAck(ack) => self.results(&ack.p_result_list),
            PduBody::AlterContextResp(ack) => self.results(&ack.p_result_list),
            PduBody::BindNak(_) => self.proposed.clear(),
            PduBody::Request(_) | PduBody::Response(_) | PduBody::Fault(_) => {
                self.stub_pdu(frame, &mut observation);
                return Ok(observation);
            }
            PduBody::Auth3(_)
            | PduBody::Shutdown(_)
            | PduBody::CoCancel(_)
            | PduBody::Orphaned(_) => {}
        }
        if let Some(verifier) = &observation.pdu.auth_verifier
            && !verifier.auth_value.is_empty()
        {
            observation.handshake = Some(self.token(sender, verifier));
        }
        Ok(observation)
    }

    fn propose(&mut self, contexts: &[PresentationContext]) {
        self.proposed = contexts
            .iter()
            .take(self.limits.max_contexts)
            .map(|element| {
                let syntax = element.abstract_syntax;
                let context = Context {
                    syntax,
                    iface: Interface::from_uuid(syntax.uuid, syntax.version),
                    ndr20: true,
                };
                (element.p_cont_id, context)
            })
            .collect();
    }

    /// Keeps the proposed contexts the answer accepts, with their transfer syntax.
    fn results(&mut self, results: &[ContextResult]) {
        let proposed = core::mem::take(&mut self.proposed);
        for ((p_cont_id, mut context), result) in proposed.into_iter().zip(results) {
            if result.result == ContResult::ACCEPTANCE
                && (self.contexts.len() < self.limits.max_contexts
                    || self.contexts.contains_key(&p_cont_id))
            {
                context.ndr20 = result.transfer_syntax == SyntaxId::NDR;
                self.contexts.insert(p_cont_id, context);
            }
        }
    }

    /// The context a call names: negotiated, or proposed by a bind whose answer is not in the
    /// input.
    fn context(&self, p_cont_id: u16) -> Option<Context> {
        self.contexts.get(&p_cont_id).copied().or_else(|| {
            self.proposed
                .iter()
                .find(|(id, _)| *id == p_cont_id)
                .map(|(_, context)| *context)
        })
    }

    /// Hands a bind-type PDU's token to the handshake follower of its context.
    fn token(&mut self, sender: Sender, verifier: &AuthVerifier) -> Handshake {
        let Some(eavesdropper) = &self.eavesdropper else {
            return Handshake::Pending;
        };
        if !self.security.contains_key(&verifier.auth_context_id)
            && self.security.len() >= self.limits.max_contexts
        {
            return Handshake::Pending;
        }
        let security = self.security.entry(verifier.auth_context_id).or_default();
        if security.handshake.is_none() {
            match eavesdropper.handshake(verifier.auth_type) {
                Some(follower) => {
                    security.handshake = Some(follower);
                    security.trailer = Some((verifier.auth_type, verifier.auth_level));
                }
                None => {
                    security.failure = Some(ObserveError::NotFollowed(verifier.auth_type));
                    return Handshake::NotFollowed(verifier.auth_type);
                }
            }
        }
        let Some(follower) = security.handshake.as_mut() else {
            return Handshake::Pending;
        };
        match follower.token(sender, &verifier.auth_value) {
            Ok(None) => Handshake::Pending,
            Ok(Some(keys)) => {
                let (auth_type, auth_level) = security
                    .trailer
                    .unwrap_or((verifier.auth_type, verifier.auth_level));
                let bound = |provider: Box<dyn SpnegoMechanism>| AuthContext {
                    provider,
                    auth_type,
                    auth_level,
                    auth_context_id: verifier.auth_context_id,
                };
                security.keys = Some((bound(keys.from_client), bound(keys.from_server)));
                security.handshake = None;
                security.failure = None;
                Handshake::Keys
            }
            Err(error) => {
                security.keys = None;
                security.handshake = None;
                security.failure = Some(ObserveError::NoKeys(error.clone()));
                Handshake::Failed(error)
            }
        }
    }

    /// A request, response or fault: checks its protection, collects its stub and tells the
    /// call once the last fragment is in.
    fn stub_pdu(&mut self, frame: Bytes, observation: &mut Observation) {
        let pdu = &observation.pdu;
        let (half, p_cont_id) = match &pdu.body {
            PduBody::Request(request) => (Half::Request, request.p_cont_id),
            PduBody::Response(response) => (Half::Response, response.p_cont_id),
            PduBody::Fault(fault) => (Half::Fault, fault.p_cont_id),
            _ => return,
        };
        let call_id = pdu.call_id;
        let first = pdu.pfc_flags.contains(PfcFlags::FIRST_FRAG);
        let last = pdu.pfc_flags.contains(PfcFlags::LAST_FRAG);
        if let PduBody::Request(request) = &pdu.body
            && first
            && (self.calls.len() < self.limits.max_calls_in_flight
                || self.calls.contains_key(&call_id))
        {
            self.calls.insert(call_id, (p_cont_id, request.opnum));
        }
        let (protection, plain) = self.unprotect(frame, pdu);
        observation.protection = Some(protection);
        observation.call = self.collect(call_id, pdu.drep, half, first, last, plain);
        // A call is over with its answer's last fragment or a fault, whatever its interface.
        if half == Half::Fault || (half == Half::Response && last) {
            self.calls.remove(&call_id);
            self.partials.remove(&(call_id, true));
            self.partials.remove(&(call_id, false));
        }
    }

    /// The protection of a stub PDU and its plaintext stub (`None`: unreadable).
    fn unprotect(&mut self, frame: Bytes, pdu: &Pdu) -> (Protected, Option<Bytes>) {
        let stub = pdu.body.stub().cloned().unwrap_or_default();
        let Some(verifier) = &pdu.auth_verifier else {
            return (Protected::Clear, Some(stub));
        };
        let protection = verifier.auth_level.protection();
        let sealed = protection == Protection::Privacy;
        if protection == Protection::None {
            return (Protected::Clear, Some(stub));
        }
        if self.eavesdropper.is_none() {
            return if sealed {
                (Protected::Sealed, None)
            } else {
                (Protected::Unchecked, Some(stub))
            };
        }
        let failed = |error: ObserveError, stub: Bytes| {
            let plain = (!sealed).then_some(stub);
            (Protected::Failed { sealed, error }, plain)
        };
        let Some(security) = self.security.get_mut(&verifier.auth_context_id) else {
            return failed(ObserveError::NoHandshake(verifier.auth_context_id), stub);
        };
        let Some((from_client, from_server)) = security.keys.as_mut() else {
            let error = security
                .failure
                .clone()
                .unwrap_or(ObserveError::Incomplete(verifier.auth_context_id));
            return failed(error, stub);
        };
        let auth = match Sender::of(&pdu.body) {
            Sender::Client => from_client,
            Sender::Server => from_server,
        };
        match decode_protected(frame, Some(auth), &self.decode_limits) {
            Ok(plain) => {
                let plain = plain.body.stub().cloned().unwrap_or_default();
                if sealed {
                    (Protected::Unsealed(plain.clone()), Some(plain))
                } else {
                    (Protected::Verified, Some(plain))
                }
            }
            Err(error) => failed(ObserveError::Protocol(error), stub),
        }
    }

    /// Adds a fragment's plaintext stub to its call's; the call at its last fragment.
    fn collect(
        &mut self,
        call_id: u32,
        drep: DataRep,
        half: Half,
        first: bool,
        last: bool,
        plain: Option<Bytes>,
    ) -> Option<ObservedCall> {
        let &(p_cont_id, opnum) = self.calls.get(&call_id)?;
        let context = self.context(p_cont_id)?;
        let call = |params| ObservedCall {
            syntax: context.syntax,
            iface: context.iface,
            opnum,
            half,
            params,
        };
        let Some(iface) = context.iface else {
            // Not one this crate decodes: told where it ends.
            return (half == Half::Fault || last).then(|| call(None));
        };
        let Some(direction) = half.direction() else {
            // A fault: the call, without parameters.
            return Some(call(None));
        };
        let key = (call_id, half == Half::Request);
        if first {
            let start = match &plain {
                Some(bytes) => Reassembly::start(drep, bytes.clone(), &self.limits)
                    .map_or_else(Partial::Limit, Partial::Collecting),
                None => Partial::Unreadable,
            };
            self.partials.insert(key, start);
        } else {
            let partial = self.partials.get_mut(&key)?;
            let spoiled = match (&mut *partial, plain) {
                (Partial::Collecting(reassembly), Some(bytes)) => reassembly
                    .push(bytes, &self.limits)
                    .err()
                    .map(Partial::Limit),
                (Partial::Collecting(_), None) => Some(Partial::Unreadable),
                (Partial::Unreadable | Partial::Limit(_), _) => None,
            };
            if let Some(spoiled) = spoiled {
                *partial = spoiled;
            }
        }
        if !last {
            return None;
        }
        match self.partials.remove(&key)? {
            Partial::Unreadable => Some(call(Some(Err(CallError::Unreadable)))),
            Partial::Limit(error) => Some(call(Some(Err(CallError::Limit(error))))),
            Partial::Collecting(_) if !context.ndr20 => Some(call(Some(Err(CallError::NotNdr20)))),
            Partial::Collecting(reassembly) => {
                let drep = reassembly.drep;
                let stub = reassembly.finish().to_bytes();
                let params =
                    decode_call(iface, opnum, direction, drep, &stub).map_err(CallError::from);
                Some(call(Some(params)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::pdu::{AlterContext, AlterContextResp, Bind, PortAny, Request, Response};
    use crate::uuid::Uuid;

    const EPM: &str = "e1af8308-5d1f-11c9-91a4-08002b14a0fa";
    const MGMT: &str = "afa8bd80-7d8a-11c9-bef4-08002b102989";
    const AD_BACKUP: &str = "ecec0d70-a603-11d0-96b1-00a0c91ece30";
    const PREPARE: &[u8] =
        include_bytes!("../../../fixtures/ndr/ad_backup-0-HrRBackupPrepare-request.bin");

    fn context(p_cont_id: u16, uuid: &str, version: u16) -> PresentationContext {
        PresentationContext {
            p_cont_id,
            abstract_syntax: SyntaxId::new(uuid.parse::<Uuid>().unwrap(), version, 0),
            transfer_syntaxes: vec![SyntaxId::NDR, SyntaxId::NDR64],
        }
    }

    fn request(call_id: u32, p_cont_id: u16, opnum: u16, stub: &[u8], flags: PfcFlags) -> Pdu {
        let mut pdu = Pdu::new(
            call_id,
            PduBody::Request(Request {
                alloc_hint: 0,
                p_cont_id,
                opnum,
                object: None,
                stub: Bytes::copy_from_slice(stub),
            }),
        );
        pdu.pfc_flags = flags;
        pdu
    }

    fn bind(contexts: Vec<PresentationContext>) -> Pdu {
        Pdu::new(
            1,
            PduBody::Bind(Bind {
                max_xmit_frag: 4280,
                max_recv_frag: 4280,
                assoc_group_id: 0,
                p_context_elem: contexts,
            }),
        )
    }

    /// Observes `pdus` as encoded on the wire.
    fn observe(observer: &mut Observer, pdus: &[Pdu]) -> Vec<Observation> {
        pdus.iter()
            .map(|pdu| observer.observe(pdu.to_bytes().unwrap()).unwrap())
            .collect()
    }

    fn both() -> PfcFlags {
        PfcFlags::FIRST_FRAG | PfcFlags::LAST_FRAG
    }

    fn params(observation: &Observation) -> &Decoded {
        match &observation.call {
            Some(ObservedCall {
                params: Some(Ok(decoded)),
                ..
            }) => decoded,
            other => panic!("no decoded call: {other:?}"),
        }
    }

    #[test]
    fn alter_context_adds_an_interface_and_its_answer_settles_the_syntax() {
        let mut observer = Observer::new(None);
        let alter = |contexts| {
            Pdu::new(
                2,
                PduBody::AlterContext(AlterContext {
                    max_xmit_frag: 4280,
                    max_recv_frag: 4280,
                    assoc_group_id: 1,
                    p_context_elem: contexts,
                }),
            )
        };
        let answer = |results| {
            Pdu::new(
                2,
                PduBody::AlterContextResp(AlterContextResp {
                    max_xmit_frag: 4280,
                    max_recv_frag: 4280,
                    assoc_group_id: 1,
                    sec_addr: PortAny::empty(),
                    p_result_list: results,
                }),
            )
        };
        let out = observe(
            &mut observer,
            &[
                alter(vec![context(1, MGMT, 1), context(2, EPM, 3)]),
                answer(vec![
                    ContextResult::acceptance(SyntaxId::NDR),
                    ContextResult::acceptance(SyntaxId::NDR64),
                ]),
                // mgmt inq_if_ids... is_server_listening: an empty request stub.
                request(3, 1, 2, &[], both()),
                // epm over NDR64: named, not decoded.
                request(4, 2, 4, &[0; 20], both()),
            ],
        );
        assert_eq!(out[0].sender, Sender::Client);
        assert_eq!(out[1].sender, Sender::Server);
        let call = out[2].call.as_ref().unwrap();
        assert_eq!(
            (call.iface, call.opnum, call.half),
            (Some(Interface::Mgmt), 2, Half::Request)
        );
        assert!(params(&out[2]).trailing.is_empty());
        let call = out[3].call.as_ref().unwrap();
        assert_eq!(call.iface, Some(Interface::Epm));
        assert!(matches!(call.params, Some(Err(CallError::NotNdr20))));
    }

    #[test]
    fn big_endian_fragments_are_put_back_together() {
        let decoded = decode_stub(
            Interface::AdBackup,
            0,
            Direction::Request,
            DataRep::LITTLE_ENDIAN,
            PREPARE,
        )
        .unwrap();
        let stub = decoded.encode(DataRep::BIG_ENDIAN).unwrap();
        let (a, rest) = stub.split_at(8);
        let (b, c) = rest.split_at(8);
        let mut pdus = vec![
            bind(vec![context(0, AD_BACKUP, 1)]),
            // A middle fragment of a call whose start is not in the input: ignored.
            request(2, 0, 0, b"lost", PfcFlags::empty()),
            request(2, 0, 0, a, PfcFlags::FIRST_FRAG),
            request(2, 0, 0, b, PfcFlags::empty()),
            request(2, 0, 0, c, PfcFlags::LAST_FRAG),
        ];
        for pdu in &mut pdus {
            pdu.drep = DataRep::BIG_ENDIAN;
        }
        // No bind_ack in the input: the proposed context is used as it is.
        let mut observer = Observer::new(None);
        let out = observe(&mut observer, &pdus);
        assert!(out[..4].iter().all(|o| o.call.is_none()));
        assert_eq!(observer.held_bytes(), 0, "the stub is handed on, not kept");
        let decoded = params(&out[4]);
        assert_eq!(
            decoded.stub.encode(DataRep::LITTLE_ENDIAN).unwrap(),
            PREPARE,
            "the same call as the little-endian fixture"
        );
    }

    #[test]
    fn a_response_takes_the_opnum_of_its_request_and_unknown_calls_have_none() {
        let mut observer = Observer::new(None);
        let response = |call_id| {
            Pdu::new(
                call_id,
                PduBody::Response(Response {
                    alloc_hint: 0,
                    p_cont_id: 0,
                    cancel_count: 0,
                    reserved: 0,
                    stub: Bytes::from_static(&[0, 0, 0, 0]),
                }),
            )
        };
        let out = observe(
            &mut observer,
            &[
                bind(vec![context(0, MGMT, 1)]),
                request(5, 0, 3, &[], both()),
                // An answer to a call the input never showed.
                response(9),
                response(5),
                // The call is over: a second answer is not decoded again.
                response(5),
            ],
        );
        assert!(out[2].call.is_none());
        let call = out[3].call.as_ref().unwrap();
        assert_eq!((call.opnum, call.half), (3, Half::Response));
        params(&out[3]);
        assert!(out[4].call.is_none());
        assert_eq!(observer.pending(), (0, 0));
    }

    #[test]
    fn a_stub_over_the_limit_is_named_and_not_kept() {
        let limits = Limits {
            max_stub_len: 16,
            ..Observer::limits()
        };
        let mut observer = Observer::with_limits(None, limits);
        let out = observe(
            &mut observer,
            &[
                bind(vec![context(0, AD_BACKUP, 1)]),
                request(2, 0, 0, &[0; 12], PfcFlags::FIRST_FRAG),
                request(2, 0, 0, &[0; 12], PfcFlags::empty()),
                request(2, 0, 0, &[0; 12], PfcFlags::LAST_FRAG),
            ],
        );
        assert_eq!(observer.held_bytes(), 0);
        let call = out[3].call.as_ref().unwrap();
        assert!(
            matches!(
                &call.params,
                Some(Err(CallError::Limit(ProtocolError::LimitExceeded { .. })))
            ),
            "{call:?}"
        );
    }

    #[test]
    fn protected_fragments_go_through_the_keys_of_their_direction() {
        use crate::fuzzing::ToyEavesdropper;
        use crate::pdu::Auth3;

        let token = |pdu: &mut Pdu, value: &'static [u8]| {
            pdu.auth_verifier = Some(AuthVerifier::new(
                AuthType::WINNT,
                AuthLevel::PKT_PRIVACY,
                7,
                Bytes::from_static(value),
            ));
        };
        let mut bind = bind(vec![context(0, MGMT, 1)]);
        token(&mut bind, b"hello");
        let mut auth3 = Pdu::new(1, PduBody::Auth3(Auth3 { pad: [0; 4] }));
        // The toy's key is the XOR of the last token's bytes: 0x0f.
        token(&mut auth3, &[0x0f]);
        // mgmt inq_stats (opnum 1): a request stub of a u32, sealed by XOR with the key.
        let plain = [4u8, 0, 0, 0];
        let sealed: Vec<u8> = plain.iter().map(|b| b ^ 0x0f).collect();
        let mut call = request(3, 0, 1, &sealed, both());
        call.auth_verifier = Some(AuthVerifier::placeholder(
            AuthType::WINNT,
            AuthLevel::PKT_PRIVACY,
            7,
            16,
        ));
        call.align_auth_pad();
        let mut frame = BytesMut::new();
        call.encode(&mut frame).unwrap();
        // The toy's signature: its first byte is the key XOR the length up to the signature.
        let signed_len = frame.len() - 16;
        frame[signed_len] = 0x0f ^ u8::try_from(signed_len % 256).unwrap();
        let frame = frame.freeze();
        let mut wrong = BytesMut::from(&frame[..]);
        wrong[signed_len] ^= 1;

        // Without an eavesdropper: sealed, nothing more.
        let mut observer = Observer::new(None);
        observe(&mut observer, &[bind.clone(), auth3.clone()]);
        let seen = observer.observe(frame.clone()).unwrap();
        assert!(matches!(seen.protection, Some(Protected::Sealed)));
        let call = seen.call.unwrap();
        assert_eq!((call.iface, call.opnum), (Some(Interface::Mgmt), 1));
        assert!(matches!(call.params, Some(Err(CallError::Unreadable))));

        let mut observer = Observer::new(Some(Box::new(ToyEavesdropper)));
        let out = observe(&mut observer, &[bind, auth3]);
        assert!(matches!(out[0].handshake, Some(Handshake::Pending)));
        assert!(matches!(out[1].handshake, Some(Handshake::Keys)));
        let bad = observer.observe(wrong.freeze()).unwrap();
        assert!(
            matches!(
                &bad.protection,
                Some(Protected::Failed {
                    sealed: true,
                    error: ObserveError::Protocol(_)
                })
            ),
            "{bad:?}"
        );
        let seen = observer.observe(frame).unwrap();
        let Some(Protected::Unsealed(stub)) = &seen.protection else {
            panic!("not unsealed: {seen:?}");
        };
        // The plaintext stub, its auth padding stripped.
        assert_eq!(&stub[..], &plain);
        params(&seen);
    }

    #[test]
    fn the_saved_fuzzing_input_reaches_the_unsealing() {
        // fixtures/fuzz/observe/toy-keys-unseal-mgmt: bind, auth3, one sealed request, as the
        // test above builds them.
        let data: &[u8] = include_bytes!("../../../fixtures/fuzz/observe/toy-keys-unseal-mgmt");
        let mut observer = Observer::new(Some(Box::new(crate::fuzzing::ToyEavesdropper)));
        let mut rest = data;
        let mut out = Vec::new();
        while let Ok(Some(len)) = crate::framing::frame_len(rest, u16::MAX) {
            let (frame, tail) = rest.split_at(len);
            out.push(observer.observe(Bytes::copy_from_slice(frame)).unwrap());
            rest = tail;
        }
        assert!(rest.is_empty());
        assert_eq!(out.len(), 3);
        let Some(Protected::Unsealed(stub)) = &out[2].protection else {
            panic!("not unsealed: {:?}", out[2]);
        };
        assert_eq!(&stub[..], &[4, 0, 0, 0]);
        params(&out[2]);
    }
}
