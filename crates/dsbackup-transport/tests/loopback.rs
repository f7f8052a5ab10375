//! Our client against our server on 127.0.0.1.

#![cfg(test)]

pub mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use dsbackup_proto::{AuthLevel, DataRep, FaultStatus};
use dsbackup_transport::{Binding, RpcInterface, TransportError};
use tokio::time::Instant;

/// Every auth level x fragment size x byte order, 64 calls in flight at once each, stubs of
/// 0 to 3 fragments; the server sees who called and at which level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_of_levels_fragment_sizes_and_byte_orders() {
    let interface = TestInterface::new(AuthLevel::NONE);
    for frag in [1432u16, 4280, 65535] {
        let server = start(
            &[interface.clone() as Arc<dyn RpcInterface>],
            server_options(frag),
        )
        .await;
        for level in [
            AuthLevel::NONE,
            AuthLevel::CONNECT,
            AuthLevel::PKT_INTEGRITY,
            AuthLevel::PKT_PRIVACY,
        ] {
            for drep in [DataRep::LITTLE_ENDIAN, DataRep::BIG_ENDIAN] {
                let options = client_options(level, frag, drep);
                let binding = Arc::new(
                    Binding::connect(server.local_addr(), &[syntax(1)], &options)
                        .await
                        .unwrap(),
                );
                // Negotiated as Windows and Samba do: rounded down to a multiple of 8.
                assert_eq!(binding.association().max_xmit_frag(), frag & !7);
                assert_ne!(binding.association().assoc_group_id(), 0);
                let calls = (0..64u32).map(|i| {
                    let binding = Arc::clone(&binding);
                    tokio::spawn(async move {
                        let len = (i as usize * 977) % (3 * usize::from(frag));
                        let stub = pattern(len, i);
                        let reply = binding.call(op::ECHO, stub.clone()).await.unwrap();
                        assert_eq!(reply.stub.to_bytes(), stub, "call {i}");
                    })
                });
                for call in calls.collect::<Vec<_>>() {
                    call.await.unwrap();
                }
                let who = call_bytes(&binding, op::WHOAMI, Bytes::new()).await;
                let (name, got_level) = who.split_at(who.len() - 1);
                if level == AuthLevel::NONE {
                    assert_eq!(name, b"anonymous");
                    assert_eq!(got_level, [AuthLevel::NONE.0]);
                } else {
                    assert_eq!(name, format!("{USER}\\{DOMAIN}").as_bytes());
                    assert_eq!(got_level, [level.0]);
                }
                let metrics = binding.association().metrics().clone();
                Arc::into_inner(binding).unwrap().close().await;
                assert!(metrics.snapshot().is_idle(), "{:?}", metrics.snapshot());
            }
        }
        server.shutdown().await;
        assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
    }
}

#[tokio::test]
async fn faults_are_typed_and_leave_the_association_usable() {
    let interface = TestInterface::new(AuthLevel::PKT_INTEGRITY);
    let server = start(&[interface as Arc<dyn RpcInterface>], server_options(5840)).await;
    let options = client_options(AuthLevel::PKT_PRIVACY, 5840, DataRep::LITTLE_ENDIAN);
    let binding = Binding::connect(server.local_addr(), &[syntax(1)], &options)
        .await
        .unwrap();
    let fault = |result: Result<_, TransportError>| match result {
        Err(TransportError::Fault { status, .. }) => status,
        other => panic!("expected a fault, got {other:?}"),
    };
    assert_eq!(
        fault(binding.call(op::BAD_STUB, Bytes::new()).await),
        FaultStatus::BAD_STUB_DATA
    );
    assert_eq!(
        fault(binding.call(op::COUNT, Bytes::new()).await),
        FaultStatus::OP_RNG_ERROR
    );
    assert_eq!(
        fault(binding.call(op::DENY, Bytes::new()).await),
        FaultStatus::ACCESS_DENIED
    );
    // A handle this association never had.
    let stranger = dsbackup_proto::ndr::ContextHandle {
        attributes: 0,
        uuid: dsbackup_proto::Uuid([9; 16]),
    };
    assert_eq!(
        fault(
            binding
                .call(op::APPEND, handle_stub(binding.drep(), stranger, Some(1)))
                .await
        ),
        FaultStatus::FAULT_CONTEXT_MISMATCH
    );
    let reply = binding.call(op::ECHO, pattern(10, 1)).await.unwrap();
    assert_eq!(reply.stub.to_bytes(), pattern(10, 1));
    binding.close().await;

    // Below the interface's minimum level: access denied, did not execute.
    let options = client_options(AuthLevel::CONNECT, 5840, DataRep::LITTLE_ENDIAN);
    let binding = Binding::connect(server.local_addr(), &[syntax(1)], &options)
        .await
        .unwrap();
    match binding.call(op::ECHO, Bytes::new()).await {
        Err(TransportError::Fault {
            status: FaultStatus::ACCESS_DENIED,
            did_not_execute: true,
        }) => {}
        other => panic!("expected access denied, got {other:?}"),
    }
    binding.close().await;
    server.shutdown().await;
    assert!(server.snapshot().is_idle());
}

