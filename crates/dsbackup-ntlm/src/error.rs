//! Errors of the NTLM package, split by whose fault they are.

use dsbackup_proto::{DecodeError, EncodeError, SecurityError};

/// Why the acceptor refused an AUTHENTICATE message.
///
/// The peer learns only "logon failure"; the variant is for the server's own logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogonFailure {
    /// An anonymous AUTHENTICATE while anonymous logons are not allowed.
    #[error("anonymous logon refused")]
    AnonymousRefused,
    /// The MsvAvFlags of the response claim a MIC and the MIC does not verify.
    #[error("message integrity code does not verify")]
    BadMic,
    /// The NTProofStr does not verify: wrong password, or a modified challenge or blob.
    #[error("NTProofStr does not verify")]
    BadProof,
    /// The NtChallengeResponse is an NTLM v1 response (24 bytes), which is not accepted.
    #[error("NTLM v1 responses are not accepted")]
    NtlmV1Refused,
    /// The credential store does not know the user.
    #[error("unknown user")]
    UnknownUser,
}

/// Why a signed or sealed message was refused ([MS-NLMP §3.4.4]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The checksum does not match the message.
    #[error("checksum does not match the message")]
    BadChecksum,
    /// The signature is not 16 bytes long.
    #[error("signature of {0} bytes, expected 16")]
    BadLength(usize),
    /// The `Version` field of the NTLMSSP_MESSAGE_SIGNATURE is not 1.
    #[error("signature version {0}, expected 1")]
    BadVersion(u32),
    /// The `SeqNum` field is not the next expected sequence number.
    #[error("sequence number {got}, expected {expected}")]
    OutOfSequence {
        /// The next sequence number of this direction.
        expected: u32,
        /// The sequence number in the signature.
        got: u32,
    },
}

/// Any failure of the NTLM package.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NtlmError {
    /// The peer's message does not decode.
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    /// A message could not be encoded (a name longer than a 16-bit length holds).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The acceptor refused the peer's credentials.
    #[error("logon failure: {0}")]
    LogonFailure(#[from] LogonFailure),
    /// A signature or sequence number did not verify.
    #[error("bad signature: {0}")]
    BadSignature(#[from] SignatureError),
    /// The peer asked for something this implementation does not do.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// A message or call arrived in a state that does not expect it (the caller's or the peer's
    /// fault; a second AUTHENTICATE is one).
    #[error("security context {0}")]
    WrongState(&'static str),
    /// The handshake ended without a flag the required protection needs (the peer's CHALLENGE
    /// or AUTHENTICATE dropped it): `NEGOTIATE_SIGN` for integrity, `NEGOTIATE_SEAL` as well for
    /// privacy. The context is not established.
    #[error("{0} was not negotiated, and the required protection needs it")]
    NotNegotiated(&'static str),
}

impl From<NtlmError> for SecurityError {
    fn from(error: NtlmError) -> Self {
        match error {
            NtlmError::Malformed(decode) => Self::Malformed {
                message: "NTLM message",
                reason: decode_reason(&decode),
            },
            NtlmError::Encode(_) => Self::Unsupported("NTLM field too long to encode"),
            NtlmError::LogonFailure(failure) => Self::LogonFailure(logon_reason(failure)),
            NtlmError::BadSignature(_) => Self::BadSignature,
            NtlmError::Unsupported(what) => Self::Unsupported(what),
            NtlmError::WrongState(what) => Self::WrongState(what),
            NtlmError::NotNegotiated(flag) => Self::CapabilityNotNegotiated(flag),
        }
    }
}

fn decode_reason(error: &DecodeError) -> &'static str {
    match error {
        DecodeError::Truncated { what, .. } => what,
        DecodeError::InvalidField { reason, .. } => reason,
        DecodeError::TrailingBytes { .. } => "trailing bytes",
        DecodeError::LimitExceeded { what, .. } => what,
        _ => "undecodable",
    }
}

fn logon_reason(failure: LogonFailure) -> &'static str {
    match failure {
        LogonFailure::AnonymousRefused => "anonymous logon refused",
        LogonFailure::BadMic => "message integrity code does not verify",
        LogonFailure::BadProof => "NTProofStr does not verify",
        LogonFailure::NtlmV1Refused => "NTLM v1 responses are not accepted",
        LogonFailure::UnknownUser => "unknown user",
    }
}
