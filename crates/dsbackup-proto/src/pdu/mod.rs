//! The twelve connection-oriented PDUs of [C706 §12.6] and [MS-RPCE §2.2.2], one module each,
//! and [`Pdu`], a whole fragment: common header fields, body and auth verifier.
//!
//! ```text
//! +----------------------+-----------------------------+----------+-------------+------------+
//! | common header (16)   | body (per PTYPE)            | auth pad | sec_trailer | auth_value |
//! +----------------------+-----------------------------+----------+-------------+------------+
//! |<------------------------------------ frag_length ------------------------------------->|
//!                                                                               |auth_length|
//! ```
//!
//! Decoding takes a whole frame as [`Bytes`] (see [`frame_len`](crate::framing::frame_len)) and
//! cuts stubs and tokens out of it without copying. Encoding computes `frag_length` and
//! `auth_length`.
//!
//! [C706 §12.6]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
//! [MS-RPCE §2.2.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

mod alter_context;
mod alter_context_resp;
mod auth;
mod auth3;
mod bind;
mod bind_ack;
mod bind_nak;
mod co_cancel;
mod context;
mod fault;
mod orphaned;
mod request;
mod response;
mod shutdown;

use bytes::{Bytes, BytesMut};

pub use self::alter_context::AlterContext;
pub use self::alter_context_resp::AlterContextResp;
pub use self::auth::{AuthLocation, AuthVerifier};
pub use self::auth3::Auth3;
pub use self::bind::Bind;
pub use self::bind_ack::{BindAck, PortAny};
pub use self::bind_nak::{BindNak, RejectReason, Version};
pub use self::co_cancel::CoCancel;
pub use self::context::{ContResult, ContextResult, PresentationContext, ProviderReason};
pub use self::fault::{Fault, FaultStatus};
pub use self::orphaned::Orphaned;
pub use self::request::Request;
pub use self::response::Response;
pub use self::shutdown::Shutdown;
use crate::chain::{Chain, SHARE_AT_LEAST};
use crate::codec::{Reader, len_u16};
use crate::drep::DataRep;
use crate::error::{DecodeError, EncodeError};
use crate::header::{CommonHeader, PacketType, PfcFlags};
use crate::ndr::reader::padding;

/// Bounds that decoding enforces on what a peer sends; every default is safe.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeLimits {
    /// Largest `frag_length` accepted (the negotiated receive size; at most 65535, the largest
    /// `frag_length` there is). Default 65535.
    pub max_frag_length: u16,
    /// Largest `n_context_elem` of a bind or alter_context. Default 64.
    pub max_context_elems: u8,
    /// Largest `n_transfer_syn` of one presentation context. Default 16.
    pub max_transfer_syntaxes: u8,
}

impl DecodeLimits {
    /// The limits with `max_frag_length` set (the receive size negotiated at bind time).
    #[must_use]
    pub const fn with_max_frag_length(mut self, max_frag_length: u16) -> Self {
        self.max_frag_length = max_frag_length;
        self
    }
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_frag_length: u16::MAX,
            max_context_elems: 64,
            max_transfer_syntaxes: 16,
        }
    }
}

/// The body of a PDU, by `PTYPE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PduBody {
    /// request (0).
    Request(Request),
    /// response (2).
    Response(Response),
    /// fault (3).
    Fault(Fault),
    /// bind (11).
    Bind(Bind),
    /// bind_ack (12).
    BindAck(BindAck),
    /// bind_nak (13).
    BindNak(BindNak),
    /// alter_context (14).
    AlterContext(AlterContext),
    /// alter_context_resp (15).
    AlterContextResp(AlterContextResp),
    /// rpc_auth_3 (16).
    Auth3(Auth3),
    /// shutdown (17).
    Shutdown(Shutdown),
    /// co_cancel (18).
    CoCancel(CoCancel),
    /// orphaned (19).
    Orphaned(Orphaned),
}

