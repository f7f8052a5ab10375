//! The read side of a server connection: whole fragments out of the byte stream, and since
//! when a fragment has been arriving (for the mid-fragment deadline).
//!
//! Reading is a step of its own ([`FrameReader::fill`]) apart from cutting fragments
//! ([`FrameReader::next_frame`]), so that the connection task can stop reading while its
//! answers are not taken, and still cut the fragments it holds already.

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt as _;
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::Instant;
use tokio_util::codec::Decoder as _;

use crate::codec::{FrameCodec, FrameError};

/// Bytes asked of the socket per read at least.
const READ_CHUNK: usize = 8 * 1024;

/// Fragments from one socket.
#[derive(Debug)]
pub(super) struct FrameReader {
    read: OwnedReadHalf,
    buf: BytesMut,
    codec: FrameCodec,
    /// Since when the bytes buffered are an incomplete fragment.
    partial_since: Option<Instant>,
}

impl FrameReader {
    pub(super) fn new(read: OwnedReadHalf) -> Self {
        Self {
            read,
            buf: BytesMut::new(),
            codec: FrameCodec::default(),
            partial_since: None,
        }
    }

    /// Lowers (or raises) the largest fragment accepted.
    pub(super) fn set_max_frag(&mut self, max_frag: u16) {
        self.codec.set_max_frag(max_frag);
    }

    /// The next whole fragment buffered, if any.
    pub(super) fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        let frame = self.codec.decode(&mut self.buf)?;
        if self.buf.is_empty() {
            self.partial_since = None;
        } else if frame.is_some() {
            // The next fragment has begun already.
            self.partial_since = Some(Instant::now());
        }
        Ok(frame)
    }

    /// Reads more bytes (cancel safe); `false` at the end of the stream.
    pub(super) async fn fill(&mut self) -> std::io::Result<bool> {
        self.buf.reserve(READ_CHUNK);
        let read = self.read.read_buf(&mut self.buf).await?;
        if read > 0 && self.partial_since.is_none() {
            self.partial_since = Some(Instant::now());
        }
        Ok(read > 0)
    }

    /// The next whole fragment, reading as needed; `None` at the end of the stream.
    pub(super) async fn read_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            if let Some(frame) = self.next_frame()? {
                return Ok(Some(frame));
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()))
                };
            }
        }
    }

    /// Since when an incomplete fragment is buffered, if one is.
    pub(super) fn partial_since(&self) -> Option<Instant> {
        self.partial_since
    }
}
