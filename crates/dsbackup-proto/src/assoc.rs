//! What the client and server association state machines share: limits, the fragmenter, the
//! reassembler and per-fragment protection ([C706 §12.6], [MS-RPCE §3.3.1.5]).
//!
//! A call's stub travels as one or more request (or response) fragments:
//!
//! ```text
//! +--------+---------------+--------------+----------+-------------+------------+
//! | header | request fixed | stub chunk   | auth pad | sec_trailer | auth_value |
//! |  16    | 8 (+16 object)| <= chunk_len | to 16    |      8      | sig_len    |
//! +--------+---------------+--------------+----------+-------------+------------+
//! |<------------------------------- <= max_xmit_frag ------------------------->|
//! ```
//!
//! On a protected association every fragment carries its own verifier, and the stub chunks of
//! every fragment but the last are multiples of 16, so only the last needs auth padding
//! ([MS-RPCE §2.2.2.11]).
//!
//! [C706 §12.6]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
//! [MS-RPCE §3.3.1.5]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
//! [MS-RPCE §2.2.2.11]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use core::fmt;
use core::ops::Range;

use bytes::{Bytes, BytesMut};

use crate::chain::Chain;
use crate::drep::DataRep;
use crate::error::{ApiMisuse, DecodeError, EncodeError, ProtocolError};
use crate::header::{CommonHeader, PacketType, PfcFlags};
use crate::pdu::{
    AuthVerifier, DecodeLimits, Pdu, PduBody, Request, Response, locate_auth, max_stub_len,
};
use crate::security::{AuthLevel, AuthType, ProtectedFragment, Protection, SecurityProvider};
use crate::uuid::Uuid;

/// "MustRecvFragSize": the smallest fragment every implementation must accept ([C706 §12.6.3.1]
/// and Appendix K). A peer announcing less is refused.
///
/// [C706 §12.6.3.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
pub const MIN_FRAG_SIZE: u16 = 1432;

/// The fragment size Windows and Samba announce (`0x16d0`).
pub const DEFAULT_FRAG_SIZE: u16 = 5840;

/// Bounds on what a peer may push at an association; every default is safe.
///
/// `#[non_exhaustive]`: start from [`Limits::client`] or [`Limits::server`] and set fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest fragment this side receives (`max_recv_frag` announced), 1432..=65535.
    pub max_recv_frag: u16,
    /// Largest fragment this side sends (`max_xmit_frag` announced), 1432..=65535; the
    /// negotiated size is the smaller of this and the peer's `max_recv_frag`.
    pub max_xmit_frag: u16,
    /// Largest reassembled stub of one call (responses for a client, requests for a server).
    pub max_stub_len: usize,
    /// Largest number of fragments of one call.
    pub max_fragments_per_call: usize,
    /// Largest number of calls in flight on the association.
    pub max_calls_in_flight: usize,
    /// Largest number of presentation contexts on the association.
    pub max_contexts: usize,
    /// Bytes of answers a server association holds for its connection: fragments handed out
    /// and not yet reported written, and the rest of the answers not yet cut into fragments.
    /// At the budget no further fragment is cut, and the driver stops reading requests and
    /// starting calls until the peer has taken some (see
    /// [`ServerAssociation::has_room`](crate::ServerAssociation::has_room)).
    pub max_send_queue: usize,
}

impl Limits {
    /// Client defaults: fragments of 5840 bytes, responses up to 17 MiB (a 16 MiB backup read
    /// and its NDR overhead), 64 calls in flight, 16 contexts.
    pub const fn client() -> Self {
        Self {
            max_recv_frag: DEFAULT_FRAG_SIZE,
            max_xmit_frag: DEFAULT_FRAG_SIZE,
            max_stub_len: 17 << 20,
            max_fragments_per_call: 16_384,
            max_calls_in_flight: 64,
            max_contexts: 16,
            max_send_queue: 8 << 20,
        }
    }

    /// Server defaults: fragments of 5840 bytes, requests up to 1 MiB (the backup interfaces'
    /// requests are small), 64 calls in flight, 16 contexts, 8 MiB of answers queued per
    /// connection (two backup reads of the default 4 MiB).
    pub const fn server() -> Self {
        Self {
            max_recv_frag: DEFAULT_FRAG_SIZE,
            max_xmit_frag: DEFAULT_FRAG_SIZE,
            max_stub_len: 1 << 20,
            max_fragments_per_call: 1024,
            max_calls_in_flight: 64,
            max_contexts: 16,
            max_send_queue: 8 << 20,
        }
    }

