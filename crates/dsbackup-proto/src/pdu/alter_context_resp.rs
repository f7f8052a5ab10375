//! [C706 §12.6.4.2] alter_context_resp: the layout of a bind_ack.
//!
//! ```text
//!  16              18              20                              24
//! +---------------+---------------+-------------------------------+----------+-----------+
//! | max_xmit_frag | max_recv_frag |        assoc_group_id         | sec_addr | pad to 4  |
//! +---------------+---------------+-------------------------------+----------+-----------+
//! | p_result_list ...
//! +--------------------
//! ```
//!
//! [C706 §12.6.4.2]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm

use bytes::BytesMut;

use crate::codec::Reader;
use crate::drep::DataRep;
use crate::error::{DecodeError, EncodeError};
use crate::pdu::bind_ack::{self, PortAny};
use crate::pdu::context::ContextResult;

/// An alter_context_resp: the server answers the contexts of an alter_context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterContextResp {
    /// `max_xmit_frag`.
    pub max_xmit_frag: u16,
    /// `max_recv_frag`.
    pub max_recv_frag: u16,
    /// `assoc_group_id`.
    pub assoc_group_id: u32,
    /// `sec_addr`: usually empty (length 0).
    pub sec_addr: PortAny,
    /// `p_result_list`: one result per proposed context, in order.
    pub p_result_list: Vec<ContextResult>,
}

impl AlterContextResp {
    /// Exact number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        bind_ack::bind_ack_like_len(&self.sec_addr, &self.p_result_list)
    }

    /// Appends the body.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] for a secondary address over 65535 bytes or more than 255
    /// results.
    pub fn encode(&self, drep: DataRep, dst: &mut BytesMut) -> Result<(), EncodeError> {
        bind_ack::encode_bind_ack_like(
            drep,
            dst,
            (self.max_xmit_frag, self.max_recv_frag, self.assoc_group_id),
            &self.sec_addr,
            &self.p_result_list,
        )
    }

    pub(crate) fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        let (max_xmit_frag, max_recv_frag, assoc_group_id, sec_addr, p_result_list) =
            bind_ack::decode_bind_ack_like(reader)?;
        Ok(Self {
            max_xmit_frag,
            max_recv_frag,
            assoc_group_id,
            sec_addr,
            p_result_list,
        })
    }
}
