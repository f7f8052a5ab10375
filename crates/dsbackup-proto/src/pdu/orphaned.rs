//! [C706 §12.6.4.8] orphaned: a PDU with no body (an auth verifier may follow the header).
//!
//! [C706 §12.6.4.8]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm

/// An orphaned: the client abandons the call of the same call_id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Orphaned;
