//! The server under load and attack, over loopback (`cargo xtask bench --load` runs it):
//!
//! - `load attack [LEGIT] [HOSTILE] [MAX_ASSOCIATIONS] [churn]`: LEGIT authenticated associations
//!   (NTLM, packet privacy) each making calls while HOSTILE sockets attack the same server: a
//!   quarter silent, a quarter trickling a bind a byte at a time, a quarter sending half a
//!   request fragment, a quarter pipelining reads and never reading. With `churn`, the first
//!   three kinds connect again as soon as the server closes them (evicted or past a deadline),
//!   so that the attacker's sockets are always fresh. Prints one JSON line: calls served and
//!   failed, latency percentiles, the server's peak RSS.
//! - `load partial [CONNECTIONS]`: CONNECTIONS anonymous associations each sending a 1 MiB
//!   request without its last fragment; prints the server's RSS before, while they hold,
//!   and after they are gone.
//!
//! The server runs in a child process (`load serve`), so that its RSS is its own.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dsbackup_ntlm::{AcceptorConfig, Credentials, InMemoryCredentials};
use dsbackup_proto::{AuthLevel, DataRep, Limits, Pdu, PduBody, PfcFlags, SyntaxId, Uuid};
use dsbackup_proto::{Bind, PresentationContext, Request};
use dsbackup_transport::{
    Binding, CallContext, CallFuture, ClientAuth, ClientOptions, RpcInterface, Server,
    ServerOptions,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const UUID: Uuid = Uuid::from_str_const("6b6f6f6c-7465-7374-8000-000000000001");
const ECHO: u16 = 0;
/// `[in] u32 len`: answers `len` fresh bytes (as a backup read allocates its buffer).
const READ: u16 = 1;
const CALLS_PER_ASSOCIATION: usize = 10;
const READ_LEN: u32 = 64 * 1024;
const PIPELINED_READS: u32 = 8;

struct Load;

impl RpcInterface for Load {
    fn syntax(&self) -> SyntaxId {
        SyntaxId::new(UUID, 1, 0)
    }

    fn opnums(&self) -> u16 {
        2
    }

    fn call(self: Arc<Self>, _: CallContext, opnum: u16, stub: Bytes, _: DataRep) -> CallFuture {
        Box::pin(async move {
            if opnum == READ {
                let len = stub
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_le_bytes);
                let len = usize::try_from(len.min(1 << 20)).unwrap_or(0);
                return Ok(Bytes::from(vec![0x5a; len]).into());
            }
            Ok(stub.into())
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let runtime = tokio::runtime::Runtime::new()?;
    match args.first().map(String::as_str) {
        Some("serve") => runtime.block_on(serve(number(1, 1500))),
        Some("partial") => runtime.block_on(partial(number(1, 250))),
        _ => runtime.block_on(attack(
            number(1, 1000),
            number(2, 1000),
            number(3, 1500),
            args.get(4).is_some_and(|arg| arg == "churn"),
        )),
    }
}

/// The server: prints its address, serves until stdin closes.
async fn serve(max_associations: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut users = InMemoryCredentials::new();
    users.insert_password("svc-backup", "CORP", "s3cret!Pa55");
    let mut options = ServerOptions::default();
    options.epm_listen = None;
    options.ntlm = Some(AcceptorConfig::new(
        Arc::new(users),
        "DC1",
        "CORP",
        "corp.example",
    ));
    // Every client is on 127.0.0.1: the per-address cap is lifted; the table holds fewer
    // associations than legitimate and hostile sockets together, so eviction is exercised.
    options.max_associations = max_associations;
    options.max_associations_per_address = usize::MAX;
    options.limits = Limits::server();
    let mut server = Server::new(options);
    server.register(Arc::new(Load));
    let running = server.start().await?;
    println!("{}", running.local_addr());
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
    Ok(())
}

struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start(max_associations: usize) -> Result<Self, Box<dyn std::error::Error>> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg(max_associations.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        Ok(Self {
            addr: line.trim().parse()?,
            child,
        })
    }

    /// `VmRSS` or `VmHWM` of the server, in MiB.
    fn memory(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(f64::NAN, |kib| kib / 1024.0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
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
                abstract_syntax: SyntaxId::new(UUID, 1, 0),
                transfer_syntaxes: vec![SyntaxId::NDR],
            }],
        }),
    )
    .to_bytes()
    .unwrap_or_default()
}

fn request(call_id: u32, opnum: u16, flags: PfcFlags, stub: Bytes) -> Bytes {
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
    pdu.pfc_flags = flags;
    pdu.to_bytes().unwrap_or_default()
}

/// One hostile socket of kind `kind` (0..4); holds it until `stop`, or (`churn`, kinds 0 to
/// 2) until the server closes it, then connects again.
async fn hostile(
    addr: SocketAddr,
    kind: usize,
    churn: bool,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let Ok(stream) = TcpStream::connect(addr).await else {
            return;
        };
        let Some(mut stream) = attack_with(stream, kind, &stop).await else {
            if stop.is_cancelled() || !churn {
                return;
            }
            continue;
        };
        if !churn || kind == 3 {
            stop.cancelled().await;
            return;
        }
        // Whatever the server sends (a bind_ack) is read and dropped until it closes.
        let mut sink = [0; 1024];
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                read = stream.read(&mut sink) => if !matches!(read, Ok(n) if n > 0) { break },
            }
        }
    }
}

