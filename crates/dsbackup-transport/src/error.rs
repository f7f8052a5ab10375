//! What can go wrong on a connection, split by whose fault it is.

use dsbackup_proto::{EncodeError, FaultStatus, NdrError, ProtocolError, RejectReason, SyntaxId};

use crate::binding::ParseBindingError;
use crate::kdc::KdcError;

/// An error of the client transport.
///
/// - the network: [`Io`](Self::Io), [`Closed`](Self::Closed), [`TimedOut`](Self::TimedOut);
/// - the peer: [`Protocol`](Self::Protocol) (a PDU that breaks the protocol, a signature that
///   does not verify), [`Ndr`](Self::Ndr) (a stub that does not decode);
/// - the server's verdict: [`Fault`](Self::Fault), [`BindRejected`](Self::BindRejected),
///   [`InterfaceRejected`](Self::InterfaceRejected), [`Resolve`](Self::Resolve);
/// - the caller: [`Binding`](Self::Binding), [`Encode`](Self::Encode).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol (the association is failed for good).
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server answered the call with a fault.
    #[error("the call faulted: {status}{}", if *.did_not_execute { " (did not execute)" } else { "" })]
    Fault {
        /// The fault status.
        status: FaultStatus,
        /// `PFC_DID_NOT_EXECUTE`: the server guarantees the call did not run.
        did_not_execute: bool,
    },
    /// The server refused the bind with a bind_nak.
    #[error("the bind was rejected: {0:?}")]
    BindRejected(RejectReason),
    /// The server accepted none of the interface versions proposed.
    #[error("no version of the interface was accepted (last tried {interface:?})")]
    InterfaceRejected {
        /// The last interface version proposed.
        interface: SyntaxId,
    },
    /// The deadline passed before the operation completed (a call is then cancelled on the
    /// wire).
    #[error("timed out")]
    TimedOut,
    /// The association is closed (by us, the server, or a registry that was closed).
    #[error("the association is closed")]
    Closed,
    /// The endpoint mapper does not know the interface, or answered nonsense.
    #[error("endpoint resolution failed: {0}")]
    Resolve(&'static str),
    /// A string binding does not parse, or names a protocol sequence we do not speak.
    #[error("string binding: {0}")]
    Binding(#[from] ParseBindingError),
    /// A stub did not decode.
    #[error("stub: {0}")]
    Ndr(#[from] NdrError),
    /// A value could not be encoded.
    #[error("encoding: {0}")]
    Encode(#[from] EncodeError),
    /// No Kerberos ticket for the server: the KDC refused or could not be reached
    /// ([`KdcError::is_refusal`] tells which).
    #[error("Kerberos: {0}")]
    Kdc(#[from] KdcError),
}

impl TransportError {
    /// Whether the peer is to blame (a protocol violation or a stub that does not decode).
    pub fn is_peer_fault(&self) -> bool {
        matches!(self, Self::Protocol(_) | Self::Ndr(_))
    }
}
