//! The server's limits against hostile peers over loopback: silent and trickling sockets,
//! eviction, the per-address cap, peers that never read (one, and several sharing the
//! server's send budget), partial requests held open, calls stalled when their client leaves,
//! anonymous binds to interfaces that ask for authentication, peers whose calls wait on
//! answers they never read. The limits are set small;
//! nothing here asserts a duration.

#![cfg(test)]

pub mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use dsbackup_proto::{
    AuthLevel, DataRep, FaultStatus, PacketType, Pdu, PduBody, PfcFlags, RejectReason, SyntaxId,
};
use dsbackup_proto::{Bind, PresentationContext, Request};
use dsbackup_transport::{Binding, FrameCodec, RpcInterface, ServerOptions, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::Decoder;

fn privacy() -> dsbackup_transport::ClientOptions {
    client_options(AuthLevel::PKT_PRIVACY, 5840, DataRep::LITTLE_ENDIAN)
}

fn bind_frame() -> Bytes {
    Pdu::new(
        1,
        PduBody::Bind(Bind {
            max_xmit_frag: 5840,
            max_recv_frag: 5840,
            assoc_group_id: 0,
            p_context_elem: vec![PresentationContext {
                p_cont_id: 0,
                abstract_syntax: syntax(1),
                transfer_syntaxes: vec![SyntaxId::NDR],
            }],
        }),
    )
    .to_bytes()
    .unwrap()
}

/// One request fragment of `call_id` (opnum echo, context 0).
fn request_fragment(call_id: u32, first: bool, last: bool, stub: Bytes) -> Bytes {
    request_of(op::ECHO, call_id, first, last, stub)
}

/// One request fragment of `call_id`, `opnum` on context 0.
fn request_of(opnum: u16, call_id: u32, first: bool, last: bool, stub: Bytes) -> Bytes {
    let mut pdu = Pdu::new(
        call_id,
        PduBody::Request(Request {
            alloc_hint: 0,
            p_cont_id: 0,
            opnum,
            object: None,
            stub,
        }),
    );
    pdu.pfc_flags = PfcFlags::empty();
    if first {
        pdu.pfc_flags |= PfcFlags::FIRST_FRAG;
    }
    if last {
        pdu.pfc_flags |= PfcFlags::LAST_FRAG;
    }
    pdu.to_bytes().unwrap()
}

/// Reads one whole fragment.
async fn read_frame(stream: &mut TcpStream, buf: &mut BytesMut) -> Option<Pdu> {
    let mut codec = FrameCodec::default();
    loop {
        if let Some(frame) = codec.decode(buf).unwrap() {
            return Some(Pdu::decode(frame).unwrap());
        }
        if stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

/// A raw connection bound anonymously.
async fn bound(addr: SocketAddr) -> (TcpStream, BytesMut) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&bind_frame()).await.unwrap();
    let mut buf = BytesMut::new();
    let ack = read_frame(&mut stream, &mut buf).await.unwrap();
    assert_eq!(ack.body.ptype(), PacketType::BIND_ACK);
    (stream, buf)
}

/// Whether the server closes `stream` (the read ends, cleanly or reset; what came before is
/// dropped); false if it is still open after a generous while (a hang guard, not a timing
/// assertion).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut sink))
        .await
        .is_ok()
}

/// Limits long enough that only eviction can free a slot during a test.
fn patient(options: &mut ServerOptions) {
    options.bind_timeout = Duration::from_secs(300);
    options.handshake_timeout = Duration::from_secs(300);
    options.fragment_timeout = Duration::from_secs(300);
    options.idle_without_handle = Duration::from_secs(300);
}

fn small_limits(options: &mut ServerOptions) {
    options.bind_timeout = Duration::from_millis(150);
    options.handshake_timeout = Duration::from_millis(400);
    options.fragment_timeout = Duration::from_millis(150);
    options.idle_without_handle = Duration::from_millis(400);
}

