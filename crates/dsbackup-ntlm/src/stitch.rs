//! HMAC-MD5 and RC4 in one pass, "stitched": the checksum and the encryption of a sealed
//! message ([MS-NLMP §3.4.3]) computed by one loop whose body interleaves the 64 steps of an MD5
//! compression (RFC 1321) with the RC4 steps of 64 bytes.
//!
//! Each algorithm alone is one long chain of dependent operations: an MD5 step needs the
//! previous step's result, an RC4 byte the previous byte's `j` and swap. Run one after the
//! other, they leave most of an out-of-order core idle; interleaved in one straight-line body,
//! the core runs both chains at once, and the pair costs little more than the slower of the
//! two rather than their sum (the idea of OpenSSL's `rc4-md5-x86_64` for TLS, here in safe
//! Rust). On a Zen 4 core (`benches/seal.rs`): 1.75 ns a byte stitched, against 1.45 for RC4
//! alone, 1.28 for this MD5 alone and 3.0 for the two passes of `hmac` + `md-5` then RC4.
//!
//! The order each direction needs:
//! - sealing hashes the plaintext, then encrypts it: a block's 16 words are read before the
//!   body runs, so the RC4 half may encrypt any bytes already read, up to the end of the block
//!   being hashed (it trails the hash);
//! - unsealing decrypts, then hashes the plaintext: every sealed byte of a block is decrypted
//!   before the block is read, so the RC4 half decrypts bytes past the block being hashed (it
//!   leads the hash).
//!
//! The message is hashed at whatever offset the MD5 stream is (the HMAC input is `SeqNum`, then
//! the PDU), and the sealed range may start and end anywhere in it: blocks with no 64 sealed
//! bytes ready are hashed alone, and the few sealed bytes left at either end are encrypted
//! alone. Proven equal to the `md-5`, `hmac` and `rc4` crates by the RFC 1321 test suite, the
//! property tests below and the differential fuzz target `stitch_differential`
//! (`fuzzing::stitch_differential`).
//!
//! [MS-NLMP §3.4.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/115f9c7d-bc30-4262-ae96-254555c14ea6

use core::ops::Range;

use zeroize::Zeroize;

use crate::rc4::Rc4;

/// Bytes in an MD5 block.
const BLOCK: usize = 64;

/// MD5's initial state (RFC 1321 §3.3).
pub(crate) const IV: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// An MD5 computation in progress: the chaining state, the bytes of a block not yet complete,
/// and the length so far. Zeroized on drop (under HMAC the state is as secret as the key).
pub(crate) struct Md5 {
    state: [u32; 4],
    buffer: [u8; BLOCK],
    /// Bytes of `buffer` in use, below 64.
    buffered: usize,
    /// Bytes hashed so far, the buffered ones included.
    length: u64,
}

impl Md5 {
    /// A fresh MD5.
    pub(crate) fn new() -> Self {
        Self::resume(IV, 0)
    }

    /// An MD5 continued from `state` after `length` bytes (a multiple of 64).
    fn resume(state: [u32; 4], length: u64) -> Self {
        Self {
            state,
            buffer: [0; BLOCK],
            buffered: 0,
            length,
        }
    }

    /// Hashes `data`.
    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        if self.buffered > 0 {
            let room = BLOCK - self.buffered;
            let (head, rest) = data.split_at(room.min(data.len()));
            if let Some(slot) = self
                .buffer
                .get_mut(self.buffered..self.buffered + head.len())
            {
                slot.copy_from_slice(head);
            }
            self.buffered += head.len();
            data = rest;
            if self.buffered < BLOCK {
                return;
            }
            compress(&mut self.state, &words(&self.buffer));
            self.buffered = 0;
        }
        let (blocks, tail) = data.as_chunks::<BLOCK>();
        for block in blocks {
            compress(&mut self.state, &words(block));
        }
        if let Some(slot) = self.buffer.get_mut(..tail.len()) {
            slot.copy_from_slice(tail);
        }
        self.buffered = tail.len();
    }

    /// The digest: the padding and the length in bits (RFC 1321 §3.1, §3.2).
    pub(crate) fn finalize(mut self) -> [u8; 16] {
        let bits = self.length.wrapping_mul(8);
        // 0x80, zeros up to 56 bytes modulo 64, then the 8 bytes of the length.
        self.update(&[0x80]);
        let zeros = (BLOCK + 56 - self.buffered) % BLOCK;
        self.update([0_u8; BLOCK].get(..zeros).unwrap_or_default());
        self.update(&bits.to_le_bytes());
        let mut digest = [0_u8; 16];
        for (out, word) in digest.as_chunks_mut::<4>().0.iter_mut().zip(self.state) {
            *out = word.to_le_bytes();
        }
        digest
    }
}

