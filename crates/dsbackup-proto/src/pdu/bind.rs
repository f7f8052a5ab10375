//! [C706 §12.6.4.3] bind, with the header-signing bit of [MS-RPCE §2.2.2.3].
//!
//! ```text
//!  16              18              20                              24
//! +---------------+---------------+-------------------------------+--------------------
//! | max_xmit_frag | max_recv_frag |        assoc_group_id         | p_context_elem ...
//! +---------------+---------------+-------------------------------+--------------------
//! ```
//!
//! [C706 §12.6.4.3]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
//! [MS-RPCE §2.2.2.3]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use bytes::BytesMut;

use crate::codec::{PutDrep, Reader};
use crate::drep::DataRep;
use crate::error::{DecodeError, EncodeError};
use crate::pdu::DecodeLimits;
use crate::pdu::context::{self, PresentationContext};

/// A bind: the client proposes presentation contexts and fragment sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// `max_xmit_frag`: largest fragment the client will send.
    pub max_xmit_frag: u16,
    /// `max_recv_frag`: largest fragment the client will receive.
    pub max_recv_frag: u16,
    /// `assoc_group_id`: 0 for a new association group.
    pub assoc_group_id: u32,
    /// `p_context_elem`: the proposed contexts.
    pub p_context_elem: Vec<PresentationContext>,
}

impl Bind {
    /// Fixed part: 2 /* max_xmit_frag */ + 2 /* max_recv_frag */ + 4 /* assoc_group_id */.
    pub(crate) const FIXED_LEN: usize = 2 + 2 + 4;

    /// Exact number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        Self::FIXED_LEN + context::contexts_len(&self.p_context_elem)
    }

    /// Appends the body.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] for more than 255 contexts or transfer syntaxes.
    pub fn encode(&self, drep: DataRep, dst: &mut BytesMut) -> Result<(), EncodeError> {
        encode_bind_like(
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

pub(crate) fn encode_bind_like(
    drep: DataRep,
    dst: &mut BytesMut,
    max_xmit_frag: u16,
    max_recv_frag: u16,
    assoc_group_id: u32,
    contexts: &[PresentationContext],
) -> Result<(), EncodeError> {
    dst.put_u16_drep(drep, max_xmit_frag);
    dst.put_u16_drep(drep, max_recv_frag);
    dst.put_u32_drep(drep, assoc_group_id);
    context::encode_contexts(contexts, drep, dst)?;
    Ok(())
}