impl PduBody {
    /// The `PTYPE` of this body.
    pub const fn ptype(&self) -> PacketType {
        match self {
            Self::Request(_) => PacketType::REQUEST,
            Self::Response(_) => PacketType::RESPONSE,
            Self::Fault(_) => PacketType::FAULT,
            Self::Bind(_) => PacketType::BIND,
            Self::BindAck(_) => PacketType::BIND_ACK,
            Self::BindNak(_) => PacketType::BIND_NAK,
            Self::AlterContext(_) => PacketType::ALTER_CONTEXT,
            Self::AlterContextResp(_) => PacketType::ALTER_CONTEXT_RESP,
            Self::Auth3(_) => PacketType::AUTH3,
            Self::Shutdown(_) => PacketType::SHUTDOWN,
            Self::CoCancel(_) => PacketType::CO_CANCEL,
            Self::Orphaned(_) => PacketType::ORPHANED,
        }
    }

    /// The stub of a request, response or fault.
    pub const fn stub(&self) -> Option<&Bytes> {
        match self {
            Self::Request(request) => Some(&request.stub),
            Self::Response(response) => Some(&response.stub),
            Self::Fault(fault) => Some(&fault.stub),
            _ => None,
        }
    }

    /// Takes the stub out of a request, response or fault (empty for other bodies).
    pub fn take_stub(&mut self) -> Bytes {
        match self {
            Self::Request(body) => core::mem::take(&mut body.stub),
            Self::Response(body) => core::mem::take(&mut body.stub),
            Self::Fault(body) => core::mem::take(&mut body.stub),
            _ => Bytes::new(),
        }
    }

    /// Exact number of body bytes (auth padding excluded).
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Request(body) => body.encoded_len(),
            Self::Response(body) => body.encoded_len(),
            Self::Fault(body) => body.encoded_len(),
            Self::Bind(body) => body.encoded_len(),
            Self::BindAck(body) => body.encoded_len(),
            Self::BindNak(body) => body.encoded_len(),
            Self::AlterContext(body) => body.encoded_len(),
            Self::AlterContextResp(body) => body.encoded_len(),
            Self::Auth3(body) => body.encoded_len(),
            Self::Shutdown(_) | Self::CoCancel(_) | Self::Orphaned(_) => 0,
        }
    }

    /// Appends the body in `drep`.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] for a count or length that does not fit its field.
    pub fn encode(&self, drep: DataRep, dst: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Self::Request(body) => body.encode(drep, dst),
            Self::Response(body) => body.encode(drep, dst),
            Self::Fault(body) => body.encode(drep, dst),
            Self::Bind(body) => body.encode(drep, dst)?,
            Self::BindAck(body) => body.encode(drep, dst)?,
            Self::BindNak(body) => body.encode(drep, dst)?,
            Self::AlterContext(body) => body.encode(drep, dst)?,
            Self::AlterContextResp(body) => body.encode(drep, dst)?,
            Self::Auth3(body) => body.encode(dst),
            Self::Shutdown(_) | Self::CoCancel(_) | Self::Orphaned(_) => {}
        }
        Ok(())
    }

    /// Bytes of the body before the stub (request, response, fault); 0 otherwise, where the
    /// whole body counts as the stub.
    fn stub_offset_in_body(&self) -> usize {
        match self {
            Self::Request(request) => request.stub_offset_in_body(),
            Self::Response(_) => Response::FIXED_LEN,
            Self::Fault(_) => Fault::FIXED_LEN,
            _ => 0,
        }
    }

    fn decode(
        header: &CommonHeader,
        body: Bytes,
        limits: &DecodeLimits,
    ) -> Result<Self, DecodeError> {
        let what = header.ptype.name().unwrap_or("PDU");
        let mut reader = Reader::new(body, header.drep, what, CommonHeader::LEN);
        let body = match header.ptype {
            PacketType::REQUEST => {
                let has_object = header.pfc_flags.contains(PfcFlags::OBJECT_UUID);
                return Request::decode(&mut reader, has_object).map(Self::Request);
            }
            PacketType::RESPONSE => return Response::decode(&mut reader).map(Self::Response),
            PacketType::FAULT => return Fault::decode(&mut reader).map(Self::Fault),
            PacketType::BIND_NAK => return BindNak::decode(&mut reader).map(Self::BindNak),
            PacketType::BIND => Self::Bind(Bind::decode(&mut reader, limits)?),
            PacketType::BIND_ACK => Self::BindAck(BindAck::decode(&mut reader)?),
            PacketType::ALTER_CONTEXT => {
                Self::AlterContext(AlterContext::decode(&mut reader, limits)?)
            }
            PacketType::ALTER_CONTEXT_RESP => {
                Self::AlterContextResp(AlterContextResp::decode(&mut reader)?)
            }
            PacketType::AUTH3 => Self::Auth3(Auth3::decode(&mut reader)?),
            PacketType::SHUTDOWN => Self::Shutdown(Shutdown),
            PacketType::CO_CANCEL => Self::CoCancel(CoCancel),
            PacketType::ORPHANED => Self::Orphaned(Orphaned),
            other => return Err(DecodeError::UnknownPacketType { ptype: other.0 }),
        };
        // A bare sec_trailer (auth_length 0, no auth_value) after an alter_context_resp or a
        // bind_ack: Samba's answer to an alter_context whose security leg ends the handshake.
        // There is nothing in it to read.
        if header.auth_length == 0 && matches!(body, Self::BindAck(_) | Self::AlterContextResp(_)) {
            let rest = reader.rest();
            if rest.is_empty() || rest.len() == AuthVerifier::SEC_TRAILER_LEN {
                return Ok(body);
            }
            return Err(DecodeError::TrailingBytes {
                what,
                count: rest.len(),
            });
        }
        // "Leftover bytes are an error": only bind_nak and the stub PDUs may carry more.
        reader.finish()?;
        Ok(body)
    }
}