impl Drop for Md5 {
    fn drop(&mut self) {
        self.state.zeroize();
        self.buffer.zeroize();
    }
}

/// HMAC-MD5 (RFC 2104) under one key, its inner and outer states computed once: what the
/// stitched pass, the multi-buffer hash (`crate::md5x`) and signing alone start from.
/// Zeroized on drop (each state is as good as the key).
pub(crate) struct HmacMd5 {
    /// The MD5 state after the key's ipad block.
    pub(crate) inner: [u32; 4],
    /// The MD5 state after the key's opad block.
    pub(crate) outer: [u32; 4],
}

impl HmacMd5 {
    /// Runs `key` (of any length; NTLM's are 16 bytes) through the two pads.
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut block = [0_u8; BLOCK];
        if key.len() > BLOCK {
            let mut md5 = Md5::new();
            md5.update(key);
            let digest = md5.finalize();
            if let Some(slot) = block.get_mut(..16) {
                slot.copy_from_slice(&digest);
            }
        } else if let Some(slot) = block.get_mut(..key.len()) {
            slot.copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut padded = block.map(|b| b ^ byte);
            let mut state = IV;
            compress(&mut state, &words(&padded));
            padded.zeroize();
            state
        };
        let keyed = Self {
            inner: pad(0x36),
            outer: pad(0x5c),
        };
        block.zeroize();
        keyed
    }

    /// The inner hash, after its key block.
    pub(crate) fn start(&self) -> Md5 {
        Md5::resume(self.inner, BLOCK as u64)
    }

    /// `HMAC_MD5(SigningKey, SeqNum || message)[0..8]` of the plaintext `message`, with `rc4`
    /// applied to its `sealed` range in the same pass, in the order `mode` says: the checksum
    /// and the sealing of [MS-NLMP §3.4.3].
    ///
    /// [MS-NLMP §3.4.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/115f9c7d-bc30-4262-ae96-254555c14ea6
    pub(crate) fn checksum(
        &self,
        seq_num: u32,
        rc4: &mut Rc4,
        message: &mut [u8],
        sealed: Range<usize>,
        mode: Mode,
    ) -> [u8; 8] {
        let mut inner = self.start();
        inner.update(&seq_num.to_le_bytes());
        hash_and_apply(&mut inner, rc4, message, sealed, mode);
        truncated(self.finish(inner))
    }

    /// `HMAC_MD5(SigningKey, SeqNum || message)[0..8]`: the checksum of signing alone
    /// ([MS-NLMP §3.4.3], nothing sealed).
    ///
    /// [MS-NLMP §3.4.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/115f9c7d-bc30-4262-ae96-254555c14ea6
    pub(crate) fn sign(&self, seq_num: u32, message: &[u8]) -> [u8; 8] {
        let mut inner = self.start();
        inner.update(&seq_num.to_le_bytes());
        inner.update(message);
        truncated(self.finish(inner))
    }

    /// The MAC of what `inner` hashed.
    pub(crate) fn finish(&self, inner: Md5) -> [u8; 16] {
        let inner = inner.finalize();
        let mut outer = Md5::resume(self.outer, BLOCK as u64);
        outer.update(&inner);
        outer.finalize()
    }
}

/// The checksum NTLM keeps of a MAC: its first 8 bytes.
pub(crate) fn truncated(mac: [u8; 16]) -> [u8; 8] {
    let [c0, c1, c2, c3, c4, c5, c6, c7, ..] = mac;
    [c0, c1, c2, c3, c4, c5, c6, c7]
}

impl Drop for HmacMd5 {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

/// Which way the sealed bytes go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// Hash the plaintext, then encrypt it.
    Seal,
    /// Decrypt, then hash the plaintext.
    Unseal,
}

