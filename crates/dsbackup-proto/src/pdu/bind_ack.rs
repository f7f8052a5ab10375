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

use crate::header::CommonHeader;
use crate::ndr::reader::padding;
use crate::pdu::context::ContextResult;

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

bind_ack_layout! {BindAck}

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
pub(crate) const FIXED_LEN: usize = 2 + 2 + 4;
/// Frame offset of `sec_addr`.
const SEC_ADDR_OFFSET: usize = CommonHeader::LEN + FIXED_LEN;

/// Bytes of padding after a `sec_addr` of `len` bytes: up to 4-byte alignment, counted from the
/// start of the PDU.
pub(crate) fn sec_addr_pad(len: usize) -> usize {
    padding(SEC_ADDR_OFFSET + 2 /* length */ + len, 4)
}

/// The body codec of a bind_ack, which alter_context_resp shares: `encoded_len`, `encode` and
/// `decode` for a struct `$pdu` with the fields of [`BindAck`].
macro_rules! bind_ack_layout {
    ($pdu:ident) => {
        impl $pdu {
            /// Exact number of bytes [`encode`](Self::encode) appends.
            pub fn encoded_len(&self) -> usize {
                $crate::pdu::bind_ack::FIXED_LEN
                    + 2 /* length */
                    + self.sec_addr.0.len()
                    + $crate::pdu::bind_ack::sec_addr_pad(self.sec_addr.0.len())
                    + $crate::pdu::context::results_len(&self.p_result_list)
            }

            /// Appends the body.
            ///
            /// # Errors
            /// [`EncodeError::TooLong`](crate::error::EncodeError::TooLong) for a secondary
            /// address over 65535 bytes or more than 255 results.
            pub fn encode(
                &self,
                drep: $crate::drep::DataRep,
                dst: &mut bytes::BytesMut,
            ) -> Result<(), $crate::error::EncodeError> {
                use bytes::BufMut as _;
                use $crate::codec::PutDrep as _;
                let sec_addr = &self.sec_addr.0;
                dst.put_u16_drep(drep, self.max_xmit_frag);
                dst.put_u16_drep(drep, self.max_recv_frag);
                dst.put_u32_drep(drep, self.assoc_group_id);
                let length = $crate::codec::len_u16("port_any_t", "length", sec_addr.len())?;
                dst.put_u16_drep(drep, length);
                dst.put_slice(sec_addr);
                dst.put_bytes(0, $crate::pdu::bind_ack::sec_addr_pad(sec_addr.len()));
                $crate::pdu::context::encode_results(&self.p_result_list, drep, dst)
            }

            pub(crate) fn decode(
                reader: &mut $crate::codec::Reader,
            ) -> Result<Self, $crate::error::DecodeError> {
                let max_xmit_frag = reader.u16()?;
                let max_recv_frag = reader.u16()?;
                let assoc_group_id = reader.u32()?;
                let length = usize::from(reader.u16()?);
                let sec_addr = $crate::pdu::bind_ack::PortAny(reader.take(length)?);
                // "pad: align(4)" after the secondary address, counted from the start of the PDU.
                reader.align(4)?;
                let p_result_list = $crate::pdu::context::decode_results(reader)?;
                Ok(Self {
                    max_xmit_frag,
                    max_recv_frag,
                    assoc_group_id,
                    sec_addr,
                    p_result_list,
                })
            }
        }
    };
}
pub(crate) use bind_ack_layout;
