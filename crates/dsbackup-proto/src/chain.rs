//! [`Chain`]: bytes held as a sequence of shared segments, so that a large payload (a backup
//! read's file data) travels from the buffer it was read into to the socket, and from the
//! socket's receive buffers to the consumer, without being copied on the way.
//!
//! ```text
//!  server  NDR writer   [max_count offset actual_count] [file data ..................] [pad pcbRead hr]
//!          (stub)        small segment                    shared segment: the read's Bytes  small segment
//!          fragmenter   frame: [header + counts] [slice of the data]     (signed or sealed frames
//!          (frames)     frame: [header] [slice of the data] [status]      are copied: they are
//!                                                                          signed in place)
//!
//!  client  reassembly   [stub of fragment 1] [stub of fragment 2] ...   slices of the received frames
//!          decode_chain [12-byte header, joined] [data: the same slices] [tail, joined]
//! ```

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut as _, Bytes, BytesMut};

/// Byte runs shorter than this are copied rather than shared (by
/// [`NdrWriter::shared_bytes`](crate::ndr::NdrWriter::shared_bytes) and
/// [`Pdu::to_chain_with_stub`](crate::pdu::Pdu::to_chain_with_stub)): below it, a copy costs
/// less than one more segment to track and write.
pub const SHARE_AT_LEAST: usize = 4096;

/// Bytes as a sequence of [`Bytes`] segments, read front to back. Empty segments are never
/// kept.
///
/// A chain is cheap to build from shared buffers (no byte is copied) and is itself a [`Buf`],
/// so it writes with [`chunks_vectored`](Buf::chunks_vectored) (one `writev` for all its
/// segments).
#[derive(Clone, Debug, Default)]
pub struct Chain {
    segments: VecDeque<Bytes>,
    len: usize,
}

impl Chain {
    /// An empty chain.
    pub const fn new() -> Self {
        Self {
            segments: VecDeque::new(),
            len: 0,
        }
    }

    /// Appends a segment (nothing, for an empty one).
    pub fn push(&mut self, segment: Bytes) {
        if !segment.is_empty() {
            self.len = self.len.saturating_add(segment.len());
            self.segments.push_back(segment);
        }
    }

    /// Total length in bytes.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the chain holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The segments, front to back (none empty).
    pub fn segments(&self) -> impl ExactSizeIterator<Item = &Bytes> {
        self.segments.iter()
    }

    /// Removes the first `n` bytes (all of them if fewer) and returns them as a chain of
    /// slices of the segments (no byte copied).
    pub fn split_to(&mut self, n: usize) -> Self {
        let mut head = Self::new();
        let mut left = n.min(self.len);
        while left > 0 {
            let Some(front) = self.segments.front_mut() else {
                break;
            };
            if left < front.len() {
                head.push(front.split_to(left));
                break;
            }
            left -= front.len();
            if let Some(segment) = self.segments.pop_front() {
                head.push(segment);
            }
        }
        self.len -= head.len;
        head
    }

    /// Removes and returns the first segment.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        let segment = self.segments.pop_front()?;
        self.len -= segment.len();
        Some(segment)
    }

    /// Removes the first `n` bytes (all of them if fewer) and returns them as one contiguous
    /// buffer: a slice of the front segment when they lie within it, copied otherwise.
    pub fn split_to_contiguous(&mut self, n: usize) -> Bytes {
        let n = n.min(self.len);
        let Some(front) = self.segments.front_mut() else {
            return Bytes::new();
        };
        if n <= front.len() {
            let head = front.split_to(n);
            if front.is_empty() {
                self.segments.pop_front();
            }
            self.len -= n;
            return head;
        }
        let mut joined = BytesMut::with_capacity(n);
        joined.put((&mut *self).take(n));
        joined.freeze()
    }

    /// The byte at `index`, if the chain is that long.
    pub fn get(&self, mut index: usize) -> Option<u8> {
        for segment in &self.segments {
            match segment.get(index) {
                Some(byte) => return Some(*byte),
                None => index -= segment.len(),
            }
        }
        None
    }

    /// Shortens the chain to its first `len` bytes (nothing, if it is not longer).
    pub fn truncate(&mut self, len: usize) {
        let mut kept = 0;
        let mut segments = 0;
        for segment in &mut self.segments {
            if kept >= len {
                break;
            }
            segment.truncate(len - kept);
            kept += segment.len();
            segments += 1;
        }
        self.segments.truncate(segments);
        self.len = kept;
    }

    /// Runs `edit` on the bytes made contiguous and writable: without a copy when the chain is
    /// one segment nobody else holds, copied into one buffer otherwise.
    pub fn edit<R>(&mut self, edit: impl FnOnce(&mut [u8]) -> R) -> R {
        let joined = if self.segments.len() == 1 {
            self.segments.pop_front().unwrap_or_default()
        } else {
            self.to_bytes()
        };
        let mut bytes = joined
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let result = edit(&mut bytes);
        *self = Self::from(bytes.freeze());
        result
    }

    /// The whole chain as one buffer: the segment itself when there is one, copied otherwise.
    pub fn to_bytes(&self) -> Bytes {
        match self.segments.len() {
            0 => Bytes::new(),
            1 => self.segments.front().cloned().unwrap_or_default(),
            _ => {
                let mut joined = BytesMut::with_capacity(self.len);
                for segment in &self.segments {
                    joined.extend_from_slice(segment);
                }
                joined.freeze()
            }
        }
    }

    /// The whole chain copied into a vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for segment in &self.segments {
            out.extend_from_slice(segment);
        }
        out
    }
}