    /// Refuses fragment sizes under [`MIN_FRAG_SIZE`].
    pub(crate) fn check(&self) -> Result<(), ApiMisuse> {
        for (field, value) in [
            ("max_recv_frag", self.max_recv_frag),
            ("max_xmit_frag", self.max_xmit_frag),
        ] {
            if value < MIN_FRAG_SIZE {
                return Err(ApiMisuse::InvalidConfig {
                    field,
                    reason: "under the 1432 bytes every peer must accept",
                });
            }
        }
        Ok(())
    }
}

/// The security context of an association and the `sec_trailer` fields it is bound to.
pub(crate) struct AuthContext {
    pub(crate) provider: Box<dyn SecurityProvider>,
    pub(crate) auth_type: AuthType,
    pub(crate) auth_level: AuthLevel,
    pub(crate) auth_context_id: u32,
}

impl fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthContext")
            .field("auth_type", &self.auth_type)
            .field("auth_level", &self.auth_level)
            .field("auth_context_id", &self.auth_context_id)
            .field("established", &self.provider.is_established())
            .finish()
    }
}

impl AuthContext {
    /// Per-fragment protection once established.
    pub(crate) fn protection(&self) -> Protection {
        self.auth_level.protection()
    }

    /// A verifier carrying a handshake token.
    pub(crate) fn token_verifier(&self, token: Vec<u8>) -> AuthVerifier {
        AuthVerifier::new(
            self.auth_type,
            self.auth_level,
            self.auth_context_id,
            Bytes::from(token),
        )
    }

    /// Checks that a received verifier names this context.
    pub(crate) fn check_trailer(&self, verifier: &AuthVerifier) -> Result<(), ProtocolError> {
        if verifier.auth_type != self.auth_type {
            return Err(ProtocolError::AuthMismatch { field: "auth_type" });
        }
        if verifier.auth_level != self.auth_level {
            return Err(ProtocolError::AuthMismatch {
                field: "auth_level",
            });
        }
        if verifier.auth_context_id != self.auth_context_id {
            return Err(ProtocolError::AuthMismatch {
                field: "auth_context_id",
            });
        }
        Ok(())
    }
}

/// Encodes fragment `pdu` carrying `stub`: unprotected, as its header and the stub's own
/// slices; on an association protected at integrity or privacy, with a verifier, signed (and
/// sealed) in place ([MS-RPCE §3.3.1.5.2]).
///
/// [MS-RPCE §3.3.1.5.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
pub(crate) fn encode_protected(
    pdu: Pdu,
    stub: Chain,
    auth: Option<&mut AuthContext>,
) -> Result<Chain, ProtocolError> {
    let Some(auth) = auth.filter(|auth| auth.protection() != Protection::None) else {
        // Unsigned: the header, then the stub's slices as they are, uncopied.
        return pdu.to_chain_with_stub(stub).map_err(ProtocolError::Encode);
    };
    let mut frame = Unprotected::encode(pdu, stub, auth)?;
    let mut one = [frame.protected()];
    auth.provider
        .wrap_batch(auth.protection(), &mut one)
        .map_err(|batch| batch.error)?;
    Ok(Chain::from(frame.buf.freeze()))
}

/// Encodes the fragments of one protected association together, signing (and sealing) them
/// in one [`SecurityProvider::wrap_batch`]: in order, as
/// [`encode_protected`] one by one would. `auth` protects at integrity or privacy.
pub(crate) fn encode_protected_batch(
    fragments: impl IntoIterator<Item = (Pdu, Chain)>,
    auth: &mut AuthContext,
) -> Result<Vec<Chain>, ProtocolError> {
    let mut frames = fragments
        .into_iter()
        .map(|(pdu, stub)| Unprotected::encode(pdu, stub, auth))
        .collect::<Result<Vec<_>, _>>()?;
    let mut batch: Vec<ProtectedFragment<'_>> =
        frames.iter_mut().map(Unprotected::protected).collect();
    auth.provider
        .wrap_batch(auth.protection(), &mut batch)
        .map_err(|batch| batch.error)?;
    Ok(frames
        .into_iter()
        .map(|frame| Chain::from(frame.buf.freeze()))
        .collect())
}

/// A protected fragment encoded with a verifier whose `auth_value` is still zeros (and its stub
/// still plaintext): what the provider signs (and seals) in place.
struct Unprotected {
    buf: BytesMut,
    stub: Range<usize>,
    /// Where the `sec_trailer` ends and the `auth_value` begins.
    sec_end: usize,
}

