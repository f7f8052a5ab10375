//! Cutting a TCP byte stream into DCE/RPC fragments: a [`tokio_util::codec`] over
//! [`dsbackup_proto::frame_len`].

use bytes::{Bytes, BytesMut};
use dsbackup_proto::{DecodeError, frame_len};
use tokio_util::codec::{Decoder, Encoder};

/// Frames a connection-oriented DCE/RPC stream: each item is one whole fragment, at most
/// `max_frag` bytes.
///
/// The bound starts at 65535 (what a bind may be) and is lowered by the driver to the
/// association's `max_recv_frag` ([`set_max_frag`](Self::set_max_frag)). Nothing is reserved
/// by a peer-given length: the buffer grows with the bytes actually received.
#[derive(Clone, Copy, Debug)]
pub struct FrameCodec {
    max_frag: u16,
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(u16::MAX)
    }
}

impl FrameCodec {
    /// A codec accepting fragments of up to `max_frag` bytes.
    pub const fn new(max_frag: u16) -> Self {
        Self { max_frag }
    }

    /// Changes the largest fragment accepted.
    pub fn set_max_frag(&mut self, max_frag: u16) {
        self.max_frag = max_frag;
    }

    /// The largest fragment accepted.
    pub const fn max_frag(&self) -> u16 {
        self.max_frag
    }
}

/// Why the stream cannot be framed any further.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The socket failed, or closed in the middle of a fragment.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a DCE/RPC fragment header (or announce a fragment past the bound).
    #[error("not a fragment: {0}")]
    Malformed(#[from] DecodeError),
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        Ok(frame_len(src, self.max_frag)?.map(|len| src.split_to(len).freeze()))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 24-byte bind_nak, little-endian, call id 2.
    const FRAME: [u8; 24] = [
        0x05, 0x00, 0x0d, 0x03, // rpc_vers 5.0, PTYPE bind_nak, FIRST_FRAG | LAST_FRAG
        0x10, 0x00, 0x00, 0x00, // packed_drep: little-endian, ASCII, IEEE
        0x18, 0x00, 0x00, 0x00, // frag_length 24, auth_length 0
        0x02, 0x00, 0x00, 0x00, // call_id 2
        0x00, 0x00, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00, // reason, versions
    ];

    #[test]
    fn frames_come_out_whole_whatever_the_chunks() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        let stream: Vec<u8> = FRAME.iter().chain(FRAME.iter()).copied().collect();
        let mut frames = Vec::new();
        for chunk in stream.chunks(5) {
            buf.extend_from_slice(chunk);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames, vec![Bytes::from_static(&FRAME); 2]);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_fragment_past_the_bound_or_garbage_is_an_error() {
        let mut codec = FrameCodec::new(23);
        let mut buf = BytesMut::from(&FRAME[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::Malformed(DecodeError::LimitExceeded { .. }))
        ));
        let mut codec = FrameCodec::default();
        let mut garbage = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x\r\n"[..]);
        assert!(matches!(
            codec.decode(&mut garbage),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn end_of_stream_inside_a_fragment_is_an_error() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&FRAME[..20]);
        assert!(matches!(codec.decode_eof(&mut buf), Err(FrameError::Io(_))));
    }
}
