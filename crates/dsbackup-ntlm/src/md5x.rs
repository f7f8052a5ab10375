//! Multi-buffer HMAC-MD5: the checksums of several independent messages computed side by side.
//!
//! MD5 is one chain of dependent 32-bit steps, so a single message cannot be hashed faster than
//! the chain's latency. The fragments of an RPC response, though, are independent messages
//! under one signing key: their MD5s can run in the lanes of a vector register, one message a
//! lane ("multi-buffer" hashing), in safe Rust: the state and message words are `[u32; LANES]`
//! arrays, and one compression is a loop over the lanes whose body is the whole scalar
//! compression of two lanes, `l` and `l + 4`, step by step. Too large to unroll, the loop is
//! vectorized four lanes to a 128-bit register (on x86-64 the body is SSE2 `paddd`, `pslld`,
//! `psrld`, `por`, `pxor`, `pand`, `pandn` only; NEON on AArch64): two independent chains of
//! four messages each, which hide each other's latency. (Written as lane-wise operations on the
//! arrays instead, the same code stayed scalar: the straight-line vectorizer gives up on a
//! dependence chain 64 steps deep.)
//!
//! Each lane hashes its message block by block from the HMAC inner state; the blocks that
//! straddle the prefix and the body, and the padding blocks, are built in a scratch block. A lane
//! whose message ends drops out (its lane computes on a zero block and is not read again); when
//! fewer than two lanes are left, the last one finishes with the scalar compression function of
//! the `md-5` crate. The outer HMAC block (the inner digest and its padding) is one more vector
//! step for all lanes.

use md5::block_api::compress;
use zeroize::Zeroize;

use crate::stitch::{HmacMd5, IV, K};

/// Messages hashed side by side.
pub(crate) const LANES: usize = 8;

const BLOCK: usize = 64;
/// The length of the outer hash's message in bits: the opad block and the inner digest.
const OUTER_BITS: u32 = (64 + 16) * 8;

/// One message to authenticate: `HMAC_MD5(key, prefix || body)`.
#[derive(Clone, Copy)]
pub(crate) struct Job<'a> {
    pub(crate) key: &'a HmacMd5,
    pub(crate) prefix: &'a [u8],
    pub(crate) body: &'a [u8],
}

/// `HMAC_MD5(job.key, job.prefix || job.body)` of each job into `out`, in order, `LANES` at a
/// time. Only the first `min(jobs.len(), out.len())` are computed.
pub(crate) fn hmac_md5_many(jobs: &[Job<'_>], out: &mut [[u8; 16]]) {
    for (jobs, out) in jobs.chunks(LANES).zip(out.chunks_mut(LANES)) {
        group::<LANES>(jobs, out);
    }
}

/// A message of the inner hash as a sequence of blocks, padding included.
struct Lane<'a> {
    prefix: &'a [u8],
    body: &'a [u8],
    len: usize,
    blocks: usize,
    /// The message length in bits, the ipad block included.
    bit_len: u64,
}

impl<'a> Lane<'a> {
    fn new(prefix: &'a [u8], body: &'a [u8]) -> Self {
        let len = prefix.len().saturating_add(body.len());
        Self {
            prefix,
            body,
            len,
            // The data, one 0x80 byte and the 8-byte length, rounded up to whole blocks.
            blocks: len / BLOCK + if len % BLOCK < BLOCK - 8 { 1 } else { 2 },
            bit_len: (len as u64).wrapping_add(BLOCK as u64).wrapping_mul(8),
        }
    }

    /// Block `k` of the padded message: borrowed from the prefix or the body when it lies
    /// inside one of them, otherwise built in `scratch`.
    fn block<'s>(&'s self, k: usize, scratch: &'s mut [u8; BLOCK]) -> &'s [u8; BLOCK] {
        let start = k.saturating_mul(BLOCK);
        let plen = self.prefix.len();
        let inside = match start.checked_sub(plen) {
            Some(at) => self.body.get(at..).and_then(<[u8]>::first_chunk),
            None => self.prefix.get(start..).and_then(<[u8]>::first_chunk),
        };
        if let Some(block) = inside {
            return block;
        }
        scratch.fill(0);
        let end = start.saturating_add(BLOCK).min(self.len);
        let from_prefix = self
            .prefix
            .get(start.min(plen)..end.min(plen))
            .unwrap_or(&[]);
        let from_body = self
            .body
            .get(start.max(plen) - plen..end.max(plen) - plen)
            .unwrap_or(&[]);
        for (b, d) in scratch.iter_mut().zip(from_prefix.iter().chain(from_body)) {
            *b = *d;
        }
        if let Some(end_mark) = self
            .len
            .checked_sub(start)
            .and_then(|at| scratch.get_mut(at))
        {
            *end_mark = 0x80;
        }
        if k.saturating_add(1) == self.blocks
            && let Some((_, length)) = scratch.split_last_chunk_mut::<8>()
        {
            *length = self.bit_len.to_le_bytes();
        }
        scratch
    }
}