impl Buf for Chain {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        self.segments
            .front()
            .map_or(&[], |segment| segment.as_ref())
    }

    fn advance(&mut self, mut cnt: usize) {
        // `Buf::advance` may panic past the end; this one stops at the end instead.
        cnt = cnt.min(self.len);
        self.len -= cnt;
        while cnt > 0 {
            let Some(front) = self.segments.front_mut() else {
                break;
            };
            if cnt < front.len() {
                front.advance(cnt);
                break;
            }
            cnt -= front.len();
            self.segments.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for (slot, segment) in dst.iter_mut().zip(&self.segments) {
            *slot = IoSlice::new(segment);
            filled += 1;
        }
        filled
    }
}

impl From<Bytes> for Chain {
    fn from(segment: Bytes) -> Self {
        let mut chain = Self::new();
        chain.push(segment);
        chain
    }
}

impl From<Vec<u8>> for Chain {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from(Bytes::from(bytes))
    }
}

impl FromIterator<Bytes> for Chain {
    fn from_iter<I: IntoIterator<Item = Bytes>>(segments: I) -> Self {
        let mut chain = Self::new();
        for segment in segments {
            chain.push(segment);
        }
        chain
    }
}

/// Equal when the bytes are, however they are cut into segments.
impl PartialEq for Chain {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .segments
                .iter()
                .flat_map(|segment| segment.iter())
                .eq(other.segments.iter().flat_map(|segment| segment.iter()))
    }
}

impl Eq for Chain {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chain_of(parts: &[&'static [u8]]) -> Chain {
        parts.iter().map(|part| Bytes::from_static(part)).collect()
    }

    #[test]
    fn a_split_within_one_segment_is_a_slice_of_it() {
        let data = Bytes::from(vec![7_u8; 100]);
        let mut chain = Chain::from(data.clone());
        let head = chain.split_to_contiguous(40);
        // Same allocation: no byte was copied.
        assert_eq!(head.as_ptr(), data.as_ptr());
        assert_eq!(chain.len(), 60);
        assert_eq!(chain.chunk().as_ptr(), data[40..].as_ptr());
    }

    #[test]
    fn a_split_across_segments_joins_exactly_the_bytes_asked_for() {
        let mut chain = chain_of(&[b"abc", b"", b"defg", b"hi"]);
        assert_eq!(chain.segments().len(), 3, "the empty segment is dropped");
        assert_eq!(chain.split_to_contiguous(5), Bytes::from_static(b"abcde"));
        assert_eq!(chain.to_bytes(), Bytes::from_static(b"fghi"));
        assert_eq!(chain.split_to_contiguous(100), Bytes::from_static(b"fghi"));
        assert!(chain.is_empty());
        assert_eq!(chain.split_to_contiguous(1), Bytes::new());
    }

    #[test]
    fn advancing_past_the_end_empties_the_chain_without_panicking() {
        let mut chain = chain_of(&[b"ab", b"cd"]);
        chain.advance(3);
        assert_eq!(chain.chunk(), b"d");
        chain.advance(10);
        assert_eq!(chain.remaining(), 0);
        assert_eq!(chain.chunk(), b"");
    }

    #[test]
    fn truncating_and_indexing_follow_the_bytes_across_segments() {
        let mut chain = chain_of(&[b"abc", b"defg", b"hi"]);
        assert_eq!(chain.get(0), Some(b'a'));
        assert_eq!(chain.get(3), Some(b'd'));
        assert_eq!(chain.get(8), Some(b'i'));
        assert_eq!(chain.get(9), None);
        chain.truncate(5);
        assert_eq!(chain.to_bytes(), Bytes::from_static(b"abcde"));
        assert_eq!(chain.segments().len(), 2);
        chain.truncate(99);
        assert_eq!(chain.len(), 5);
        chain.truncate(3);
        assert_eq!(chain.segments().len(), 1);
        chain.truncate(0);
        assert!(chain.is_empty());
        assert_eq!(chain.segments().len(), 0);
    }

    #[test]
    fn an_edit_sees_and_changes_the_whole_chain_without_touching_shared_bytes() {
        let shared = Bytes::from_static(b"defg");
        let mut chain: Chain = [Bytes::from_static(b"abc"), shared.clone()]
            .into_iter()
            .collect();
        let len = chain.edit(|bytes| {
            bytes[3] = b'D';
            bytes.len()
        });
        assert_eq!(len, 7);
        assert_eq!(chain.to_bytes(), Bytes::from_static(b"abcDefg"));
        assert_eq!(shared, Bytes::from_static(b"defg"));
    }

    proptest! {
        /// Whatever the segments and the cuts, the pieces put back together are the bytes.
        #[test]
        fn splits_and_vectored_chunks_give_back_the_bytes(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..8),
            cuts in proptest::collection::vec(0_usize..70, 1..10),
        ) {
            let expected: Vec<u8> = parts.concat();
            let chain: Chain = parts.iter().cloned().map(Bytes::from).collect();
            prop_assert_eq!(chain.len(), expected.len());
            prop_assert_eq!(chain.to_vec(), expected.clone());
            let mut slices = [IoSlice::new(&[]); 8];
            let filled = chain.chunks_vectored(&mut slices);
            let gathered: Vec<u8> = slices.iter().take(filled).flat_map(|s| s.iter().copied()).collect();
            prop_assert_eq!(&gathered, &expected);
            let mut rest = chain.clone();
            let mut pieces = Vec::new();
            for cut in cuts {
                pieces.extend_from_slice(&rest.split_to_contiguous(cut));
            }
            pieces.extend_from_slice(&rest.to_bytes());
            prop_assert_eq!(pieces, expected);
        }
    }
}
