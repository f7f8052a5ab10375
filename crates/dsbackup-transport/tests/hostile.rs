//! Hostile peers and men in the middle: typed errors, no hang, and nothing left open.

#![cfg(test)]

pub mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use dsbackup_proto::{AuthLevel, DataRep, FaultStatus, ProtocolError, RejectReason};
use dsbackup_transport::{Binding, Registry, RpcInterface, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn test_server(level: AuthLevel) -> (Arc<TestInterface>, dsbackup_transport::RunningServer) {
    let interface = TestInterface::new(level);
    let server = start(
        &[interface.clone() as Arc<dyn RpcInterface>],
        server_options(5840),
    )
    .await;
    (interface, server)
}

fn privacy() -> dsbackup_transport::ClientOptions {
    client_options(AuthLevel::PKT_PRIVACY, 5840, DataRep::LITTLE_ENDIAN)
}

/// Flips one stub byte of the first frame of `kind` going `dir`.
fn flip_first(dir: Dir, kind: u8) -> Mangle {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    Arc::new(move |d, _, frame| {
        if d == dir && ptype(&frame) == kind && !done.swap(true, Ordering::SeqCst) {
            let mut bytes = BytesMut::from(&frame[..]);
            bytes[26] ^= 0x01;
            return Action::Forward(vec![bytes.freeze()]);
        }
        Action::Forward(vec![frame])
    })
}

#[tokio::test]
async fn a_tampered_request_is_refused_by_the_server() {
    for level in [AuthLevel::PKT_INTEGRITY, AuthLevel::PKT_PRIVACY] {
        let (interface, server) = test_server(AuthLevel::NONE).await;
        let proxy = proxy(server.local_addr(), flip_first(Dir::ToServer, REQUEST)).await;
        let registry = Registry::new(client_options(level, 5840, DataRep::LITTLE_ENDIAN));
        let binding = registry.open_addr(proxy.addr, &[syntax(1)]).await.unwrap();
        // A signature that does not verify: nca_s_fault_sec_pkg_error, as Samba answers.
        match binding.call(op::ECHO, pattern(100, 1)).await {
            Err(TransportError::Fault {
                status: FaultStatus::SEC_PKG_ERROR,
                ..
            }) => {}
            other => panic!("{level:?}: expected a security package error, got {other:?}"),
        }
        assert_eq!(interface.echoes.load(Ordering::SeqCst), 0);
        // The server closed the association: later calls fail, typed.
        assert!(binding.call(op::ECHO, pattern(1, 1)).await.is_err());
        drop(binding);
        registry.close().await;
        assert!(
            settle(|| registry.snapshot().is_idle()).await,
            "{:?}",
            registry.snapshot()
        );
        server.shutdown().await;
        assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
        proxy.task.abort();
    }
}

#[tokio::test]
async fn a_tampered_response_is_refused_by_the_client() {
    for level in [AuthLevel::PKT_INTEGRITY, AuthLevel::PKT_PRIVACY] {
        let (_, server) = test_server(AuthLevel::NONE).await;
        let proxy = proxy(server.local_addr(), flip_first(Dir::ToClient, RESPONSE)).await;
        let registry = Registry::new(client_options(level, 5840, DataRep::LITTLE_ENDIAN));
        let binding = registry.open_addr(proxy.addr, &[syntax(1)]).await.unwrap();
        match binding.call(op::ECHO, pattern(100, 1)).await {
            Err(TransportError::Protocol(ProtocolError::Security(_))) => {}
            other => panic!("{level:?}: expected a bad signature, got {other:?}"),
        }
        assert!(binding.association().is_closed());
        drop(binding);
        registry.close().await;
        assert!(registry.snapshot().is_idle(), "{:?}", registry.snapshot());
        server.shutdown().await;
        assert!(server.snapshot().is_idle());
        proxy.task.abort();
    }
}

#[tokio::test]
async fn a_replayed_request_is_not_executed_twice() {
    let (interface, server) = test_server(AuthLevel::NONE).await;
    let replayed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mangle: Mangle = Arc::new(move |dir, _, frame| {
        if dir == Dir::ToServer
            && ptype(&frame) == REQUEST
            && !replayed.swap(true, Ordering::SeqCst)
        {
            return Action::Forward(vec![frame.clone(), frame]);
        }
        Action::Forward(vec![frame])
    });
    let proxy = proxy(server.local_addr(), mangle).await;
    let registry = Registry::new(privacy());
    let binding = registry.open_addr(proxy.addr, &[syntax(1)]).await.unwrap();
    let first = binding.call(op::ECHO, pattern(100, 1)).await;
    assert!(
        matches!(
            first,
            Ok(_)
                | Err(TransportError::Fault {
                    status: FaultStatus::SEC_PKG_ERROR,
                    ..
                })
        ),
        "{first:?}"
    );
    // The replay failed the association (its sequence number is spent).
    assert!(binding.call(op::ECHO, pattern(1, 1)).await.is_err());
    assert_eq!(interface.echoes.load(Ordering::SeqCst), 1);
    drop(binding);
    registry.close().await;
    server.shutdown().await;
    assert!(registry.snapshot().is_idle() && server.snapshot().is_idle());
    proxy.task.abort();
}

#[tokio::test]
async fn a_downgraded_bind_is_refused() {
    let (interface, server) = test_server(AuthLevel::NONE).await;
    // A man in the middle rewrites the bind's auth_level from privacy to connect.
    let mangle: Mangle = Arc::new(|dir, _, frame| {
        if dir == Dir::ToServer && ptype(&frame) == BIND {
            let mut bytes = BytesMut::from(&frame[..]);
            let auth_len = usize::from(u16::from_le_bytes([bytes[10], bytes[11]]));
            let trailer = bytes.len() - auth_len - 8;
            assert_eq!(bytes[trailer + 1], AuthLevel::PKT_PRIVACY.0);
            bytes[trailer + 1] = AuthLevel::CONNECT.0;
            return Action::Forward(vec![bytes.freeze()]);
        }
        Action::Forward(vec![frame])
    });
    let proxy = proxy(server.local_addr(), mangle).await;
    let registry = Registry::new(privacy());
    let result = match registry.open_addr(proxy.addr, &[syntax(1)]).await {
        Ok(binding) => binding.call(op::WHOAMI, Bytes::new()).await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(
        matches!(
            result,
            Err(TransportError::Protocol(_) | TransportError::Fault { .. })
        ),
        "{result:?}"
    );
    assert_eq!(interface.echoes.load(Ordering::SeqCst), 0);
    registry.close().await;
    server.shutdown().await;
    assert!(registry.snapshot().is_idle() && server.snapshot().is_idle());
    proxy.task.abort();
}

/// A fake server that reads the bind and then does `then`.
async fn fake_server(
    then: &'static [u8],
    close: bool,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await;
        stream.write_all(then).await.unwrap();
        if close {
            stream.shutdown().await.unwrap();
        } else {
            // Stall: keep the connection open, answer nothing.
            let _ = stream.read(&mut buf).await;
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_peer_closing_mid_fragment_sending_garbage_or_stalling_gets_typed_errors() {
    // The first 20 bytes of a 68-byte bind_ack.
    const HALF: &[u8] = &[
        0x05, 0x00, 0x0c, 0x03, 0x10, 0x00, 0x00, 0x00, 0x44, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
        0x00, 0xb8, 0x10, 0xb8, 0x10,
    ];
    let mut options = privacy();
    options.connect_timeout = Duration::from_millis(300);
    let registry = Registry::new(options);

    let (addr, task) = fake_server(HALF, true).await;
    let error = registry.open_addr(addr, &[syntax(1)]).await.unwrap_err();
    assert!(matches!(error, TransportError::Io(_)), "{error:?}");
    task.await.unwrap();

    let (addr, task) = fake_server(b"HTTP/1.1 400 Bad Request\r\n\r\n", true).await;
    let error = registry.open_addr(addr, &[syntax(1)]).await.unwrap_err();
    assert!(
        matches!(error, TransportError::Protocol(ProtocolError::Malformed(_))),
        "{error:?}"
    );
    task.await.unwrap();

    let (addr, task) = fake_server(b"", false).await;
    let error = registry.open_addr(addr, &[syntax(1)]).await.unwrap_err();
    assert!(matches!(error, TransportError::TimedOut), "{error:?}");
    task.abort();

    assert!(registry.snapshot().is_idle(), "{:?}", registry.snapshot());
}

#[tokio::test]
async fn a_server_closing_mid_response_fails_the_calls_in_flight() {
    let (_, server) = test_server(AuthLevel::NONE).await;
    let mangle: Mangle = Arc::new(|dir, _, frame| {
        if dir == Dir::ToClient && ptype(&frame) == RESPONSE {
            return Action::Close(frame.slice(..frame.len() / 2));
        }
        Action::Forward(vec![frame])
    });
    let proxy = proxy(server.local_addr(), mangle).await;
    let registry = Registry::new(privacy());
    let binding = Arc::new(registry.open_addr(proxy.addr, &[syntax(1)]).await.unwrap());
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let binding = Arc::clone(&binding);
            tokio::spawn(async move { binding.call(op::ECHO, pattern(64, i)).await })
        })
        .collect();
    for call in calls {
        let result = call.await.unwrap();
        assert!(
            matches!(result, Err(TransportError::Io(_) | TransportError::Closed)),
            "{result:?}"
        );
    }
    drop(binding);
    registry.close().await;
    assert!(registry.snapshot().is_idle(), "{:?}", registry.snapshot());
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
    proxy.task.abort();
}

#[tokio::test]
async fn the_server_drops_garbage_half_fragments_and_idle_clients() {
    let interface = TestInterface::new(AuthLevel::NONE);
    let mut options = server_options(5840);
    options.idle_timeout = Duration::from_millis(200);
    options.idle_without_handle = Duration::from_millis(200);
    let server = start(&[interface as Arc<dyn RpcInterface>], options).await;
    for bytes in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0x05, 0x00, 0x0b, 0x03, 0x10, 0, 0, 0, 0x48, 0][..],
    ] {
        let mut stream = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .unwrap();
        stream.write_all(bytes).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut rest = Vec::new();
        // The server closes its side: the read ends.
        let _ = stream.read_to_end(&mut rest).await;
    }
    // An idle (bound, silent) client is closed by the server.
    let binding = Binding::connect(server.local_addr(), &[syntax(1)], &privacy())
        .await
        .unwrap();
    assert!(settle(|| binding.association().is_closed()).await);
    assert!(binding.call(op::ECHO, Bytes::new()).await.is_err());
    drop(binding);
    assert!(settle(|| server.snapshot().associations == 0).await);
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

#[tokio::test]
async fn connections_past_the_limit_get_a_bind_nak() {
    let interface = TestInterface::new(AuthLevel::NONE);
    let mut options = server_options(5840);
    options.max_associations = 1;
    let server = start(&[interface as Arc<dyn RpcInterface>], options).await;
    let client = client_options(AuthLevel::NONE, 5840, DataRep::LITTLE_ENDIAN);
    // Authenticated (its handshake done once a call is answered): never evicted.
    let first = Binding::connect(server.local_addr(), &[syntax(1)], &privacy())
        .await
        .unwrap();
    call_bytes(&first, op::ECHO, Bytes::new()).await;
    let error = Binding::connect(server.local_addr(), &[syntax(1)], &client)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::BindRejected(RejectReason::LOCAL_LIMIT_EXCEEDED)
        ),
        "{error:?}"
    );
    first.close().await;
    server.shutdown().await;
    assert!(server.snapshot().is_idle());
}

