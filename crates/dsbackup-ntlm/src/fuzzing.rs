//! Oracles for the cargo-fuzz targets; not a stable API.

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
