//! [C706 §12.6.4.6] co_cancel: a PDU with no body (an auth verifier may follow the header).
//!
//! [C706 §12.6.4.6]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm

/// A co_cancel: the client cancels the call of the same call_id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoCancel;
