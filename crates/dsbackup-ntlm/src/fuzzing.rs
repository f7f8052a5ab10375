//! Oracles for the cargo-fuzz targets; not a stable API.

use std::sync::Arc;

use crate::acceptor::{Acceptor, AcceptorConfig, InMemoryCredentials, ServerInputs};
use crate::crypto::Rc4Stream;
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

/// Runs our RC4 and the `rc4` crate side by side: `data` is a 16-byte key, then segments of
/// one length byte and up to that many bytes, each put through both keystreams in turn.
///
/// # Panics
/// When the two outputs differ (a bug the fuzzer is looking for).
pub fn rc4_differential(data: &[u8]) {
    use rc4::{KeyInit as _, StreamCipher as _};
    let Some((key, mut rest)) = data.split_first_chunk::<16>() else {
        return;
    };
    let mut ours = Rc4Stream::new(key);
    let Ok(mut reference) = rc4::Rc4::new_from_slice(key) else {
        return;
    };
    while let Some((&len, tail)) = rest.split_first() {
        let (segment, next) = tail.split_at(usize::from(len).min(tail.len()));
        let mut a = segment.to_vec();
        let mut b = segment.to_vec();
        ours.apply(&mut a);
        reference.apply_keystream(&mut b);
        #[expect(
            clippy::panic,
            reason = "the oracle reports a difference to the fuzzer"
        )]
        if a != b {
            panic!(
                "our RC4 differs from the rc4 crate on {} bytes",
                segment.len()
            );
        }
        rest = next;
    }
}