/// Hashes all of `message` into `md5` and applies `rc4` to its `sealed` range in place, in the
/// order `mode` says (the hash always covers the plaintext). A range reaching past the message
/// is cut at its end.
pub(crate) fn hash_and_apply(
    md5: &mut Md5,
    rc4: &mut Rc4,
    message: &mut [u8],
    sealed: Range<usize>,
    mode: Mode,
) {
    let end = sealed.end.min(message.len());
    // The next sealed byte RC4 has not reached.
    let mut next = sealed.start.min(end);
    // The next message byte MD5 has not read.
    let mut pos = 0;
    loop {
        let block_end = pos + (BLOCK - md5.buffered);
        if block_end > message.len() {
            break;
        }
        if mode == Mode::Unseal {
            // Every sealed byte of the block is decrypted before the block is read.
            let ready = block_end.min(end);
            if next < ready {
                apply(rc4, message, next..ready);
                next = ready;
            }
        }
        let block = if md5.buffered == 0 {
            message
                .get(pos..block_end)
                .and_then(|block| block.first_chunk::<BLOCK>())
                .map(words)
        } else {
            let buffered = md5.buffered;
            if let (Some(slot), Some(fresh)) =
                (md5.buffer.get_mut(buffered..), message.get(pos..block_end))
            {
                slot.copy_from_slice(fresh);
            }
            Some(words(&md5.buffer))
        };
        let Some(block) = block else { break };
        md5.length = md5.length.wrapping_add((block_end - pos) as u64);
        md5.buffered = 0;
        pos = block_end;
        // Sealing encrypts only bytes already read; unsealing runs ahead of the hash.
        let limit = match mode {
            Mode::Seal => block_end.min(end),
            Mode::Unseal => end,
        };
        match message
            .get_mut(next..next + BLOCK)
            .filter(|_| next + BLOCK <= limit)
            .and_then(|chunk| chunk.first_chunk_mut::<BLOCK>())
        {
            Some(chunk) => {
                compress_stitched(&mut md5.state, &block, rc4, chunk);
                next += BLOCK;
            }
            None => compress(&mut md5.state, &block),
        }
    }
    // What is left: less than a block to hash, less than two blocks' worth of sealed bytes.
    if mode == Mode::Unseal {
        apply(rc4, message, next..end);
        next = end;
    }
    md5.update(message.get(pos..).unwrap_or_default());
    apply(rc4, message, next..end);
}

/// RC4 over `range` of `message`, when it is one.
fn apply(rc4: &mut Rc4, message: &mut [u8], range: Range<usize>) {
    if let Some(bytes) = message.get_mut(range) {
        rc4.apply(bytes);
    }
}

/// The 16 little-endian words of a block.
#[inline(always)]
fn words(block: &[u8; BLOCK]) -> [u32; 16] {
    let (chunks, _) = block.as_chunks::<4>();
    core::array::from_fn(|k| chunks.get(k).map_or(0, |c| u32::from_le_bytes(*c)))
}

/// The 64 constants `floor(abs(sin(i + 1)) * 2^32)` (RFC 1321 §3.4).
pub(crate) const K: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

