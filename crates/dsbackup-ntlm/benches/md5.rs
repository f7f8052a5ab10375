//! HMAC-MD5 of several fragments under one key: one message after the other with the `hmac` and
//! `md-5` crates, against the multi-buffer implementation (eight lanes).

#![expect(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit as _, Mac as _};
use md5::Md5;
use std::hint::black_box;

fn hmac_md5(c: &mut Criterion) {
    let key = [0x5a; 16];
    let mac = Hmac::<Md5>::new_from_slice(&key).expect("any key length");
    for (count, len) in [(4u32, 5840usize), (4, 65536), (8, 5840), (8, 65536)] {
        let seq: Vec<[u8; 4]> = (0..count).map(u32::to_le_bytes).collect();
        let bodies: Vec<Vec<u8>> = seq
            .iter()
            .map(|&[n, ..]| (0..=255u8).cycle().skip(n.into()).take(len).collect())
            .collect();
        let messages: Vec<(&[u8], &[u8])> = seq
            .iter()
            .zip(&bodies)
            .map(|(s, b)| (&s[..], &b[..]))
            .collect();
        let mut group = c.benchmark_group(format!("hmac_md5/{count}x{len}"));
        group.throughput(Throughput::Bytes(u64::from(count) * len as u64));
        group.bench_function("single_stream", |b| {
            b.iter(|| {
                messages
                    .iter()
                    .map(|(prefix, body)| {
                        let mut mac = mac.clone();
                        mac.update(prefix);
                        mac.update(body);
                        mac.finalize().into_bytes()
                    })
                    .fold(0u8, |a, x| a ^ x.first().copied().unwrap_or_default())
            });
        });
        group.bench_function("multi_buffer", |b| {
            b.iter(|| dsbackup_ntlm::fuzzing::hmac_md5_many(&key, black_box(&messages)));
        });
        group.finish();
    }
}

criterion_group!(benches, hmac_md5);
criterion_main!(benches);
