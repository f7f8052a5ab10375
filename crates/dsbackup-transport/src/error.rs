//! What can go wrong on a connection, split by whose fault it is.

use std::sync::Arc;

use dsbackup_proto::ndr::NdrError;
use dsbackup_proto::{ApiMisuse, EncodeError, FaultStatus, ProtocolError, RejectReason, SyntaxId};

use crate::binding::ParseBindingError;
use crate::kdc::KdcError;

/// An error of the client transport.
///
/// - the network: [`Io`](Self::Io), [`Closed`](Self::Closed), [`TimedOut`](Self::TimedOut);
/// - the peer misbehaved: [`Protocol`](Self::Protocol) (a PDU that breaks the protocol, a
///   signature that does not verify), [`Ndr`](Self::Ndr) (a stub that does not decode);
/// - the peer refused: [`Fault`](Self::Fault) (a call, or the bind's authentication legs,
///   answered with a fault), [`BindRejected`](Self::BindRejected),
///   [`InterfaceRejected`](Self::InterfaceRejected), [`Resolve`](Self::Resolve);
/// - the caller: [`Binding`](Self::Binding), [`Encode`](Self::Encode),
///   [`Misuse`](Self::Misuse).
///
/// The error is `Clone`: every call an association failure ends gets the same error, the
/// operating system's included (shared).
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The socket failed.
    #[error("I/O error: {0}")]
    Io(#[source] Arc<std::io::Error>),
    /// The peer broke the protocol (the association is failed for good).
    #[error("protocol error: {0}")]
    Protocol(#[source] ProtocolError),
    /// The server answered the call with a fault (or the bind, alter_context or auth3 of the
    /// association, which is then unusable).
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
    /// The caller asked for something the association cannot do (a call before the bind or
    /// on a context that was not accepted, more calls in flight than its limit, a second
    /// alter_context while one is outstanding, options it cannot negotiate). The association
    /// is not failed by it.
    #[error("misuse: {0}")]
    Misuse(#[source] ApiMisuse),
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

impl From<std::io::Error> for TransportError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(Arc::new(error))
    }
}

impl TransportError {
    /// The error for a failure of the association's state machine: the peer's doing. A
    /// bind_nak is [`BindRejected`](Self::BindRejected) and a fault answering the bind's legs
    /// is a [`Fault`](Self::Fault) that did not execute (the peer refused), anything else
    /// [`Protocol`](Self::Protocol).
    pub(crate) fn peer(error: ProtocolError) -> Self {
        match error {
            ProtocolError::BindRejected(reason) => Self::BindRejected(reason),
            ProtocolError::AssociationFault(status) => Self::Fault {
                status,
                did_not_execute: true,
            },
            other => Self::Protocol(other),
        }
    }

    /// The error for a request the association refused: the caller's misuse, or, when the
    /// association had failed, the peer's error that failed it (as [`peer`](Self::peer)).
    pub(crate) fn misuse(error: ApiMisuse) -> Self {
        match error {
            ApiMisuse::AssociationFailed(source) => Self::peer(source),
            other => Self::Misuse(other),
        }
    }

    /// Whether the peer is to blame (a protocol violation or a stub that does not decode).
    pub fn is_peer_fault(&self) -> bool {
        matches!(self, Self::Protocol(_) | Self::Ndr(_))
    }

    /// Whether the caller is to blame (a string binding, a value or a request the transport
    /// cannot take).
    pub fn is_misuse(&self) -> bool {
        matches!(self, Self::Binding(_) | Self::Encode(_) | Self::Misuse(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_after_the_peer_failed_the_association_is_the_peers_fault() {
        let failed = TransportError::misuse(ApiMisuse::AssociationFailed(
            ProtocolError::BindRejected(RejectReason::LOCAL_LIMIT_EXCEEDED),
        ));
        assert!(
            matches!(
                failed,
                TransportError::BindRejected(RejectReason::LOCAL_LIMIT_EXCEEDED)
            ),
            "{failed:?}"
        );
        let failed =
            TransportError::misuse(ApiMisuse::AssociationFailed(ProtocolError::UnknownCallId {
                call_id: 3,
            }));
        assert!(failed.is_peer_fault() && !failed.is_misuse(), "{failed:?}");
        let misuse = TransportError::misuse(ApiMisuse::UnknownContext { p_cont_id: 2 });
        assert!(misuse.is_misuse() && !misuse.is_peer_fault(), "{misuse:?}");
    }
}
