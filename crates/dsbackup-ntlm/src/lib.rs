//! NTLM v2 ([MS-NLMP]) for DCE/RPC: the three messages, an initiator and an acceptor, and
//! signing and sealing with extended session security.
//!
//! Nothing here touches a socket, a clock or a random number generator: the client challenge,
//! the random session key, the server challenge and the timestamps are passed in
//! ([`ClientInputs`], [`ServerInputs`]).
//!
//! [`Initiator`] and [`Acceptor`] implement [`dsbackup_proto::SecurityProvider`] with auth type
//! 10 (RPC_C_AUTHN_WINNT):
//!
//! ```text
//! client                                   server
//! Initiator::step(None)          -> NEGOTIATE    (bind)
//!                      CHALLENGE <- Acceptor::step(Some(negotiate))     (bind_ack)
//! Initiator::step(Some(challenge)) -> AUTHENTICATE (auth3)
//!                                   Acceptor::step(Some(authenticate)) -> Complete(None)
//! ```
//!
//! The acceptor verifies the client's NTProofStr against the stored NT hash on every logon, and
//! the MIC whenever the client announces one.
//!
//! ```
//! use std::sync::Arc;
//!
//! use dsbackup_ntlm::{
//!     Acceptor, AcceptorConfig, ClientInputs, Credentials, InMemoryCredentials, Initiator,
//!     InitiatorConfig, ServerInputs,
//! };
//! use dsbackup_proto::{AuthStep, Protection, SecurityProvider};
//!
//! let mut users = InMemoryCredentials::new();
//! users.insert_password("svc-backup", "CORP", "s3cret!");
//! let config = AcceptorConfig::new(Arc::new(users), "DC1", "CORP", "corp.example");
//! // Nonces and time come from the caller (here fixed; use a CSPRNG and the clock).
//! let mut server = Acceptor::new(config, ServerInputs { server_challenge: [7; 8], timestamp: 0 });
//! let credentials = Credentials::from_password("svc-backup", "CORP", "s3cret!");
//! let inputs = ClientInputs {
//!     client_challenge: [1; 8],
//!     random_session_key: [2; 16],
//!     timestamp: 0,
//! };
//! let mut client = Initiator::new(InitiatorConfig::new(credentials), inputs);
//!
//! let AuthStep::Continue(negotiate) = client.step(None)? else { unreachable!() };
//! let AuthStep::Continue(challenge) = server.step(Some(&negotiate))? else { unreachable!() };
//! let AuthStep::Complete(Some(authenticate)) = client.step(Some(&challenge))? else {
//!     unreachable!()
//! };
//! assert_eq!(server.step(Some(&authenticate))?, AuthStep::Complete(None));
//! assert_eq!(server.identity().map(|who| who.user.as_str()), Some("svc-backup"));
//!
//! // A fragment: header, stub (sealed at privacy), sec_trailer; the signature goes after it.
//! let mut pdu = b"header..stub to be sealed..trailer!".to_vec();
//! let mut signature = [0u8; 16];
//! client.wrap(Protection::Privacy, &mut pdu, 8..27, &mut signature)?;
//! server.unwrap(Protection::Privacy, &mut pdu, 8..27, &signature)?;
//! assert_eq!(pdu, b"header..stub to be sealed..trailer!");
//! # Ok::<(), dsbackup_proto::SecurityError>(())
//! ```
//!
//! Fragments can also be protected and checked several at a time
//! ([`SessionSecurity::seal_batch`] and its siblings, one [`dsbackup_proto::ProtectedFragment`] each):
//! the bytes, signatures and sequence numbers are those of one call per fragment, and the
//! HMAC-MD5 checksums of up to eight fragments are computed side by side (multi-buffer MD5 in
//! the lanes of vector registers), where one message's MD5 is a single chain of dependent steps.
//!
//! [MS-NLMP]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/

mod acceptor;
mod crypto;
mod error;
mod flags;
#[doc(hidden)]
pub mod fuzzing;
mod initiator;
mod md5x;
mod messages;
mod observer;
pub mod rc4;
mod session;
mod stitch;

#[cfg(test)]
mod tests;

pub use crate::acceptor::{
    Acceptor, AcceptorConfig, CredentialStore, Identity, InMemoryCredentials, ServerInputs,
};
pub use crate::crypto::{Key, NtHash};
pub use crate::error::{LogonFailure, NtlmError, SignatureError};
pub use crate::flags::NegotiateFlags;
pub use crate::initiator::{ClientInputs, Credentials, Initiator, InitiatorConfig};
pub use crate::messages::{
    AuthenticateMessage, AvFlags, AvId, AvPair, AvPairs, ChallengeMessage, Message,
    NegotiateMessage, Version, decode_string,
};
pub use crate::observer::{NtlmEavesdropper, ObservedContext};
pub use crate::session::{BatchResult, Role, SIGNATURE_LEN, SessionSecurity};