impl Unprotected {
    fn encode(mut pdu: Pdu, stub: Chain, auth: &AuthContext) -> Result<Self, ProtocolError> {
        // Signed (and sealed) in place: the stub is copied into the fragment.
        match &mut pdu.body {
            PduBody::Request(body) => body.stub = stub.to_bytes(),
            PduBody::Response(body) => body.stub = stub.to_bytes(),
            _ => {}
        }
        pdu.auth_verifier = Some(AuthVerifier::placeholder(
            auth.auth_type,
            auth.auth_level,
            auth.auth_context_id,
            auth.provider.signature_len(),
        ));
        pdu.align_auth_pad();
        let mut buf = BytesMut::with_capacity(pdu.encoded_len());
        let location = pdu
            .encode_located(&mut buf)
            .map_err(ProtocolError::Encode)?
            .ok_or(ProtocolError::Encode(EncodeError::InvalidField {
                what: "PDU",
                field: "auth_length",
                reason: "a protected fragment needs an auth verifier",
            }))?;
        if location.sec_trailer.end > buf.len() {
            return Err(ProtocolError::Encode(EncodeError::InvalidField {
                what: "PDU",
                field: "auth_length",
                reason: "the verifier lies outside the fragment",
            }));
        }
        Ok(Self {
            buf,
            stub: location.stub,
            sec_end: location.sec_trailer.end,
        })
    }

    fn protected(&mut self) -> ProtectedFragment<'_> {
        let (pdu, signature) = self.buf.split_at_mut(self.sec_end);
        ProtectedFragment {
            pdu,
            stub: self.stub.clone(),
            signature,
        }
    }
}

/// A received stub PDU as [`open_protected`] leaves it: decoded, or still to be verified (and
/// unsealed) by the provider.
pub(crate) enum Opened {
    /// Nothing to verify: the PDU.
    Pdu(Pdu),
    /// A protected fragment whose verifier names the context: its signature is next.
    Sealed(Sealed),
}

/// A received protected fragment, owned, waiting for its signature check.
pub(crate) struct Sealed {
    buf: BytesMut,
    stub: Range<usize>,
    /// Where the `sec_trailer` ends and the `auth_value` begins.
    sec_end: usize,
}

impl Sealed {
    /// The arguments of the provider's `unwrap`.
    pub(crate) fn protected(&mut self) -> ProtectedFragment<'_> {
        let (pdu, signature) = self.buf.split_at_mut(self.sec_end);
        ProtectedFragment {
            pdu,
            stub: self.stub.clone(),
            signature,
        }
    }

    /// The PDU, once verified (and unsealed).
    pub(crate) fn decode(self, limits: &DecodeLimits) -> Result<Pdu, ProtocolError> {
        Ok(Pdu::decode_with(self.buf.freeze(), limits)?)
    }
}

/// Decodes a received stub PDU (request, response, fault); on a protected association checks
/// the verifier's fields and the signature, unsealing the stub in place first.
///
/// A fault without a verifier is accepted: Windows and Samba send faults unsigned.
///
/// At connect nothing is signed, and a verifier is optional: Samba's client and impacket send
/// none, Samba's test suite sends one (its `auth_value` a version-1 NTLM signature of zeros).
/// One that is there must name the association's context, as Samba and Windows require; its
/// `auth_value` is not looked at, and it and the auth padding are no part of the stub.
pub(crate) fn decode_protected(
    frame: impl Received,
    auth: Option<&mut AuthContext>,
    limits: &DecodeLimits,
) -> Result<Pdu, ProtocolError> {
    match open_protected(frame, auth.as_deref(), limits)? {
        Opened::Pdu(pdu) => Ok(pdu),
        Opened::Sealed(mut sealed) => {
            // `Sealed` comes only from a protected association's context.
            let auth = auth.ok_or(ProtocolError::AuthMismatch {
                field: "auth_length",
            })?;
            let mut one = [sealed.protected()];
            auth.provider
                .unwrap_batch(auth.protection(), &mut one)
                .map_err(|batch| batch.error)?;
            sealed.decode(limits)
        }
    }
}

