//! A copy of every PDU a connection sends and receives, in the order they went, for a capture
//! file (the command line's `--capture`). Off unless a [`Tap`] is set in the options.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// The two ends of a tapped TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TapEnds {
    /// The client's address (the side that connected).
    pub client: SocketAddr,
    /// The server's address.
    pub server: SocketAddr,
}

/// What happened on a tapped connection.
#[derive(Clone, Copy, Debug)]
pub enum TapEvent<'a> {
    /// The connection was established.
    Opened,
    /// Whole PDUs the client sent, as they went on the wire.
    FromClient(&'a [u8]),
    /// Whole PDUs the server sent, as they went on the wire.
    FromServer(&'a [u8]),
    /// The connection ended.
    Closed,
}

type TapFn = dyn Fn(TapEnds, TapEvent<'_>) + Send + Sync;

/// Where a connection's bytes are copied to: called on the connection's task, so it must be
/// quick (append to a buffer or a file).
#[derive(Clone)]
pub struct Tap(Arc<TapFn>);

impl Tap {
    /// A tap calling `f` with every event of every connection it is set on.
    pub fn new(f: impl Fn(TapEnds, TapEvent<'_>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    pub(crate) fn emit(&self, ends: TapEnds, event: TapEvent<'_>) {
        (self.0)(ends, event);
    }
}

impl fmt::Debug for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tap")
    }
}

/// A tap bound to one connection, from one side's point of view; reports the connection closed
/// when dropped (one owner per connection, hence no `Clone`).
#[derive(Debug)]
pub(crate) struct Tapped {
    tap: Tap,
    ends: TapEnds,
    /// Whether this side is the client.
    client_side: bool,
}

impl Tapped {
    /// Binds `tap` to a connection and reports it opened.
    pub(crate) fn open(tap: Tap, ends: TapEnds, client_side: bool) -> Self {
        tap.emit(ends, TapEvent::Opened);
        Self {
            tap,
            ends,
            client_side,
        }
    }

    /// Bytes this side sent.
    pub(crate) fn sent(&self, bytes: &[u8]) {
        let event = if self.client_side {
            TapEvent::FromClient(bytes)
        } else {
            TapEvent::FromServer(bytes)
        };
        self.tap.emit(self.ends, event);
    }

    /// Bytes this side received.
    pub(crate) fn received(&self, bytes: &[u8]) {
        let event = if self.client_side {
            TapEvent::FromServer(bytes)
        } else {
            TapEvent::FromClient(bytes)
        };
        self.tap.emit(self.ends, event);
    }
}

impl Drop for Tapped {
    fn drop(&mut self) {
        self.tap.emit(self.ends, TapEvent::Closed);
    }
}