/// Up to `N` jobs, one a lane.
fn group<const N: usize>(jobs: &[Job<'_>], out: &mut [[u8; 16]]) {
    let lanes: [Option<Lane<'_>>; N] =
        core::array::from_fn(|l| jobs.get(l).map(|job| Lane::new(job.prefix, job.body)));
    let blocks: [usize; N] = lanes
        .each_ref()
        .map(|lane| lane.as_ref().map_or(0, |l| l.blocks));
    let mut state = transpose(jobs, |job| job.key.inner);
    let mut inner = [[0u32; 4]; N];
    let mut scratch = [[0u8; BLOCK]; N];
    let zero = [0u8; BLOCK];
    let mut k = 0;
    // Side by side while at least two lanes have blocks left.
    while blocks.iter().filter(|&&n| n > k).count() >= 2 {
        let mut m = [[0u32; N]; 16];
        for (l, (lane, scratch)) in lanes.iter().zip(scratch.iter_mut()).enumerate() {
            let block = match lane {
                Some(lane) if k < lane.blocks => lane.block(k, scratch),
                _ => &zero,
            };
            let (words, _) = block.as_chunks::<4>();
            for (word, bytes) in m.iter_mut().zip(words) {
                if let Some(w) = word.get_mut(l) {
                    *w = u32::from_le_bytes(*bytes);
                }
            }
        }
        compress_lanes(&mut state, &m);
        k += 1;
        for (l, (inner, &n)) in inner.iter_mut().zip(&blocks).enumerate() {
            if n == k {
                *inner = lane_state(&state, l);
            }
        }
    }
    // The lane left, if any, alone.
    for (l, (lane, inner)) in lanes.iter().zip(inner.iter_mut()).enumerate() {
        if let Some(lane) = lane
            && lane.blocks > k
        {
            let mut s = lane_state(&state, l);
            let mut scratch = [0u8; BLOCK];
            for b in k..lane.blocks {
                compress(&mut s, &[*lane.block(b, &mut scratch)]);
            }
            *inner = s;
        }
    }
    // The outer hash: one block of the inner digest (as words already), 0x80 and the length
    // of the opad block and the digest in bits.
    let mut m = [[0u32; N]; 16];
    for (l, inner) in inner.iter().enumerate() {
        for (word, &v) in m.iter_mut().zip(inner) {
            if let Some(w) = word.get_mut(l) {
                *w = v;
            }
        }
    }
    m[4] = [0x80; N];
    m[14] = [OUTER_BITS; N];
    let mut outer = transpose(jobs, |job| job.key.outer);
    if jobs.len() >= 2 {
        compress_lanes(&mut outer, &m);
    } else {
        let mut s = lane_state(&outer, 0);
        let mut block = [0u8; BLOCK];
        for (bytes, word) in block.as_chunks_mut::<4>().0.iter_mut().zip(&m) {
            *bytes = word[0].to_le_bytes();
        }
        compress(&mut s, &[block]);
        for (lane, v) in outer.iter_mut().zip(s) {
            lane[0] = v;
        }
    }
    for (l, (mac, _)) in out.iter_mut().zip(jobs).enumerate() {
        for (bytes, v) in mac
            .as_chunks_mut::<4>()
            .0
            .iter_mut()
            .zip(lane_state(&outer, l))
        {
            *bytes = v.to_le_bytes();
        }
    }
    m.zeroize();
    state.zeroize();
    inner.zeroize();
}

/// The four state words of each job's `state`, lane by lane (IV for the lanes without a job).
fn transpose<const N: usize>(
    jobs: &[Job<'_>],
    state: impl Fn(&Job<'_>) -> [u32; 4],
) -> [[u32; N]; 4] {
    let mut lanes = [[0u32; N]; 4];
    for (w, lane) in lanes.iter_mut().enumerate() {
        for (l, v) in lane.iter_mut().enumerate() {
            *v = jobs
                .get(l)
                .map_or(IV, &state)
                .get(w)
                .copied()
                .unwrap_or_default();
        }
    }
    lanes
}

/// The state of lane `l`.
fn lane_state<const N: usize>(state: &[[u32; N]; 4], l: usize) -> [u32; 4] {
    state.map(|word| word.get(l).copied().unwrap_or_default())
}

#[inline(always)]
fn ff(b: u32, c: u32, d: u32) -> u32 {
    d ^ (b & (c ^ d))
}

#[inline(always)]
fn gg(b: u32, c: u32, d: u32) -> u32 {
    c ^ (d & (b ^ c))
}

#[inline(always)]
fn hh(b: u32, c: u32, d: u32) -> u32 {
    b ^ c ^ d
}

#[inline(always)]
fn ii(b: u32, c: u32, d: u32) -> u32 {
    c ^ (b | !d)
}

/// `b + ((a + fun + m + k) <<< S)`.
#[inline(always)]
fn step<const S: u32>(fun: u32, a: u32, b: u32, m: u32, k: u32) -> u32 {
    b.wrapping_add(
        a.wrapping_add(fun)
            .wrapping_add(m.wrapping_add(k))
            .rotate_left(S),
    )
}

/// Four steps of a round over two lanes at once, `(a, b, c, d)` in lane `l` and
/// `(e, f, g, h)` in lane `l2`: the words `w`, the rotations `s`, the constants from `K[k..]`.
macro_rules! quad {
    ($fun:ident, $m:ident, [$a:ident, $b:ident, $c:ident, $d:ident, $l:ident],
     [$e:ident, $f:ident, $g:ident, $h:ident, $l2:ident],
     [$w0:literal, $w1:literal, $w2:literal, $w3:literal],
     [$s0:literal, $s1:literal, $s2:literal, $s3:literal], $k:literal) => {
        $a = step::<$s0>($fun($b, $c, $d), $a, $b, $m[$w0][$l], K[$k]);
        $e = step::<$s0>($fun($f, $g, $h), $e, $f, $m[$w0][$l2], K[$k]);
        $d = step::<$s1>($fun($a, $b, $c), $d, $a, $m[$w1][$l], K[$k + 1]);
        $h = step::<$s1>($fun($e, $f, $g), $h, $e, $m[$w1][$l2], K[$k + 1]);
        $c = step::<$s2>($fun($d, $a, $b), $c, $d, $m[$w2][$l], K[$k + 2]);
        $g = step::<$s2>($fun($h, $e, $f), $g, $h, $m[$w2][$l2], K[$k + 2]);
        $b = step::<$s3>($fun($c, $d, $a), $b, $c, $m[$w3][$l], K[$k + 3]);
        $f = step::<$s3>($fun($g, $h, $e), $f, $g, $m[$w3][$l2], K[$k + 3]);
    };
}

/// One MD5 block in each lane.
///
/// Written as a loop over the lanes whose body is a whole scalar compression (of two lanes, `l`
/// and `l + N / 2`, step by step): the body is too large to unroll, so the loop vectorizer runs
/// it in the lanes of vector registers, two independent chains that hide each other's latency.
#[expect(
    clippy::indexing_slicing,
    reason = "l < N / 2 and l2 < N, the length of every array"
)]
fn compress_lanes<const N: usize>(state: &mut [[u32; N]; 4], m: &[[u32; N]; 16]) {
    for l in 0..N / 2 {
        let l2 = l + N / 2;
        let (mut a, mut b, mut c, mut d) = (state[0][l], state[1][l], state[2][l], state[3][l]);
        let (mut e, mut f, mut g, mut h) = (state[0][l2], state[1][l2], state[2][l2], state[3][l2]);
        quad!(
            ff,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [0, 1, 2, 3],
            [7, 12, 17, 22],
            0
        );
        quad!(
            ff,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [4, 5, 6, 7],
            [7, 12, 17, 22],
            4
        );
        quad!(
            ff,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [8, 9, 10, 11],
            [7, 12, 17, 22],
            8
        );
        quad!(
            ff,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [12, 13, 14, 15],
            [7, 12, 17, 22],
            12
        );
        quad!(
            gg,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [1, 6, 11, 0],
            [5, 9, 14, 20],
            16
        );
        quad!(
            gg,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [5, 10, 15, 4],
            [5, 9, 14, 20],
            20
        );
        quad!(
            gg,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [9, 14, 3, 8],
            [5, 9, 14, 20],
            24
        );
        quad!(
            gg,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [13, 2, 7, 12],
            [5, 9, 14, 20],
            28
        );
        quad!(
            hh,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [5, 8, 11, 14],
            [4, 11, 16, 23],
            32
        );
        quad!(
            hh,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [1, 4, 7, 10],
            [4, 11, 16, 23],
            36
        );
        quad!(
            hh,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [13, 0, 3, 6],
            [4, 11, 16, 23],
            40
        );
        quad!(
            hh,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [9, 12, 15, 2],
            [4, 11, 16, 23],
            44
        );
        quad!(
            ii,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [0, 7, 14, 5],
            [6, 10, 15, 21],
            48
        );
        quad!(
            ii,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [12, 3, 10, 1],
            [6, 10, 15, 21],
            52
        );
        quad!(
            ii,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [8, 15, 6, 13],
            [6, 10, 15, 21],
            56
        );
        quad!(
            ii,
            m,
            [a, b, c, d, l],
            [e, f, g, h, l2],
            [4, 11, 2, 9],
            [6, 10, 15, 21],
            60
        );
        for (word, (v, v2)) in state.iter_mut().zip([(a, e), (b, f), (c, g), (d, h)]) {
            word[l] = word[l].wrapping_add(v);
            word[l2] = word[l2].wrapping_add(v2);
        }
    }
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, KeyInit as _, Mac as _};
    use md5::Md5;
    use proptest::prelude::*;

    use super::*;

    fn reference(key: &[u8], prefix: &[u8], body: &[u8]) -> [u8; 16] {
        let mut mac = Hmac::<Md5>::new_from_slice(key).unwrap();
        mac.update(prefix);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// Messages of lengths on both sides of every padding boundary, one a lane.
    fn messages() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
        let len = prop_oneof![0..=5000usize, (0..80usize).prop_map(|n| n * 64 + 55)];
        let message = (
            proptest::collection::vec(any::<u8>(), 0..=70),
            len.prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)),
        );
        proptest::collection::vec(message, 1..=2 * LANES + 1)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any number of messages of any lengths, prefixes up to a block and more, keys of
        /// any length: the MACs of the `hmac` and `md-5` crates.
        #[test]
        fn many_at_once_match_the_hmac_crate(
            key in proptest::collection::vec(any::<u8>(), 0..=80),
            other_key in any::<[u8; 16]>(),
            messages in messages(),
        ) {
            let keys = [HmacMd5::new(&key), HmacMd5::new(&other_key)];
            let raw: [&[u8]; 2] = [&key, &other_key];
            let jobs: Vec<Job<'_>> = messages
                .iter()
                .enumerate()
                .map(|(n, (prefix, body))| Job { key: &keys[n % 3 / 2], prefix, body })
                .collect();
            let mut out = vec![[0u8; 16]; jobs.len()];
            hmac_md5_many(&jobs, &mut out);
            for (n, ((prefix, body), mac)) in messages.iter().zip(&out).enumerate() {
                prop_assert_eq!(*mac, reference(raw[n % 3 / 2], prefix, body), "job {}", n);
            }
        }
    }

    #[test]
    fn every_length_up_to_three_blocks_in_every_lane() {
        let key = HmacMd5::new(b"signing key");
        let data: Vec<u8> = (0..=255u8).cycle().take(4 * BLOCK).collect();
        for base in 0..3 * BLOCK {
            let jobs: Vec<Job<'_>> = (0..LANES)
                .map(|l| Job {
                    key: &key,
                    prefix: &data[..4],
                    body: &data[..base + l],
                })
                .collect();
            let mut out = [[0u8; 16]; LANES];
            hmac_md5_many(&jobs, &mut out);
            for (job, mac) in jobs.iter().zip(out) {
                assert_eq!(mac, reference(b"signing key", job.prefix, job.body));
            }
        }
    }
}