/// One MD5 compression of `m` into `state` with the 64 `constants` (`K`), with `between(n)`
/// run after step `n` (0 to 63): the hook the stitched body puts its RC4 steps in. Inlined,
/// with `between` a no-op it is plain MD5.
#[inline(always)]
fn compress_with(
    state: &mut [u32; 4],
    m: &[u32; 16],
    constants: &[u32; 64],
    mut between: impl FnMut(usize),
) {
    let [mut a, mut b, mut c, mut d] = *state;
    let word = |g: usize| m.get(g).copied().unwrap_or(0);
    let k = |n: usize| constants.get(n).copied().unwrap_or(0);
    // a = b + ((a + f(b, c, d) + M[g] + K[n]) <<< s), the four functions of RFC 1321 §3.4;
    // step `base + n` reads word `g` modulo 16.
    macro_rules! step {
        ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $base:expr, $n:expr, $g:expr, $s:expr) => {
            $a = $b.wrapping_add(
                $a.wrapping_add(word($g % 16).wrapping_add(k($base + $n)))
                    .wrapping_add($f!($b, $c, $d))
                    .rotate_left($s),
            );
            between($base + $n);
        };
    }
    macro_rules! f {
        ($b:ident, $c:ident, $d:ident) => {
            $d ^ ($b & ($c ^ $d))
        };
    }
    macro_rules! g {
        ($b:ident, $c:ident, $d:ident) => {
            ($c & !$d).wrapping_add($b & $d)
        };
    }
    macro_rules! h {
        ($b:ident, $c:ident, $d:ident) => {
            $b ^ $c ^ $d
        };
    }
    macro_rules! i {
        ($b:ident, $c:ident, $d:ident) => {
            $c ^ ($b | !$d)
        };
    }
    // Steps 4q to 4q + 3 of a round, which reads word g0 + gs * n at its step n.
    macro_rules! quad {
        ($f:ident, $base:expr, $q:expr, $g0:expr, $gs:expr, [$s0:expr, $s1:expr, $s2:expr, $s3:expr]) => {
            step!($f, a, b, c, d, $base, 4 * $q, $g0 + $gs * (4 * $q), $s0);
            step!(
                $f,
                d,
                a,
                b,
                c,
                $base,
                4 * $q + 1,
                $g0 + $gs * (4 * $q + 1),
                $s1
            );
            step!(
                $f,
                c,
                d,
                a,
                b,
                $base,
                4 * $q + 2,
                $g0 + $gs * (4 * $q + 2),
                $s2
            );
            step!(
                $f,
                b,
                c,
                d,
                a,
                $base,
                4 * $q + 3,
                $g0 + $gs * (4 * $q + 3),
                $s3
            );
        };
    }
    macro_rules! round {
        ($f:ident, $base:expr, $g0:expr, $gs:expr, $s:tt) => {
            quad!($f, $base, 0, $g0, $gs, $s);
            quad!($f, $base, 1, $g0, $gs, $s);
            quad!($f, $base, 2, $g0, $gs, $s);
            quad!($f, $base, 3, $g0, $gs, $s);
        };
    }
    round!(f, 0, 0, 1, [7, 12, 17, 22]);
    round!(g, 16, 1, 5, [5, 9, 14, 20]);
    round!(h, 32, 5, 3, [4, 11, 16, 23]);
    round!(i, 48, 0, 7, [6, 10, 15, 21]);
    for (word, add) in state.iter_mut().zip([a, b, c, d]) {
        *word = word.wrapping_add(add);
    }
}

/// Plain MD5 compression. The constants are read through an opaque reference: as literals,
/// the compiler adds them after the round function, one more addition on the chain of
/// dependent steps (a third slower, measured); as loaded values `a + M[g] + K[n]` is summed
/// before `b` is known. The stitched body, whose chains overlap anyway, is faster with them as
/// literals (one load less a step).
fn compress(state: &mut [u32; 4], m: &[u32; 16]) {
    compress_with(state, m, core::hint::black_box(&K), |_| {});
}