/// One fragment: the header fields that are not derived, the body and the auth verifier.
///
/// `frag_length` and `auth_length` are computed when encoding. In a request, `PFC_OBJECT_UUID`
/// is derived from [`Request::object`]: decoding leaves it out of `pfc_flags`, encoding sets it
/// exactly when there is an object ([`Pdu::header`] gives the flags as sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    /// `rpc_vers_minor`: 0 or 1.
    pub rpc_vers_minor: u8,
    /// `pfc_flags`.
    pub pfc_flags: PfcFlags,
    /// `packed_drep`: the byte order of the header, body and stub.
    pub drep: DataRep,
    /// `call_id`.
    pub call_id: u32,
    /// The body.
    pub body: PduBody,
    /// The auth verifier, when `auth_length` is not zero.
    pub auth_verifier: Option<AuthVerifier>,
}

impl Pdu {
    /// An unfragmented PDU (`PFC_FIRST_FRAG | PFC_LAST_FRAG`), version 5.0, little-endian, with
    /// no auth verifier.
    pub const fn new(call_id: u32, body: PduBody) -> Self {
        Self {
            rpc_vers_minor: 0,
            pfc_flags: PfcFlags::FIRST_FRAG.union(PfcFlags::LAST_FRAG),
            drep: DataRep::LITTLE_ENDIAN,
            call_id,
            body,
            auth_verifier: None,
        }
    }

    /// The `PTYPE` of this PDU.
    pub const fn ptype(&self) -> PacketType {
        self.body.ptype()
    }

    /// Decodes one whole fragment with the default [`DecodeLimits`].
    ///
    /// # Errors
    /// See [`decode_with`](Self::decode_with).
    pub fn decode(frame: Bytes) -> Result<Self, DecodeError> {
        Self::decode_with(frame, &DecodeLimits::default())
    }

