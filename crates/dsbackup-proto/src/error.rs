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

/// The peer broke the protocol or refused us: what it sent, or what it did.
///
/// An association that fails with one of these is failed for good
/// ([`ClientAssociation::error`](crate::ClientAssociation::error),
/// [`ServerAssociation::error`](crate::ServerAssociation::error)). What the caller asked for
/// wrongly is an [`ApiMisuse`] instead, and leaves the association as it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The peer sent bytes that do not decode.
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    /// A PDU of ours cannot be encoded from what the peer sent or negotiated: a value of the
    /// peer's makes it too long for its field (an NTLM target information echoed in the
    /// AUTHENTICATE, for instance).
    #[error("a PDU answering the peer cannot be encoded: {0}")]
    Encode(#[source] EncodeError),
    /// The security provider refused the peer's token or fragment (refused credentials, a
    /// signature that does not verify).
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
    /// The peer went past a configured limit (fragments of a call, a reassembled stub,
    /// presentation contexts proposed).
    #[error("{what} of {value} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The value reached.
        value: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A `sec_trailer` field differs from the association's, or a verifier is missing or extra.
    #[error("`{field}` of the auth verifier does not match the association's")]
    AuthMismatch {
        /// The spec's name of the field (`auth_type`, `auth_level`, `auth_context_id`,
        /// `auth_length`).
        field: &'static str,
    },
    /// A value the peer negotiated is not acceptable (a fragment size under 1432, a result
    /// list of the wrong length).
    #[error("invalid `{field}` in the negotiation: {reason}")]
    Negotiation {
        /// The spec's name of the field.
        field: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// The caller asked for something the association cannot do: the API misused. Nothing was
/// queued and the association is as it was (one that had failed stays failed).
///
/// The peer's doing is a [`ProtocolError`] instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// A request after the association failed: it takes none once failed (the source is the
    /// peer's error that failed it, as `error()` gives it).
    #[error("the association has failed and takes no more requests")]
    AssociationFailed(#[source] ProtocolError),
    /// A value the caller gave cannot be carried on the wire (a token or a stub too long for
    /// its field).
    #[error("the request cannot be encoded: {0}")]
    Encode(#[source] EncodeError),
    /// The configuration cannot work (a fragment size under the 1432 bytes every peer must
    /// accept, an authenticated association below connect level).
    #[error("invalid `{field}` in the configuration: {reason}")]
    InvalidConfig {
        /// The field of the configuration.
        field: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The request is not allowed in the association's state (a second bind, a call before
    /// the bind completed, a second alter_context while one is outstanding).
    #[error("cannot {operation} while the association is {state}")]
    InvalidState {
        /// What was asked.
        operation: &'static str,
        /// The association's state.
        state: &'static str,
    },
    /// The request would go past a limit the caller configured (calls in flight, presentation
    /// contexts).
    #[error("{what} of {value} exceeds the configured limit of {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The value the request would reach.
        value: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The security provider refused to start the handshake (a provider already used for
    /// another association, or one without what it needs).
    #[error("the security provider cannot start: {0}")]
    Security(#[source] SecurityError),
    /// The request names a call that is not in flight (cancelled, answered or never made).
    #[error("no call {call_id} in flight")]
    UnknownCallId {
        /// The `call_id` given.
        call_id: u32,
    },
    /// A call on a presentation context that was never negotiated, or that the server
    /// rejected.
    #[error("presentation context {p_cont_id} is not negotiated")]
    UnknownContext {
        /// The `p_cont_id` given.
        p_cont_id: u16,
    },
}
