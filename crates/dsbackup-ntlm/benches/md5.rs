//! HMAC-MD5 of several fragments under one key: one message after the other with the `hmac` and
//! `md-5` crates, against the multi-buffer implementation (eight lanes); then a session's
//! fragments sealed and signed one call each against one batch call.

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

/// Eight fragments sealed (privacy) or signed (integrity) by one call each, and by one batch.
fn session(c: &mut Criterion) {
    use dsbackup_ntlm::{Key, NegotiateFlags as F, Role, SessionSecurity};
    use dsbackup_proto::ProtectedFragment;

    let flags = F::NEGOTIATE_EXTENDED_SESSIONSECURITY
        | F::NEGOTIATE_128
        | F::NEGOTIATE_KEY_EXCH
        | F::NEGOTIATE_SIGN
        | F::NEGOTIATE_SEAL;
    let session = || SessionSecurity::new(&Key::new([7; 16]), flags, Role::Initiator);
    for len in [5840usize, 65536] {
        let mut pdus: Vec<Vec<u8>> = (0..8).map(|_| vec![0x42; len]).collect();
        let mut signatures = [[0u8; 16]; 8];
        let stub = 24..len - 24;
        let mut group = c.benchmark_group(format!("ntlm/8x{len}"));
        group.throughput(Throughput::Bytes(8 * len as u64));
        for seal in [false, true] {
            let level = if seal { "privacy" } else { "integrity" };
            let Ok(mut single) = session() else { return };
            group.bench_function(format!("{level}_single"), |b| {
                b.iter(|| {
                    for (pdu, signature) in pdus.iter_mut().zip(&mut signatures) {
                        *signature = if seal {
                            single.seal_range(pdu, stub.clone()).unwrap_or_default()
                        } else {
                            single.sign(pdu)
                        };
                    }
                });
            });
            let Ok(mut batched) = session() else { return };
            group.bench_function(format!("{level}_batch"), |b| {
                b.iter(|| {
                    let mut fragments: Vec<ProtectedFragment<'_>> = pdus
                        .iter_mut()
                        .zip(&mut signatures)
                        .map(|(pdu, signature)| ProtectedFragment {
                            pdu,
                            stub: stub.clone(),
                            signature,
                        })
                        .collect();
                    if seal {
                        batched.seal_batch(&mut fragments)
                    } else {
                        batched.sign_batch(&mut fragments)
                    }
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, hmac_md5, session);
criterion_main!(benches);
