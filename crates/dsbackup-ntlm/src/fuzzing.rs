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

/// The stitched RC4 + HMAC-MD5 of sealing (`crate::stitch`) against the `hmac`, `md-5` and
/// `rc4` crates run one after the other: `data` is a 16-byte key, a 4-byte sequence number,
/// the count of keystream bytes used before the message, the length of a prefix hashed before
/// it (where the MD5 stream is when the message starts), the sealed range's ends as fractions
/// of the message, then the message. Both directions: sealing the plaintext gives the crates'
/// ciphertext and checksum, unsealing that ciphertext gives the plaintext and the same
/// checksum; the keystream goes on where theirs does; and the same for plain MD5 at the
/// prefix's offset.
///
/// # Panics
/// When the stitched pass and the crates disagree (a bug the fuzzer is looking for).
pub fn stitch_differential(data: &[u8]) {
    use hmac::{Hmac, KeyInit as _, Mac as _};
    use md5::{Digest as _, Md5};
    use rc4::StreamCipher as _;

    use crate::stitch::{self, HmacMd5, Mode};

    let Some((key, rest)) = data.split_first_chunk::<16>() else {
        return;
    };
    let Some((seq, rest)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let Some((&[skip, prefix, a, b], plain)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let seq_num = u32::from_le_bytes(*seq);
    let at = |fraction: u8| plain.len().saturating_mul(usize::from(fraction)) / 255;
    let sealed = at(a).min(at(b))..at(a).max(at(b));
    let prefix = vec![0xa5_u8; usize::from(prefix)];

    // The crates: the keystream after `skip` bytes XORed over the range, and the 8 after it.
    let Ok(mut theirs) = rc4::Rc4::new_from_slice(key) else {
        return;
    };
    let mut keystream = vec![0_u8; usize::from(skip) + sealed.len() + 8];
    theirs.apply_keystream(&mut keystream);
    let (_, keystream) = keystream.split_at(usize::from(skip));
    let (keystream, next) = keystream.split_at(sealed.len());
    let mut sealed_bytes = plain.to_vec();
    if let Some(range) = sealed_bytes.get_mut(sealed.clone()) {
        for (byte, k) in range.iter_mut().zip(keystream) {
            *byte ^= k;
        }
    }
    let Ok(mut mac) = Hmac::<Md5>::new_from_slice(key) else {
        return;
    };
    mac.update(seq);
    mac.update(plain);
    let mac: [u8; 16] = mac.finalize().into_bytes().into();
    let mut md5 = Md5::new();
    md5.update(&prefix);
    md5.update(plain);
    let digest: [u8; 16] = md5.finalize().into();

    let hmac = HmacMd5::new(key);
    for mode in [Mode::Seal, Mode::Unseal] {
        let (input, output) = match mode {
            Mode::Seal => (plain, sealed_bytes.as_slice()),
            Mode::Unseal => (sealed_bytes.as_slice(), plain),
        };
        let keyed = || {
            let mut rc4 = crate::rc4::Rc4::new(key);
            rc4.apply(&mut vec![0; usize::from(skip)]);
            rc4
        };
        let mut rc4 = keyed();
        let mut bytes = input.to_vec();
        let checksum = hmac.checksum(seq_num, &mut rc4, &mut bytes, sealed.clone(), mode);
        let mut after = [0_u8; 8];
        rc4.apply(&mut after);
        let mut rc4 = keyed();
        let mut again = input.to_vec();
        let mut ours = stitch::Md5::new();
        ours.update(&prefix);
        stitch::hash_and_apply(&mut ours, &mut rc4, &mut again, sealed.clone(), mode);
        #[expect(
            clippy::panic,
            reason = "the oracle reports a difference to the fuzzer"
        )]
        if bytes != output
            || again != output
            || mac.get(..8) != Some(&checksum[..])
            || ours.finalize() != digest
            || after != next
        {
            panic!(
                "{mode:?} differs from the crates: range {sealed:?} of {} bytes, {skip} keystream \
                 bytes before, prefix {}",
                plain.len(),
                prefix.len()
            );
        }
    }
}
