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

use crate::pdu::bind_ack::PortAny;
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

super::bind_ack::bind_ack_layout! {AlterContextResp}
