//! Errors of the codec and of the association state machines, split by whose fault they are.

use crate::header::PacketType;
use crate::pdu::{FaultStatus, RejectReason};
use crate::security::SecurityError;

/// The bytes are wrong: a PDU, a stub or a message that cannot be decoded.
///
/// Decode errors carry only static names and numbers: they never allocate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the structure needs.
    #[error("{what} needs {needed} bytes, got {available}")]
    Truncated {
        /// The structure being decoded.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes there were.
        available: usize,
    },
    /// A field holds a value the decoder refuses.
    #[error("invalid `{field}` in {what}: {reason}")]
    InvalidField {
        /// The structure being decoded.
        what: &'static str,
        /// The spec's name of the field.
        field: &'static str,
        /// Why the value is refused.
        reason: &'static str,
    },
    /// Bytes were left over after a structure that must fill its container.
    #[error("{count} trailing bytes after {what}")]
    TrailingBytes {
        /// The structure being decoded.
        what: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// The common header announces a protocol version other than 5.0 or 5.1.
    #[error("unsupported rpc_vers {rpc_vers}.{rpc_vers_minor} (only 5.0 and 5.1)")]
    UnsupportedVersion {
        /// `rpc_vers` on the wire.
        rpc_vers: u8,
        /// `rpc_vers_minor` on the wire.
        rpc_vers_minor: u8,
    },
    /// The common header carries a `PTYPE` that is not a connection-oriented PDU.
    #[error("packet type {ptype} is not a connection-oriented PDU")]
    UnknownPacketType {
        /// `PTYPE` on the wire.
        ptype: u8,
    },
    /// A length read from the wire exceeds a configured limit.
    #[error("{what} of {value} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The value on the wire.
        value: usize,
        /// The configured limit.
        limit: usize,
    },
}

/// A value cannot be encoded (a length that does not fit its wire field).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A length or count does not fit the field that carries it.
    #[error("{what} of {value} does not fit `{field}` (at most {max})")]
    TooLong {
        /// The structure being encoded.
        what: &'static str,
        /// The spec's name of the field.
        field: &'static str,
        /// The value.
        value: usize,
        /// The largest value the field holds.
        max: usize,
    },
    /// A value cannot be represented on the wire.
    #[error("invalid `{field}` in {what}: {reason}")]
    InvalidField {
        /// The structure being encoded.
        what: &'static str,
        /// The spec's name of the field.
        field: &'static str,
        /// Why the value cannot be encoded.
        reason: &'static str,
    },
    /// Fields that the wire ties together disagree (a count and the array it sizes, a string
    /// with a NUL inside).
    #[error("inconsistent `{field}` in {what}: {reason}")]
    Inconsistent {
        /// The structure being encoded.
        what: &'static str,
        /// The spec's name of the field.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The peer broke the protocol or refused us; or the caller asked for something the association
/// cannot do in its state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The peer sent bytes that do not decode.
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    /// A value could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The security provider refused a token or a fragment.
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// A PDU arrived that the association does not expect in its state.
    #[error("received {got} while expecting one of {expected:?}")]
    UnexpectedPdu {
        /// The packet types the association accepts in its state.
        expected: &'static [PacketType],
        /// The packet type received.
        got: PacketType,
    },
    /// The server refused the association with a bind_nak.
    #[error("bind rejected by peer: {0:?}")]
    BindRejected(RejectReason),
    /// The server answered a bind, alter_context or auth3 with a fault: the association is
    /// unusable.
    #[error("association refused by a fault: {0:?}")]
    AssociationFault(FaultStatus),
    /// A PDU names a call that is not in flight.
    #[error("no call {call_id} in flight")]
    UnknownCallId {
        /// `call_id` of the PDU.
        call_id: u32,
    },
    /// A fragment arrived out of order (a middle fragment without a first one, a second first
    /// fragment, fields that change between fragments).
    #[error("fragment of call {call_id} out of order: {reason}")]
    FragmentOutOfOrder {
        /// `call_id` of the fragment.
        call_id: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A fragment of one call arrived while another call was being reassembled, and
    /// `PFC_CONC_MPX` was not negotiated.
    #[error("fragment of call {call_id} interleaved with call {in_progress} without PFC_CONC_MPX")]
    InterleavedCalls {
        /// `call_id` of the fragment.
        call_id: u32,
        /// The call being reassembled.
        in_progress: u32,
    },
    /// The peer (or the caller) went past a configured limit.
    #[error("{what} of {value} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The value reached.
        value: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A presentation context that was not negotiated (or was rejected).
    #[error("presentation context {p_cont_id} is not negotiated")]
    UnknownContext {
        /// `p_cont_id`.
        p_cont_id: u16,
    },
    /// A `sec_trailer` field differs from the association's, or a verifier is missing or extra.
    #[error("`{field}` of the auth verifier does not match the association's")]
    AuthMismatch {
        /// The spec's name of the field (`auth_type`, `auth_level`, `auth_context_id`,
        /// `auth_length`).
        field: &'static str,
    },
    /// A negotiated value is not acceptable (a fragment size under 1432, a result list of the
    /// wrong length).
    #[error("invalid `{field}` in the negotiation: {reason}")]
    Negotiation {
        /// The spec's name of the field.
        field: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The caller asked for something the association cannot do in its state.
    #[error("cannot {operation} while the association is {state}")]
    InvalidState {
        /// What was asked.
        operation: &'static str,
        /// The association's state.
        state: &'static str,
    },
}
