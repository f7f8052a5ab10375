//! Large files written once, front to back, and not read again soon (a backup's database
//! and logs, a restore's copies) let go of the page cache behind their writes.
//!
//! Left alone, every byte of such a file stays in the page cache as a dirty page until the
//! kernel's writeback gets to it, and as a clean one afterwards: a backup of a 20 GiB
//! database pushes 20 GiB of the host's cache out, and each write lands in a page the kernel
//! has to find first. On a virtual machine whose host takes back memory the guest has freed
//! (a balloon with free page reporting, as on most clouds) finding it is dear: the first
//! touch of each page faults into the host. Measured on the two-core VM of the README's
//! Performance section, writing 512 MiB into a new file cost 1.4–1.7 s of system time that way,
//! and 0.2–0.3 s when the file let go of its pages as it went (the kernel hands the same few
//! MiB back for the next writes).
//!
//! So, once a chunk of [`CHUNK`] bytes is written, its writeback is started at once; [`LAG`]
//! bytes later, when that I/O has had time to finish, its clean pages are dropped. Both are
//! `posix_fadvise(POSIX_FADV_DONTNEED)` on Linux: the kernel starts writeback of the dirty
//! pages in the range without waiting for it, and drops the pages that are clean. This is
//! advice: a page still under writeback (a slow disk) stays, and the kernel writes and
//! reclaims it as it would have; no byte is changed. The final `fsync` then has little left
//! to write. Elsewhere (and on a file system that refuses the advice) nothing is done.

use std::fs::File;

/// The unit of advice: writeback starts for each whole chunk as it is written.
pub(crate) const CHUNK: u64 = 2 << 20;
/// How far behind the write position a chunk's pages are dropped.
pub(crate) const LAG: u64 = 8 * CHUNK;

/// Where a file written front to back stands with the kernel (see the module documentation).
#[derive(Debug)]
pub(crate) struct WriteBehind {
    /// Writeback has been started for `..flushed`.
    flushed: u64,
    /// Pages have been dropped for `..dropped`.
    dropped: u64,
    /// False once the system refused the advice: nothing more is asked.
    advising: bool,
}

impl WriteBehind {
    pub(crate) fn new() -> Self {
        Self {
            flushed: 0,
            dropped: 0,
            advising: cfg!(target_os = "linux"),
        }
    }

    /// `file` now holds `size` bytes, written in order from its start: advises the kernel on
    /// the chunks this completed.
    pub(crate) fn wrote(&mut self, file: &File, size: u64) {
        if !self.advising {
            return;
        }
        for offset in self.due(size) {
            if !advise(file, offset) {
                self.advising = false;
                return;
            }
        }
    }

    /// The chunk offsets to advise on now that the file holds `size` bytes, in order: each
    /// whole chunk once when written (writeback) and once more [`LAG`] later (drop).
    fn due(&mut self, size: u64) -> Vec<u64> {
        let mut due = Vec::new();
        while self.flushed.saturating_add(CHUNK) <= size {
            due.push(self.flushed);
            self.flushed += CHUNK;
            if self.flushed >= self.dropped + CHUNK + LAG {
                due.push(self.dropped);
                self.dropped += CHUNK;
            }
        }
        due
    }
}

/// `POSIX_FADV_DONTNEED` on the chunk at `offset`; false when the system refused it.
#[cfg(target_os = "linux")]
fn advise(file: &File, offset: u64) -> bool {
    use std::num::NonZeroU64;

    use rustix::fs::{Advice, fadvise};
    let result = fadvise(file, offset, NonZeroU64::new(CHUNK), Advice::DontNeed);
    if let Err(error) = result {
        tracing::debug!(%error, "The file system takes no page cache advice; writing without it");
    }
    result.is_ok()
}

#[cfg(not(target_os = "linux"))]
fn advise(_file: &File, _offset: u64) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every whole chunk is advised twice, first when written and again once [`LAG`] more
    /// bytes follow it; never a chunk not yet whole, and the order of the file.
    #[test]
    fn chunks_are_flushed_when_whole_and_dropped_a_lag_later() {
        let mut behind = WriteBehind::new();
        let mut seen: Vec<(u64, u64)> = Vec::new();
        let mut size = 0_u64;
        // Writes of uneven sizes, as reads arrive, up to 40 chunks and a bit.
        for step in (1_u64..).map(|i| (i * 7919 * 61) % (3 * CHUNK) + 1) {
            if size + step > 40 * CHUNK + 5 {
                break;
            }
            size += step;
            for offset in behind.due(size) {
                assert!(
                    offset + CHUNK <= size,
                    "chunk at {offset} advised at size {size}"
                );
                seen.push((offset, size));
            }
        }
        let whole = size / CHUNK;
        for chunk in 0..whole {
            let offset = chunk * CHUNK;
            let sizes: Vec<u64> = seen
                .iter()
                .filter(|(o, _)| *o == offset)
                .map(|(_, s)| *s)
                .collect();
            if offset + CHUNK + LAG <= size - size % CHUNK {
                assert_eq!(sizes.len(), 2, "chunk {chunk}: {sizes:?}");
                assert!(
                    sizes[1] >= offset + CHUNK + LAG,
                    "chunk {chunk} dropped early"
                );
            } else {
                assert_eq!(sizes.len(), 1, "chunk {chunk}: {sizes:?}");
            }
        }
        let flushes: Vec<u64> = {
            let mut first = Vec::new();
            for (offset, _) in &seen {
                if !first.contains(offset) {
                    first.push(*offset);
                }
            }
            first
        };
        assert_eq!(flushes, (0..whole).map(|c| c * CHUNK).collect::<Vec<_>>());
    }

    /// Bytes written while the advice runs are the bytes on disk, in uneven writes across
    /// many chunks.
    #[test]
    fn advised_file_holds_every_byte_written() {
        use std::io::{Read as _, Write as _};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let mut file = File::create(&path).unwrap();
        let mut behind = WriteBehind::new();
        let mut written = Vec::new();
        let mut size = 0_u64;
        let mut n = 1_u32;
        while size < 3 * (CHUNK + LAG) {
            let len = usize::try_from(n * 104_729 % 700_001).unwrap() + 1;
            let piece: Vec<u8> = (0..len)
                .map(|i| i.to_le_bytes()[0] ^ n.to_le_bytes()[0])
                .collect();
            file.write_all(&piece).unwrap();
            written.extend_from_slice(&piece);
            size += piece.len() as u64;
            behind.wrote(&file, size);
            n += 1;
        }
        file.sync_all().unwrap();
        drop(file);
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert!(back == written, "the file differs from what was written");
        if cfg!(target_os = "linux") {
            assert!(behind.dropped > 0, "nothing was dropped: {behind:?}");
        }
    }
}
