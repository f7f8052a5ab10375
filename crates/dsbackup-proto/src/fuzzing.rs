//! Oracles for the cargo-fuzz targets (`fuzz/`), built and tested on stable.
//!
//! Each takes arbitrary bytes; a panic is a finding.

use bytes::Bytes;

use crate::framing::frame_len;
use crate::pdu::Pdu;

/// Decodes `data` as one fragment; must never panic.
pub fn decode_pdu(data: &[u8]) {
    let _ = Pdu::decode(Bytes::copy_from_slice(data));
    let _ = crate::pdu::locate_auth(data);
}

/// Decodes `data`; if it decodes, re-encodes it and decodes that again: the values must be
/// equal, and encoding the second value must give the same bytes.
///
/// # Panics
/// When a decoded PDU does not survive the round trip.
pub fn round_trip_pdu(data: &[u8]) {
    let Ok(pdu) = Pdu::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    #[expect(
        clippy::panic,
        reason = "a fuzzing oracle reports a finding by panicking"
    )]
    let Ok(encoded) = pdu.to_bytes() else {
        panic!("a decoded PDU does not encode: {pdu:?}");
    };
    assert_eq!(encoded.len(), pdu.encoded_len(), "encoded_len is exact");
    let again = Pdu::decode(encoded.clone());
    assert_eq!(
        again.as_ref(),
        Ok(&pdu),
        "re-encoded PDU decodes to the same value"
    );
    if let Ok(again) = again {
        assert_eq!(
            again.to_bytes().ok(),
            Some(encoded),
            "encoding is deterministic"
        );
    }
}

/// Frames a byte stream twice, once whole and once fed in chunks, as a transport would receive
/// it: both must give the same fragments and end in the same error.
///
/// `data[0] % 8 + 1` is the number of chunk sizes that follow; each of those bytes plus one is a
/// chunk size, used in turn; the rest of `data` is the stream.
///
/// # Panics
/// When chunked framing differs from whole framing.
pub fn frame_split(data: &[u8]) {
    let Some((&count, data)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 8) + 1;
    let (sizes, stream) = data.split_at(count.min(data.len()));
    let whole = frames(stream, &mut core::iter::once(stream.len()));
    let mut chunks = sizes.iter().map(|&size| usize::from(size) + 1).cycle();
    let chunked = frames(stream, &mut chunks);
    assert_eq!(
        whole, chunked,
        "framing does not depend on how bytes arrive"
    );
}

/// Frames `stream` delivered in chunks of the sizes `chunks` yields.
fn frames(
    stream: &[u8],
    chunks: &mut dyn Iterator<Item = usize>,
) -> (Vec<Vec<u8>>, Option<crate::error::DecodeError>) {
    const MAX_FRAG: u16 = u16::MAX;
    let mut buffer: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut rest = stream;
    loop {
        match frame_len(&buffer, MAX_FRAG) {
            Ok(Some(len)) => {
                let frame: Vec<u8> = buffer.drain(..len).collect();
                out.push(frame);
            }
            Ok(None) if rest.is_empty() => return (out, None),
            Ok(None) => {
                let take = chunks.next().unwrap_or(rest.len()).clamp(1, rest.len());
                let (head, tail) = rest.split_at(take);
                buffer.extend_from_slice(head);
                rest = tail;
            }
            Err(error) => return (out, Some(error)),
        }
    }
}
