//! Oracles for the cargo-fuzz targets; not a stable API.

use std::sync::Arc;

use crate::acceptor::{Acceptor, AcceptorConfig, InMemoryCredentials, ServerInputs};
use crate::md5x::{self, Job};
use crate::messages::Message;
use crate::stitch::HmacMd5;

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

/// Multi-buffer HMAC-MD5 of `messages`, each `prefix || body`, under `key`, as the session's
/// batch calls compute it (for the benches).
pub fn hmac_md5_many(key: &[u8], messages: &[(&[u8], &[u8])]) -> Vec<[u8; 16]> {
    let key = HmacMd5::new(key);
    let jobs: Vec<Job<'_>> = messages
        .iter()
        .map(|&(prefix, body)| Job {
            key: &key,
            prefix,
            body,
        })
        .collect();
    let mut out = vec![[0u8; 16]; jobs.len()];
    md5x::hmac_md5_many(&jobs, &mut out);
    out
}

/// The multi-buffer HMAC-MD5 against the `hmac` and `md-5` crates, and the batch calls of a
/// session against one call per fragment. `data` is a key (its length from the first byte, up
/// to 80), a count of messages, then per message a prefix length (up to 70) and a body length
/// (up to 5000, two bytes); the bytes left fill the messages, over and over. The same messages
/// are then wrapped and unwrapped as fragments (the stub after the prefix), at the level and
/// with the flags the last byte picks, one fragment altered on the way if it says so.
///
/// # Panics
/// When a MAC differs from the crates', or a batch from the single calls (bytes, signatures,
/// sequence numbers, the index and error of the first failure): a bug the fuzzer is looking for.
pub fn md5_multibuffer(data: &[u8]) {
    use hmac::{Hmac, KeyInit as _, Mac as _};
    use md5::Md5;

    let mut input = data.iter().copied();
    let mut byte = || input.next().unwrap_or(0);
    let key: Vec<u8> = {
        let len = byte() % 81;
        (0..len).map(|_| byte()).collect()
    };
    let count = usize::from(byte() % 20) + 1;
    let shapes: Vec<(usize, usize)> = (0..count)
        .map(|_| {
            let prefix = usize::from(byte() % 71);
            let body = usize::from(u16::from_le_bytes([byte(), byte()]) % 5001);
            (prefix, body)
        })
        .collect();
    let last = byte();
    let header = 1 + key.len() + 1 + 3 * count + 1;
    let fill = data
        .get(header..)
        .filter(|rest| !rest.is_empty())
        .unwrap_or(&[0]);
    let mut bytes = fill.iter().copied().cycle();
    let messages: Vec<(Vec<u8>, Vec<u8>)> = shapes
        .iter()
        .map(|&(prefix, body)| {
            (
                bytes.by_ref().take(prefix).collect(),
                bytes.by_ref().take(body).collect(),
            )
        })
        .collect();

    let pairs: Vec<(&[u8], &[u8])> = messages.iter().map(|(p, b)| (&p[..], &b[..])).collect();
    let ours = hmac_md5_many(&key, &pairs);
    #[expect(
        clippy::panic,
        reason = "the oracle reports a difference to the fuzzer"
    )]
    for (n, ((prefix, body), mac)) in pairs.iter().zip(&ours).enumerate() {
        let Ok(mut theirs) = Hmac::<Md5>::new_from_slice(&key) else {
            return;
        };
        theirs.update(prefix);
        theirs.update(body);
        if theirs.finalize().into_bytes()[..] != mac[..] {
            panic!("HMAC-MD5 of message {n} of {count} differs from the hmac crate");
        }
    }
    batch_differential(&key, &messages, last);
}

/// A fragment as the oracle and the tests keep it: the PDU, its stub range, its signature.
pub(crate) type Fragment = (Vec<u8>, core::ops::Range<usize>, [u8; 16]);

/// `fragments` as a batch carries them.
pub(crate) fn protected(fragments: &mut [Fragment]) -> Vec<dsbackup_proto::ProtectedFragment<'_>> {
    fragments
        .iter_mut()
        .map(|(pdu, stub, signature)| dsbackup_proto::ProtectedFragment {
            pdu,
            stub: stub.clone(),
            signature,
        })
        .collect()
}

