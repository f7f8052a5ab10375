//! [C706 §12.6.4.11] shutdown: a PDU with no body (an auth verifier may follow the header).
//!
//! [C706 §12.6.4.11]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm

/// A shutdown: the server asks the client to end the association.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shutdown;
