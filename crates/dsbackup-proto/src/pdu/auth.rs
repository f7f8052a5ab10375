//! The auth verifier at the end of a PDU ([MS-RPCE §2.2.2.11], [C706 §13.2.6.1]).
//!
//! ```text
//!                     frag_length - auth_length - 8               frag_length - auth_length
//! ... body | auth pad | auth_type | auth_level | auth_pad_length | auth_reserved |
//!          |          |    u8     |     u8     |       u8        |      u8       |
//!          |          | auth_context_id u32                      | auth_value [auth_length]
//! ```
//!
//! "The sec_trailer structure MUST be placed at the end of the PDU, including past the
//! authentication padding" ([MS-RPCE §2.2.2.11]): its offset is computed from `frag_length` and
//! `auth_length`, never searched for.
//!
//! [MS-RPCE §2.2.2.11]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
//! [C706 §13.2.6.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap13.htm

use core::fmt;
use core::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{PutDrep, Reader};
use crate::drep::DataRep;
use crate::error::DecodeError;
use crate::security::{AuthLevel, AuthType};

/// The `sec_trailer` and `auth_value` of a PDU.
///
/// Two verifiers are equal when they encode to the same bytes: an empty `auth_pad` equals
/// `auth_pad_length` zero bytes.
#[derive(Clone, Eq)]
pub struct AuthVerifier {
    /// `auth_type`.
    pub auth_type: AuthType,
    /// `auth_level`.
    pub auth_level: AuthLevel,
    /// `auth_pad_length`: zero bytes between the body and the `sec_trailer`. The encoder writes
    /// exactly this many; [`Pdu::align_auth_pad`](crate::pdu::Pdu::align_auth_pad) sets it.
    pub auth_pad_length: u8,
    /// `auth_reserved`.
    pub auth_reserved: u8,
    /// `auth_context_id`.
    pub auth_context_id: u32,
    /// `auth_value`: a security token or a signature.
    pub auth_value: Bytes,
    /// The auth padding as received (a slice of the frame; sealed fragments encrypt it). The
    /// encoder writes these bytes when there are exactly `auth_pad_length` of them, zeros
    /// otherwise: leave it empty when building a PDU.
    pub auth_pad: Bytes,
}

impl AuthVerifier {
    /// Length of the `sec_trailer`: 1 /* auth_type */ + 1 /* auth_level */
    /// + 1 /* auth_pad_length */ + 1 /* auth_reserved */ + 4 /* auth_context_id */.
    pub const SEC_TRAILER_LEN: usize = 1 + 1 + 1 + 1 + 4;

    /// A verifier with no padding (set it with
    /// [`Pdu::align_auth_pad`](crate::pdu::Pdu::align_auth_pad)).
    pub const fn new(
        auth_type: AuthType,
        auth_level: AuthLevel,
        auth_context_id: u32,
        auth_value: Bytes,
    ) -> Self {
        Self {
            auth_type,
            auth_level,
            auth_pad_length: 0,
            auth_reserved: 0,
            auth_context_id,
            auth_value,
            auth_pad: Bytes::new(),
        }
    }

    /// A verifier whose `auth_value` is `signature_len` zero bytes, to be filled in place by a
    /// [`SecurityProvider`](crate::security::SecurityProvider) after encoding.
    pub fn placeholder(
        auth_type: AuthType,
        auth_level: AuthLevel,
        auth_context_id: u32,
        signature_len: usize,
    ) -> Self {
        Self::new(
            auth_type,
            auth_level,
            auth_context_id,
            Bytes::from(vec![0; signature_len]),
        )
    }

    /// Bytes this verifier adds after the body: padding, `sec_trailer` and `auth_value`.
    pub fn encoded_len(&self) -> usize {
        usize::from(self.auth_pad_length) + Self::SEC_TRAILER_LEN + self.auth_value.len()
    }

    /// Appends the padding, the `sec_trailer` and `auth_value`.
    pub(crate) fn encode(&self, drep: DataRep, dst: &mut BytesMut) {
        match self.written_pad() {
            Some(pad) => dst.put_slice(pad),
            None => dst.put_bytes(0, usize::from(self.auth_pad_length)),
        }
        dst.put_u8(self.auth_type.0);
        dst.put_u8(self.auth_level.0);
        dst.put_u8(self.auth_pad_length);
        dst.put_u8(self.auth_reserved);
        dst.put_u32_drep(drep, self.auth_context_id);
        dst.put_slice(&self.auth_value);
    }

    /// Decodes a `sec_trailer` (exactly 8 bytes) and takes `auth_value` and the padding.
    pub(crate) fn decode(
        drep: DataRep,
        sec_trailer: Bytes,
        offset: usize,
        auth_value: Bytes,
        auth_pad: Bytes,
    ) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(sec_trailer, drep, "sec_trailer", offset);
        Ok(Self {
            auth_type: AuthType(reader.u8()?),
            auth_level: AuthLevel(reader.u8()?),
            auth_pad_length: reader.u8()?,
            auth_reserved: reader.u8()?,
            auth_context_id: reader.u32()?,
            auth_value,
            auth_pad,
        })
    }
}

impl AuthVerifier {
    /// The padding bytes the encoder writes, `None` for zeros.
    fn written_pad(&self) -> Option<&[u8]> {
        (self.auth_pad.len() == usize::from(self.auth_pad_length)).then_some(&self.auth_pad[..])
    }
}

impl PartialEq for AuthVerifier {
    fn eq(&self, other: &Self) -> bool {
        let pads_equal = match (self.written_pad(), other.written_pad()) {
            (Some(a), Some(b)) => a == b,
            (Some(pad), None) | (None, Some(pad)) => pad.iter().all(|&b| b == 0),
            (None, None) => true,
        };
        self.auth_type == other.auth_type
            && self.auth_level == other.auth_level
            && self.auth_pad_length == other.auth_pad_length
            && self.auth_reserved == other.auth_reserved
            && self.auth_context_id == other.auth_context_id
            && self.auth_value == other.auth_value
            && pads_equal
    }
}

impl fmt::Debug for AuthVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // auth_value may be a key-bearing token: show its length only.
        f.debug_struct("AuthVerifier")
            .field("auth_type", &self.auth_type)
            .field("auth_level", &self.auth_level)
            .field("auth_pad_length", &self.auth_pad_length)
            .field("auth_reserved", &self.auth_reserved)
            .field("auth_context_id", &self.auth_context_id)
            .field("auth_value_len", &self.auth_value.len())
            .finish()
    }
}

/// Where the protected parts of an encoded or received fragment lie, as byte ranges from the
/// first header byte: what a [`SecurityProvider`](crate::security::SecurityProvider) signs,
/// seals and checks.
///
/// The signature covers `0..sec_trailer.end`; sealing covers `stub` (the stub and its auth
/// padding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthLocation {
    /// The stub and its auth padding for request, response and fault; the whole body after the
    /// common header for the other PDUs.
    pub stub: Range<usize>,
    /// The 8-byte `sec_trailer`.
    pub sec_trailer: Range<usize>,
    /// `auth_value`, up to `frag_length`.
    pub auth_value: Range<usize>,
}
