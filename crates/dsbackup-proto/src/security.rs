//! The seam between the association state machines and an authentication package.
//!
//! [MS-RPCE §2.2.2.11] puts an auth verifier (a `sec_trailer` followed by `auth_value`) at the end
//! of every PDU of an authenticated association. The state machines in this crate build and parse
//! the verifier; what goes into `auth_value` comes from a [`SecurityProvider`]:
//!
//! - during the handshake, the tokens of the bind / bind_ack / auth3 legs (and of the
//!   alter_context / alter_context_resp legs);
//! - once established, at packet integrity or privacy, one signature per fragment, with the stub
//!   sealed in place at privacy.
//!
//! The signature covers the whole fragment from the first header byte to the end of the
//! `sec_trailer` (with the stub in clear text), as NTLM with extended session security does it on
//! Windows and in Samba; only the stub and its auth padding are encrypted.
//!
//! [MS-RPCE §2.2.2.11]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use core::fmt;
use core::ops::Range;

/// `auth_type` of the `sec_trailer` ([MS-RPCE §2.2.1.1.7]).
///
/// [MS-RPCE §2.2.1.1.7]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AuthType(pub u8);

impl AuthType {
    /// RPC_C_AUTHN_NONE.
    pub const NONE: Self = Self(0);
    /// RPC_C_AUTHN_GSS_NEGOTIATE (SPNEGO).
    pub const GSS_NEGOTIATE: Self = Self(9);
    /// RPC_C_AUTHN_WINNT (NTLM).
    pub const WINNT: Self = Self(10);
    /// RPC_C_AUTHN_GSS_SCHANNEL.
    pub const GSS_SCHANNEL: Self = Self(14);
    /// RPC_C_AUTHN_GSS_KERBEROS.
    pub const GSS_KERBEROS: Self = Self(16);
    /// RPC_C_AUTHN_NETLOGON.
    pub const NETLOGON: Self = Self(0x44);
    /// RPC_C_AUTHN_DEFAULT.
    pub const DEFAULT: Self = Self(0xff);

    /// The RPC_C_AUTHN_* name of a known value.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::NONE => "RPC_C_AUTHN_NONE",
            Self::GSS_NEGOTIATE => "RPC_C_AUTHN_GSS_NEGOTIATE",
            Self::WINNT => "RPC_C_AUTHN_WINNT",
            Self::GSS_SCHANNEL => "RPC_C_AUTHN_GSS_SCHANNEL",
            Self::GSS_KERBEROS => "RPC_C_AUTHN_GSS_KERBEROS",
            Self::NETLOGON => "RPC_C_AUTHN_NETLOGON",
            Self::DEFAULT => "RPC_C_AUTHN_DEFAULT",
            _ => return None,
        })
    }
}

impl fmt::Debug for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "AuthType({:#04x})", self.0),
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// `auth_level` of the `sec_trailer` ([MS-RPCE §2.2.1.1.8]); ordered from weakest to strongest.
///
/// [MS-RPCE §2.2.1.1.8]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AuthLevel(pub u8);

impl AuthLevel {
    /// RPC_C_AUTHN_LEVEL_DEFAULT (0): never on the wire of an authenticated association.
    pub const DEFAULT: Self = Self(0);
    /// RPC_C_AUTHN_LEVEL_NONE (1): no authentication.
    pub const NONE: Self = Self(1);
    /// RPC_C_AUTHN_LEVEL_CONNECT (2): authenticated at bind time only.
    pub const CONNECT: Self = Self(2);
    /// RPC_C_AUTHN_LEVEL_CALL (3): treated as packet integrity by connection-oriented RPC.
    pub const CALL: Self = Self(3);
    /// RPC_C_AUTHN_LEVEL_PKT (4): treated as packet integrity by connection-oriented RPC.
    pub const PKT: Self = Self(4);
    /// RPC_C_AUTHN_LEVEL_PKT_INTEGRITY (5): every fragment signed.
    pub const PKT_INTEGRITY: Self = Self(5);
    /// RPC_C_AUTHN_LEVEL_PKT_PRIVACY (6): every fragment signed and its stub sealed.
    pub const PKT_PRIVACY: Self = Self(6);

    /// The RPC_C_AUTHN_LEVEL_* name of a known value.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::DEFAULT => "RPC_C_AUTHN_LEVEL_DEFAULT",
            Self::NONE => "RPC_C_AUTHN_LEVEL_NONE",
            Self::CONNECT => "RPC_C_AUTHN_LEVEL_CONNECT",
            Self::CALL => "RPC_C_AUTHN_LEVEL_CALL",
            Self::PKT => "RPC_C_AUTHN_LEVEL_PKT",
            Self::PKT_INTEGRITY => "RPC_C_AUTHN_LEVEL_PKT_INTEGRITY",
            Self::PKT_PRIVACY => "RPC_C_AUTHN_LEVEL_PKT_PRIVACY",
            _ => return None,
        })
    }

    /// What a fragment of an established association carries at this level.
    pub fn protection(self) -> Protection {
        match self.0 {
            0..=2 => Protection::None,
            3..=5 => Protection::Integrity,
            _ => Protection::Privacy,
        }
    }
}