/// [`md5_multibuffer`]'s second half: the fragments `prefix || body`, the stub after the
/// prefix; `last` picks the level (bit 0), KEY_EXCH (bit 1) and, from bit 2, which fragment
/// is altered on the way (none when past the last one).
fn batch_differential(key: &[u8], messages: &[(Vec<u8>, Vec<u8>)], last: u8) {
    use dsbackup_proto::{Protection, SecurityError};

    use crate::crypto::Key;
    use crate::flags::NegotiateFlags as F;
    use crate::session::{Role, SessionSecurity, unwrap, unwrap_batch, wrap, wrap_batch};

    let mut session_key = [0u8; 16];
    for (k, b) in session_key.iter_mut().zip(key) {
        *k = *b;
    }
    let session_key = Key::new(session_key);
    let mut flags = F::NEGOTIATE_EXTENDED_SESSIONSECURITY
        | F::NEGOTIATE_128
        | F::NEGOTIATE_SIGN
        | F::NEGOTIATE_SEAL;
    if last & 2 != 0 {
        flags |= F::NEGOTIATE_KEY_EXCH;
    }
    let protection = if last & 1 != 0 {
        Protection::Privacy
    } else {
        Protection::Integrity
    };
    let altered = usize::from(last >> 2);
    let session = |role| SessionSecurity::new(&session_key, flags, role).ok();
    let (Some(mut one), Some(mut many), Some(mut one_peer), Some(mut many_peer)) = (
        session(Role::Initiator),
        session(Role::Initiator),
        session(Role::Acceptor),
        session(Role::Acceptor),
    ) else {
        return;
    };
    let mut fragments: Vec<Fragment> = messages
        .iter()
        .map(|(prefix, body)| {
            let pdu = [&prefix[..], &body[..]].concat();
            let stub = prefix.len()..pdu.len();
            (pdu, stub, [0; 16])
        })
        .collect();
    let mut batch = fragments.clone();
    let mut singles: Result<(), (usize, SecurityError)> = Ok(());
    for (n, (pdu, stub, signature)) in fragments.iter_mut().enumerate() {
        if let Err(error) = wrap(Some(&mut one), protection, pdu, stub.clone(), signature) {
            singles = Err((n, error));
            break;
        }
    }
    let batched = wrap_batch(Some(&mut many), protection, &mut protected(&mut batch));
    #[expect(
        clippy::panic,
        reason = "the oracle reports a difference to the fuzzer"
    )]
    if batched != singles
        || batch != fragments
        || one.next_send_seq_num() != many.next_send_seq_num()
    {
        panic!("wrap_batch differs from wrap: {batched:?} against {singles:?}");
    }
    for fragments in [&mut fragments, &mut batch] {
        if let Some((pdu, _, _)) = fragments.get_mut(altered)
            && let Some(byte) = pdu.last_mut()
        {
            *byte ^= 1;
        }
    }
    let mut singles: Result<(), (usize, SecurityError)> = Ok(());
    for (n, (pdu, stub, signature)) in fragments.iter_mut().enumerate() {
        if let Err(error) = unwrap(
            Some(&mut one_peer),
            protection,
            pdu,
            stub.clone(),
            signature,
        ) {
            singles = Err((n, error));
            break;
        }
    }
    let batched = unwrap_batch(Some(&mut many_peer), protection, &mut protected(&mut batch));
    let accepted = match singles {
        Ok(()) => fragments.len(),
        Err((n, _)) => n,
    };
    #[expect(
        clippy::panic,
        reason = "the oracle reports a difference to the fuzzer"
    )]
    if batched != singles
        || batch.get(..accepted) != fragments.get(..accepted)
        || one_peer.next_recv_seq_num() != many_peer.next_recv_seq_num()
    {
        panic!("unwrap_batch differs from unwrap: {batched:?} against {singles:?}");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The differential oracle holds on any bytes (it panics on a difference).
        #[test]
        fn md5_multibuffer_holds(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            super::md5_multibuffer(&data);
        }
    }
}
