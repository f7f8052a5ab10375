//! Presentation-context negotiation: the `p_cont_list_t` of a bind or alter_context and the
//! `p_result_list_t` of their answers ([C706 §12.6.3.1], [MS-RPCE §2.2.2.4]).
//!
//! ```text
//! p_cont_list_t:   n_context_elem u8 | reserved u8 | reserved2 u16 | p_cont_elem_t[n_context_elem]
//! p_cont_elem_t:   p_cont_id u16 | n_transfer_syn u8 | reserved u8 | abstract_syntax (20)
//!                  | transfer_syntaxes (20 each)[n_transfer_syn]
//! p_result_list_t: n_results u8 | reserved u8 | reserved2 u16 | p_result_t[n_results]
//! p_result_t:      result u16 | reason u16 | transfer_syntax (20)
//! ```
//!
//! [C706 §12.6.3.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
//! [MS-RPCE §2.2.2.4]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use bytes::{BufMut, BytesMut};

use crate::codec::{PutDrep, Reader, count_u8};
use crate::drep::DataRep;
use crate::error::{DecodeError, EncodeError};
use crate::pdu::DecodeLimits;
use crate::syntax::{BindTimeFeatures, SyntaxId};
use crate::wire_enum::{known_values, named_debug};

/// One proposed presentation context, `p_cont_elem_t`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentationContext {
    /// `p_cont_id`: the id requests on this context will carry.
    pub p_cont_id: u16,
    /// `abstract_syntax`: the interface.
    pub abstract_syntax: SyntaxId,
    /// `transfer_syntaxes`, in the caller's order of preference.
    pub transfer_syntaxes: Vec<SyntaxId>,
}

impl PresentationContext {
    /// Smallest encoding: 2 /* p_cont_id */ + 1 /* n_transfer_syn */ + 1 /* reserved */
    /// + 20 /* abstract_syntax */.
    const MIN_LEN: usize = 2 + 1 + 1 + SyntaxId::LEN;

    fn encoded_len(&self) -> usize {
        Self::MIN_LEN + self.transfer_syntaxes.len() * SyntaxId::LEN
    }
}

/// Bytes of the `p_cont_list_t` header: 1 /* n_context_elem */ + 1 /* reserved */
/// + 2 /* reserved2 */.
const LIST_HEADER_LEN: usize = 1 + 1 + 2;

pub(crate) fn contexts_len(contexts: &[PresentationContext]) -> usize {
    LIST_HEADER_LEN
        + contexts
            .iter()
            .map(PresentationContext::encoded_len)
            .sum::<usize>()
}

pub(crate) fn decode_contexts(
    reader: &mut Reader,
    limits: &DecodeLimits,
) -> Result<Vec<PresentationContext>, DecodeError> {
    let count = reader.u8()?;
    let _reserved = reader.u8()?;
    let _reserved2 = reader.u16()?;
    let count = usize::from(count);
    if count > usize::from(limits.max_context_elems) {
        return Err(DecodeError::LimitExceeded {
            what: "n_context_elem",
            value: count,
            limit: limits.max_context_elems.into(),
        });
    }
    // Refuse before allocating: each element needs at least MIN_LEN bytes behind it.
    reader.ensure(count * PresentationContext::MIN_LEN)?;
    let mut contexts = Vec::with_capacity(count);
    for _ in 0..count {
        let p_cont_id = reader.u16()?;
        let n_transfer_syn = usize::from(reader.u8()?);
        let _reserved = reader.u8()?;
        let abstract_syntax = SyntaxId::decode(reader)?;
        if n_transfer_syn > usize::from(limits.max_transfer_syntaxes) {
            return Err(DecodeError::LimitExceeded {
                what: "n_transfer_syn",
                value: n_transfer_syn,
                limit: limits.max_transfer_syntaxes.into(),
            });
        }
        reader.ensure(n_transfer_syn * SyntaxId::LEN)?;
        let mut transfer_syntaxes = Vec::with_capacity(n_transfer_syn);
        for _ in 0..n_transfer_syn {
            transfer_syntaxes.push(SyntaxId::decode(reader)?);
        }
        contexts.push(PresentationContext {
            p_cont_id,
            abstract_syntax,
            transfer_syntaxes,
        });
    }
    Ok(contexts)
}

pub(crate) fn encode_contexts(
    contexts: &[PresentationContext],
    drep: DataRep,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    dst.put_u8(count_u8("p_cont_list_t", "n_context_elem", contexts.len())?);
    dst.put_u8(0); // reserved
    dst.put_u16(0); // reserved2
    for context in contexts {
        dst.put_u16_drep(drep, context.p_cont_id);
        dst.put_u8(count_u8(
            "p_cont_elem_t",
            "n_transfer_syn",
            context.transfer_syntaxes.len(),
        )?);
        dst.put_u8(0); // reserved
        context.abstract_syntax.encode(drep, dst);
        for syntax in &context.transfer_syntaxes {
            syntax.encode(drep, dst);
        }
    }
    Ok(())
}

