//! Errors of the NDR decoder: typed, allocation-free.

use crate::error::DecodeError;

/// A call stub that does not decode as NDR 2.0, or breaks a rule of the interface's IDL.
///
/// Every variant carries only `&'static str` names and numbers: building one never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NdrError {
    /// The stub ends before the value does.
    #[error("{what} needs {needed} bytes, {available} remain in the stub")]
    Truncated {
        /// The value being decoded.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left in the stub.
        available: usize,
    },
    /// A count read from the wire (conformance or actual count) announces more elements than the
    /// remaining bytes can hold; refused before anything is allocated.
    #[error(
        "{what} announces {count} elements of at least {element_size} bytes, {available} bytes remain"
    )]
    CountTooLarge {
        /// The array being decoded.
        what: &'static str,
        /// The count on the wire.
        count: u32,
        /// The smallest wire size of one element.
        element_size: usize,
        /// Bytes left in the stub.
        available: usize,
    },
    /// A varying array's offset is not zero ([MS-RPCE §2.2.5.3.4.2]: the offset is always 0
    /// for the arrays of these interfaces).
    ///
    /// [MS-RPCE §2.2.5.3.4.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    #[error("{what} has offset {offset}, expected 0")]
    NonZeroOffset {
        /// The array being decoded.
        what: &'static str,
        /// The offset on the wire.
        offset: u32,
    },
    /// A conformant varying array transmits more elements than its maximum count.
    #[error("{what} has actual_count {actual_count} above max_count {max_count}")]
    ActualCountAboveMax {
        /// The array being decoded.
        what: &'static str,
        /// The actual count on the wire.
        actual_count: u32,
        /// The maximum count (conformance) it may not exceed.
        max_count: u32,
    },
    /// A count parameter disagrees with the array it sizes or describes.
    #[error("{what}: `{field}` is {count} but the array carries {array_count}")]
    CountMismatch {
        /// The call or structure being decoded.
        what: &'static str,
        /// The IDL name of the count parameter.
        field: &'static str,
        /// The count parameter.
        count: u32,
        /// The array's count on the wire.
        array_count: u32,
    },
    /// A `[string]` does not end in a NUL, or is empty (no room for the NUL).
    #[error("{what} is not NUL-terminated")]
    MissingNul {
        /// The string being decoded.
        what: &'static str,
    },
    /// A `[string]` holds a NUL before its last element.
    #[error("{what} holds a NUL before its end")]
    EmbeddedNul {
        /// The string being decoded.
        what: &'static str,
    },
    /// A UTF-16 string holds an unpaired surrogate.
    #[error("{what} is not valid UTF-16")]
    InvalidUtf16 {
        /// The string being decoded.
        what: &'static str,
    },
    /// A `[ref]` pointer has a null referent id ([C706 §14.3.10]: a reference pointer is never
    /// null).
    ///
    /// [C706 §14.3.10]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
    #[error("{what} is a [ref] pointer with a null referent")]
    NullRefPointer {
        /// The pointer being decoded.
        what: &'static str,
    },
    /// A full pointer repeats the referent id of an earlier pointer of the same stub.
    ///
    /// No interface of this crate has a type where sharing is meaningful, and a repeated id is
    /// how a cycle is written, so the decoder refuses it instead of following it.
    #[error("{what} repeats referent id {referent_id:#010x} (aliased or cyclic full pointer)")]
    RepeatedReferent {
        /// The pointer being decoded.
        what: &'static str,
        /// The repeated referent id.
        referent_id: u32,
    },
    /// A value outside the range the IDL allows.
    #[error("{what}: {value} is outside {min}..={max}")]
    OutOfRange {
        /// The field being decoded.
        what: &'static str,
        /// The value on the wire.
        value: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A value the decoder refuses for another reason.
    #[error("invalid `{field}` in {what}: {reason}")]
    InvalidField {
        /// The structure being decoded.
        what: &'static str,
        /// The IDL name of the field.
        field: &'static str,
        /// Why the value is refused.
        reason: &'static str,
    },
    /// Bytes remain after the last parameter of a call.
    #[error("{count} trailing bytes after {what}")]
    TrailingBytes {
        /// The call being decoded.
        what: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// The operation number is not in the interface's call table.
    #[error("opnum {opnum} is not an operation of {interface}")]
    UnknownOpnum {
        /// The interface name.
        interface: &'static str,
        /// The opnum of the request.
        opnum: u16,
    },
}

impl From<NdrError> for DecodeError {
    fn from(error: NdrError) -> Self {
        match error {
            NdrError::Truncated {
                what,
                needed,
                available,
            } => Self::Truncated {
                what,
                needed,
                available,
            },
            NdrError::CountTooLarge {
                what,
                count,
                element_size,
                available,
            } => Self::Truncated {
                what,
                needed: usize::try_from(count)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(element_size),
                available,
            },
            NdrError::TrailingBytes { what, count } => Self::TrailingBytes { what, count },
            NdrError::NonZeroOffset { what, .. } => invalid(what, "offset", "not zero"),
            NdrError::ActualCountAboveMax { what, .. } => {
                invalid(what, "actual_count", "above max_count")
            }
            NdrError::CountMismatch { what, field, .. } => {
                invalid(what, field, "disagrees with the array it sizes")
            }
            NdrError::MissingNul { what } => invalid(what, "string", "not NUL-terminated"),
            NdrError::EmbeddedNul { what } => invalid(what, "string", "NUL before the end"),
            NdrError::InvalidUtf16 { what } => invalid(what, "string", "invalid UTF-16"),
            NdrError::NullRefPointer { what } => invalid(what, "referent_id", "null [ref] pointer"),
            NdrError::RepeatedReferent { what, .. } => {
                invalid(what, "referent_id", "repeated full-pointer referent")
            }
            NdrError::OutOfRange { what, .. } => invalid(what, "value", "out of range"),
            NdrError::InvalidField {
                what,
                field,
                reason,
            } => invalid(what, field, reason),
            NdrError::UnknownOpnum { interface, .. } => {
                invalid(interface, "opnum", "unknown operation")
            }
        }
    }
}

fn invalid(what: &'static str, field: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::InvalidField {
        what,
        field,
        reason,
    }
}