    /// Decodes one whole fragment: `frame` must hold exactly `frag_length` bytes.
    ///
    /// # Errors
    /// [`DecodeError`] for a bad header (version, `PTYPE`, `packed_drep`), a `frag_length` out
    /// of bounds or different from the frame's length, an auth verifier that does not fit, a
    /// body that does not decode or leaves bytes over, or a count beyond `limits`.
    pub fn decode_with(frame: Bytes, limits: &DecodeLimits) -> Result<Self, DecodeError> {
        let header = CommonHeader::decode(&frame)?;
        check_frag_length(&header, frame.len(), limits)?;
        let layout = Layout::of(&header, &frame)?;
        let auth_verifier = match &layout.auth {
            Some(auth) => Some(AuthVerifier::decode(
                header.drep,
                frame.slice(auth.sec_trailer.clone()),
                auth.sec_trailer.start,
                frame.slice(auth.auth_value.clone()),
                frame.slice(layout.body.end..auth.sec_trailer.start),
            )?),
            None => None,
        };
        let body = PduBody::decode(&header, frame.slice(layout.body.clone()), limits)?;
        let mut pfc_flags = header.pfc_flags;
        if matches!(body, PduBody::Request(_)) {
            // Derived from `Request::object`, which holds the same information.
            pfc_flags.remove(PfcFlags::OBJECT_UUID);
        }
        Ok(Self {
            rpc_vers_minor: header.rpc_vers_minor,
            pfc_flags,
            drep: header.drep,
            call_id: header.call_id,
            body,
            auth_verifier,
        })
    }

    /// Exact number of bytes [`encode`](Self::encode) appends: `frag_length`.
    pub fn encoded_len(&self) -> usize {
        CommonHeader::LEN
            + self.body.encoded_len()
            + self
                .auth_verifier
                .as_ref()
                .map_or(0, AuthVerifier::encoded_len)
    }

    /// The common header this PDU encodes with.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] when the fragment or `auth_value` exceeds 65535 bytes;
    /// [`EncodeError::InvalidField`] for an auth verifier with an empty `auth_value`.
    pub fn header(&self) -> Result<CommonHeader, EncodeError> {
        let mut pfc_flags = self.pfc_flags;
        if let PduBody::Request(request) = &self.body {
            pfc_flags.set(PfcFlags::OBJECT_UUID, request.object.is_some());
        }
        let auth_length = self.auth_verifier.as_ref().map_or(Ok(0), |auth| {
            len_u16("auth verifier", "auth_length", auth.auth_value.len())
        })?;
        Ok(CommonHeader {
            rpc_vers_minor: self.rpc_vers_minor,
            ptype: self.ptype(),
            pfc_flags,
            drep: self.drep,
            frag_length: len_u16(
                self.ptype().name().unwrap_or("PDU"),
                "frag_length",
                self.encoded_len(),
            )?,
            auth_length,
            call_id: self.call_id,
        })
    }

