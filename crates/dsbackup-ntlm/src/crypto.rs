//! The NTLM v2 computations of [MS-NLMP §3.3.2] and the key derivations of [MS-NLMP §3.4.5].
//!
//! ```text
//! NTOWFv2(Passwd, User, UserDom) = HMAC_MD5(MD4(UNICODE(Passwd)), UNICODE(Uppercase(User) || UserDom))
//! temp            = 0x01 || 0x01 || Z(6) || Time || ClientChallenge || Z(4) || AvPairs || ...
//! NTProofStr      = HMAC_MD5(ResponseKeyNT, CHALLENGE.ServerChallenge || temp)
//! NtChallengeResponse = NTProofStr || temp
//! LmChallengeResponse = HMAC_MD5(ResponseKeyLM, ServerChallenge || ClientChallenge) || ClientChallenge
//! SessionBaseKey  = HMAC_MD5(ResponseKeyNT, NTProofStr)      (= KeyExchangeKey for NTLM v2)
//! ```
//!
//! [MS-NLMP §3.3.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/5e550938-91d4-459f-b67d-75d70009e3f3
//! [MS-NLMP §3.4.5]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/524cdccb-563e-4793-92b0-7bc321fce096

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use md4::Md4;
use md5::{Digest, Md5};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::flags::NegotiateFlags;
use crate::rc4::Rc4;

/// A 16-byte key (session base key, exported session key, signing or sealing key).
///
/// Zeroized on drop; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Key(pub(crate) [u8; 16]);

impl Key {
    /// Wraps 16 bytes of key material.
    pub fn new(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// The NT one-way function of a password: `MD4(UTF-16LE(password))` ([MS-NLMP §3.3.1]).
///
/// This is what a credential store keeps; it is as good as the password to an attacker, so it is
/// zeroized on drop and `Debug` never shows it.
///
/// [MS-NLMP §3.3.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/464551a8-9fc4-428e-b3d3-bc5bfb2e73a5
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct NtHash([u8; 16]);

impl NtHash {
    /// The NT hash of a password.
    pub fn from_password(password: &str) -> Self {
        let mut unicode = utf16le(password);
        let hash = Md4::digest(&unicode);
        unicode.zeroize();
        Self(hash.into())
    }

    /// Wraps an NT hash given as 16 bytes (as `secretsdump` or a SAM export prints it).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The hash bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for NtHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NtHash(<redacted>)")
    }
}

/// `NTOWFv2` = `HMAC_MD5(NT hash, UTF-16LE(Uppercase(user) || domain))` ([MS-NLMP §3.3.2]).
///
/// The user is upper-cased code point by code point, as Windows does (a letter whose upper case
/// is longer than one character, like `ß`, is kept); the domain is taken as given.
///
/// [MS-NLMP §3.3.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/5e550938-91d4-459f-b67d-75d70009e3f3
pub(crate) fn ntowfv2(nt_hash: &NtHash, user: &str, domain: &str) -> Key {
    let mut data = utf16le(&uppercase(user));
    data.extend_from_slice(&utf16le(domain));
    let key = Key(hmac_md5(nt_hash.as_bytes(), &[&data]));
    data.zeroize();
    key
}

/// `NTProofStr` = `HMAC_MD5(ResponseKeyNT, ServerChallenge || temp)`, where `temp` is the client's
/// blob (the NtChallengeResponse after its first 16 bytes).
pub(crate) fn nt_proof_str(
    response_key_nt: &Key,
    server_challenge: &[u8; 8],
    blob: &[u8],
) -> [u8; 16] {
    hmac_md5(response_key_nt.as_bytes(), &[server_challenge, blob])
}

/// The LMv2 response: `HMAC_MD5(ResponseKeyLM, ServerChallenge || ClientChallenge) ||
/// ClientChallenge` (ResponseKeyLM = ResponseKeyNT for NTLM v2).
pub(crate) fn lmv2_response(
    response_key_nt: &Key,
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
) -> [u8; 24] {
    let mac = hmac_md5(
        response_key_nt.as_bytes(),
        &[server_challenge, client_challenge],
    );
    let mut out = [0u8; 24];
    let (head, tail) = out.split_at_mut(16);
    head.copy_from_slice(&mac);
    tail.copy_from_slice(client_challenge);
    out
}

/// `SessionBaseKey` = `HMAC_MD5(ResponseKeyNT, NTProofStr)`; for NTLM v2 it is also the
/// KeyExchangeKey.
pub(crate) fn session_base_key(response_key_nt: &Key, nt_proof_str: &[u8; 16]) -> Key {
    Key(hmac_md5(response_key_nt.as_bytes(), &[nt_proof_str]))
}

/// `RC4K(KeyExchangeKey, key)`: the EncryptedRandomSessionKey from the ExportedSessionKey, or back
/// (RC4 is its own inverse).
pub(crate) fn rc4_key(key_exchange_key: &Key, key: &[u8; 16]) -> Key {
    let mut out = *key;
    let mut cipher = Rc4Stream::new(key_exchange_key.as_bytes());
    cipher.apply(&mut out);
    let result = Key(out);
    out.zeroize();
    result
}

/// `MIC` = `HMAC_MD5(ExportedSessionKey, NEGOTIATE || CHALLENGE || AUTHENTICATE)`, the
/// AUTHENTICATE with its MIC field zeroed ([MS-NLMP §3.1.5.1.2]).
///
/// [MS-NLMP §3.1.5.1.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/c0250a97-2940-40c7-82fb-20d208c71e96
pub(crate) fn mic(
    exported_session_key: &Key,
    negotiate: &[u8],
    challenge: &[u8],
    authenticate_zero_mic: &[u8],
) -> [u8; 16] {
    hmac_md5(
        exported_session_key.as_bytes(),
        &[negotiate, challenge, authenticate_zero_mic],
    )
}

/// Which way a key protects messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Initiator (client) to acceptor (server).
    ClientToServer,
    /// Acceptor (server) to initiator (client).
    ServerToClient,
}