impl fmt::Debug for AuthLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "AuthLevel({:#04x})", self.0),
        }
    }
}

impl fmt::Display for AuthLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Per-fragment protection of an established association.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protection {
    /// No signature (levels none and connect).
    None,
    /// A signature over the fragment (levels call, packet and packet integrity).
    Integrity,
    /// A signature over the fragment and the stub encrypted (level packet privacy).
    Privacy,
}

/// One leg of the authentication handshake, as the security provider answers it.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Send this token to the peer and wait for its answer.
    Continue(Vec<u8>),
    /// The context is established; send this last token (possibly empty) if the leg carries one.
    Complete(Option<Vec<u8>>),
}

impl fmt::Debug for AuthStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tokens may carry key material (an encrypted session key): show lengths only.
        match self {
            Self::Continue(token) => write!(f, "Continue({} bytes)", token.len()),
            Self::Complete(Some(token)) => write!(f, "Complete({} bytes)", token.len()),
            Self::Complete(None) => f.write_str("Complete"),
        }
    }
}

/// Why a security provider refused a token or a fragment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// The token is not a well-formed message of the package.
    #[error("malformed {message}: {reason}")]
    Malformed {
        /// The message being decoded.
        message: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The peer's credentials were refused (unknown user, wrong password, bad MIC, replay).
    #[error("authentication failed: {0}")]
    LogonFailure(&'static str),
    /// A fragment's signature did not verify, or its sequence number was not the expected one.
    #[error("signature of the fragment does not verify")]
    BadSignature,
    /// A token or fragment arrived in a state that does not expect it.
    #[error("security context {0}")]
    WrongState(&'static str),
    /// The provider cannot do what was asked (an unsupported level or option).
    #[error("not supported by the security provider: {0}")]
    Unsupported(&'static str),
}

/// An authentication package seen from one side of an association.
///
/// The same trait serves the initiator (client) and the acceptor (server): the association calls
/// [`step`](Self::step) with the peer's token of each handshake leg (`None` for the very first leg
/// of an initiator) until it answers [`AuthStep::Complete`]; from then on it protects and checks
/// every fragment with [`wrap`](Self::wrap) and [`unwrap`](Self::unwrap).
///
/// Implementations own all key material and sequence numbers; they keep one state per direction.
pub trait SecurityProvider: Send + fmt::Debug {
    /// The `auth_type` this provider puts in the `sec_trailer`.
    fn auth_type(&self) -> AuthType;

    /// Consumes the peer's token of one handshake leg and produces ours.
    ///
    /// # Errors
    /// [`SecurityError`] when the token is malformed, the credentials are refused, or the
    /// handshake is already complete.
    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError>;

    /// Whether the handshake has completed.
    fn is_established(&self) -> bool;

    /// Length of `auth_value` in a protected fragment (16 for NTLM).
    fn signature_len(&self) -> usize;

    /// Protects one outgoing fragment.
    ///
    /// `pdu` is the encoded fragment from its first header byte to the end of the `sec_trailer`
    /// (its header already carries the final `frag_length` and `auth_length`); `stub` is the range
    /// of `pdu` holding the stub and its auth padding. At [`Protection::Privacy`] the stub is
    /// encrypted in place. The signature is written into `signature`, which is
    /// [`signature_len`](Self::signature_len) bytes long.
    ///
    /// # Errors
    /// [`SecurityError::WrongState`] before the handshake completes.
    fn wrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &mut [u8],
    ) -> Result<(), SecurityError>;

    /// Checks one incoming fragment; the mirror of [`wrap`](Self::wrap).
    ///
    /// At [`Protection::Privacy`] the stub range is decrypted in place before the signature is
    /// verified.
    ///
    /// # Errors
    /// [`SecurityError::BadSignature`] when the signature or sequence number does not verify.
    fn unwrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &[u8],
    ) -> Result<(), SecurityError>;

    /// Who authenticated, once an acceptor's handshake completed: what a server tells the
    /// interface implementation about its caller. `None` for an initiator, an anonymous
    /// logon, or a handshake not complete (the default).
    fn peer_identity(&self) -> Option<PeerIdentity> {
        None
    }
}

/// The authenticated peer of an association, as its security provider established it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// The user name as the client sent it.
    pub user: String,
    /// The domain name as the client sent it.
    pub domain: String,
}