/// `p_cont_def_result_t`: the outcome of one proposed context ([C706 §12.6.3.1],
/// [MS-RPCE §2.2.2.4]).
///
/// [C706 §12.6.3.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
/// [MS-RPCE §2.2.2.4]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContResult(pub u16);

known_values! {
    ContResult, name: "The spec name of a known value.";
    /// acceptance.
    ACCEPTANCE = 0 => "acceptance",
    /// user_rejection.
    USER_REJECTION = 1 => "user_rejection",
    /// provider_rejection.
    PROVIDER_REJECTION = 2 => "provider_rejection",
    /// negotiate_ack: the answer to a bind-time feature negotiation context ([MS-RPCE §2.2.2.4]).
    ///
    /// [MS-RPCE §2.2.2.4]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    NEGOTIATE_ACK = 3 => "negotiate_ack",
}

/// `p_provider_reason_t`: why a context was rejected ([C706 §12.6.3.1]).
///
/// [C706 §12.6.3.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderReason(pub u16);

known_values! {
    ProviderReason, name: "The spec name of a known value.";
    /// reason_not_specified.
    REASON_NOT_SPECIFIED = 0 => "reason_not_specified",
    /// abstract_syntax_not_supported.
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 1 => "abstract_syntax_not_supported",
    /// proposed_transfer_syntaxes_not_supported.
    PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED = 2 => "proposed_transfer_syntaxes_not_supported",
    /// local_limit_exceeded.
    LOCAL_LIMIT_EXCEEDED = 3 => "local_limit_exceeded",
}

named_debug!(ContResult);
named_debug!(ProviderReason);

/// One entry of `p_result_list_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextResult {
    /// `result`.
    pub result: ContResult,
    /// `reason`: a [`ProviderReason`] for a rejection; for `negotiate_ack`, the accepted
    /// [`BindTimeFeatures`] bitmask ([MS-RPCE §2.2.2.4]).
    ///
    /// [MS-RPCE §2.2.2.4]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
    pub reason: u16,
    /// `transfer_syntax`: the accepted syntax, all zero when rejected.
    pub transfer_syntax: SyntaxId,
}

impl ContextResult {
    /// Encoded length: 2 /* result */ + 2 /* reason */ + 20 /* transfer_syntax */.
    pub const LEN: usize = 2 + 2 + SyntaxId::LEN;

    /// An acceptance of `transfer_syntax`.
    pub const fn acceptance(transfer_syntax: SyntaxId) -> Self {
        Self {
            result: ContResult::ACCEPTANCE,
            reason: 0,
            transfer_syntax,
        }
    }

    /// A provider rejection for `reason`, with a nil transfer syntax.
    pub const fn provider_rejection(reason: ProviderReason) -> Self {
        Self {
            result: ContResult::PROVIDER_REJECTION,
            reason: reason.0,
            transfer_syntax: SyntaxId::new(crate::uuid::Uuid::NIL, 0, 0),
        }
    }

    /// The answer to a bind-time feature negotiation context: the features the server supports.
    pub const fn negotiate_ack(features: BindTimeFeatures) -> Self {
        Self {
            result: ContResult::NEGOTIATE_ACK,
            reason: features.bits(),
            transfer_syntax: SyntaxId::new(crate::uuid::Uuid::NIL, 0, 0),
        }
    }

    /// `reason` read as a rejection reason (meaningful for rejections).
    pub const fn provider_reason(&self) -> ProviderReason {
        ProviderReason(self.reason)
    }

    /// `reason` read as the accepted features, for a `negotiate_ack`.
    pub fn bind_time_features(&self) -> Option<BindTimeFeatures> {
        (self.result == ContResult::NEGOTIATE_ACK)
            .then(|| BindTimeFeatures::from_bits_retain(self.reason))
    }
}

pub(crate) fn results_len(results: &[ContextResult]) -> usize {
    LIST_HEADER_LEN + results.len() * ContextResult::LEN
}

pub(crate) fn decode_results(reader: &mut Reader) -> Result<Vec<ContextResult>, DecodeError> {
    let count = usize::from(reader.u8()?);
    let _reserved = reader.u8()?;
    let _reserved2 = reader.u16()?;
    reader.ensure(count * ContextResult::LEN)?;
    let mut results = Vec::with_capacity(count);
    for _ in 0..count {
        results.push(ContextResult {
            result: ContResult(reader.u16()?),
            reason: reader.u16()?,
            transfer_syntax: SyntaxId::decode(reader)?,
        });
    }
    Ok(results)
}

pub(crate) fn encode_results(
    results: &[ContextResult],
    drep: DataRep,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    dst.put_u8(count_u8("p_result_list_t", "n_results", results.len())?);
    dst.put_u8(0); // reserved
    dst.put_u16(0); // reserved2
    for result in results {
        dst.put_u16_drep(drep, result.result.0);
        dst.put_u16_drep(drep, result.reason);
        result.transfer_syntax.encode(drep, dst);
    }
    Ok(())
}
