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

use crate::pdu::context::PresentationContext;

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

bind_layout! {Bind}

/// The body codec of a bind, which alter_context shares: `encoded_len`, `encode` and `decode`
/// for a struct `$pdu` with the fields of [`Bind`].
macro_rules! bind_layout {
    ($pdu:ident) => {
        impl $pdu {
            /// Fixed part: 2 /* max_xmit_frag */ + 2 /* max_recv_frag */ + 4 /* assoc_group_id */.
            pub(crate) const FIXED_LEN: usize = 2 + 2 + 4;

            /// Exact number of bytes [`encode`](Self::encode) appends.
            pub fn encoded_len(&self) -> usize {
                Self::FIXED_LEN + $crate::pdu::context::contexts_len(&self.p_context_elem)
            }

            /// Appends the body.
            ///
            /// # Errors
            /// [`EncodeError::TooLong`](crate::error::EncodeError::TooLong) for more than 255
            /// contexts or transfer syntaxes.
            pub fn encode(
                &self,
                drep: $crate::drep::DataRep,
                dst: &mut bytes::BytesMut,
            ) -> Result<(), $crate::error::EncodeError> {
                use $crate::codec::PutDrep as _;
                dst.put_u16_drep(drep, self.max_xmit_frag);
                dst.put_u16_drep(drep, self.max_recv_frag);
                dst.put_u32_drep(drep, self.assoc_group_id);
                $crate::pdu::context::encode_contexts(&self.p_context_elem, drep, dst)
            }

            pub(crate) fn decode(
                reader: &mut $crate::codec::Reader,
                limits: &$crate::pdu::DecodeLimits,
            ) -> Result<Self, $crate::error::DecodeError> {
                let max_xmit_frag = reader.u16()?;
                let max_recv_frag = reader.u16()?;
                let assoc_group_id = reader.u32()?;
                let p_context_elem = $crate::pdu::context::decode_contexts(reader, limits)?;
                Ok(Self {
                    max_xmit_frag,
                    max_recv_frag,
                    assoc_group_id,
                    p_context_elem,
                })
            }
        }
    };
}
pub(crate) use bind_layout;