/// [`decode_protected`] up to the signature check: the checks of the verifier's fields, and
/// either the decoded PDU (nothing to verify) or the fragment to verify, owned.
pub(crate) fn open_protected(
    frame: impl Received,
    auth: Option<&AuthContext>,
    limits: &DecodeLimits,
) -> Result<Opened, ProtocolError> {
    let Some(auth) = auth else {
        return Ok(Opened::Pdu(Pdu::decode_with(frame.freeze(), limits)?));
    };
    if auth.protection() == Protection::None {
        let pdu = Pdu::decode_with(frame.freeze(), limits)?;
        if let Some(verifier) = &pdu.auth_verifier {
            auth.check_trailer(verifier)?;
        }
        return Ok(Opened::Pdu(pdu));
    }
    let header = CommonHeader::decode(frame.as_ref())?;
    let Some(location) = locate_auth(frame.as_ref())? else {
        if header.ptype == PacketType::FAULT {
            return Ok(Opened::Pdu(Pdu::decode_with(frame.freeze(), limits)?));
        }
        return Err(ProtocolError::AuthMismatch {
            field: "auth_length",
        });
    };
    if !auth
        .provider
        .accepts_signature_len(usize::from(header.auth_length))
    {
        return Err(ProtocolError::AuthMismatch {
            field: "auth_length",
        });
    }
    // The sec_trailer's fields only: the signature is checked by the caller.
    let trailer = frame
        .as_ref()
        .get(location.sec_trailer.clone())
        .ok_or_else(|| DecodeError::Truncated {
            what: "sec_trailer",
            needed: location.sec_trailer.end,
            available: frame.as_ref().len(),
        })?;
    let verifier = AuthVerifier::decode(
        header.drep,
        Bytes::copy_from_slice(trailer),
        location.sec_trailer.start,
        Bytes::new(),
        Bytes::new(),
    )?;
    auth.check_trailer(&verifier)?;
    // In place: a frame its receiver owns is unsealed where it was received.
    let buf = frame.into_mut();
    if location.sec_trailer.end > buf.len() {
        return Err(DecodeError::Truncated {
            what: "sec_trailer",
            needed: location.sec_trailer.end,
            available: buf.len(),
        }
        .into());
    }
    Ok(Opened::Sealed(Sealed {
        buf,
        stub: location.stub,
        sec_end: location.sec_trailer.end,
    }))
}

/// A received fragment: shared ([`Bytes`]), or owned by the receiver ([`BytesMut`], a frame cut
/// from its receive buffer), which a protected association unseals in place without a copy.
pub trait Received: AsRef<[u8]> + Sized {
    /// The frame as shared bytes (no copy).
    fn freeze(self) -> Bytes;
    /// The frame as bytes to modify: a copy unless this is the only handle to them.
    fn into_mut(self) -> BytesMut;
}

impl Received for Bytes {
    fn freeze(self) -> Bytes {
        self
    }

    fn into_mut(self) -> BytesMut {
        BytesMut::from(self)
    }
}

impl Received for BytesMut {
    fn freeze(self) -> Bytes {
        // The inherent method (no copy), not this trait's.
        Self::freeze(self)
    }

    fn into_mut(self) -> BytesMut {
        self
    }
}

/// What the fragments of an outgoing call carry besides the stub.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StubKind {
    /// request fragments.
    Request {
        p_cont_id: u16,
        opnum: u16,
        object: Option<Uuid>,
    },
    /// response fragments.
    Response { p_cont_id: u16 },
}

/// Cuts one call's stub into fragments on demand, so that a call can be abandoned part way
/// (orphaned) and calls never interleave on the wire.
#[derive(Debug)]
pub(crate) struct Fragmenter {
    pub(crate) call_id: u32,
    kind: StubKind,
    drep: DataRep,
    rest: Chain,
    chunk_len: usize,
    started: bool,
    done: bool,
}

impl Fragmenter {
    /// Prepares the fragments of `stub`, each at most `max_frag` bytes, the verifier included
    /// when `auth` signs every fragment.
    pub(crate) fn new(
        call_id: u32,
        kind: StubKind,
        drep: DataRep,
        stub: Chain,
        max_frag: u16,
        auth: Option<&AuthContext>,
    ) -> Result<Self, ApiMisuse> {
        let signature_len = auth
            .filter(|auth| auth.protection() != Protection::None)
            .map(|auth| auth.provider.signature_len());
        let fixed = match kind {
            StubKind::Request { object, .. } => Request::body_len_before_stub(object.is_some()),
            StubKind::Response { .. } => Response::FIXED_LEN,
        };
        // Whole 16-byte blocks when protected: the auth padding of the last chunk fits too.
        let chunk_len = max_stub_len(max_frag, CommonHeader::LEN + fixed, signature_len);
        if chunk_len == 0 {
            return Err(ApiMisuse::InvalidConfig {
                field: "max_xmit_frag",
                reason: "no room for the stub in a fragment",
            });
        }
        Ok(Self {
            call_id,
            kind,
            drep,
            rest: stub,
            chunk_len,
            started: false,
            done: false,
        })
    }

