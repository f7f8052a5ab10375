//! PDU decode and encode rates against a memcpy of the same bytes: a 64 KiB response stub cut
//! into fragments of 4280 (the Windows default), 5840 and 65535 bytes. `encode` copies each
//! fragment into one buffer; `encode_chain` is what an unprotected server sends (the header,
//! then a shared slice of the stub).

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dsbackup_proto::{Chain, Pdu, PduBody, PfcFlags, Response};

/// The stub of the call: 64 KiB.
const STUB_LEN: usize = 64 * 1024;
/// Fragment sizes measured.
const FRAG_SIZES: [usize; 3] = [4280, 5840, 65535];
/// Bytes of a response fragment before its stub: 16 /* common header */ + 4 /* alloc_hint */
/// + 2 /* p_cont_id */ + 1 /* cancel_count */ + 1 /* reserved */.
const RESPONSE_OVERHEAD: usize = 16 + 4 + 2 + 1 + 1;

/// The response PDUs carrying `stub` in fragments of at most `frag_size` bytes.
fn fragments(stub: &Bytes, frag_size: usize) -> Vec<Pdu> {
    let per_fragment = frag_size - RESPONSE_OVERHEAD;
    let count = stub.len().div_ceil(per_fragment);
    (0..count)
        .map(|i| {
            let start = i * per_fragment;
            let end = stub.len().min(start + per_fragment);
            let mut pfc_flags = PfcFlags::empty();
            pfc_flags.set(PfcFlags::FIRST_FRAG, i == 0);
            pfc_flags.set(PfcFlags::LAST_FRAG, i + 1 == count);
            Pdu {
                pfc_flags,
                ..Pdu::new(
                    7,
                    PduBody::Response(Response {
                        alloc_hint: u32::try_from(stub.len() - start).unwrap_or(u32::MAX),
                        p_cont_id: 0,
                        cancel_count: 0,
                        reserved: 0,
                        stub: stub.slice(start..end),
                    }),
                )
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let stub: Bytes = (0..=250u8)
        .cycle()
        .take(STUB_LEN)
        .collect::<Vec<u8>>()
        .into();
    let mut group = c.benchmark_group("pdu");
    group.throughput(Throughput::Bytes(STUB_LEN as u64));
    for frag_size in FRAG_SIZES {
        let pdus = fragments(&stub, frag_size);
        let frames: Vec<Bytes> = pdus
            .iter()
            .map(|pdu| pdu.to_bytes().expect("fragments fit 65535 bytes"))
            .collect();
        group.bench_function(format!("decode/{frag_size}"), |b| {
            b.iter(|| {
                for frame in &frames {
                    black_box(Pdu::decode(black_box(frame.clone())).expect("valid fragment"));
                }
            });
        });
        let mut out = BytesMut::with_capacity(STUB_LEN * 2);
        group.bench_function(format!("encode/{frag_size}"), |b| {
            b.iter(|| {
                out.clear();
                for pdu in &pdus {
                    black_box(pdu)
                        .encode(&mut out)
                        .expect("fragments fit 65535 bytes");
                }
                black_box(&out);
            });
        });
        // What the server sends unprotected: each fragment as its header and a shared slice
        // of the stub.
        let apart: Vec<(Pdu, Chain)> = pdus
            .iter()
            .map(|pdu| {
                let mut head = pdu.clone();
                let stub = head.body.take_stub();
                (head, Chain::from(stub))
            })
            .collect();
        group.bench_function(format!("encode_chain/{frag_size}"), |b| {
            b.iter(|| {
                for (pdu, stub) in &apart {
                    black_box(
                        black_box(pdu)
                            .to_chain_with_stub(stub.clone())
                            .expect("fragments fit 65535 bytes"),
                    );
                }
            });
        });
    }
    let mut copy = vec![0u8; STUB_LEN];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            copy.copy_from_slice(black_box(&stub));
            black_box(&copy);
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