#[tokio::test]
async fn an_alter_context_that_changes_the_auth_level_is_refused() {
    use dsbackup_proto::{AuthType, AuthVerifier, Pdu};

    const ALTER_CONTEXT: u8 = 14;
    let (_, server) = test_server(AuthLevel::NONE).await;
    // A man in the middle adds a verifier at connect level to the client's alter_context.
    let mangle: Mangle = Arc::new(|dir, _, frame| {
        if dir == Dir::ToServer && ptype(&frame) == ALTER_CONTEXT {
            let mut pdu = Pdu::decode(frame).unwrap();
            pdu.auth_verifier = Some(AuthVerifier::new(
                AuthType::WINNT,
                AuthLevel::CONNECT,
                0,
                Bytes::from_static(&[0; 16]),
            ));
            pdu.align_auth_pad();
            return Action::Forward(vec![pdu.to_bytes().unwrap()]);
        }
        Action::Forward(vec![frame])
    });
    let proxy = proxy(server.local_addr(), mangle).await;
    let registry = Registry::new(privacy());
    let binding = registry.open_addr(proxy.addr, &[syntax(1)]).await.unwrap();
    assert_eq!(
        call_bytes(&binding, op::ECHO, pattern(8, 1)).await,
        pattern(8, 1)
    );
    let error = binding
        .association()
        .bind_interface(&[dsbackup_transport::mgmt_syntax()])
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::Fault {
                status: FaultStatus::ACCESS_DENIED,
                did_not_execute: true
            }
        ),
        "{error:?}"
    );
    assert!(binding.call(op::ECHO, Bytes::new()).await.is_err());
    drop(binding);
    registry.close().await;
    server.shutdown().await;
    assert!(registry.snapshot().is_idle() && server.snapshot().is_idle());
    proxy.task.abort();
}

