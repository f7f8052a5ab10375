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

use crate::wire_enum::{known_values, named_debug};

/// `auth_type` of the `sec_trailer` ([MS-RPCE §2.2.1.1.7]).
///
/// [MS-RPCE §2.2.1.1.7]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AuthType(pub u8);

known_values! {
    AuthType, name: "The RPC_C_AUTHN_* name of a known value.";
    /// RPC_C_AUTHN_NONE.
    NONE = 0 => "RPC_C_AUTHN_NONE",
    /// RPC_C_AUTHN_GSS_NEGOTIATE (SPNEGO).
    GSS_NEGOTIATE = 9 => "RPC_C_AUTHN_GSS_NEGOTIATE",
    /// RPC_C_AUTHN_WINNT (NTLM).
    WINNT = 10 => "RPC_C_AUTHN_WINNT",
    /// RPC_C_AUTHN_GSS_SCHANNEL.
    GSS_SCHANNEL = 14 => "RPC_C_AUTHN_GSS_SCHANNEL",
    /// RPC_C_AUTHN_GSS_KERBEROS.
    GSS_KERBEROS = 16 => "RPC_C_AUTHN_GSS_KERBEROS",
    /// RPC_C_AUTHN_NETLOGON.
    NETLOGON = 0x44 => "RPC_C_AUTHN_NETLOGON",
    /// RPC_C_AUTHN_DEFAULT.
    DEFAULT = 0xff => "RPC_C_AUTHN_DEFAULT",
}

named_debug!(AuthType, "AuthType({:#04x})");

/// `auth_level` of the `sec_trailer` ([MS-RPCE §2.2.1.1.8]); ordered from weakest to strongest.
///
/// [MS-RPCE §2.2.1.1.8]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AuthLevel(pub u8);

known_values! {
    AuthLevel, name: "The RPC_C_AUTHN_LEVEL_* name of a known value.";
    /// RPC_C_AUTHN_LEVEL_DEFAULT (0): never on the wire of an authenticated association.
    DEFAULT = 0 => "RPC_C_AUTHN_LEVEL_DEFAULT",
    /// RPC_C_AUTHN_LEVEL_NONE (1): no authentication.
    NONE = 1 => "RPC_C_AUTHN_LEVEL_NONE",
    /// RPC_C_AUTHN_LEVEL_CONNECT (2): authenticated at bind time only.
    CONNECT = 2 => "RPC_C_AUTHN_LEVEL_CONNECT",
    /// RPC_C_AUTHN_LEVEL_CALL (3): treated as packet integrity by connection-oriented RPC.
    CALL = 3 => "RPC_C_AUTHN_LEVEL_CALL",
    /// RPC_C_AUTHN_LEVEL_PKT (4): treated as packet integrity by connection-oriented RPC.
    PKT = 4 => "RPC_C_AUTHN_LEVEL_PKT",
    /// RPC_C_AUTHN_LEVEL_PKT_INTEGRITY (5): every fragment signed.
    PKT_INTEGRITY = 5 => "RPC_C_AUTHN_LEVEL_PKT_INTEGRITY",
    /// RPC_C_AUTHN_LEVEL_PKT_PRIVACY (6): every fragment signed and its stub sealed.
    PKT_PRIVACY = 6 => "RPC_C_AUTHN_LEVEL_PKT_PRIVACY",
}

impl AuthLevel {
    /// What a fragment of an established association carries at this level.
    pub fn protection(self) -> Protection {
        match self.0 {
            0..=2 => Protection::None,
            3..=5 => Protection::Integrity,
            _ => Protection::Privacy,
        }
    }
}

