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
