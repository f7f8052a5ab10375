//! Connection hooks: a way for a test server (a mock, a fuzzing harness) to misbehave on the
//! wire: refuse binds, close a connection after some calls or bytes, alter outgoing frames.
//!
//! ```text
//!  accept ──► ConnectionHook::connection(remote) ──► one ConnectionTap per connection
//!  bind (first frame)      ─► tap.accept_bind()      false: bind_nak, close
//!  every frame going out   ─► tap.outgoing(&mut f)   after signing/sealing; Close: write f, close
//!  every call answered     ─► tap.on_call()          Close: close once the answer is written
//! ```
//!
//! Frames are handed to [`ConnectionTap::outgoing`] after the security provider signed or
//! sealed them, so a byte changed there is a byte the peer's signature check sees. A frame is
//! a [`Chain`] (header, then a shared slice of the stub): a tap that only looks
//! ([`Chain::get`]) or cuts ([`Chain::truncate`]) copies nothing; one that changes bytes
//! ([`Chain::edit`]) copies that frame. A real server sets no hook
//! ([`ServerOptions::hook`](super::ServerOptions::hook) is `None`).

use std::net::SocketAddr;

use dsbackup_proto::Chain;

/// What the connection does after a tap looked at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Continue,
    /// Close the connection (after writing the frame at hand, as the tap left it: it may have
    /// truncated or emptied it).
    Close,
}

/// Makes a [`ConnectionTap`] for each connection a server accepts (both listeners).
pub trait ConnectionHook: Send + Sync + core::fmt::Debug + 'static {
    /// The tap of a new connection from `remote`.
    fn connection(&self, remote: SocketAddr) -> Box<dyn ConnectionTap>;
}

/// The per-connection side of a [`ConnectionHook`]: sees the connection's bind, answers and
/// outgoing frames, in order. Each method's default lets everything through.
pub trait ConnectionTap: Send + 'static {
    /// Whether to accept the connection's bind; false answers it with a bind_nak
    /// (`reason_not_specified`) and closes the connection.
    fn accept_bind(&mut self) -> bool {
        true
    }

    /// A call of the connection was answered (its response or fault is queued); `Close`
    /// closes the connection once that answer is written.
    fn on_call(&mut self) -> Verdict {
        Verdict::Continue
    }

    /// A frame (any PDU: bind_ack, response, fault...) about to be written, signed or sealed
    /// already; the tap may change, truncate or empty it. `Close` writes what is left of it,
    /// then closes the connection.
    fn outgoing(&mut self, frame: &mut Chain) -> Verdict {
        let _ = frame;
        Verdict::Continue
    }
}