    /// Appends the encoded fragment.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] when the fragment exceeds 65535 bytes or a count its field.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_located(dst).map(drop)
    }

    /// Encodes into a new buffer.
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut dst = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut dst)?;
        Ok(dst.freeze())
    }

    /// Encodes an unprotected request, response or fault whose stub is given apart, as a chain
    /// of its header and fixed fields, then the stub's own segments (shared, not copied). Short
    /// segments at the front of the stub (under [`SHARE_AT_LEAST`]), and a whole short stub,
    /// are copied in after the header instead. The PDU's own stub must be empty.
    ///
    /// # Errors
    /// [`EncodeError::InvalidField`] for a PDU with an auth verifier or a stub of its own, or
    /// of another type; [`EncodeError::TooLong`] when the fragment exceeds 65535 bytes.
    pub fn to_chain_with_stub(&self, stub: Chain) -> Result<Chain, EncodeError> {
        if self.auth_verifier.is_some() {
            return Err(stub_apart("a protected fragment is signed whole"));
        }
        if !self.body.stub().is_some_and(Bytes::is_empty) {
            return Err(stub_apart("the stub is given apart"));
        }
        let mut head = self.chain_head(stub.len())?;
        // Short segments at the front (all of a short stub) join the header; the rest is
        // shared.
        let mut segments = stub.segments().peekable();
        while let Some(segment) =
            segments.next_if(|s| s.len() < SHARE_AT_LEAST || stub.len() < SHARE_AT_LEAST)
        {
            head.extend_from_slice(segment);
        }
        let mut chain = Chain::from(head.freeze());
        for segment in segments {
            chain.push(segment.clone());
        }
        Ok(chain)
    }

    /// The header and fixed fields of a request, response or fault (its own stub empty), its
    /// `frag_length` counting the `apart` bytes of stub; room is reserved for a short stub.
    fn chain_head(&self, apart: usize) -> Result<BytesMut, EncodeError> {
        let mut header = self.header()?;
        let what = self.ptype().name().unwrap_or("PDU");
        header.frag_length = len_u16(what, "frag_length", self.encoded_len() + apart)?;
        let mut head = BytesMut::with_capacity(self.encoded_len() + apart.min(SHARE_AT_LEAST));
        header.encode(&mut head);
        match &self.body {
            PduBody::Request(body) => body.encode_fixed(self.drep, &mut head),
            PduBody::Response(body) => body.encode_fixed(self.drep, &mut head),
            PduBody::Fault(body) => body.encode_fixed(self.drep, &mut head),
            _ => {
                return Err(stub_apart(
                    "only requests, responses and faults carry a stub",
                ));
            }
        }
        Ok(head)
    }

    /// Appends the encoded fragment and returns where its stub, `sec_trailer` and `auth_value`
    /// lie, relative to the fragment's first byte (`None` without an auth verifier).
    ///
    /// With an `auth_value` made by [`AuthVerifier::placeholder`], the caller then signs (and
    /// seals) the fragment in place with a
    /// [`SecurityProvider`](crate::security::SecurityProvider).
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    pub fn encode_located(&self, dst: &mut BytesMut) -> Result<Option<AuthLocation>, EncodeError> {
        let header = self.header()?;
        let start = dst.len();
        dst.reserve(self.encoded_len());
        header.encode(dst);
        self.body.encode(self.drep, dst)?;
        let body_end = dst.len() - start;
        let location = match &self.auth_verifier {
            Some(auth) => {
                auth.encode(self.drep, dst);
                let trailer = body_end + usize::from(auth.auth_pad_length);
                let value = trailer + AuthVerifier::SEC_TRAILER_LEN;
                Some(AuthLocation {
                    stub: CommonHeader::LEN + self.body.stub_offset_in_body()..trailer,
                    sec_trailer: trailer..value,
                    auth_value: value..value + auth.auth_value.len(),
                })
            }
            None => None,
        };
        debug_assert_eq!(
            dst.len() - start,
            self.encoded_len(),
            "encoded_len is exact"
        );
        Ok(location)
    }

    /// Sets the auth verifier's `auth_pad_length` as [MS-RPCE §2.2.2.11] asks: the stub of a
    /// request, response or fault padded to a multiple of 16 bytes; other bodies to a multiple
    /// of 4 bytes of the fragment. Does nothing without an auth verifier.
    ///
    /// [MS-RPCE §2.2.2.11]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    pub fn align_auth_pad(&mut self) {
        let pad = match self.body.stub() {
            Some(stub) => padding(stub.len(), AUTH_PAD_ALIGNMENT),
            None => padding(CommonHeader::LEN + self.body.encoded_len(), 4),
        };
        if let Some(auth) = &mut self.auth_verifier {
            // INVARIANT: padding(_, 16) < 16, which fits a u8.
            let pad = u8::try_from(pad).unwrap_or(0);
            if pad != auth.auth_pad_length {
                auth.auth_pad_length = pad;
                auth.auth_pad = Bytes::new();
            }
        }
    }
}

/// The error of a PDU that cannot be encoded with its stub apart.
const fn stub_apart(reason: &'static str) -> EncodeError {
    EncodeError::InvalidField {
        what: "PDU",
        field: "stub",
        reason,
    }
}

/// The stub of a protected request, response or fault is padded to this many bytes.
pub const AUTH_PAD_ALIGNMENT: usize = 16;

/// The largest stub fragment that fits a fragment of `max_frag` bytes whose stub starts at
/// frame offset `stub_offset` (24 for a request or response, 40 for a request with an object
/// UUID), given the `auth_value` length of a protected association.
///
/// With an auth verifier the result is a multiple of [`AUTH_PAD_ALIGNMENT`], so that the auth
/// padding never pushes the fragment past `max_frag`. Returns 0 when nothing fits.
pub fn max_stub_len(max_frag: u16, stub_offset: usize, auth_value_len: Option<usize>) -> usize {
    let room = usize::from(max_frag).saturating_sub(stub_offset);
    match auth_value_len {
        None => room,
        Some(auth_len) => {
            let room = room.saturating_sub(AuthVerifier::SEC_TRAILER_LEN + auth_len);
            room - room % AUTH_PAD_ALIGNMENT
        }
    }
}

