//! The connection hook: refused binds, connections closed after calls or bytes, frames altered
//! after signing, all seen by the real client as typed errors.

#![cfg(test)]

pub mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use common::*;
use dsbackup_proto::{AuthLevel, Chain, DataRep, RejectReason};
use dsbackup_transport::{Binding, ConnectionHook, ConnectionTap, TransportError, Verdict};

/// What the test hook does to each connection.
#[derive(Debug, Default)]
struct Script {
    refuse_binds: AtomicBool,
    /// Close after this many calls answered (0: never).
    close_after_calls: AtomicUsize,
    /// Flip a byte in the middle of every response PDU.
    corrupt_responses: AtomicBool,
    /// Write only this many bytes of the first response, then close (0: never).
    cut_first_response_at: AtomicUsize,
    connections: AtomicUsize,
}

#[derive(Debug, Default)]
struct Hook(Arc<Script>);

struct Tap {
    script: Arc<Script>,
    calls: usize,
}

impl ConnectionHook for Hook {
    fn connection(&self, _remote: SocketAddr) -> Box<dyn ConnectionTap> {
        self.0.connections.fetch_add(1, Ordering::SeqCst);
        Box::new(Tap {
            script: Arc::clone(&self.0),
            calls: 0,
        })
    }
}

impl ConnectionTap for Tap {
    fn accept_bind(&mut self) -> bool {
        !self.script.refuse_binds.load(Ordering::SeqCst)
    }

    fn on_call(&mut self) -> Verdict {
        self.calls += 1;
        let limit = self.script.close_after_calls.load(Ordering::SeqCst);
        if limit != 0 && self.calls >= limit {
            Verdict::Close
        } else {
            Verdict::Continue
        }
    }

    fn outgoing(&mut self, frame: &mut Chain) -> Verdict {
        const RESPONSE: u8 = 2;
        if frame.get(2) != Some(RESPONSE) {
            return Verdict::Continue;
        }
        if self.script.corrupt_responses.load(Ordering::SeqCst) {
            let middle = 24 + (frame.len() - 24) / 4;
            frame.edit(|bytes| bytes[middle] ^= 0xFF);
        }
        let cut = self.script.cut_first_response_at.load(Ordering::SeqCst);
        if cut != 0 {
            frame.truncate(cut);
            return Verdict::Close;
        }
        Verdict::Continue
    }
}

async fn served(script: &Arc<Script>) -> dsbackup_transport::RunningServer {
    let mut options = server_options(5840);
    options.hook = Some(Arc::new(Hook(Arc::clone(script))));
    start(&[TestInterface::new(AuthLevel::NONE)], options).await
}

async fn connect(
    server: &dsbackup_transport::RunningServer,
    level: AuthLevel,
) -> Result<Binding, TransportError> {
    let options = client_options(level, 5840, DataRep::LITTLE_ENDIAN);
    Binding::connect(server.local_addr(), &[syntax(1)], &options).await
}

#[tokio::test]
async fn a_tap_that_lets_everything_through_changes_nothing() {
    let script = Arc::new(Script::default());
    let server = served(&script).await;
    let binding = connect(&server, AuthLevel::PKT_PRIVACY).await.unwrap();
    let stub = pattern(20_000, 1);
    let reply = binding.call(op::ECHO, stub.clone()).await.unwrap();
    assert_eq!(reply.stub.to_bytes(), stub);
    assert_eq!(script.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_bind_is_a_bind_nak() {
    let script = Arc::new(Script::default());
    script.refuse_binds.store(true, Ordering::SeqCst);
    let server = served(&script).await;
    let error = connect(&server, AuthLevel::NONE).await.unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::BindRejected(RejectReason::REASON_NOT_SPECIFIED)
        ),
        "{error:?}"
    );
    // The next connection, once the script changed, is served.
    script.refuse_binds.store(false, Ordering::SeqCst);
    assert!(connect(&server, AuthLevel::NONE).await.is_ok());
}

#[tokio::test]
async fn a_connection_closes_after_the_calls_the_tap_allows() {
    let script = Arc::new(Script::default());
    script.close_after_calls.store(2, Ordering::SeqCst);
    let server = served(&script).await;
    let binding = connect(&server, AuthLevel::PKT_INTEGRITY).await.unwrap();
    let stub = Bytes::from_static(b"ping");
    assert_eq!(call_bytes(&binding, op::ECHO, stub.clone()).await, stub);
    // The second call is answered, then the connection closes.
    assert_eq!(call_bytes(&binding, op::ECHO, stub.clone()).await, stub);
    let error = binding.call(op::ECHO, stub).await.unwrap_err();
    assert!(
        matches!(error, TransportError::Closed | TransportError::Io(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_response_cut_short_fails_the_call() {
    let script = Arc::new(Script::default());
    script.cut_first_response_at.store(30, Ordering::SeqCst);
    let server = served(&script).await;
    let binding = connect(&server, AuthLevel::NONE).await.unwrap();
    let error = binding.call(op::ECHO, pattern(1000, 2)).await.unwrap_err();
    assert!(
        matches!(error, TransportError::Closed | TransportError::Io(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_byte_changed_after_signing_fails_the_signature_check() {
    for level in [AuthLevel::PKT_INTEGRITY, AuthLevel::PKT_PRIVACY] {
        let script = Arc::new(Script::default());
        let server = served(&script).await;
        let binding = connect(&server, level).await.unwrap();
        script.corrupt_responses.store(true, Ordering::SeqCst);
        let error = binding.call(op::ECHO, pattern(1000, 3)).await.unwrap_err();
        assert!(
            matches!(error, TransportError::Protocol(_)),
            "{level:?}: {error:?}"
        );
    }
}
