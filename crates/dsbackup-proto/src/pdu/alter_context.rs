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

use crate::pdu::context::PresentationContext;

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

super::bind::bind_layout! {AlterContext}