/// Locates the stub, `sec_trailer` and `auth_value` of a whole received fragment without
/// decoding its body: what a state machine needs to verify and unseal it in place before
/// decoding it. `Ok(None)` when `auth_length` is zero.
///
/// # Errors
/// [`DecodeError`] for a bad header, a `frag_length` other than `frame.len()`, an
/// `auth_length` beyond the fragment, or an `auth_pad_length` that reaches into the fixed part
/// of the body.
pub fn locate_auth(frame: &[u8]) -> Result<Option<AuthLocation>, DecodeError> {
    let header = CommonHeader::decode(frame)?;
    check_frag_length(&header, frame.len(), &DecodeLimits::default())?;
    Ok(Layout::of(&header, frame)?.auth)
}

/// Where the body and the auth verifier of a received fragment lie.
struct Layout {
    body: core::ops::Range<usize>,
    auth: Option<AuthLocation>,
}

impl Layout {
    fn of(header: &CommonHeader, frame: &[u8]) -> Result<Self, DecodeError> {
        let frag_length = usize::from(header.frag_length);
        let auth_length = usize::from(header.auth_length);
        if auth_length == 0 {
            return Ok(Self {
                body: CommonHeader::LEN..frag_length,
                auth: None,
            });
        }
        // INVARIANT: `check_frag_length` established frag_length == frame.len() >= 16.
        let Some(trailer) = frag_length
            .checked_sub(auth_length + AuthVerifier::SEC_TRAILER_LEN)
            .filter(|&start| start >= CommonHeader::LEN)
        else {
            return Err(DecodeError::InvalidField {
                what: "common header",
                field: "auth_length",
                reason: "the auth verifier does not fit in the fragment",
            });
        };
        let pad = usize::from(*frame.get(trailer + 2).ok_or(DecodeError::Truncated {
            what: "sec_trailer",
            needed: trailer + 3,
            available: frame.len(),
        })?);
        let stub_start = CommonHeader::LEN + fixed_body_len(header);
        let Some(body_end) = trailer.checked_sub(pad).filter(|&end| end >= stub_start) else {
            return Err(DecodeError::InvalidField {
                what: "sec_trailer",
                field: "auth_pad_length",
                reason: "the padding reaches before the stub",
            });
        };
        let value = trailer + AuthVerifier::SEC_TRAILER_LEN;
        Ok(Self {
            body: CommonHeader::LEN..body_end,
            auth: Some(AuthLocation {
                stub: stub_start..trailer,
                sec_trailer: trailer..value,
                auth_value: value..frag_length,
            }),
        })
    }
}

/// Bytes of a stub PDU's body before the stub; 0 for the other PDUs.
fn fixed_body_len(header: &CommonHeader) -> usize {
    match header.ptype {
        PacketType::REQUEST => {
            Request::body_len_before_stub(header.pfc_flags.contains(PfcFlags::OBJECT_UUID))
        }
        PacketType::RESPONSE => Response::FIXED_LEN,
        PacketType::FAULT => Fault::FIXED_LEN,
        _ => 0,
    }
}

pub(crate) fn check_frag_length(
    header: &CommonHeader,
    available: usize,
    limits: &DecodeLimits,
) -> Result<(), DecodeError> {
    let frag_length = usize::from(header.frag_length);
    if frag_length < CommonHeader::LEN {
        return Err(DecodeError::InvalidField {
            what: "common header",
            field: "frag_length",
            reason: "shorter than the common header",
        });
    }
    if header.frag_length > limits.max_frag_length {
        return Err(DecodeError::LimitExceeded {
            what: "frag_length",
            value: frag_length,
            limit: limits.max_frag_length.into(),
        });
    }
    if available < frag_length {
        return Err(DecodeError::Truncated {
            what: "fragment",
            needed: frag_length,
            available,
        });
    }
    if available > frag_length {
        return Err(DecodeError::TrailingBytes {
            what: "fragment",
            count: available - frag_length,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