    /// Whether a fragment went out and the last one did not.
    pub(crate) fn in_progress(&self) -> bool {
        self.started && !self.done
    }

    /// Whether the last fragment went out.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Stub bytes not cut into fragments yet.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next fragment (`None` once the last went out): the PDU, its own stub empty, and
    /// the stub fragment apart, as slices of the call's stub.
    pub(crate) fn next_fragment(&mut self) -> Option<(Pdu, Chain)> {
        if self.done {
            return None;
        }
        let alloc_hint = u32::try_from(self.rest.len()).unwrap_or(u32::MAX);
        let chunk = self.rest.split_to(self.chunk_len);
        let mut pfc_flags = PfcFlags::empty();
        if !self.started {
            pfc_flags |= PfcFlags::FIRST_FRAG;
        }
        if self.rest.is_empty() {
            pfc_flags |= PfcFlags::LAST_FRAG;
            self.done = true;
        }
        self.started = true;
        let body = match self.kind {
            StubKind::Request {
                p_cont_id,
                opnum,
                object,
            } => PduBody::Request(Request {
                alloc_hint,
                p_cont_id,
                opnum,
                object,
                stub: Bytes::new(),
            }),
            StubKind::Response { p_cont_id } => PduBody::Response(Response {
                alloc_hint,
                p_cont_id,
                cancel_count: 0,
                reserved: 0,
                stub: Bytes::new(),
            }),
        };
        let mut pdu = Pdu::new(self.call_id, body);
        pdu.pfc_flags = pfc_flags;
        pdu.drep = self.drep;
        Some((pdu, chunk))
    }
}

/// One call's stub being put back together from its fragments.
///
/// The fragments' stubs are kept as they arrived (slices of the received frames, not copies):
/// nothing is reserved from what `alloc_hint` announces. The server joins them into one buffer
/// of exactly their size; the client hands the chain on, so that a backup read's data reaches
/// its consumer without a copy.
#[derive(Debug)]
pub(crate) struct Reassembly {
    pub(crate) drep: DataRep,
    stub: Chain,
    fragments: usize,
}

impl Reassembly {
    /// Starts with the first fragment's stub.
    pub(crate) fn start(
        drep: DataRep,
        first: Bytes,
        limits: &Limits,
    ) -> Result<Self, ProtocolError> {
        let mut reassembly = Self {
            drep,
            stub: Chain::new(),
            fragments: 0,
        };
        reassembly.push(first, limits)?;
        Ok(reassembly)
    }

    /// Stub bytes held so far.
    pub(crate) fn len(&self) -> usize {
        self.stub.len()
    }

    /// Appends a further fragment's stub.
    pub(crate) fn push(&mut self, stub: Bytes, limits: &Limits) -> Result<(), ProtocolError> {
        self.fragments += 1;
        if self.fragments > limits.max_fragments_per_call {
            return Err(ProtocolError::LimitExceeded {
                what: "fragments of a call",
                value: self.fragments,
                limit: limits.max_fragments_per_call,
            });
        }
        let len = self.stub.len().saturating_add(stub.len());
        if len > limits.max_stub_len {
            return Err(ProtocolError::LimitExceeded {
                what: "reassembled stub",
                value: len,
                limit: limits.max_stub_len,
            });
        }
        self.stub.push(stub);
        Ok(())
    }

    /// The whole stub, as its fragments' stubs.
    pub(crate) fn finish(self) -> Chain {
        self.stub
    }
}

/// Reads the `PTYPE` and `call_id` of a frame whose header may not decode, to
/// answer a bind of another protocol version with a bind_nak.
pub(crate) fn raw_call_id(frame: &[u8]) -> Option<(u8, u32)> {
    let header = frame.get(..CommonHeader::LEN)?;
    let &[_, _, ptype, _, drep0, ..] = header else {
        return None;
    };
    let call_id: [u8; 4] = header.get(12..16)?.try_into().ok()?;
    let call_id = if drep0 >> 4 == 0 {
        u32::from_be_bytes(call_id)
    } else {
        u32::from_le_bytes(call_id)
    };
    Some((ptype, call_id))
}

#[cfg(test)]
mod tests;
