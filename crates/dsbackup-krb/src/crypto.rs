//! The encryption types: AES-CTS-HMAC-SHA1-96 ([RFC 3962], on the simplified profile of
//! [RFC 3961]) and RC4-HMAC ([RFC 4757]).
//!
//! A [`Key`] knows its encryption type. [`Key::encrypt`] takes the confounder from the caller
//! (this crate draws no random numbers); [`Key::decrypt`] checks the integrity checksum before it
//! hands anything back. [`Key`] derives the keys of a usage per call; a GSS context keeps
//! those of its two seal usages ready.
//!
//! [RFC 3961]: https://www.rfc-editor.org/rfc/rfc3961
//! [RFC 3962]: https://www.rfc-editor.org/rfc/rfc3962
//! [RFC 4757]: https://www.rfc-editor.org/rfc/rfc4757

use core::fmt;
use core::ops::Range;

use aes::cipher::consts::U16;
use aes::cipher::typenum::Unsigned;
use aes::cipher::{
    BlockCipherDecBackend, BlockCipherDecClosure, BlockCipherDecrypt, BlockCipherEncBackend,
    BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, KeyInit, ParBlocks,
};
use aes::{Aes128, Aes256, Block};
use hmac::{Hmac, Mac};
use md4::Md4;
use md5::{Digest, Md5};
use rc4::{Rc4, StreamCipher};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::CryptoError;
use crate::wire::known_values;

/// An encryption type number (`etype`, [RFC 3961 §8]).
///
/// [RFC 3961 §8]: https://www.rfc-editor.org/rfc/rfc3961#section-8
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EncType(pub i32);

known_values! {
    EncType;
    /// aes128-cts-hmac-sha1-96.
    AES128_CTS_HMAC_SHA1_96 = 17 => "aes128-cts-hmac-sha1-96",
    /// aes256-cts-hmac-sha1-96.
    AES256_CTS_HMAC_SHA1_96 = 18 => "aes256-cts-hmac-sha1-96",
    /// rc4-hmac (arcfour-hmac-md5).
    RC4_HMAC = 23 => "rc4-hmac",
}

impl EncType {
    /// The encryption types this crate implements, strongest first: what a request offers.
    pub const SUPPORTED: [Self; 3] = [
        Self::AES256_CTS_HMAC_SHA1_96,
        Self::AES128_CTS_HMAC_SHA1_96,
        Self::RC4_HMAC,
    ];

    /// Length of a key of this type, `None` for a type this crate does not implement.
    pub fn key_len(self) -> Option<usize> {
        match self {
            Self::AES128_CTS_HMAC_SHA1_96 | Self::RC4_HMAC => Some(16),
            Self::AES256_CTS_HMAC_SHA1_96 => Some(32),
            _ => None,
        }
    }

    /// The keyed checksum type that goes with this encryption type ([RFC 3962 §7], [RFC 4757]).
    ///
    /// [RFC 3962 §7]: https://www.rfc-editor.org/rfc/rfc3962#section-7
    /// [RFC 4757]: https://www.rfc-editor.org/rfc/rfc4757
    pub fn checksum_type(self) -> i32 {
        match self {
            Self::AES128_CTS_HMAC_SHA1_96 => 15,
            Self::AES256_CTS_HMAC_SHA1_96 => 16,
            _ => -138,
        }
    }

    /// Bytes `encrypt` adds to a plaintext: confounder and integrity checksum.
    pub fn overhead(self) -> usize {
        match self {
            Self::RC4_HMAC => 16 + 8,
            _ => AES_BLOCK + HMAC_SHA1_96,
        }
    }
}

const AES_BLOCK: usize = 16;
pub(crate) const HMAC_SHA1_96: usize = 12;
/// PBKDF2 iterations when the KDC names none ([RFC 3962 §4]).
const DEFAULT_ITERATIONS: u32 = 4096;
/// Iteration counts above this are refused: a KDC must not make us spin for minutes.
const MAX_ITERATIONS: u32 = 1 << 20;

/// A protocol key: its encryption type and its bytes (zeroized on drop).
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    etype: EncType,
    bytes: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?}, {} bytes)", self.etype, self.bytes.len())
    }
}