#[tokio::test]
async fn silent_trickling_and_idle_sockets_do_not_lock_out_a_backup() {
    let interface = TestInterface::new(AuthLevel::NONE);
    let mut options = server_options(5840);
    options.max_associations = 6;
    patient(&mut options);
    let server = start(&[interface as Arc<dyn RpcInterface>], options).await;
    let addr = server.local_addr();
    // Every slot taken: silent sockets, a half header, anonymous bound associations.
    let mut hostile = Vec::new();
    for _ in 0..3 {
        hostile.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut trickling = TcpStream::connect(addr).await.unwrap();
    trickling.write_all(&bind_frame()[..7]).await.unwrap();
    hostile.push(trickling);
    for _ in 0..2 {
        hostile.push(bound(addr).await.0);
    }
    assert!(settle(|| server.snapshot().associations == 6).await);
    // A backup client still gets in, authenticates and calls, as often as it connects.
    for i in 0..3 {
        let binding = Binding::connect(addr, &[syntax(1)], &privacy())
            .await
            .unwrap();
        assert_eq!(
            call_bytes(&binding, op::ECHO, pattern(100, i)).await,
            pattern(100, i)
        );
        binding.close().await;
    }
    assert!(server.snapshot().associations <= 6);
    // The oldest silent socket made room: the server closed it.
    assert!(closed_by_server(&mut hostile[0]).await);
    drop(hostile);
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

#[tokio::test]
async fn authenticated_associations_are_never_evicted_and_each_address_has_a_cap() {
    let interface = TestInterface::new(AuthLevel::NONE);
    let mut options = server_options(5840);
    options.max_associations = 3;
    options.max_associations_per_address = 2;
    patient(&mut options);
    let server = start(&[interface as Arc<dyn RpcInterface>], options).await;
    let addr = server.local_addr();
    let mut legit = Vec::new();
    for i in 0..2 {
        let binding = Binding::connect(addr, &[syntax(1)], &privacy())
            .await
            .unwrap();
        // A call: the handshake is complete on the server's side.
        assert_eq!(
            call_bytes(&binding, op::ECHO, pattern(10, i)).await,
            pattern(10, i)
        );
        legit.push(binding);
    }
    // 127.0.0.1 holds its two: a third from there is refused, authenticated or not.
    let error = Binding::connect(addr, &[syntax(1)], &privacy())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::BindRejected(RejectReason::LOCAL_LIMIT_EXCEEDED)
        ),
        "{error:?}"
    );
    // Another address has room; once the table is full, its silent socket makes room for
    // its next connection, never an authenticated association.
    let other = |port| async move {
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::from(([127, 0, 0, 2], port)))
            .unwrap();
        socket.connect(addr).await.unwrap()
    };
    let mut silent = other(0).await;
    assert!(settle(|| server.snapshot().associations == 3).await);
    let mut newcomer = other(0).await;
    newcomer.write_all(&bind_frame()).await.unwrap();
    let mut buf = BytesMut::new();
    let ack = read_frame(&mut newcomer, &mut buf).await.unwrap();
    assert_eq!(ack.body.ptype(), PacketType::BIND_ACK);
    assert!(closed_by_server(&mut silent).await);
    for (i, binding) in (0..).zip(&legit) {
        assert_eq!(
            call_bytes(binding, op::ECHO, pattern(10, i)).await,
            pattern(10, i)
        );
    }
    drop(newcomer);
    for binding in legit {
        binding.close().await;
    }
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

