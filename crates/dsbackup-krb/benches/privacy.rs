//! Kerberos packet privacy with aes256-cts-hmac-sha1-96: `Key::encrypt` and `Key::decrypt` of a
//! message, and the RFC 4121 wrap tokens of DCE/RPC fragments (`wrap` seals the stub in place,
//! `unwrap` checks and opens it), for a fragment of 65535 bytes and one of 5840 (what Windows
//! servers offer), against a memcpy of the same bytes and HMAC-SHA1 alone. Throughput counts
//! the bytes encrypted (the message, or the fragment's stub).

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]
#![expect(
    clippy::panic,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "bench: a failed step fails the bench"
)]

use std::hint::black_box;
use std::ops::Range;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dsbackup_krb::{
    AcceptorConfig, AcceptorInputs, Credential, EncType, Grant, InitiatorInputs, KerberosAcceptor,
    KerberosInitiator, KerberosTime, Key, KeytabEntry, PrincipalName, ServiceKeys,
};
use dsbackup_proto::{AuthStep, Protection, SecurityProvider};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

const REALM: &str = "BENCH.EXAMPLE";
const SPN: &str = "host/dc1.bench.example";
const NOW: i64 = 1_800_000_000;
/// Bytes of a request or response fragment around its stub: 24 of header, 8 of sec_trailer.
const HEADER: usize = 24;
const TRAILER: usize = 8;
/// `auth_value` of a wrap token with AES (EC = 16 filler bytes).
const TOKEN: usize = 76;
/// Fragment sizes measured: the largest, and what Windows servers offer.
const FRAG_SIZES: [usize; 2] = [65535, 5840];

fn service_key() -> Key {
    Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x42; 32]).unwrap()
}

/// An established initiator and acceptor at privacy, with header signing.
fn handshake() -> (KerberosInitiator, KerberosAcceptor) {
    let grant = Grant {
        crealm: REALM.into(),
        client: PrincipalName::user("backup"),
        srealm: REALM.into(),
        server: PrincipalName::service(SPN),
        session_key: Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[0x24; 32]).unwrap(),
        authtime: KerberosTime(NOW - 60),
        endtime: KerberosTime(NOW + 86_400),
        flags: 0,
    };
    let ticket = Credential::issue(grant, &service_key(), Some(1), &[3; 16]);
    let mut n = 0u8;
    let mut client = KerberosInitiator::new(
        ticket,
        Protection::Privacy,
        InitiatorInputs {
            now: KerberosTime(NOW),
            usec: 1,
            seq: 100,
            subkey: [0x11; 32],
            confounders: Box::new(move || {
                n = n.wrapping_add(1);
                [n; 16]
            }),
        },
    );
    let entry = KeytabEntry {
        realm: REALM.into(),
        principal: PrincipalName::service(SPN),
        kvno: 1,
        key: service_key(),
    };
    let mut server = KerberosAcceptor::new(
        AcceptorConfig::new(ServiceKeys::new(vec![entry], Some(SPN))),
        AcceptorInputs {
            now: KerberosTime(NOW),
            seq: 7000,
            subkey: [0x22; 32],
            confounders: Box::new(|| [0x33; 16]),
        },
    );
    server.require(Protection::Privacy);
    let AuthStep::Continue(ap_req) = client.step(None).unwrap() else {
        panic!("the initiator starts with an AP-REQ");
    };
    let AuthStep::Continue(ap_rep) = server.step(Some(&ap_req)).unwrap() else {
        panic!("the acceptor answers with an AP-REP");
    };
    let AuthStep::Complete(Some(reply)) = client.step(Some(&ap_rep)).unwrap() else {
        panic!("the initiator answers with its own AP-REP");
    };
    server.step(Some(&reply)).unwrap();
    client.header_signing(true);
    server.header_signing(true);
    (client, server)
}

/// A fragment of `frag_size` bytes less its `auth_value`, and the range of its stub (a
/// multiple of 16 bytes, as DCE/RPC pads it at privacy).
fn fragment(frag_size: usize) -> (Vec<u8>, Range<usize>) {
    let stub_len = (frag_size - HEADER - TRAILER - TOKEN) / 16 * 16;
    let pdu: Vec<u8> = (0..HEADER + stub_len + TRAILER)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    (pdu, HEADER..HEADER + stub_len)
}

fn bench(c: &mut Criterion) {
    let key = Key::new(EncType::AES256_CTS_HMAC_SHA1_96, &[7; 32]).unwrap();
    for frag_size in FRAG_SIZES {
        let (clear, stub) = fragment(frag_size);
        let mut group = c.benchmark_group(format!("krb_privacy/{frag_size}"));
        group.throughput(Throughput::Bytes(stub.len() as u64));

        let message = &clear[stub.clone()];
        group.bench_function("encrypt", |b| {
            b.iter(|| black_box(key.encrypt(24, &[1; 16], black_box(message))));
        });
        let sealed = key.encrypt(24, &[1; 16], message);
        group.bench_function("decrypt", |b| {
            b.iter(|| black_box(key.decrypt(24, black_box(&sealed)).unwrap()));
        });

        let (mut client, _) = handshake();
        let mut pdu = clear.clone();
        let mut sig = vec![0; TOKEN];
        group.bench_function("wrap", |b| {
            b.iter(|| {
                pdu.copy_from_slice(&clear);
                client
                    .wrap(Protection::Privacy, &mut pdu, stub.clone(), &mut sig)
                    .unwrap();
                black_box((&pdu, &sig));
            });
        });
        // The acceptor expects the initiator's sequence numbers in turn: seal each one outside
        // the measured time.
        let (mut client, mut server) = handshake();
        group.bench_function("unwrap", |b| {
            b.iter_batched_ref(
                || {
                    let mut pdu = clear.clone();
                    let mut sig = vec![0; TOKEN];
                    client
                        .wrap(Protection::Privacy, &mut pdu, stub.clone(), &mut sig)
                        .unwrap();
                    (pdu, sig)
                },
                |(pdu, sig)| {
                    server
                        .unwrap(Protection::Privacy, pdu, stub.clone(), sig)
                        .unwrap();
                    black_box(&pdu);
                },
                BatchSize::SmallInput,
            );
        });

        // The checksum alone (the `hmac` and `sha1` crates that seal and open use): what opening
        // costs at least, CBC decryption running many blocks at once.
        group.bench_function("hmac_sha1", |b| {
            b.iter(|| {
                let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(&[7; 20]).unwrap();
                mac.update(black_box(message));
                black_box(mac.finalize());
            });
        });

        let mut copy = vec![0u8; stub.len()];
        group.bench_function("memcpy", |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(message));
                black_box(&copy);
            });
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