/// The caller's mistake is the caller's: a call on a presentation context that was never
/// negotiated is `Misuse` (not a protocol error of the peer's), nothing goes out, and the
/// association keeps working.
#[tokio::test]
async fn a_call_on_an_unknown_context_is_misuse_and_leaves_the_association_usable() {
    let interface = TestInterface::new(AuthLevel::NONE);
    let server = start(&[interface as Arc<dyn RpcInterface>], server_options(5840)).await;
    let options = client_options(AuthLevel::PKT_INTEGRITY, 5840, DataRep::LITTLE_ENDIAN);
    let binding = Binding::connect(server.local_addr(), &[syntax(1)], &options)
        .await
        .unwrap();
    let unknown = binding.p_cont_id().wrapping_add(7);
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = binding
        .association()
        .call(unknown, op::ECHO, Bytes::new(), deadline)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            TransportError::Misuse(dsbackup_proto::ApiMisuse::UnknownContext { p_cont_id })
                if *p_cont_id == unknown
        ),
        "{error:?}"
    );
    assert!(error.is_misuse() && !error.is_peer_fault(), "{error:?}");
    let reply = binding.call(op::ECHO, pattern(10, 2)).await.unwrap();
    assert_eq!(reply.stub.to_bytes(), pattern(10, 2));
    binding.close().await;
    server.shutdown().await;
    assert!(server.snapshot().is_idle());
}

#[tokio::test]
async fn deadline_cancels_the_call_without_disturbing_the_others() {
    let interface = TestInterface::new(AuthLevel::NONE);
    let server = start(
        &[interface.clone() as Arc<dyn RpcInterface>],
        server_options(5840),
    )
    .await;
    let options = client_options(AuthLevel::PKT_PRIVACY, 5840, DataRep::LITTLE_ENDIAN);
    let binding = Arc::new(
        Binding::connect(server.local_addr(), &[syntax(1)], &options)
            .await
            .unwrap(),
    );
    let stalled = {
        let binding = Arc::clone(&binding);
        tokio::spawn(async move {
            binding
                .call_until(
                    op::STALL,
                    Bytes::new(),
                    Instant::now() + Duration::from_millis(200),
                )
                .await
        })
    };
    // A caller that gives up by dropping its future.
    let dropped = {
        let binding = Arc::clone(&binding);
        tokio::spawn(async move { binding.call(op::STALL, Bytes::new()).await })
    };
    let echo = binding.call(op::ECHO, pattern(3000, 7)).await.unwrap();
    assert_eq!(echo.stub.to_bytes(), pattern(3000, 7));
    assert!(matches!(
        stalled.await.unwrap(),
        Err(TransportError::TimedOut)
    ));
    assert!(settle(|| interface.stalled.load(Ordering::SeqCst) == 2).await);
    dropped.abort();
    assert!(dropped.await.unwrap_err().is_cancelled());
    // Both cancelled calls released their slots once the server... never answers: the
    // association still serves new calls.
    let echo = binding.call(op::ECHO, pattern(10, 8)).await.unwrap();
    assert_eq!(echo.stub.to_bytes(), pattern(10, 8));
    assert_eq!(binding.association().metrics().snapshot().calls, 2);
    Arc::into_inner(binding).unwrap().close().await;
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

/// A backup read's worth (16 MiB) in one response, at packet privacy, in 5840-byte fragments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixteen_mebibyte_response_at_privacy() {
    let interface = TestInterface::new(AuthLevel::PKT_PRIVACY);
    let server = start(&[interface as Arc<dyn RpcInterface>], server_options(5840)).await;
    let options = client_options(AuthLevel::PKT_PRIVACY, 5840, DataRep::LITTLE_ENDIAN);
    let binding = Binding::connect(server.local_addr(), &[syntax(1)], &options)
        .await
        .unwrap();
    let len: u32 = 16 << 20;
    let started = std::time::Instant::now();
    let reply = binding
        .call(op::READ, Bytes::copy_from_slice(&len.to_le_bytes()))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(reply.stub.to_bytes(), pattern(16 << 20, len));
    println!("16 MiB at privacy: {elapsed:?}");
    binding.close().await;
    server.shutdown().await;
    assert!(server.snapshot().is_idle());
}
