//! Sealing and unsealing one fragment at packet privacy: the session's stitched RC4 + HMAC-MD5
//! (`SessionSecurity::seal_range`, `unseal_range`) against the two primitives run one after the
//! other over 4 KiB chunks (`two_pass`, how sealing went before), and each primitive alone:
//! RC4 (ours, and the `rc4` crate), MD5 (the `md-5` crate; ours, as the session hashes a
//! fragment with an empty sealed range) and HMAC-MD5 (the `hmac` crate); and a memcpy.
//!
//! A fragment is what the session is given: the PDU from its header to the `sec_trailer`, the
//! stub sealed between a 24-byte header and the 8-byte trailer; 5840 bytes on the wire (what
//! Windows servers offer) and 64 KiB.

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a bench fails loudly"
)]

use std::hint::black_box;
use std::ops::Range;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dsbackup_ntlm::{Key, NegotiateFlags, Role, SIGNATURE_LEN, SessionSecurity};
use hmac::{Hmac, KeyInit as _, Mac as _};
use md5::{Digest as _, Md5};
use rc4::StreamCipher as _;

/// Bytes before the stub (the request header) and after it (the `sec_trailer`).
const HEADER: usize = 24;
const TRAILER: usize = 8;

/// Message lengths: a 5840-byte fragment without its signature, and 64 KiB.
const SIZES: [usize; 2] = [5840 - SIGNATURE_LEN, 64 * 1024];

fn flags() -> NegotiateFlags {
    NegotiateFlags::NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NegotiateFlags::NEGOTIATE_128
        | NegotiateFlags::NEGOTIATE_KEY_EXCH
        | NegotiateFlags::NEGOTIATE_SIGN
        | NegotiateFlags::NEGOTIATE_SEAL
}

/// The two primitives one after the other over 4 KiB chunks, as sealing went before the
/// stitched pass: HMAC-MD5 then RC4 (sealing) or RC4 then HMAC-MD5 (unsealing), each chunk
/// still in the L1 cache for the second.
struct TwoPass {
    signing: Hmac<Md5>,
    sealing: dsbackup_ntlm::rc4::Rc4,
    seq_num: u32,
}

impl TwoPass {
    const CHUNK: usize = 4096;

    fn new() -> Self {
        Self {
            signing: Hmac::<Md5>::new_from_slice(&[7; 16]).unwrap(),
            sealing: dsbackup_ntlm::rc4::Rc4::new(&[9; 16]),
            seq_num: 0,
        }
    }

    fn run(&mut self, message: &mut [u8], sealed: Range<usize>, seal: bool) -> [u8; 8] {
        let mut mac = self.signing.clone();
        mac.update(&self.seq_num.to_le_bytes());
        let (head, rest) = message.split_at_mut(sealed.start);
        let (body, tail) = rest.split_at_mut(sealed.len());
        mac.update(head);
        for chunk in body.chunks_mut(Self::CHUNK) {
            if seal {
                mac.update(chunk);
                self.sealing.apply(chunk);
            } else {
                self.sealing.apply(chunk);
                mac.update(chunk);
            }
        }
        mac.update(tail);
        let mut checksum = [0; 8];
        checksum.copy_from_slice(&mac.finalize().into_bytes()[..8]);
        self.sealing.apply(&mut checksum);
        self.seq_num += 1;
        checksum
    }
}

fn sessions() -> (SessionSecurity, SessionSecurity) {
    let key = Key::new([5; 16]);
    (
        SessionSecurity::new(&key, flags(), Role::Initiator).unwrap(),
        SessionSecurity::new(&key, flags(), Role::Acceptor).unwrap(),
    )
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("seal");
    for len in SIZES {
        let plain: Vec<u8> = (0..=250_u8).cycle().take(len).collect();
        let sealed = HEADER..len - TRAILER;
        let mut message = plain.clone();
        group.throughput(Throughput::Bytes(len as u64));

        let (mut client, mut server) = sessions();
        group.bench_function(format!("stitched/seal/{len}"), |b| {
            b.iter(|| {
                black_box(client.seal_range(&mut message, sealed.clone()).unwrap());
            });
        });
        let mut two_pass = TwoPass::new();
        group.bench_function(format!("two_pass/seal/{len}"), |b| {
            b.iter(|| black_box(two_pass.run(&mut message, sealed.clone(), true)));
        });

        // Unsealing needs what the peer sealed, in order: sealed (untimed) ahead of each batch.
        let (mut client, _) = sessions();
        group.bench_function(format!("stitched/unseal/{len}"), |b| {
            b.iter_batched_ref(
                || {
                    let mut message = plain.clone();
                    let signature = client.seal_range(&mut message, sealed.clone()).unwrap();
                    (message, signature)
                },
                |(message, signature)| {
                    server
                        .unseal_range(message, sealed.clone(), signature)
                        .unwrap();
                },
                BatchSize::SmallInput,
            );
        });
        let mut two_pass = TwoPass::new();
        group.bench_function(format!("two_pass/unseal/{len}"), |b| {
            b.iter_batched_ref(
                || plain.clone(),
                |message| black_box(two_pass.run(message, sealed.clone(), false)),
                BatchSize::SmallInput,
            );
        });

        // The primitives alone over the whole message.
        let mut rc4 = dsbackup_ntlm::rc4::Rc4::new(&[9; 16]);
        group.bench_function(format!("rc4/{len}"), |b| {
            b.iter(|| rc4.apply(black_box(&mut message)));
        });
        let mut rc4_crate = <rc4::Rc4 as rc4::KeyInit>::new_from_slice(&[9; 16]).unwrap();
        group.bench_function(format!("rc4_crate/{len}"), |b| {
            b.iter(|| rc4_crate.apply_keystream(black_box(&mut message)));
        });
        group.bench_function(format!("md5_crate/{len}"), |b| {
            b.iter(|| black_box(Md5::digest(black_box(&message))));
        });
        let hmac = Hmac::<Md5>::new_from_slice(&[7; 16]).unwrap();
        group.bench_function(format!("hmac_md5_crate/{len}"), |b| {
            b.iter(|| {
                let mut mac = hmac.clone();
                mac.update(black_box(&message));
                black_box(mac.finalize())
            });
        });
        // The speed of light: a copy of the same bytes (`cargo xtask bench` prints the ratio).
        let mut copy = vec![0_u8; len];
        group.bench_function(format!("memcpy/{len}"), |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(&plain));
                black_box(&copy);
            });
        });
        // Ours: the session's HMAC-MD5 with nothing to seal.
        let (mut client, _) = sessions();
        group.bench_function(format!("stitched/hash_only/{len}"), |b| {
            b.iter(|| black_box(client.seal_range(&mut message, 0..0).unwrap()));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