/// `SIGNKEY` with extended session security ([MS-NLMP §3.4.5.2]):
/// `MD5(ExportedSessionKey || "session key to <dir> signing key magic constant\0")`.
///
/// [MS-NLMP §3.4.5.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/524cdccb-563e-4793-92b0-7bc321fce096
pub(crate) fn sign_key(exported_session_key: &Key, direction: Direction) -> Key {
    let magic: &[u8] = match direction {
        Direction::ClientToServer => CLIENT_SIGNING_MAGIC,
        Direction::ServerToClient => SERVER_SIGNING_MAGIC,
    };
    Key(md5_concat(exported_session_key.as_bytes(), magic))
}

/// `SEALKEY` with extended session security ([MS-NLMP §3.4.5.3]): the ExportedSessionKey cut to
/// 16, 7 or 5 bytes by NEGOTIATE_128 / NEGOTIATE_56, then
/// `MD5(key || "session key to <dir> sealing key magic constant\0")`.
///
/// [MS-NLMP §3.4.5.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/bf39181d-e95d-40d7-a740-ab4ec3dc363d
pub(crate) fn seal_key(
    exported_session_key: &Key,
    flags: NegotiateFlags,
    direction: Direction,
) -> Key {
    let full = exported_session_key.as_bytes();
    let len = if flags.contains(NegotiateFlags::NEGOTIATE_128) {
        16
    } else if flags.contains(NegotiateFlags::NEGOTIATE_56) {
        7
    } else {
        5
    };
    let magic: &[u8] = match direction {
        Direction::ClientToServer => CLIENT_SEALING_MAGIC,
        Direction::ServerToClient => SERVER_SEALING_MAGIC,
    };
    Key(md5_concat(full.get(..len).unwrap_or(full), magic))
}

/// An RC4 keystream kept across messages (the sealing "handle" of [MS-NLMP §3.4.4]).
///
/// The cipher state is zeroized on drop ([`Rc4`]); `Debug` never shows it.
pub(crate) struct Rc4Stream(Rc4);

impl Rc4Stream {
    pub(crate) fn new(key: &[u8; 16]) -> Self {
        Self(Rc4::new(key))
    }

    /// Encrypts or decrypts `data` in place, continuing the keystream.
    pub(crate) fn apply(&mut self, data: &mut [u8]) {
        self.0.apply(data);
    }

    /// The cipher itself, for the stitched sealing (`crate::stitch`).
    pub(crate) fn rc4(&mut self) -> &mut Rc4 {
        &mut self.0
    }
}

impl fmt::Debug for Rc4Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rc4Stream(<redacted>)")
    }
}

/// HMAC-MD5 over the concatenation of `parts`.
pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // INVARIANT: HMAC takes keys of any length, so `new_from_slice` never fails.
    let mut mac =
        <Hmac<Md5> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn md5_concat(a: &[u8], b: &[u8]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(a);
    md5.update(b);
    md5.finalize().into()
}

/// UTF-16LE bytes of a string.
pub(crate) fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Upper case, code point by code point, keeping letters whose upper case is not one character.
pub(crate) fn uppercase(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

const CLIENT_SIGNING_MAGIC: &[u8] = b"session key to client-to-server signing key magic constant\0";
const SERVER_SIGNING_MAGIC: &[u8] = b"session key to server-to-client signing key magic constant\0";
const CLIENT_SEALING_MAGIC: &[u8] = b"session key to client-to-server sealing key magic constant\0";
const SERVER_SEALING_MAGIC: &[u8] = b"session key to server-to-client sealing key magic constant\0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nt_hash_of_password() {
        // [MS-NLMP §4.2.2.1.2] NTOWFv1("Password") = a4 f4 9c 40 65 10 bd ca b6 82 4e e7 c3 0f d8 52.
        assert_eq!(
            hex::encode(NtHash::from_password("Password").as_bytes()),
            "a4f49c406510bdcab6824ee7c30fd852"
        );
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let hash = NtHash::from_password("Password");
        assert_eq!(format!("{hash:?}"), "NtHash(<redacted>)");
        assert_eq!(format!("{:?}", Key::new([7; 16])), "Key(<redacted>)");
    }

    #[test]
    fn uppercase_keeps_multi_char_expansions() {
        assert_eq!(uppercase("user"), "USER");
        assert_eq!(uppercase("straße"), "STRAßE");
    }
}
