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
//! [MS-NLMP]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-nlmp/

pub mod acceptor;
pub mod crypto;
pub mod error;
pub mod flags;
#[doc(hidden)]
pub mod fuzzing;
pub mod initiator;
pub mod messages;
pub mod session;

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
    NegotiateMessage, Version,
};
pub use crate::session::{Role, SIGNATURE_LEN, SessionSecurity};
