//! [C706 §12.6.4.1] alter_context: the layout of a bind, on an existing association.
//!
//! ```text
//!  16              18              20                              24
//! +---------------+---------------+-------------------------------+--------------------
//! | max_xmit_frag | max_recv_frag |        assoc_group_id         | p_context_elem ...
//! +---------------+---------------+-------------------------------+--------------------
//! ```
//!
//! [C706 §12.6.4.1]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm

use bytes::BytesMut;

use crate::codec::Reader;
use crate::drep::DataRep;
use crate::error::{DecodeError, EncodeError};
use crate::pdu::DecodeLimits;
use crate::pdu::context::{self, PresentationContext};

/// An alter_context: the client proposes further presentation contexts (or continues a
/// security handshake) on an established association.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterContext {
    /// `max_xmit_frag`: largest fragment the client will send.
    pub max_xmit_frag: u16,
    /// `max_recv_frag`: largest fragment the client will receive.
    pub max_recv_frag: u16,
    /// `assoc_group_id`: 0 for a new association group.
    pub assoc_group_id: u32,
    /// `p_context_elem`: the proposed contexts.
    pub p_context_elem: Vec<PresentationContext>,
}

impl AlterContext {
    /// Fixed part: 2 /* max_xmit_frag */ + 2 /* max_recv_frag */ + 4 /* assoc_group_id */.
    const FIXED_LEN: usize = 2 + 2 + 4;

    /// Exact number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        Self::FIXED_LEN + context::contexts_len(&self.p_context_elem)
    }

    /// Appends the body.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] for more than 255 contexts or transfer syntaxes.
    pub fn encode(&self, drep: DataRep, dst: &mut BytesMut) -> Result<(), EncodeError> {
        super::bind::encode_bind_like(
            drep,
            dst,
            self.max_xmit_frag,
            self.max_recv_frag,
            self.assoc_group_id,
            &self.p_context_elem,
        )
    }

    pub(crate) fn decode(reader: &mut Reader, limits: &DecodeLimits) -> Result<Self, DecodeError> {
        let max_xmit_frag = reader.u16()?;
        let max_recv_frag = reader.u16()?;
        let assoc_group_id = reader.u32()?;
        let p_context_elem = context::decode_contexts(reader, limits)?;
        Ok(Self {
            max_xmit_frag,
            max_recv_frag,
            assoc_group_id,
            p_context_elem,
        })
    }
}
