//! The buffers `HrRBackupRead` reads the file into, recycled.
//!
//! A read's answer is a slice of its buffer, sent without a copy (the stub and the fragments
//! share it). A fresh allocation per read would cost page faults on every read of a megabyte or
//! more (the allocator maps such buffers anew each time); instead the buffer a read was cut
//! from is taken up again once every answer cut from it has been written and dropped.
//!
//! ```text
//!  take(len) ─► [read into it] ─► split off the bytes read ─► answer (shared, sent, dropped)
//!      ▲                                   │
//!      └──── give_back(the rest) ◄─────────┘   try_reclaim() takes the whole allocation back
//!                                               once the answer is gone
//! ```

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use bytes::BytesMut;

/// Buffers kept for reuse at most.
const KEPT: usize = 8;
/// Buffers above this capacity are not kept (a pool of 16 MiB reads would hold too much).
const KEPT_CAPACITY: usize = 4 << 20;

/// A small pool of read buffers, shared by the server's sessions.
#[derive(Debug, Default)]
pub(super) struct ReadBuffers {
    /// What is left of earlier buffers, oldest first (its answer is the likeliest to be gone).
    free: Mutex<VecDeque<BytesMut>>,
}

impl ReadBuffers {
    /// A zeroed buffer of `len` bytes to read into: the allocation of an earlier read when
    /// nothing references it any more, a new one otherwise.
    pub(super) fn take(&self, len: usize) -> BytesMut {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let reclaimed = free.iter_mut().position(|buf| {
            buf.clear();
            buf.try_reclaim(len)
        });
        let mut buf = reclaimed
            .and_then(|index| free.remove(index))
            .unwrap_or_else(|| BytesMut::with_capacity(len));
        drop(free);
        buf.resize(len, 0);
        buf
    }

    /// Keeps what is left of a buffer once the bytes read were split off it.
    pub(super) fn give_back(&self, buf: BytesMut) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < KEPT && buf.capacity() <= KEPT_CAPACITY {
            free.push_back(buf);
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
        assert!(buf.iter().all(|&b| b == 0));
        buf.fill(7);
        let answer = buf.split_to(600).freeze();
        let first = answer.as_ptr();
        buffers.give_back(buf);
        // The answer is still alive: the next read gets other memory.
        let mut other = buffers.take(1000);
        assert_ne!(other.as_ptr(), first);
        let second = other.as_ptr();
        let other_answer = other.split_to(1000).freeze();
        buffers.give_back(other);
        // The first answer is gone, the second still alive: the first allocation comes back,
        // zeroed.
        drop(answer);
        let again = buffers.take(1000);
        assert_eq!(again.as_ptr(), first, "the first allocation is reused");
        assert!(again.iter().all(|&b| b == 0));
        drop(other_answer);
        assert_eq!(buffers.take(1000).as_ptr(), second);
    }
}