/// Attacks over `stream` as kind `kind` does; the stream, unless it failed (or `stop`).
async fn attack_with(
    mut stream: TcpStream,
    kind: usize,
    stop: &tokio_util::sync::CancellationToken,
) -> Option<TcpStream> {
    let bind = bind_frame();
    match kind {
        // Silent.
        0 => {}
        // A bind, a byte a second.
        1 => {
            for byte in bind.iter() {
                tokio::select! {
                    () = stop.cancelled() => return None,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                if stream.write_all(&[*byte]).await.is_err() {
                    return None;
                }
            }
        }
        // Bound, then half a request fragment.
        2 => {
            let fragment = request(
                2,
                ECHO,
                PfcFlags::FIRST_FRAG | PfcFlags::LAST_FRAG,
                Bytes::from(vec![1; 4000]),
            );
            let _ = stream.write_all(&bind).await;
            let _ = stream
                .write_all(fragment.get(..2000).unwrap_or_default())
                .await;
        }
        // Bound, reads pipelined, nothing ever read.
        _ => {
            let _ = stream.write_all(&bind).await;
            for call_id in 2..2 + PIPELINED_READS {
                let stub = Bytes::copy_from_slice(&READ_LEN.to_le_bytes());
                let frame = request(
                    call_id,
                    READ,
                    PfcFlags::FIRST_FRAG | PfcFlags::LAST_FRAG,
                    stub,
                );
                if stream.write_all(&frame).await.is_err() {
                    break;
                }
            }
        }
    }
    Some(stream)
}

async fn attack(
    legit: usize,
    hostiles: usize,
    max_associations: usize,
    churn: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let server = ServerProcess::start(max_associations)?;
    let addr = server.addr;
    let idle_rss = server.memory("VmRSS:");
    let stop = tokio_util::sync::CancellationToken::new();
    let mut attackers = Vec::new();
    for i in 0..hostiles {
        attackers.push(tokio::spawn(hostile(addr, i % 4, churn, stop.clone())));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let mut clients = Vec::new();
    for i in 0..legit {
        clients.push(tokio::spawn(async move {
            let options = ClientOptions::with_auth(ClientAuth::ntlm(
                Credentials::from_password("svc-backup", "CORP", "s3cret!Pa55"),
                AuthLevel::PKT_PRIVACY,
            ));
            let mut latencies = Vec::new();
            let mut failed = 0;
            let binding = match Binding::connect(addr, &[SyntaxId::new(UUID, 1, 0)], &options).await
            {
                Ok(binding) => binding,
                Err(error) => {
                    eprintln!("association {i}: {error}");
                    return (latencies, CALLS_PER_ASSOCIATION);
                }
            };
            for call in 0..CALLS_PER_ASSOCIATION {
                let began = Instant::now();
                let stub = if call % 2 == 0 {
                    Bytes::from(vec![7; 1024])
                } else {
                    Bytes::copy_from_slice(&READ_LEN.to_le_bytes())
                };
                let opnum = if call % 2 == 0 { ECHO } else { READ };
                match binding.call(opnum, stub).await {
                    Ok(_) => latencies.push(began.elapsed()),
                    Err(error) => {
                        eprintln!("association {i} call {call}: {error}");
                        failed += 1;
                    }
                }
            }
            binding.close().await;
            (latencies, failed)
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for client in clients {
        let (mut done, lost) = client.await?;
        latencies.append(&mut done);
        failed += lost;
    }
    let elapsed = started.elapsed();
    let peak = server.memory("VmHWM:");
    stop.cancel();
    for attacker in attackers {
        let _ = attacker.await;
    }
    latencies.sort();
    let percentile = |p: usize| {
        latencies
            .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{{\"legit_associations\":{legit},\"hostile_sockets\":{hostiles},\"hostile_reconnect\":{churn},\"max_associations\":{max_associations},\"calls_ok\":{},\"calls_failed\":{failed},\"seconds\":{:.2},\"p50_ms\":{:.2},\"p90_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2},\"server_rss_idle_mib\":{idle_rss:.1},\"server_peak_rss_mib\":{peak:.1}}}",
        latencies.len(),
        elapsed.as_secs_f64(),
        percentile(50),
        percentile(90),
        percentile(99),
        percentile(100),
    );
    Ok(())
}

async fn partial(connections: usize) -> Result<(), Box<dyn std::error::Error>> {
    const MIB: usize = 1 << 20;
    let server = ServerProcess::start(1500)?;
    let addr = server.addr;
    let before = server.memory("VmRSS:");
    let mut held = Vec::new();
    for _ in 0..connections {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        if stream.write_all(&bind_frame()).await.is_err() {
            continue;
        }
        let chunk = 5000;
        // Just under the 1 MiB a request may be (`Limits::max_stub_len`), the last fragment
        // never sent.
        for sent in (0..MIB - chunk).step_by(chunk) {
            let flags = if sent == 0 {
                PfcFlags::FIRST_FRAG
            } else {
                PfcFlags::empty()
            };
            let frame = request(2, ECHO, flags, Bytes::from(vec![3; chunk]));
            if stream.write_all(&frame).await.is_err() {
                break;
            }
        }
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = server.memory("VmRSS:");
    let peak = server.memory("VmHWM:");
    drop(held);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = server.memory("VmRSS:");
    println!(
        "{{\"connections\":{connections},\"partial_request_mib\":1,\"server_rss_before_mib\":{before:.1},\"server_rss_during_mib\":{during:.1},\"server_peak_rss_mib\":{peak:.1},\"server_rss_after_mib\":{after:.1}}}"
    );
    Ok(())
}