#[tokio::test]
async fn hostile_sockets_are_closed_at_their_deadlines() {
    let interface = TestInterface::new(AuthLevel::NONE);
    let mut options = server_options(5840);
    small_limits(&mut options);
    let server = start(&[interface as Arc<dyn RpcInterface>], options).await;
    let addr = server.local_addr();
    // Silent; a bind trickled and never finished; bound and idle; a request fragment begun
    // and never finished; a partial request never completed.
    let silent = TcpStream::connect(addr).await.unwrap();
    let mut trickling = TcpStream::connect(addr).await.unwrap();
    trickling.write_all(&bind_frame()[..20]).await.unwrap();
    let (idle, _) = bound(addr).await;
    let (mut mid_fragment, _) = bound(addr).await;
    let fragment = request_fragment(2, true, true, pattern(1000, 1));
    mid_fragment.write_all(&fragment[..500]).await.unwrap();
    let (mut partial, _) = bound(addr).await;
    partial
        .write_all(&request_fragment(2, true, false, pattern(1000, 2)))
        .await
        .unwrap();
    for mut socket in [silent, trickling, idle, mid_fragment, partial] {
        assert!(closed_by_server(&mut socket).await);
    }
    assert!(settle(|| server.snapshot().associations == 0).await);
    assert_eq!(server.snapshot().reassembly_bytes, 0);
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

/// What a [`Pipeliner`] calls.
#[derive(Clone, Copy)]
enum Ask {
    /// Echo calls of this many bytes, in 5000-byte fragments.
    Echo(usize),
    /// Reads of this many bytes.
    Read(u32),
}

impl Ask {
    fn fragments(self, call_id: u32) -> Vec<Bytes> {
        match self {
            Self::Echo(len) => {
                let data = pattern(len, call_id);
                let chunks: Vec<_> = data.chunks(5000).collect();
                (0..chunks.len())
                    .map(|i| {
                        let chunk = Bytes::copy_from_slice(chunks[i]);
                        request_fragment(call_id, i == 0, i + 1 == chunks.len(), chunk)
                    })
                    .collect()
            }
            Self::Read(len) => {
                let stub = Bytes::copy_from_slice(&len.to_le_bytes());
                vec![request_of(op::READ, call_id, true, true, stub)]
            }
        }
    }

    fn answer(self, call_id: u32) -> Bytes {
        match self {
            Self::Echo(len) => pattern(len, call_id),
            Self::Read(len) => pattern(usize::try_from(len).unwrap(), len),
        }
    }
}

/// A peer that pipelines calls and reads nothing meanwhile (its receive buffer small).
struct Pipeliner {
    read: tokio::net::tcp::OwnedReadHalf,
    inbox: BytesMut,
    sender: tokio::task::JoinHandle<tokio::net::tcp::OwnedWriteHalf>,
    sent: u32,
    ask: Ask,
}

/// Writes calls `calls`, then hands the write half back.
fn send_calls(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    calls: std::ops::RangeInclusive<u32>,
    ask: Ask,
) -> tokio::task::JoinHandle<tokio::net::tcp::OwnedWriteHalf> {
    tokio::spawn(async move {
        for call_id in calls {
            for fragment in ask.fragments(call_id) {
                write.write_all(&fragment).await.unwrap();
            }
        }
        write
    })
}

impl Pipeliner {
    async fn start(addr: SocketAddr, calls: u32, ask: Ask) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        stream.write_all(&bind_frame()).await.unwrap();
        let mut inbox = BytesMut::new();
        read_frame(&mut stream, &mut inbox).await.unwrap();
        let (read, write) = stream.into_split();
        Self {
            read,
            inbox,
            sender: send_calls(write, 1..=calls, ask),
            sent: calls,
            ask,
        }
    }

    /// Pipelines `calls` more once the previous ones are written.
    async fn more(&mut self, calls: u32) {
        let write = (&mut self.sender).await.unwrap();
        self.sender = send_calls(write, self.sent + 1..=self.sent + calls, self.ask);
        self.sent += calls;
    }

    /// Reads every answer: each call's, whole, or (the calls read while others were in
    /// flight) server too busy.
    async fn drain(mut self) {
        let mut received = std::collections::BTreeSet::new();
        let mut stub = BytesMut::new();
        let mut codec = FrameCodec::default();
        while received.len() < usize::try_from(self.sent).unwrap() {
            let frame = loop {
                if let Some(frame) = codec.decode(&mut self.inbox).unwrap() {
                    break frame;
                }
                assert!(self.read.read_buf(&mut self.inbox).await.unwrap() > 0);
            };
            let pdu = Pdu::decode(frame).unwrap();
            let response = match pdu.body {
                PduBody::Response(response) => response,
                PduBody::Fault(fault) => {
                    assert_eq!(fault.status, FaultStatus::SERVER_TOO_BUSY);
                    assert!(received.insert(pdu.call_id));
                    continue;
                }
                other => panic!("unexpected {other:?}"),
            };
            stub.extend_from_slice(&response.stub);
            if pdu.pfc_flags.contains(PfcFlags::LAST_FRAG) {
                assert!(received.insert(pdu.call_id));
                assert_eq!(stub.split().freeze(), self.ask.answer(pdu.call_id));
            }
        }
        drop(self.sender.await.unwrap());
    }
}

