//! The buffers `HrRBackupRead` reads the file into, recycled.
//!
//! A read's answer is its buffer, frozen and sent without a copy (the stub and the fragments
//! share it). A fresh allocation per read would cost page faults on every read of a megabyte or
//! more (the allocator maps such buffers anew each time), and zeroing it a pass over the memory
//! the read then overwrites; instead the pool keeps a handle to each answer, and once every
//! other handle is gone (written and dropped) the answer's memory becomes the next read's
//! buffer, as it is: its bytes are initialised (by the read before), so no pass zeroes them.
//!
//! ```text
//!  take(len) ─► [read into it] ─► freeze: the answer (shared, sent, dropped)
//!      ▲                                   │
//!      └──── the pool's handle, once unique ◄──┘  (give_back keeps a handle)
//! ```

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use bytes::{Bytes, BytesMut};

/// Buffers kept for reuse at most.
const KEPT: usize = 8;
/// Buffers above this size are not kept (a pool of 16 MiB reads would hold too much).
const KEPT_CAPACITY: usize = 4 << 20;

/// A small pool of read buffers, shared by the server's sessions.
#[derive(Debug, Default)]
pub(super) struct ReadBuffers {
    /// Handles to earlier answers, oldest first (the likeliest to be gone elsewhere).
    kept: Mutex<VecDeque<Bytes>>,
}

impl ReadBuffers {
    /// A buffer of `len` bytes to read into: the memory of an earlier answer nothing else
    /// references any more (its old bytes, to be overwritten; only a part past its length is
    /// zeroed), a new zeroed one otherwise.
    pub(super) fn take(&self, len: usize) -> BytesMut {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let mut reused = None;
        for _ in 0..kept.len() {
            let Some(answer) = kept.pop_front() else {
                break;
            };
            match answer.try_into_mut() {
                Ok(buf) => {
                    reused = Some(buf);
                    break;
                }
                Err(answer) => kept.push_back(answer),
            }
        }
        drop(kept);
        let mut buf = reused.unwrap_or_else(|| BytesMut::with_capacity(len));
        if buf.len() >= len {
            buf.truncate(len);
        } else {
            buf.resize(len, 0);
        }
        buf
    }

    /// Keeps a handle to a read's answer, whose memory [`take`](Self::take) reuses once the
    /// answer is gone everywhere else.
    pub(super) fn give_back(&self, answer: &Bytes) {
        if answer.is_empty() || answer.len() > KEPT_CAPACITY {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < KEPT {
            kept.push_back(answer.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_reused_once_the_answer_cut_from_it_is_dropped() {
        let buffers = ReadBuffers::default();
        let mut buf = buffers.take(1000);
        assert_eq!(buf.len(), 1000);
        assert!(buf.iter().all(|&b| b == 0), "new memory is zeroed");
        buf.fill(7);
        let answer = buf.freeze();
        let first = answer.as_ptr();
        buffers.give_back(&answer);
        // The answer is still alive: the next read gets other memory.
        let mut other = buffers.take(1000);
        assert_ne!(other.as_ptr(), first);
        other.fill(9);
        let second = other.as_ptr();
        let other_answer = other.freeze();
        buffers.give_back(&other_answer);
        // The first answer is gone, the second still alive: the first allocation comes back
        // with its old bytes (the read overwrites them), cut to the length asked.
        drop(answer);
        let again = buffers.take(600);
        assert_eq!(again.as_ptr(), first, "the first allocation is reused");
        assert_eq!(again.len(), 600);
        assert!(again.iter().all(|&b| b == 7));
        drop(again);
        drop(other_answer);
        let reused = buffers.take(1000);
        assert_eq!(reused.as_ptr(), second, "the second allocation is reused");
        assert!(reused.iter().all(|&b| b == 9));
        // A longer read than the kept answer: the part past it is zeroed.
        let answer = reused.freeze();
        buffers.give_back(&answer);
        drop(answer);
        let longer = buffers.take(1500);
        assert_eq!(longer.len(), 1500);
        assert!(longer[..1000].iter().all(|&b| b == 9));
        assert!(longer[1000..].iter().all(|&b| b == 0));
    }
}
