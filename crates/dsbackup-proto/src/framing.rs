//! Splitting a byte stream into fragments: the contract of a `tokio_util::codec::Decoder`, as a
//! pure function the transport and the fuzzers share.

use crate::error::DecodeError;
use crate::header::{CommonHeader, PacketType};

/// Length of the fragment at the start of `buf`, read from its common header.
///
/// `Ok(None)`: fewer than 16 bytes, or fewer than `frag_length`; read more. `Ok(Some(n))`: the
/// first `n` bytes are a whole fragment. Only `frag_length` is examined, in the byte order the
/// integer representation of `packed_drep` names (big-endian for 0, little-endian otherwise, as
/// Samba reads it): a fragment of another protocol version or data representation is still cut
/// whole, so that the association can answer it (a bind_nak `protocol_version_not_supported`
/// before the bind, a fault after) instead of the connection being dropped unanswered.
///
/// # Errors
/// [`DecodeError`] for a `PTYPE` that is not connection-oriented (the bytes are not DCE/RPC),
/// a `frag_length` under 16 or over `max_frag`: the stream cannot be
/// resynchronised and the connection must be dropped.
pub fn frame_len(buf: &[u8], max_frag: u16) -> Result<Option<usize>, DecodeError> {
    let Some(&[_, _, ptype, _, drep0, _, _, _, f0, f1, ..]) =
        buf.first_chunk::<{ CommonHeader::LEN }>()
    else {
        return Ok(None);
    };
    // Not DCE/RPC at all (an HTTP request, random bytes): nothing to answer.
    if !PacketType(ptype).is_connection_oriented() {
        return Err(DecodeError::UnknownPacketType { ptype });
    }
    let frag_length = if drep0 >> 4 == 0 {
        u16::from_be_bytes([f0, f1])
    } else {
        u16::from_le_bytes([f0, f1])
    };
    if usize::from(frag_length) < CommonHeader::LEN {
        return Err(DecodeError::InvalidField {
            what: "common header",
            field: "frag_length",
            reason: "shorter than the common header",
        });
    }
    if frag_length > max_frag {
        return Err(DecodeError::LimitExceeded {
            what: "frag_length",
            value: usize::from(frag_length),
            limit: usize::from(max_frag),
        });
    }
    let frag_length = usize::from(frag_length);
    Ok((buf.len() >= frag_length).then_some(frag_length))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: [u8; 16] = [
        0x05, 0x00, // rpc_vers 5, rpc_vers_minor 0
        0x0d, 0x03, // PTYPE bind_nak, FIRST_FRAG | LAST_FRAG
        0x10, 0x00, 0x00, 0x00, // packed_drep: little-endian
        0x18, 0x00, 0x00, 0x00, // frag_length 24, auth_length 0
        0x02, 0x00, 0x00, 0x00, // call_id 2
    ];

    #[test]
    fn needs_a_whole_header_then_a_whole_fragment() {
        assert_eq!(frame_len(&HEADER[..15], 4280), Ok(None));
        assert_eq!(frame_len(&HEADER, 4280), Ok(None));
        let mut buf = HEADER.to_vec();
        buf.extend_from_slice(&[0; 8]);
        assert_eq!(frame_len(&buf, 4280), Ok(Some(24)));
        buf.extend_from_slice(&HEADER);
        assert_eq!(frame_len(&buf, 4280), Ok(Some(24)));
    }

    #[test]
    fn frag_length_below_16_or_above_the_limit_is_refused() {
        let mut short = HEADER;
        short[8] = 15;
        assert!(matches!(
            frame_len(&short, 4280),
            Err(DecodeError::InvalidField {
                field: "frag_length",
                ..
            })
        ));
        let mut long = HEADER;
        long[8..10].copy_from_slice(&4281u16.to_le_bytes());
        assert_eq!(
            frame_len(&long, 4280),
            Err(DecodeError::LimitExceeded {
                what: "frag_length",
                value: 4281,
                limit: 4280
            })
        );
    }
}