impl Key {
    /// A key of `etype` from its bytes.
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedEncType`] for a type this crate does not implement,
    /// [`CryptoError::KeyLength`] when `bytes` is not that type's key length.
    pub fn new(etype: EncType, bytes: &[u8]) -> Result<Self, CryptoError> {
        let len = etype
            .key_len()
            .ok_or(CryptoError::UnsupportedEncType(etype.0))?;
        if bytes.len() != len {
            return Err(CryptoError::KeyLength);
        }
        Ok(Self {
            etype,
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// The long-term key of a password ([RFC 3962 §4], [RFC 4757 §2]): PBKDF2-HMAC-SHA1 over
    /// `salt` (the realm followed by the principal's name components, or what the KDC's
    /// ETYPE-INFO2 names) then `DK(tkey, "kerberos")` for AES; the NT hash for RC4-HMAC.
    /// `params` is the s2kparams of ETYPE-INFO2 (a 4-byte big-endian iteration count).
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedEncType`], or [`CryptoError::BadParams`] for malformed or
    /// excessive s2kparams.
    ///
    /// [RFC 3962 §4]: https://www.rfc-editor.org/rfc/rfc3962#section-4
    /// [RFC 4757 §2]: https://www.rfc-editor.org/rfc/rfc4757#section-2
    pub fn from_password(
        etype: EncType,
        password: &str,
        salt: &[u8],
        params: Option<&[u8]>,
    ) -> Result<Self, CryptoError> {
        match etype {
            EncType::RC4_HMAC => {
                let utf16: Zeroizing<Vec<u8>> =
                    Zeroizing::new(password.encode_utf16().flat_map(u16::to_le_bytes).collect());
                let hash = Md4::digest(utf16.as_slice());
                Self::new(etype, hash.as_slice())
            }
            EncType::AES128_CTS_HMAC_SHA1_96 | EncType::AES256_CTS_HMAC_SHA1_96 => {
                let iterations = match params {
                    None => DEFAULT_ITERATIONS,
                    Some(p) => {
                        let bytes: [u8; 4] = p.try_into().map_err(|_| CryptoError::BadParams)?;
                        u32::from_be_bytes(bytes)
                    }
                };
                if iterations == 0 || iterations > MAX_ITERATIONS {
                    return Err(CryptoError::BadParams);
                }
                let len = etype.key_len().unwrap_or(AES_BLOCK);
                let mut tkey = Zeroizing::new(vec![0u8; len]);
                pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut tkey);
                let tkey = Self::new(etype, &tkey)?;
                let bytes = tkey.derive_random(b"kerberos")?;
                Ok(Self { etype, bytes })
            }
            other => Err(CryptoError::UnsupportedEncType(other.0)),
        }
    }

    /// The encryption type.
    pub fn etype(&self) -> EncType {
        self.etype
    }

    /// The key bytes (for a keytab or a ccache writer, or an observer that decrypts).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `encrypt(key, usage, plaintext)` with `confounder` (16 random bytes; RC4-HMAC uses the
    /// first 8).
    pub fn encrypt(&self, usage: u32, confounder: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
        match self.etype {
            EncType::RC4_HMAC => self.rc4_encrypt(usage, confounder, plaintext),
            _ => self.aes_encrypt(usage, confounder, plaintext),
        }
    }

    /// The mirror of [`encrypt`](Self::encrypt): checks the integrity checksum, then returns
    /// the plaintext without its confounder.
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] when the checksum does not verify (wrong key, wrong usage,
    /// altered bytes), [`CryptoError::Length`] when the ciphertext is too short.
    pub fn decrypt(&self, usage: u32, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self.etype {
            EncType::RC4_HMAC => self.rc4_decrypt(usage, ciphertext),
            _ => self.aes_decrypt(usage, ciphertext),
        }
    }

    /// The keyed checksum of `parts` (concatenated) under `usage`: HMAC-SHA1-96 with the
    /// derived key Kc for AES ([RFC 3962]), HMAC-MD5 with the signature key for RC4-HMAC
    /// ([RFC 4757 §4]).
    ///
    /// [RFC 3962]: https://www.rfc-editor.org/rfc/rfc3962
    /// [RFC 4757 §4]: https://www.rfc-editor.org/rfc/rfc4757#section-4
    pub fn checksum(&self, usage: u32, parts: &[&[u8]]) -> Vec<u8> {
        match self.etype {
            EncType::RC4_HMAC => {
                let ksign = hmac_md5(&self.bytes, &[b"signaturekey\0"]);
                let mut md5 = Md5::new();
                md5.update(rc4_usage(usage).to_le_bytes());
                for part in parts {
                    md5.update(part);
                }
                let tmp = md5.finalize();
                hmac_md5(&ksign, &[tmp.as_slice()]).to_vec()
            }
            _ => {
                let kc = self.derive(usage, 0x99);
                hmac_sha1(&kc, parts)
                    .get(..HMAC_SHA1_96)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default()
            }
        }
    }

    /// Checks a keyed checksum in constant time.
    ///
    /// # Errors
    /// [`CryptoError::Integrity`] when it does not match.
    pub fn verify_checksum(
        &self,
        usage: u32,
        parts: &[&[u8]],
        checksum: &[u8],
    ) -> Result<(), CryptoError> {
        let expected = self.checksum(usage, parts);
        if bool::from(expected.as_slice().ct_eq(checksum)) {
            Ok(())
        } else {
            Err(CryptoError::Integrity)
        }
    }

    /// The derived keys of `usage` for encryption (AES keys only).
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedEncType`] for an RC4-HMAC key.
    pub(crate) fn usage_keys(&self, usage: u32) -> Result<UsageKeys, CryptoError> {
        if self.etype == EncType::RC4_HMAC {
            return Err(CryptoError::UnsupportedEncType(self.etype.0));
        }
        let ke = self.derive(usage, 0xAA);
        let ki = self.derive(usage, 0x55);
        Ok(UsageKeys {
            usage,
            ke: AesKey::new(&ke)?,
            ki: <Hmac<Sha1> as KeyInit>::new_from_slice(&ki).map_err(|_| CryptoError::KeyLength)?,
        })
    }

    fn aes_encrypt(&self, usage: u32, confounder: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(AES_BLOCK + plaintext.len() + HMAC_SHA1_96);
        out.extend_from_slice(confounder);
        out.extend_from_slice(plaintext);
        let (conf, data) = out.split_at_mut(AES_BLOCK);
        // Only AES keys reach here, whose lengths `new` checked.
        let mac = self
            .usage_keys(usage)
            .map(|keys| keys.seal([conf, data, &mut []], [&[], &[]]))
            .unwrap_or_default();
        out.extend_from_slice(&mac);
        out
    }

    fn aes_decrypt(&self, usage: u32, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let split = ciphertext
            .len()
            .checked_sub(HMAC_SHA1_96)
            .filter(|&n| n >= AES_BLOCK)
            .ok_or(CryptoError::Length)?;
        let (body, mac) = ciphertext.split_at(split);
        let (conf, data) = body.split_at(AES_BLOCK);
        let mut conf = block_of(conf);
        let mut plain = data.to_vec();
        let opened =
            self.usage_keys(usage)?
                .open([&mut conf, &mut plain, &mut []], [&[], &[]], mac);
        conf.zeroize();
        opened.map(|()| plain)
    }

    fn rc4_encrypt(&self, usage: u32, confounder: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
        let k1 = hmac_md5(&self.bytes, &[&rc4_usage(usage).to_le_bytes()]);
        let conf = confounder.get(..8).unwrap_or_default();
        let checksum = hmac_md5(&k1, &[conf, plaintext]);
        let k3 = hmac_md5(&k1, &[&checksum]);
        let mut out = Vec::with_capacity(16 + 8 + plaintext.len());
        out.extend_from_slice(&checksum);
        out.extend_from_slice(conf);
        out.extend_from_slice(plaintext);
        if let Some(body) = out.get_mut(16..) {
            rc4_apply(&k3, body);
        }
        out
    }

    fn rc4_decrypt(&self, usage: u32, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if ciphertext.len() < 24 {
            return Err(CryptoError::Length);
        }
        let (checksum, body) = ciphertext.split_at(16);
        let k1 = hmac_md5(&self.bytes, &[&rc4_usage(usage).to_le_bytes()]);
        let k3 = hmac_md5(&k1, &[checksum]);
        let mut plain = body.to_vec();
        rc4_apply(&k3, &mut plain);
        let expected = hmac_md5(&k1, &[&plain]);
        if !bool::from(expected.as_slice().ct_eq(checksum)) {
            plain.zeroize();
            return Err(CryptoError::Integrity);
        }
        plain.drain(..8);
        Ok(plain)
    }

    /// `DK(key, usage | kind)` ([RFC 3961 §5.3]).
    ///
    /// [RFC 3961 §5.3]: https://www.rfc-editor.org/rfc/rfc3961#section-5.3
    fn derive(&self, usage: u32, kind: u8) -> Zeroizing<Vec<u8>> {
        let [a, b, c, d] = usage.to_be_bytes();
        let constant = [a, b, c, d, kind];
        // Only AES keys reach here, whose lengths `new` checked.
        self.derive_random(&constant).unwrap_or_default()
    }

    /// `DR(key, constant)`: the n-folded constant encrypted repeatedly, to the key's length
    /// (random-to-key is the identity for AES).
    fn derive_random(&self, constant: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let len = self.bytes.len();
        let mut block: [u8; AES_BLOCK] = nfold(constant, AES_BLOCK)
            .try_into()
            .map_err(|_| CryptoError::KeyLength)?;
        let mut out = Zeroizing::new(Vec::with_capacity(len + AES_BLOCK));
        let cipher = AesKey::new(&self.bytes)?;
        while out.len() < len {
            cipher.encrypt(&mut block);
            out.extend_from_slice(&block);
        }
        out.truncate(len);
        Ok(out)
    }
}

/// RC4-HMAC's translation of key usages ([RFC 4757 §3]): the AS-REP and TGS-REP parts under
/// the subkey use the number of the TGS-REP part, and the GSS checksum usage 23 becomes 13.
///
/// [RFC 4757 §3]: https://www.rfc-editor.org/rfc/rfc4757#section-3
fn rc4_usage(usage: u32) -> u32 {
    match usage {
        3 | 9 => 8,
        23 => 13,
        other => other,
    }
}

/// One RC4 key stream over `parts` in turn (the confounder, then the data, of an RFC 4757
/// wrap token).
pub(crate) fn rc4_stream(key: &[u8; 16], parts: &mut [&mut [u8]]) {
    if let Ok(mut cipher) = <Rc4 as KeyInit>::new_from_slice(key) {
        for part in parts {
            cipher.apply_keystream(part);
        }
    }
}

fn rc4_apply(key: &[u8; 16], data: &mut [u8]) {
    // RC4 takes keys of 1 to 256 bytes.
    if let Ok(mut cipher) = <Rc4 as KeyInit>::new_from_slice(key) {
        cipher.apply_keystream(data);
    }
}

pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Md5> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Md5> as KeyInit>::new(&Default::default()));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha1> as KeyInit>::new(&Default::default()));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// One message to seal as [`UsageKeys::seal`] takes it: the three pieces the cipher covers
/// (confounder, data, tail), and the two only the checksum covers (before and after the data).
pub(crate) type SealMessage<'a> = ([&'a mut [u8]; 3], [&'a [u8]; 2]);

/// The derived keys of one usage ([RFC 3961 §5.3]): Ke ready to encrypt, Ki ready to sign (its
/// inner and outer states computed once).
///
/// [RFC 3961 §5.3]: https://www.rfc-editor.org/rfc/rfc3961#section-5.3
pub(crate) struct UsageKeys {
    usage: u32,
    ke: AesKey,
    ki: Hmac<Sha1>,
}

impl UsageKeys {
    /// AES encryption in place with sign-only data around part of the plaintext, as the
    /// GSS-API IOV interface applies [RFC 3961 §5.3] to DCE/RPC fragments: the cipher covers
    /// `confounder | data | tail` (one CTS stream over the three buffers, each keeping its
    /// length), the integrity checksum covers `confounder | before | data | after | tail`.
    /// Returns the checksum.
    ///
    /// [RFC 3961 §5.3]: https://www.rfc-editor.org/rfc/rfc3961#section-5.3
    pub(crate) fn seal(
        &self,
        [confounder, data, tail]: [&mut [u8]; 3],
        [before, after]: [&[u8]; 2],
    ) -> [u8; HMAC_SHA1_96] {
        let truncated = self.checksum([confounder, before, data, after, tail]);
        cts_encrypt(&self.ke, &mut [confounder, data, tail]);
        truncated
    }

    /// [`seal`](Self::seal) of several independent messages, each `(sealed, signed)` as
    /// `seal` takes them: the checksums one after the other, then the encryptions side by side
    /// ([`cts_encrypt_many`]). Returns the checksums in order.
    pub(crate) fn seal_many(&self, messages: &mut [SealMessage<'_>]) -> Vec<[u8; HMAC_SHA1_96]> {
        let checksums = messages
            .iter()
            .map(|([confounder, data, tail], [before, after])| {
                self.checksum([confounder, before, data, after, tail])
            })
            .collect();
        let mut streams: Vec<[&mut [u8]; 3]> = messages
            .iter_mut()
            .map(|([confounder, data, tail], _)| [&mut **confounder, &mut **data, &mut **tail])
            .collect();
        cts_encrypt_many(&self.ke, &mut streams);
        checksums
    }

    /// HMAC-SHA1-96 with Ki over `parts` in order.
    fn checksum(&self, parts: [&[u8]; 5]) -> [u8; HMAC_SHA1_96] {
        let mut mac = self.ki.clone();
        for part in parts {
            mac.update(part);
        }
        let mut truncated = [0u8; HMAC_SHA1_96];
        for (t, m) in truncated.iter_mut().zip(mac.finalize().into_bytes()) {
            *t = m;
        }
        truncated
    }

    /// The mirror of [`seal`](Self::seal): decrypts `confounder | data | tail` in place, then
    /// checks the checksum `mac`. When it does not verify, the three buffers are zeroed:
    /// nothing unauthenticated is left in them.
    ///
    /// # Errors
    /// [`CryptoError::Length`] when the three hold less than a block, [`CryptoError::Integrity`]
    /// when the checksum does not verify.
    pub(crate) fn open(
        &self,
        [confounder, data, tail]: [&mut [u8]; 3],
        [before, after]: [&[u8]; 2],
        mac: &[u8],
    ) -> Result<(), CryptoError> {
        if confounder.len() + data.len() + tail.len() < AES_BLOCK {
            return Err(CryptoError::Length);
        }
        let mut parts = [confounder, data, tail];
        cts_decrypt(&self.ke, &mut parts);
        let [confounder, data, tail] = parts;
        let mut expected = self.ki.clone();
        for part in [&*confounder, before, &*data, after, &*tail] {
            expected.update(part);
        }
        let expected = expected.finalize().into_bytes();
        let expected = expected.get(..HMAC_SHA1_96).unwrap_or_default();
        if !bool::from(expected.ct_eq(mac)) {
            for part in [confounder, data, tail] {
                part.zeroize();
            }
            return Err(CryptoError::Integrity);
        }
        Ok(())
    }
}

/// The key of a context's per-message tokens, with the derived keys of the usages it seals
/// and opens with computed once (for a 5840-byte fragment, deriving them per token cost about
/// a fifth of the time).
pub(crate) struct TokenKey {
    key: Key,
    derived: Vec<UsageKeys>,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TokenKey").field(&self.key).finish()
    }
}

impl From<Key> for TokenKey {
    /// A token key that derives the keys of each usage as it needs them.
    fn from(key: Key) -> Self {
        Self::new(key, &[])
    }
}

impl TokenKey {
    /// `key`, with the derived keys of `usages` (AES keys only) ready.
    pub(crate) fn new(key: Key, usages: &[u32]) -> Self {
        let derived = usages
            .iter()
            .filter_map(|&usage| key.usage_keys(usage).ok())
            .collect();
        Self { key, derived }
    }

    pub(crate) fn key(&self) -> &Key {
        &self.key
    }

    /// Runs `f` with the derived keys of `usage`: the ready ones, or derived now.
    fn with_usage<R>(&self, usage: u32, f: impl FnOnce(&UsageKeys) -> R) -> Result<R, CryptoError> {
        match self.derived.iter().find(|keys| keys.usage == usage) {
            Some(keys) => Ok(f(keys)),
            None => Ok(f(&self.key.usage_keys(usage)?)),
        }
    }

    /// [`UsageKeys::seal`] with the keys of `usage`.
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedEncType`] for an RC4-HMAC key.
    pub(crate) fn aes_seal(
        &self,
        usage: u32,
        parts: [&mut [u8]; 3],
        signed: [&[u8]; 2],
    ) -> Result<[u8; HMAC_SHA1_96], CryptoError> {
        self.with_usage(usage, |keys| keys.seal(parts, signed))
    }

    /// [`UsageKeys::seal_many`] with the keys of `usage`.
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedEncType`] for an RC4-HMAC key.
    pub(crate) fn aes_seal_many(
        &self,
        usage: u32,
        messages: &mut [SealMessage<'_>],
    ) -> Result<Vec<[u8; HMAC_SHA1_96]>, CryptoError> {
        self.with_usage(usage, |keys| keys.seal_many(messages))
    }

    /// [`UsageKeys::open`] with the keys of `usage`.
    ///
    /// # Errors
    /// As [`UsageKeys::open`], and [`CryptoError::UnsupportedEncType`] for an RC4-HMAC key.
    pub(crate) fn aes_open(
        &self,
        usage: u32,
        parts: [&mut [u8]; 3],
        signed: [&[u8]; 2],
        mac: &[u8],
    ) -> Result<(), CryptoError> {
        self.with_usage(usage, |keys| keys.open(parts, signed, mac))?
    }
}

/// An AES block cipher of either key size.
enum AesKey {
    Aes128(Box<Aes128>),
    Aes256(Box<Aes256>),
}

impl AesKey {
    fn new(key: &[u8]) -> Result<Self, CryptoError> {
        match key.len() {
            16 => Aes128::new_from_slice(key)
                .map(|c| Self::Aes128(Box::new(c)))
                .map_err(|_| CryptoError::KeyLength),
            32 => Aes256::new_from_slice(key)
                .map(|c| Self::Aes256(Box::new(c)))
                .map_err(|_| CryptoError::KeyLength),
            _ => Err(CryptoError::KeyLength),
        }
    }

    fn encrypt(&self, block: &mut [u8; AES_BLOCK]) {
        let b: &mut Block = block.into();
        match self {
            Self::Aes128(c) => c.encrypt_block(b),
            Self::Aes256(c) => c.encrypt_block(b),
        }
    }

    fn decrypt(&self, block: &mut Block) {
        match self {
            Self::Aes128(c) => c.decrypt_block(block),
            Self::Aes256(c) => c.decrypt_block(block),
        }
    }

    /// CBC encryption of `blocks` in place, chained from `iv`, which it leaves at the last
    /// ciphertext block. One call reaches the cipher's backend once (with AES-NI or VAES, the
    /// round keys stay in registers for the whole run).
    fn cbc_encrypt(&self, iv: &mut Block, blocks: &mut [Block]) {
        let run = CbcRun { iv, blocks };
        match self {
            Self::Aes128(c) => c.encrypt_with_backend(run),
            Self::Aes256(c) => c.encrypt_with_backend(run),
        }
    }

    /// CBC encryption of several independent chains in place, chain `c` from `ivs[c]`, which
    /// it leaves at the chain's last ciphertext block: the k-th blocks of all chains one after
    /// the other, then the (k+1)-th, so that the rounds of different chains overlap in the
    /// processor (within one chain each block waits for the one before).
    fn cbc_encrypt_many(&self, ivs: &mut [Block], chains: &mut [Vec<&mut Block>]) {
        let run = CbcChains { ivs, chains };
        match self {
            Self::Aes128(c) => c.encrypt_with_backend(run),
            Self::Aes256(c) => c.encrypt_with_backend(run),
        }
    }

    /// CBC decryption of `blocks` in place, chained from `iv`, which it leaves at the last
    /// ciphertext block; the backend decrypts as many blocks at once as it can.
    fn cbc_decrypt(&self, iv: &mut Block, blocks: &mut [Block]) {
        let run = CbcRun { iv, blocks };
        match self {
            Self::Aes128(c) => c.decrypt_with_backend(run),
            Self::Aes256(c) => c.decrypt_with_backend(run),
        }
    }
}

/// A run of CBC over `blocks` from `iv`, for [`BlockCipherEncrypt::encrypt_with_backend`] or
/// [`BlockCipherDecrypt::decrypt_with_backend`].
struct CbcRun<'a> {
    iv: &'a mut Block,
    blocks: &'a mut [Block],
}

impl BlockSizeUser for CbcRun<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for CbcRun<'_> {
    #[inline(always)]
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        // Each block needs the one before: one at a time.
        let mut prev = *self.iv;
        for block in self.blocks.iter_mut() {
            xor_block(block, &prev);
            backend.encrypt_block_inplace(block);
            prev = *block;
        }
        *self.iv = prev;
    }
}

/// Runs of CBC encryption over independent chains, for
/// [`BlockCipherEncrypt::encrypt_with_backend`] ([`AesKey::cbc_encrypt_many`]).
struct CbcChains<'a, 'b> {
    ivs: &'a mut [Block],
    chains: &'a mut [Vec<&'b mut Block>],
}

impl BlockSizeUser for CbcChains<'_, '_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for CbcChains<'_, '_> {
    #[inline(always)]
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        let steps = self.chains.iter().map(Vec::len).max().unwrap_or(0);
        for k in 0..steps {
            for (chain, iv) in self.chains.iter_mut().zip(self.ivs.iter_mut()) {
                if let Some(block) = chain.get_mut(k) {
                    // On a copy in registers: XORed in place byte by byte, the block would
                    // reach AES through a store-forwarding stall.
                    let mut b = xor_copy(block, iv);
                    backend.encrypt_block_inplace(&mut b);
                    **block = b;
                    *iv = b;
                }
            }
        }
    }
}

impl BlockCipherDecClosure for CbcRun<'_> {
    #[inline(always)]
    fn call<B: BlockCipherDecBackend<BlockSize = U16>>(self, backend: &B) {
        // Every block decrypts on its own: the backend's whole width at a time (a short last
        // group is padded with stale blocks whose output is dropped), then each is chained to
        // the ciphertext block before it.
        let mut prev = *self.iv;
        let mut plain = ParBlocks::<B>::default();
        for group in self.blocks.chunks_mut(B::ParBlocksSize::USIZE) {
            for (p, c) in plain.iter_mut().zip(group.iter()) {
                *p = *c;
            }
            backend.decrypt_par_blocks_inplace(&mut plain);
            for (c, p) in group.iter_mut().zip(plain.iter()) {
                let cipher = *c;
                *c = *p;
                xor_block(c, &prev);
                prev = cipher;
            }
        }
        plain.as_flattened_mut().zeroize();
        *self.iv = prev;
    }
}

/// `a ^ b` as a new block, computed as two 64-bit words.
#[inline(always)]
fn xor_copy(a: &Block, b: &Block) -> Block {
    let (a, _) = a.as_chunks::<8>();
    let (b, _) = b.as_chunks::<8>();
    let mut out = Block::default();
    for ((o, x), y) in out.as_mut_slice().chunks_exact_mut(8).zip(a).zip(b) {
        o.copy_from_slice(&(u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y)).to_ne_bytes());
    }
    out
}

fn xor_block(dst: &mut Block, src: &Block) {
    for (d, s) in dst.iter_mut().zip(src.iter()) {
        *d ^= s;
    }
}

/// Copies up to 16 bytes of `src` into a zero-padded block.
fn block_of(src: &[u8]) -> [u8; AES_BLOCK] {
    let mut block = [0u8; AES_BLOCK];
    for (d, s) in block.iter_mut().zip(src) {
        *d = *s;
    }
    block
}

/// Copies `buf.len()` bytes of the stream `parts` (their concatenation) at offset `pos` into
/// `buf`, or (`back`) `buf` into them.
fn copy_stream(parts: &mut [&mut [u8]], pos: usize, buf: &mut [u8], back: bool) {
    let mut offset = 0;
    for part in parts {
        let end = offset + part.len();
        let (lo, hi) = (pos.max(offset), (pos + buf.len()).min(end));
        if lo < hi
            && let (Some(ours), Some(theirs)) = (
                buf.get_mut(lo - pos..hi - pos),
                part.get_mut(lo - offset..hi - offset),
            )
        {
            if back {
                theirs.copy_from_slice(ours);
            } else {
                ours.copy_from_slice(theirs);
            }
        }
        offset = end;
    }
}

/// Calls `f` on the blocks of the stream `parts` (their concatenation) in `range` (whole
/// blocks), in order: each run of blocks inside one part in place, a block that spans parts
/// through a copy.
fn for_blocks(parts: &mut [&mut [u8]], range: Range<usize>, mut f: impl FnMut(&mut [Block])) {
    let mut pos = range.start;
    while pos < range.end {
        let mut offset = 0;
        let mut run = 0;
        for part in parts.iter_mut() {
            let end = offset + part.len();
            if (offset..end).contains(&pos) {
                run = (end.min(range.end) - pos) / AES_BLOCK * AES_BLOCK;
                if let Some(bytes) = part.get_mut(pos - offset..pos - offset + run) {
                    f(Block::slice_as_chunks_mut(bytes).0);
                }
                break;
            }
            offset = end;
        }
        if run == 0 {
            let mut block = Block::default();
            copy_stream(parts, pos, &mut block, false);
            f(core::slice::from_mut(&mut block));
            copy_stream(parts, pos, &mut block, true);
            block.zeroize();
            run = AES_BLOCK;
        }
        pos += run;
    }
}

/// Runs CBC (`run`: encryption or decryption, from a zero IV) over the CTS stream `parts`
/// up to its last two blocks, which are not plain CBC. Returns where those start, the length
/// of the last (partial) one and the chaining block; `None` when the stream is one block
/// (which `run` has processed) or shorter.
fn cts_body(
    parts: &mut [&mut [u8]],
    mut run: impl FnMut(&mut Block, &mut [Block]),
) -> Option<(usize, usize, Block)> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut iv = Block::default();
    if len <= AES_BLOCK {
        if len == AES_BLOCK {
            for_blocks(parts, 0..len, |b| run(&mut iv, b));
        }
        return None;
    }
    let head = (len - 1) / AES_BLOCK * AES_BLOCK - AES_BLOCK;
    for_blocks(parts, 0..head, |b| run(&mut iv, b));
    Some((head, len - head - AES_BLOCK, iv))
}

/// AES in CBC mode with ciphertext stealing, zero IV, the last two blocks swapped (the
/// Kerberos variant, [RFC 3962 §5]), in place over the stream `parts` (their concatenation,
/// at least one block; a shorter one is left as it is).
///
/// [RFC 3962 §5]: https://www.rfc-editor.org/rfc/rfc3962#section-5
fn cts_encrypt(cipher: &AesKey, parts: &mut [&mut [u8]]) {
    let Some((head, d, iv)) = cts_body(parts, |iv, b| cipher.cbc_encrypt(iv, b)) else {
        return;
    };
    cts_encrypt_last(cipher, parts, head, d, iv);
}

/// [`cts_encrypt`] of several independent streams, their CBC chains side by side
/// ([`AesKey::cbc_encrypt_many`]): one chain runs at the latency of AES's rounds, several at
/// its throughput. The streams whose parts are all whole blocks (a DCE/RPC wrap token's:
/// confounder, stub padded to the block, filler and header copy) share the loop; any other is
/// encrypted alone. The bytes are those of [`cts_encrypt`] on each stream.
fn cts_encrypt_many(cipher: &AesKey, streams: &mut [[&mut [u8]; 3]]) {
    // Each stream's length when it shares the loop (all parts whole blocks, two or more).
    let whole: Vec<Option<usize>> = streams
        .iter()
        .map(|stream| {
            let len: usize = stream.iter().map(|p| p.len()).sum();
            (len >= 2 * AES_BLOCK && stream.iter().all(|p| p.len() % AES_BLOCK == 0)).then_some(len)
        })
        .collect();
    let mut ivs = vec![Block::default(); streams.len()];
    {
        // Every block but the last two of each whole stream (the CTS body), in place.
        let mut chains: Vec<Vec<&mut Block>> = streams
            .iter_mut()
            .zip(&whole)
            .map(|(stream, whole)| {
                let Some(len) = *whole else {
                    return Vec::new();
                };
                stream
                    .iter_mut()
                    .flat_map(|part| Block::slice_as_chunks_mut(part).0.iter_mut())
                    .take(len / AES_BLOCK - 2)
                    .collect()
            })
            .collect();
        cipher.cbc_encrypt_many(&mut ivs, &mut chains);
    }
    for ((stream, iv), whole) in streams.iter_mut().zip(ivs).zip(whole) {
        match whole {
            Some(len) => cts_encrypt_last(cipher, stream, len - 2 * AES_BLOCK, AES_BLOCK, iv),
            None => cts_encrypt(cipher, stream),
        }
    }
}

/// The end of [`cts_encrypt`]: the last two blocks of the stream `parts` from `head` (the
/// second `d` bytes long), chained from `iv`.
fn cts_encrypt_last(
    cipher: &AesKey,
    parts: &mut [&mut [u8]],
    head: usize,
    d: usize,
    mut iv: Block,
) {
    // The last full block, then the last (partial, d bytes, zero-padded) one; written back
    // swapped, the full one cut to d bytes.
    let mut last = [Block::default(); 2];
    copy_stream(
        parts,
        head,
        Block::slice_as_flattened_mut(&mut last)
            .get_mut(..AES_BLOCK + d)
            .unwrap_or_default(),
        false,
    );
    cipher.cbc_encrypt(&mut iv, &mut last);
    let [before_last, final_block] = &mut last;
    let mut out = [0u8; 2 * AES_BLOCK];
    let (a, b) = out.split_at_mut(AES_BLOCK);
    a.copy_from_slice(final_block);
    b.copy_from_slice(before_last);
    copy_stream(
        parts,
        head,
        out.get_mut(..AES_BLOCK + d).unwrap_or_default(),
        true,
    );
    Block::slice_as_flattened_mut(&mut last).zeroize();
    out.zeroize();
}

/// The mirror of [`cts_encrypt`], in place.
fn cts_decrypt(cipher: &AesKey, parts: &mut [&mut [u8]]) {
    // Leaves `iv` at the ciphertext block before the last two.
    let Some((head, d, mut iv)) = cts_body(parts, |iv, b| cipher.cbc_decrypt(iv, b)) else {
        return;
    };
    let mut last = [0u8; 2 * AES_BLOCK];
    copy_stream(
        parts,
        head,
        last.get_mut(..AES_BLOCK + d).unwrap_or_default(),
        false,
    );
    let (c_n, partial) = last.split_at(AES_BLOCK);
    // D(C(n)) = P(n)|0 xor C(n-1), and C(n-1) = partial | D(C(n))[d..].
    let mut dn = Block::try_from(c_n).unwrap_or_default();
    cipher.decrypt(&mut dn);
    let mut c_n1 = dn;
    for (c, p) in c_n1.iter_mut().zip(partial.iter().take(d)) {
        *c = *p;
    }
    let mut p_n = dn;
    xor_block(&mut p_n, &c_n1);
    let mut p_n1 = [c_n1];
    cipher.cbc_decrypt(&mut iv, &mut p_n1);
    let mut out = [0u8; 2 * AES_BLOCK];
    let (a, b) = out.split_at_mut(AES_BLOCK);
    a.copy_from_slice(&p_n1[0]);
    b.copy_from_slice(&p_n);
    copy_stream(
        parts,
        head,
        out.get_mut(..AES_BLOCK + d).unwrap_or_default(),
        true,
    );
    for block in [&mut dn, &mut p_n, &mut c_n1] {
        block.zeroize();
    }
    last.zeroize();
    out.zeroize();
}

/// `n-fold` ([RFC 3961 §5.1]): `input` repeated to the least common multiple of both lengths,
/// each copy rotated right by 13 bits more than the one before, summed in `out_len`-byte
/// pieces with end-around carry.
///
/// [RFC 3961 §5.1]: https://www.rfc-editor.org/rfc/rfc3961#section-5.1
pub fn nfold(input: &[u8], out_len: usize) -> Vec<u8> {
    if input.is_empty() || out_len == 0 {
        return vec![0; out_len];
    }
    let in_len = input.len();
    let lcm = in_len / gcd(in_len, out_len) * out_len;
    let bits = in_len * 8;
    let bit = |i: usize| -> u8 {
        input
            .get(i / 8)
            .map_or(0, |byte| (byte >> (7 - (i % 8))) & 1)
    };
    let mut expanded = vec![0u8; lcm];
    for (copy, chunk) in expanded.chunks_mut(in_len).enumerate() {
        let rotation = (13 * copy) % bits;
        for (j, byte) in chunk.iter_mut().enumerate() {
            let mut value = 0u8;
            for k in 0..8 {
                let dst = j * 8 + k;
                let src = (dst + bits - rotation) % bits;
                value = (value << 1) | bit(src);
            }
            *byte = value;
        }
    }
    let mut sum = vec![0u8; out_len];
    for piece in expanded.chunks(out_len) {
        let mut carry = 0u16;
        for (s, p) in sum.iter_mut().zip(piece).rev() {
            let total = u16::from(*s) + u16::from(*p) + carry;
            *s = total.to_le_bytes()[0];
            carry = total >> 8;
        }
        // End-around carry: add it back at the least significant end until none is left.
        while carry != 0 {
            for s in sum.iter_mut().rev() {
                let total = u16::from(*s) + carry;
                *s = total.to_le_bytes()[0];
                carry = total >> 8;
                if carry == 0 {
                    break;
                }
            }
        }
    }
    sum
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests;
