//! [C706 §12.6.4.4] bind_ack, with the negotiate_ack result of [MS-RPCE §2.2.2.4].
//!
//! ```text
//!  16              18              20                              24
//! +---------------+---------------+-------------------------------+----------+-----------+
//! | max_xmit_frag | max_recv_frag |        assoc_group_id         | sec_addr | pad to 4  |
//! +---------------+---------------+-------------------------------+----------+-----------+
//! | p_result_list ...
//! +--------------------
//! sec_addr (port_any_t): length u16 (the NUL included) | port_spec [length] chars
//! ```
//!
//! [C706 §12.6.4.4]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm
//! [MS-RPCE §2.2.2.4]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

use core::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{PutDrep, Reader, len_u16, pad_len};
use crate::drep::DataRep;
use crate::error::{DecodeError, EncodeError};
use crate::header::CommonHeader;
use crate::pdu::context::{self, ContextResult};

/// A bind_ack: the server accepts the association and answers each proposed context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindAck {
    /// `max_xmit_frag`: largest fragment the server will send.
    pub max_xmit_frag: u16,
    /// `max_recv_frag`: largest fragment the server will receive.
    pub max_recv_frag: u16,
    /// `assoc_group_id`: the association group the connection joined.
    pub assoc_group_id: u32,
    /// `sec_addr`: the secondary address (the server's port), as sent.
    pub sec_addr: PortAny,
    /// `p_result_list`: one result per proposed context, in order.
    pub p_result_list: Vec<ContextResult>,
}

impl BindAck {
    /// Exact number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        bind_ack_like_len(&self.sec_addr, &self.p_result_list)
    }

    /// Appends the body.
    ///
    /// # Errors
    /// [`EncodeError::TooLong`] for a secondary address over 65535 bytes or more than 255
    /// results.
    pub fn encode(&self, drep: DataRep, dst: &mut BytesMut) -> Result<(), EncodeError> {
        encode_bind_ack_like(
            drep,
            dst,
            (self.max_xmit_frag, self.max_recv_frag, self.assoc_group_id),
            &self.sec_addr,
            &self.p_result_list,
        )
    }

    pub(crate) fn decode(reader: &mut Reader) -> Result<Self, DecodeError> {
        let (max_xmit_frag, max_recv_frag, assoc_group_id, sec_addr, p_result_list) =
            decode_bind_ack_like(reader)?;
        Ok(Self {
            max_xmit_frag,
            max_recv_frag,
            assoc_group_id,
            sec_addr,
            p_result_list,
        })
    }
}

/// `port_any_t`: a secondary address as the server sent it, its terminating NUL included.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct PortAny(pub Bytes);

impl PortAny {
    /// The address for a port or pipe name: `text` followed by a NUL.
    pub fn new(text: &str) -> Self {
        let mut bytes = BytesMut::with_capacity(text.len() + 1);
        bytes.put_slice(text.as_bytes());
        bytes.put_u8(0);
        Self(bytes.freeze())
    }

    /// The empty address (length 0), as alter_context_resp usually carries.
    pub const fn empty() -> Self {
        Self(Bytes::new())
    }

    /// The address without its terminating NUL, if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        let text = self.0.strip_suffix(&[0]).unwrap_or(&self.0);
        core::str::from_utf8(text).ok()
    }
}

impl fmt::Debug for PortAny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(text) => write!(f, "PortAny({text:?})"),
            None => write!(f, "PortAny({:02x?})", &self.0[..]),
        }
    }
}

/// Fixed part: 2 /* max_xmit_frag */ + 2 /* max_recv_frag */ + 4 /* assoc_group_id */.
const FIXED_LEN: usize = 2 + 2 + 4;
/// Frame offset of `sec_addr`.
const SEC_ADDR_OFFSET: usize = CommonHeader::LEN + FIXED_LEN;

pub(crate) fn bind_ack_like_len(sec_addr: &PortAny, results: &[ContextResult]) -> usize {
    let end_of_addr = SEC_ADDR_OFFSET + 2 /* length */ + sec_addr.0.len();
    FIXED_LEN
        + 2 /* length */
        + sec_addr.0.len()
        + pad_len(end_of_addr, 4)
        + context::results_len(results)
}

pub(crate) fn encode_bind_ack_like(
    drep: DataRep,
    dst: &mut BytesMut,
    (max_xmit_frag, max_recv_frag, assoc_group_id): (u16, u16, u32),
    sec_addr: &PortAny,
    results: &[ContextResult],
) -> Result<(), EncodeError> {
    dst.put_u16_drep(drep, max_xmit_frag);
    dst.put_u16_drep(drep, max_recv_frag);
    dst.put_u32_drep(drep, assoc_group_id);
    dst.put_u16_drep(drep, len_u16("port_any_t", "length", sec_addr.0.len())?);
    dst.put_slice(&sec_addr.0);
    let end_of_addr = SEC_ADDR_OFFSET + 2 + sec_addr.0.len();
    dst.put_bytes(0, pad_len(end_of_addr, 4));
    context::encode_results(results, drep, dst)
}

type BindAckFields = (u16, u16, u32, PortAny, Vec<ContextResult>);

pub(crate) fn decode_bind_ack_like(reader: &mut Reader) -> Result<BindAckFields, DecodeError> {
    let max_xmit_frag = reader.u16()?;
    let max_recv_frag = reader.u16()?;
    let assoc_group_id = reader.u32()?;
    let length = usize::from(reader.u16()?);
    let sec_addr = PortAny(reader.take(length)?);
    // "pad: align(4)" after the secondary address, counted from the start of the PDU.
    reader.align(4)?;
    let results = context::decode_results(reader)?;
    Ok((
        max_xmit_frag,
        max_recv_frag,
        assoc_group_id,
        sec_addr,
        results,
    ))
}