named_debug!(AuthLevel, "AuthLevel({:#04x})");

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
    /// The handshake ended without a capability the authentication level needs (its name,
    /// `NEGOTIATE_SIGN` for instance): the context cannot protect fragments at that level, which
    /// [MS-RPCE] treats as an error rather than a reason to protect less.
    ///
    /// [MS-RPCE]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    #[error("the handshake did not negotiate {0}, which the authentication level needs")]
    CapabilityNotNegotiated(&'static str),
    /// The peer chose a mechanism this side did not accept (SPNEGO's acceptor answering with
    /// NTLM where Kerberos is required): a downgrade, refused.
    #[error("the peer chose another authentication mechanism (a downgrade): {0}")]
    Downgrade(&'static str),
    /// SPNEGO's mechanism list MIC did not verify, or did not come where it must
    /// ([RFC 4178 §5]): the negotiation was altered on the way.
    ///
    /// [RFC 4178 §5]: https://www.rfc-editor.org/rfc/rfc4178#section-5
    #[error("the SPNEGO mechanism list MIC {0}: the negotiation was altered")]
    MechListMic(&'static str),
    /// SPNEGO found no mechanism both sides have.
    #[error("no authentication mechanism in common with the peer")]
    NoCommonMechanism,
}

/// One fragment of a batch handed to [`SecurityProvider::wrap_batch`] or
/// [`SecurityProvider::unwrap_batch`]: the arguments of one [`wrap`](SecurityProvider::wrap)
/// or [`unwrap`](SecurityProvider::unwrap).
#[derive(Debug)]
pub struct ProtectedFragment<'a> {
    /// The fragment from its first header byte to the end of the `sec_trailer`.
    pub pdu: &'a mut [u8],
    /// The range of `pdu` holding the stub and its auth padding.
    pub stub: Range<usize>,
    /// The `auth_value`: written by `wrap_batch`, read by `unwrap_batch`.
    pub signature: &'a mut [u8],
}

/// A batch stopped at fragment `index` with `error`; the fragments before it were done.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fragment {index} of the batch: {error}")]
pub struct BatchError {
    /// The index of the fragment that failed.
    pub index: usize,
    /// Why it failed.
    pub error: SecurityError,
}

/// `each` on every fragment of a batch in order, stopping at the first that fails: a batch
/// done one fragment at a time (what the default [`SecurityProvider::wrap_batch`] and
/// [`SecurityProvider::unwrap_batch`] do; for a provider that batches only some levels).
///
/// # Errors
/// The first failure, with its fragment's index.
pub fn one_by_one(
    fragments: &mut [ProtectedFragment<'_>],
    mut each: impl FnMut(&mut ProtectedFragment<'_>) -> Result<(), SecurityError>,
) -> Result<(), BatchError> {
    for (index, fragment) in fragments.iter_mut().enumerate() {
        each(fragment).map_err(|error| BatchError { index, error })?;
    }
    Ok(())
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

    /// Tells the provider, before its first [`step`](Self::step), the protection its fragments
    /// will need: a provider that cannot give it once its handshake ends fails that last step
    /// with [`SecurityError::CapabilityNotNegotiated`]. A server calls it with the protection of
    /// the level of the bind; a provider that can always protect at every level ignores it (the
    /// default).
    fn require(&mut self, protection: Protection) {
        let _ = protection;
    }

    /// Tells the provider whether header signing is in force ([MS-RPCE §3.3.1.5.2.2]: both
    /// sides set `PFC_SUPPORT_HEADER_SIGN` in the bind and its answer); the association calls
    /// it once that is known. The GSS providers (Kerberos, SPNEGO) then cover the whole fragment
    /// with their tokens, and the stub alone without it; NTLM always covers the whole fragment
    /// (the default ignores it).
    ///
    /// [MS-RPCE §3.3.1.5.2.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    fn header_signing(&mut self, on: bool) {
        let _ = on;
    }

    /// Whether the handshake has completed.
    fn is_established(&self) -> bool;

    /// Length of `auth_value` in a protected fragment (16 for NTLM).
    fn signature_len(&self) -> usize;

    /// Whether a received protected fragment's `auth_value` may be `len` bytes long: what
    /// [`signature_len`](Self::signature_len) gives (the default), or, for a GSS wrap token,
    /// any length its peers send (the filler of RFC 4121 varies between implementations).
    fn accepts_signature_len(&self, len: usize) -> bool {
        len == self.signature_len()
    }

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

    /// Protects several outgoing fragments, in order: as [`wrap`](Self::wrap) on each in turn
    /// (the default does exactly that), but a provider whose fragments are independent
    /// messages under one key may work on them together (NTLM hashes them side by side).
    ///
    /// # Errors
    /// As [`wrap`](Self::wrap), with the index of the fragment that failed; the fragments
    /// before it are protected.
    fn wrap_batch(
        &mut self,
        protection: Protection,
        fragments: &mut [ProtectedFragment<'_>],
    ) -> Result<(), BatchError> {
        one_by_one(fragments, |f| {
            self.wrap(protection, f.pdu, f.stub.clone(), f.signature)
        })
    }

    /// Checks several incoming fragments, in the order received: as [`unwrap`](Self::unwrap)
    /// on each in turn (the default does exactly that).
    ///
    /// # Errors
    /// As [`unwrap`](Self::unwrap), with the index of the first fragment that failed: the
    /// fragments before it are verified (and unsealed), those from it on are not.
    fn unwrap_batch(
        &mut self,
        protection: Protection,
        fragments: &mut [ProtectedFragment<'_>],
    ) -> Result<(), BatchError> {
        one_by_one(fragments, |f| {
            self.unwrap(protection, f.pdu, f.stub.clone(), f.signature)
        })
    }

    /// Who authenticated, once an acceptor's handshake completed: what a server tells the
    /// interface implementation about its caller. `None` for an initiator, an anonymous
    /// logon, or a handshake not complete (the default).
    fn peer_identity(&self) -> Option<PeerIdentity> {
        None
    }
}

/// A security provider that SPNEGO ([RFC 4178], DCE/RPC auth type 9) can negotiate: besides its
/// handshake and fragment protection, the MIC over the mechanism list that protects the
/// negotiation ([RFC 4178 §5], [MS-SPNG §3.1.5.1]).
///
/// The defaults are those of a mechanism that cannot make that MIC.
///
/// [RFC 4178]: https://www.rfc-editor.org/rfc/rfc4178
/// [RFC 4178 §5]: https://www.rfc-editor.org/rfc/rfc4178#section-5
/// [MS-SPNG §3.1.5.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-spng/
pub trait SpnegoMechanism: SecurityProvider {
    /// Whether the established context can sign a message (NTLM: `NEGOTIATE_SIGN` was
    /// negotiated; Kerberos: always): only then is a mechanism list MIC exchanged.
    fn can_sign(&self) -> bool {
        false
    }

    /// Whether the mechanism's own handshake asks SPNEGO for the mechanism list MIC even when
    /// nothing was negotiated away: NTLM whose AUTHENTICATE carries a MIC ([MS-SPNG]).
    ///
    /// [MS-SPNG]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-spng/
    fn wants_mech_list_mic(&self) -> bool {
        false
    }

    /// GSS_GetMIC over `message` (the DER mechanism list), taking the next sequence number
    /// of this side's direction.
    ///
    /// # Errors
    /// [`SecurityError::Unsupported`] for a mechanism that cannot;
    /// [`SecurityError::WrongState`] before the context is established.
    fn get_mic(&mut self, message: &[u8]) -> Result<Vec<u8>, SecurityError> {
        let _ = message;
        Err(SecurityError::Unsupported("a MIC over the mechanism list"))
    }

    /// GSS_VerifyMIC: checks the peer's MIC over `message`.
    ///
    /// # Errors
    /// [`SecurityError::BadSignature`] when it does not verify; as
    /// [`get_mic`](Self::get_mic) otherwise.
    fn verify_mic(&mut self, message: &[u8], mic: &[u8]) -> Result<(), SecurityError> {
        let _ = (message, mic);
        Err(SecurityError::Unsupported("a MIC over the mechanism list"))
    }

    /// The mechanism list MICs went both ways and SPNEGO is done: NTLM keys its RC4 handles
    /// afresh, so the first protected fragment uses the state the MIC used ([MS-SPNG
    /// §3.1.5.1]), and keeps its sequence numbers.
    ///
    /// [MS-SPNG §3.1.5.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-spng/
    fn mech_list_mic_done(&mut self) {}
}

/// The authenticated peer of an association, as its security provider established it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// The account's user name, as the provider's credential store authenticated it (for
    /// NTLM, `backup@CORP` sent with no domain is the user `backup`).
    pub user: String,
    /// The account's domain, as the credential store authenticated it (`CORP` there).
    pub domain: String,
}