#[tokio::test]
async fn a_peer_that_never_reads_holds_the_server_to_its_send_budget() {
    const BUDGET: usize = 64 * 1024;
    const CALLS: u32 = 100;
    const STUB: usize = 50_000;
    const IN_FLIGHT: usize = 4;
    let interface = TestInterface::new(AuthLevel::NONE);
    let mut options = server_options(5840);
    options.limits.max_send_queue = BUDGET;
    options.limits.max_calls_in_flight = IN_FLIGHT;
    let server = start(&[interface.clone() as Arc<dyn RpcInterface>], options).await;
    let peer = Pipeliner::start(server.local_addr(), CALLS, Ask::Echo(STUB)).await;
    assert!(settle(|| interface.echoes.load(Ordering::SeqCst) >= 2).await);
    // Give the server every chance to run ahead.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let snapshot = server.snapshot();
    // At most the budget, plus the answers of the calls running when it was reached (the
    // calls in flight, answered ones included until written).
    assert!(
        snapshot.send_queue_peak < BUDGET + IN_FLIGHT * (STUB + 1024),
        "{snapshot:?}"
    );
    assert!(interface.echoes.load(Ordering::SeqCst) < usize::try_from(CALLS).unwrap());
    // Once the peer reads, every call is answered.
    peer.drain().await;
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

#[tokio::test]
async fn peers_that_never_read_share_one_send_budget_and_others_are_still_served() {
    const BUDGET: usize = 1 << 20;
    // Answers far larger than what the kernel's socket buffers take off the server's queue
    // (4 MiB at most on Linux).
    const READ: u32 = 8 << 20;
    let answer = usize::try_from(READ).unwrap();
    let mut options = server_options(5840);
    // Each connection alone could hold 8 such answers; together they hold the budget.
    options.limits.max_send_queue = 64 << 20;
    options.limits.max_calls_in_flight = 8;
    options.send_budget = BUDGET;
    let server = start(
        &[TestInterface::new(AuthLevel::NONE) as Arc<dyn RpcInterface>],
        options,
    )
    .await;
    let addr = server.local_addr();
    // The first peer's first answer takes the server past its budget...
    let mut first = Pipeliner::start(addr, 1, Ask::Read(READ)).await;
    assert!(settle(|| server.snapshot().send_queued >= BUDGET).await);
    // ...after which its further calls wait, and a second peer gets one call started (its
    // own queue was empty), then none.
    first.more(2).await;
    let second = Pipeliner::start(addr, 3, Ask::Read(READ)).await;
    assert!(settle(|| server.snapshot().calls_total == 2).await);
    // Give the server every chance to run ahead.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let snapshot = server.snapshot();
    assert_eq!(snapshot.calls_total, 2, "{snapshot:?}");
    assert!(snapshot.send_queued <= 2 * (answer + 4096), "{snapshot:?}");
    // A client that takes its answers is served meanwhile, one call at a time.
    let binding = Binding::connect(addr, &[syntax(1)], &privacy())
        .await
        .unwrap();
    for i in 0..3 {
        assert_eq!(
            call_bytes(&binding, op::ECHO, pattern(20_000, i)).await,
            pattern(20_000, i)
        );
    }
    binding.close().await;
    // Once the peers read, every call is answered.
    first.drain().await;
    second.drain().await;
    assert!(settle(|| server.snapshot().send_queued == 0).await);
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

#[tokio::test]
async fn calls_waiting_on_answers_never_read_do_not_protect_from_eviction() {
    const BUDGET: usize = 1 << 20;
    let mut options = server_options(5840);
    options.max_associations = 1;
    options.limits.max_send_queue = 64 << 20;
    options.send_budget = BUDGET;
    patient(&mut options);
    let server = start(
        &[TestInterface::new(AuthLevel::NONE) as Arc<dyn RpcInterface>],
        options,
    )
    .await;
    let addr = server.local_addr();
    // An anonymous peer reads nothing: its first answer takes the server past its send
    // budget, and its further calls wait for it to read (waiting, they are not running).
    let mut peer = Pipeliner::start(addr, 1, Ask::Read(8 << 20)).await;
    assert!(settle(|| server.snapshot().send_queued >= BUDGET).await);
    peer.more(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.snapshot().calls_total, 1);
    // The only place is its; a client still gets in, and the peer is closed.
    let binding = Binding::connect(addr, &[syntax(1)], &privacy())
        .await
        .unwrap();
    assert_eq!(
        call_bytes(&binding, op::ECHO, pattern(10, 1)).await,
        pattern(10, 1)
    );
    let mut sink = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(30), peer.read.read_to_end(&mut sink)).await;
    assert!(closed.is_ok());
    binding.close().await;
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

#[tokio::test]
async fn a_stalled_call_is_dropped_when_its_client_leaves() {
    let interface = TestInterface::new(AuthLevel::NONE);
    let server = start(
        &[interface.clone() as Arc<dyn RpcInterface>],
        server_options(5840),
    )
    .await;
    let binding = Binding::connect(server.local_addr(), &[syntax(1)], &privacy())
        .await
        .unwrap();
    let call = tokio::spawn(async move { binding.call(op::STALL, Bytes::new()).await });
    assert!(settle(|| interface.stalled.load(Ordering::SeqCst) == 1).await);
    assert_eq!(server.snapshot().calls, 1);
    // The client goes (its task, and with it the binding and the connection, dropped).
    call.abort();
    let _ = call.await;
    // The call's task and what it held go with the connection, not at the server's shutdown.
    assert!(
        settle(|| {
            let snapshot = server.snapshot();
            snapshot.associations == 0 && snapshot.calls == 0
        })
        .await,
        "{:?}",
        server.snapshot()
    );
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

#[tokio::test]
async fn an_anonymous_bind_to_an_interface_asking_for_authentication_gets_the_handshake_deadline() {
    let guarded = TestInterface::new(AuthLevel::PKT_INTEGRITY);
    let open = Arc::new(TestInterface {
        version: 2,
        min_level: Some(AuthLevel::NONE),
        ..TestInterface::default()
    });
    let mut options = server_options(5840);
    patient(&mut options);
    options.handshake_timeout = Duration::from_millis(300);
    let server = start(
        &[
            guarded as Arc<dyn RpcInterface>,
            open as Arc<dyn RpcInterface>,
        ],
        options,
    )
    .await;
    let addr = server.local_addr();
    // Bound anonymously to the interface that asks for integrity: closed at the handshake
    // deadline, not after the (patient) idle limit.
    let (mut anonymous, _) = bound(addr).await;
    assert!(closed_by_server(&mut anonymous).await);
    // An anonymous client of the interface open to it stays.
    let options = client_options(AuthLevel::NONE, 5840, DataRep::LITTLE_ENDIAN);
    let binding = Binding::connect(addr, &[syntax(2)], &options)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        call_bytes(&binding, op::ECHO, pattern(10, 1)).await,
        pattern(10, 1)
    );
    binding.close().await;
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}

#[tokio::test]
async fn partial_requests_share_one_reassembly_budget() {
    const BUDGET: usize = 64 * 1024;
    let interface = TestInterface::new(AuthLevel::NONE);
    let mut options = server_options(5840);
    options.reassembly_budget = BUDGET;
    let server = start(&[interface.clone() as Arc<dyn RpcInterface>], options).await;
    let addr = server.local_addr();
    // Four connections each send a 25 kB partial request: the budget holds two of them; the
    // others are refused with server too busy.
    let mut held = Vec::new();
    for k in 1..=4 {
        let (mut stream, mut buf) = bound(addr).await;
        stream.set_nodelay(true).unwrap();
        for i in 0..5 {
            let fragment = request_fragment(2, i == 0, false, pattern(5000, i));
            if stream.write_all(&fragment).await.is_err() {
                break;
            }
        }
        if k <= 2 {
            assert!(settle(|| server.snapshot().reassembly_bytes == 25_000 * k).await);
            held.push((stream, buf));
        } else {
            match read_frame(&mut stream, &mut buf).await.map(|pdu| pdu.body) {
                Some(PduBody::Fault(fault)) => {
                    assert_eq!(fault.status, FaultStatus::SERVER_TOO_BUSY)
                }
                other => panic!("expected a fault, got {other:?}"),
            }
            assert!(closed_by_server(&mut stream).await);
        }
        assert!(server.snapshot().reassembly_bytes <= BUDGET);
        // Whole requests of one fragment still go through.
        let probe = Binding::connect(addr, &[syntax(1)], &privacy())
            .await
            .unwrap();
        assert_eq!(
            call_bytes(&probe, op::ECHO, pattern(10, 1)).await,
            pattern(10, 1)
        );
        probe.close().await;
    }
    // The held requests complete and are answered.
    for (stream, buf) in &mut held {
        stream
            .write_all(&request_fragment(2, false, true, pattern(10, 9)))
            .await
            .unwrap();
        let pdu = read_frame(stream, buf).await.unwrap();
        assert!(matches!(pdu.body, PduBody::Response(_)), "{pdu:?}");
    }
    drop(held);
    assert!(settle(|| server.snapshot().reassembly_bytes == 0).await);
    server.shutdown().await;
    assert!(server.snapshot().is_idle(), "{:?}", server.snapshot());
}