#[tokio::test]
async fn server_bounds_calls_in_flight_and_request_stubs() {
    let interface = TestInterface::new(AuthLevel::NONE);
    let mut options = server_options(5840);
    options.limits.max_calls_in_flight = 2;
    options.limits.max_stub_len = 4096;
    let server = start(&[interface.clone() as Arc<dyn RpcInterface>], options).await;
    let binding = Arc::new(
        Binding::connect(server.local_addr(), &[syntax(1)], &privacy())
            .await
            .unwrap(),
    );
    let gated: Vec<_> = (0..2)
        .map(|i| {
            let binding = Arc::clone(&binding);
            tokio::spawn(async move { binding.call(op::GATED, pattern(4, i)).await })
        })
        .collect();
    assert!(settle(|| interface.gated.load(Ordering::SeqCst) == 2).await);
    match binding.call(op::ECHO, pattern(4, 9)).await {
        Err(TransportError::Fault {
            status: FaultStatus::SERVER_TOO_BUSY,
            did_not_execute: true,
        }) => {}
        other => panic!("expected server too busy, got {other:?}"),
    }
    interface.gate.0.add_permits(2);
    for (i, call) in gated.into_iter().enumerate() {
        let i = u32::try_from(i).unwrap();
        assert_eq!(call.await.unwrap().unwrap().stub.to_bytes(), pattern(4, i));
    }
    // A request stub past the server's budget fails the association (as Samba does).
    match binding.call(op::ECHO, pattern(8000, 1)).await {
        Err(TransportError::Fault {
            status: FaultStatus::ACCESS_DENIED,
            ..
        }) => {}
        other => panic!("expected access denied, got {other:?}"),
    }
    assert_eq!(interface.echoes.load(Ordering::SeqCst), 0);
    Arc::into_inner(binding).unwrap().close().await;
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

#[tokio::test]
async fn a_caller_that_gives_up_sends_a_co_cancel() {
    const CO_CANCEL: u8 = 18;
    let (interface, server) = test_server(AuthLevel::NONE).await;
    let proxy = proxy(server.local_addr(), forward_all()).await;
    let binding = Binding::connect(proxy.addr, &[syntax(1)], &privacy())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
    assert!(matches!(
        binding.call_until(op::STALL, Bytes::new(), deadline).await,
        Err(TransportError::TimedOut)
    ));
    // The co_cancel goes out before the next call's request.
    assert_eq!(
        call_bytes(&binding, op::ECHO, pattern(9, 9)).await,
        pattern(9, 9)
    );
    let log = proxy.log.lock().unwrap().clone();
    let sent: Vec<u8> = log
        .iter()
        .filter(|(dir, _)| *dir == Dir::ToServer)
        .map(|(_, frame)| ptype(frame))
        .collect();
    // bind, auth3, the stalled request, its co_cancel, the echo.
    assert_eq!(sent, [BIND, 16, REQUEST, CO_CANCEL, REQUEST]);
    assert_eq!(interface.stalled.load(Ordering::SeqCst), 1);
    binding.close().await;
    server.shutdown().await;
    proxy.task.abort();
}
