//! Oracles for the cargo-fuzz targets; not a stable API.

use std::sync::Arc;

use crate::acceptor::{Acceptor, AcceptorConfig, InMemoryCredentials, ServerInputs};
use crate::messages::Message;

/// Decodes `data` as any NTLM message; when it decodes, re-encodes it and checks that the
/// encoding decodes to the same message.
///
/// # Panics
/// When a decoded message does not survive an encode/decode round trip (a bug the fuzzer is
/// looking for).
pub fn decode_message(data: &[u8]) {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let encoded = message.encode();
    #[expect(
        clippy::panic,
        reason = "the oracle reports a broken round trip to the fuzzer"
    )]
    match encoded.map(|bytes| Message::decode(&bytes)) {
        Ok(Ok(again)) if again == message => {}
        Ok(Ok(again)) => panic!("round trip changed the message: {message:?} -> {again:?}"),
        Ok(Err(error)) => panic!("re-encoded message does not decode: {error}: {message:?}"),
        // Decoded fields always fit their 16-bit lengths again.
        Err(error) => panic!("decoded message does not encode: {error}"),
    }
}

/// Feeds peer bytes to an acceptor: `data` is split at its first byte (the NEGOTIATE's length)
/// into a NEGOTIATE and an AUTHENTICATE. Whatever the bytes, the acceptor must answer with a
/// value or a typed error, and must never let an unknown peer in.
///
/// # Panics
/// When the acceptor accepts the AUTHENTICATE (no fuzzer can know the password).
pub fn acceptor(data: &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let (negotiate, authenticate) = rest.split_at(usize::from(len).min(rest.len()));
    let mut users = InMemoryCredentials::new();
    users.insert_password(
        "user",
        "DOMAIN",
        "a password no fuzzer guesses: 9f8e7d6c5b4a",
    );
    let config = AcceptorConfig::new(Arc::new(users), "DC1", "DOMAIN", "domain.example");
    let inputs = ServerInputs {
        server_challenge: [0x5a; 8],
        timestamp: 0,
    };
    let mut acceptor = Acceptor::new(config, inputs);
    if acceptor.challenge(negotiate).is_err() {
        return;
    }
    #[expect(
        clippy::panic,
        reason = "the oracle reports a logon without the password to the fuzzer"
    )]
    if let Ok(identity) = acceptor.authenticate(authenticate) {
        panic!("accepted without the password: {identity:?}");
    }
}

/// RC4 of this crate against the `rc4` crate: `data` is a key length (1 to 32, from the first
/// byte), the key, a count of cuts and the cut points, then the message; both ciphers take the
/// key and encrypt the message in the same pieces.
///
/// # Panics
/// When the two ciphers give different bytes (a bug the fuzzer is looking for).
pub fn rc4_differential(data: &[u8]) {
    use rc4::{KeyInit as _, StreamCipher as _};

    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let key_len = usize::from(len % 32) + 1;
    let Some((key, rest)) = rest.split_at_checked(key_len) else {
        return;
    };
    let Some((&cuts, rest)) = rest.split_first() else {
        return;
    };
    let Some((cuts, message)) = rest.split_at_checked(usize::from(cuts % 4)) else {
        return;
    };
    // Cut points are fractions of the message, in order.
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|&c| message.len().saturating_mul(usize::from(c)) / 255)
        .collect();
    points.sort_unstable();
    points.push(message.len());
    let mut ours = crate::rc4::Rc4::new(key);
    let Ok(mut theirs) = rc4::Rc4::new_from_slice(key) else {
        return;
    };
    let mut a = message.to_vec();
    let mut b = message.to_vec();
    let mut start = 0;
    for point in points {
        let (Some(x), Some(y)) = (a.get_mut(start..point), b.get_mut(start..point)) else {
            continue;
        };
        ours.apply(x);
        theirs.apply_keystream(y);
        start = point;
    }
    #[expect(
        clippy::panic,
        reason = "the oracle reports a difference to the fuzzer"
    )]
    if a != b {
        panic!("RC4 differs from the rc4 crate for key {key:02x?}");
    }
}