/// MD5 compression of `m` with the RC4 of the 64 bytes of `chunk` interleaved, one RC4 byte
/// after each MD5 step.
///
/// The fastest of the shapes measured: RC4 in runs of 4, 8 or 16 bytes between MD5 steps, the
/// keystream gathered into 64-bit words before the XOR, `i` addressed as an aligned base and
/// constant offsets (as `rc4.rs` does) and a 32-bit table were each as fast or slower.
fn compress_stitched(state: &mut [u32; 4], m: &[u32; 16], rc4: &mut Rc4, chunk: &mut [u8; 64]) {
    let (table, i, j) = rc4.parts();
    let (mut x, mut y) = (*i, *j);
    compress_with(state, m, &K, |n| {
        if let Some(byte) = chunk.get_mut(n) {
            *byte ^= crate::rc4::step(table, &mut x, &mut y);
        }
    });
    *i = x;
    *j = y;
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, Mac as _};
    use md5::Digest as _;
    use proptest::prelude::*;
    use rc4::{KeyInit as _, StreamCipher as _};

    use super::*;

    /// The RFC 1321 §A.5 test suite through this MD5, alone and with an empty sealed range.
    #[test]
    fn rfc1321_test_suite() {
        let suite: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, digest) in suite {
            let mut md5 = Md5::new();
            md5.update(input.as_bytes());
            assert_eq!(hex::encode(md5.finalize()), digest, "{input:?}");
            let mut md5 = Md5::new();
            let mut rc4 = Rc4::new(&[1; 16]);
            let mut bytes = input.as_bytes().to_vec();
            hash_and_apply(&mut md5, &mut rc4, &mut bytes, 0..0, Mode::Seal);
            assert_eq!(hex::encode(md5.finalize()), digest, "{input:?}");
            assert_eq!(bytes, input.as_bytes());
        }
    }

    /// RFC 2202 §2 test cases 1, 2 and 6 (a key longer than a block).
    #[test]
    fn rfc2202_hmac_md5() {
        let cases: [(&[u8], &[u8], &str); 3] = [
            (&[0x0b; 16], b"Hi There", "9294727a3638bb1c13f48ef8158bfc9d"),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "750c783e6ab0b503eaa86e310a5db738",
            ),
            (
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
            ),
        ];
        for (key, data, mac) in cases {
            let hmac = HmacMd5::new(key);
            let mut inner = hmac.start();
            inner.update(data);
            assert_eq!(hex::encode(hmac.finish(inner)), mac);
        }
    }

    /// A message, a range inside it, and where the MD5 stream is when the message starts.
    fn case() -> impl Strategy<Value = (Vec<u8>, Range<usize>, usize)> {
        (0_usize..=10_000).prop_flat_map(|len| {
            (
                proptest::collection::vec(any::<u8>(), len),
                0..=len,
                0..=len,
                0_usize..200,
            )
                .prop_map(|(bytes, a, b, prefix)| (bytes, a.min(b)..a.max(b), prefix))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Sealing then unsealing in one pass gives the bytes and the MD5 of the two-pass
        /// computation with the `md-5` and `rc4` crates, at any offset in the MD5 stream, any
        /// sealed range, and any RC4 position (what the stream had encrypted before).
        #[test]
        fn matches_md5_and_rc4_crates(
            key in any::<[u8; 16]>(),
            (plain, sealed, prefix) in case(),
            skip in 0_usize..300,
        ) {
            let prefix = vec![0x5a_u8; prefix];
            // Reference: MD5 of prefix || plaintext by the md-5 crate; the range XORed with
            // the rc4 crate's keystream after `skip` bytes, and the 8 keystream bytes after it.
            let mut reference_md5 = md5::Md5::new();
            reference_md5.update(&prefix);
            reference_md5.update(&plain);
            let digest: [u8; 16] = reference_md5.finalize().into();
            let mut keystream = vec![0_u8; skip + sealed.len() + 8];
            rc4::Rc4::new_from_slice(&key).unwrap().apply_keystream(&mut keystream);
            let mut reference = plain.clone();
            for (byte, k) in reference[sealed.clone()].iter_mut().zip(&keystream[skip..]) {
                *byte ^= k;
            }
            let next_keystream = &keystream[skip + sealed.len()..];

            for mode in [Mode::Seal, Mode::Unseal] {
                let mut md5 = Md5::new();
                md5.update(&prefix);
                let mut rc4 = Rc4::new(&key);
                rc4.apply(&mut vec![0_u8; skip]);
                let (mut bytes, expected) = match mode {
                    Mode::Seal => (plain.clone(), &reference),
                    Mode::Unseal => (reference.clone(), &plain),
                };
                hash_and_apply(&mut md5, &mut rc4, &mut bytes, sealed.clone(), mode);
                prop_assert_eq!(&bytes, expected, "{:?}", mode);
                prop_assert_eq!(md5.finalize(), digest, "{:?}", mode);
                // The RC4 stream goes on where the reference's does.
                let mut after = [0_u8; 8];
                rc4.apply(&mut after);
                prop_assert_eq!(&after[..], next_keystream, "{:?}", mode);
            }
        }

        /// HMAC-MD5 under a key precomputed once equals the `hmac` crate's.
        #[test]
        fn hmac_matches_the_hmac_crate(
            key in proptest::collection::vec(any::<u8>(), 0..100),
            data in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let hmac = HmacMd5::new(&key);
            let mut inner = hmac.start();
            inner.update(&data);
            let mut theirs = Hmac::<md5::Md5>::new_from_slice(&key).unwrap();
            theirs.update(&data);
            prop_assert_eq!(hmac.finish(inner), <[u8; 16]>::from(theirs.finalize().into_bytes()));
        }
    }
}
