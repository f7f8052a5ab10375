//! Errors, split by fault: the bytes are wrong, the cryptography refused them, the KDC or the
//! peer refused us.

use crate::messages::ErrorCode;

/// A Kerberos message that cannot be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what}: {reason}")]
pub struct DecodeError {
    /// The structure being decoded.
    pub what: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl DecodeError {
    pub(crate) const fn new(what: &'static str, reason: &'static str) -> Self {
        Self { what, reason }
    }
}

/// The cryptography refused an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// An encryption type this crate does not implement.
    #[error("encryption type {0} is not supported")]
    UnsupportedEncType(i32),
    /// Key bytes of the wrong length for their type.
    #[error("key of the wrong length for its encryption type")]
    KeyLength,
    /// Malformed or excessive string-to-key parameters.
    #[error("string-to-key parameters are malformed or out of bounds")]
    BadParams,
    /// A ciphertext too short to hold its confounder and checksum.
    #[error("ciphertext too short")]
    Length,
    /// The integrity checksum does not verify: wrong key, or altered bytes.
    #[error("integrity check failed (wrong key or altered data)")]
    Integrity,
}

/// Why a Kerberos exchange or context failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KrbError {
    /// The peer's bytes are malformed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Decryption or a checksum failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The KDC answered with KRB-ERROR.
    #[error(
        "the KDC refused the request: {code}{}{}",
        code.hint().map(|h| format!(", {h}")).unwrap_or_default(),
        text.as_deref().map(|t| format!(" (the KDC says: {t})")).unwrap_or_default()
    )]
    Kdc {
        /// The error code.
        code: ErrorCode,
        /// The KDC's e-text, if any.
        text: Option<String>,
    },
    /// The answer does not belong to the request (nonce, names, message type).
    #[error("the answer does not match the request: {0}")]
    Mismatch(&'static str),
    /// The authenticator's time is further from ours than the allowed skew.
    #[error("clock skew too great ({0} s)")]
    ClockSkew(i64),
    /// A ticket outside its validity period.
    #[error("ticket expired or not yet valid")]
    TicketExpired,
    /// An authenticator seen before.
    #[error("replayed authenticator")]
    Replay,
    /// No key for the ticket's service principal or encryption type.
    #[error("no key for {0}")]
    NoKey(String),
    /// The API was used out of order.
    #[error("{0}")]
    Misuse(&'static str),
}
