//! What the integration tests share: a test interface, a server on loopback, a client.

#![expect(
    missing_docs,
    clippy::missing_panics_doc,
    reason = "test helpers, documented by their use"
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use dsbackup_ntlm::{AcceptorConfig, Credentials, InMemoryCredentials};
use dsbackup_proto::ndr::{ContextHandle, NdrReader, NdrWriter};
use dsbackup_proto::{AuthLevel, Chain, DataRep, FaultStatus, Limits, SyntaxId, Uuid};
use dsbackup_transport::{
    Binding, CallContext, CallError, CallFuture, ClientAuth, ClientOptions, RpcInterface,
    RunningServer, Server, ServerOptions,
};

pub const USER: &str = "svc-backup";
pub const DOMAIN: &str = "CORP";
pub const PASSWORD: &str = "s3cret!Pa55";

/// The test interface, v1.0 (and a v2.0 twin for the fallback test).
pub const TEST_UUID: Uuid = Uuid::from_str_const("6b6f6f6c-7465-7374-8000-000000000001");

pub mod op {
    /// Returns its input.
    pub const ECHO: u16 = 0;
    /// Opens a context handle (no input; output: the handle).
    pub const OPEN: u16 = 1;
    /// `[in] handle, [in] u32 value`: appends the value to the handle's log after a pause
    /// that shrinks with the value (so that unordered runs would reorder).
    pub const APPEND: u16 = 2;
    /// `[in] handle`: closes it; output: the log, u32 each (little-endian).
    pub const CLOSE: u16 = 3;
    /// Output: "user\domain" and the auth level byte, or "anonymous".
    pub const WHOAMI: u16 = 4;
    /// Never answers (until the server gives up on it).
    pub const STALL: u16 = 5;
    /// Decodes a u32 from an empty stub: always a bad stub.
    pub const BAD_STUB: u16 = 6;
    /// Faults with access denied.
    pub const DENY: u16 = 7;
    /// Waits for a permit of the gate, then answers its input.
    pub const GATED: u16 = 8;
    /// `[in] u32 len` (little-endian): answers `len` pattern bytes.
    pub const READ: u16 = 9;
    pub const COUNT: u16 = 10;
}

/// A semaphore that starts closed.
#[derive(Debug)]
pub struct Gate(pub tokio::sync::Semaphore);

impl Default for Gate {
    fn default() -> Self {
        Self(tokio::sync::Semaphore::new(0))
    }
}

#[derive(Debug, Default)]
pub struct TestInterface {
    pub version: u16,
    pub min_level: Option<AuthLevel>,
    pub logs: Mutex<std::collections::HashMap<ContextHandle, Vec<u32>>>,
    pub rundowns: AtomicUsize,
    pub stalled: AtomicUsize,
    pub echoes: AtomicUsize,
    pub gate: Gate,
    pub gated: AtomicUsize,
}

impl TestInterface {
    pub fn new(min_level: AuthLevel) -> Arc<Self> {
        Arc::new(Self {
            version: 1,
            min_level: Some(min_level),
            ..Self::default()
        })
    }
}

pub fn syntax(version: u16) -> SyntaxId {
    SyntaxId::new(TEST_UUID, version, 0)
}

fn read_handle(drep: DataRep, stub: &[u8]) -> Result<(ContextHandle, u32), CallError> {
    let mut r = NdrReader::new(drep, stub);
    let handle: ContextHandle = r.param()?;
    let value = if stub.len() > ContextHandle::LEN {
        r.u32("value")?
    } else {
        0
    };
    Ok((handle, value))
}

pub fn handle_stub(drep: DataRep, handle: ContextHandle, value: Option<u32>) -> Bytes {
    let mut w = NdrWriter::new(drep);
    w.param(&handle).unwrap();
    if let Some(value) = value {
        w.u32(value);
    }
    Bytes::from(w.into_vec())
}

impl RpcInterface for TestInterface {
    fn syntax(&self) -> SyntaxId {
        syntax(self.version)
    }

    fn opnums(&self) -> u16 {
        op::COUNT
    }

    fn annotation(&self) -> &str {
        "dsbackup test interface"
    }

    fn min_auth_level(&self) -> AuthLevel {
        self.min_level.unwrap_or(AuthLevel::NONE)
    }

    fn takes_context_handle(&self, opnum: u16) -> bool {
        matches!(opnum, op::APPEND | op::CLOSE)
    }

    fn call(
        self: Arc<Self>,
        ctx: CallContext,
        opnum: u16,
        stub: Bytes,
        drep: DataRep,
    ) -> CallFuture {
        Box::pin(async move {
            match opnum {
                op::ECHO => {
                    self.echoes.fetch_add(1, Ordering::SeqCst);
                    Ok(stub)
                }
                op::OPEN => {
                    let handle = ctx.new_context_handle().unwrap();
                    self.logs.lock().unwrap().insert(handle, Vec::new());
                    let mut w = NdrWriter::new(ctx.reply_drep());
                    w.param(&handle)?;
                    Ok(Bytes::from(w.into_vec()))
                }
                op::APPEND => {
                    let (handle, value) = read_handle(drep, &stub)?;
                    // Later values wait less: only the runtime's ordering keeps them in order.
                    for _ in 0..(64u32.saturating_sub(value % 64)) {
                        tokio::task::yield_now().await;
                    }
                    self.logs
                        .lock()
                        .unwrap()
                        .entry(handle)
                        .or_default()
                        .push(value);
                    Ok(Bytes::new())
                }
                op::CLOSE => {
                    let (handle, _) = read_handle(drep, &stub)?;
                    assert!(ctx.release_context_handle(&handle));
                    let log = self
                        .logs
                        .lock()
                        .unwrap()
                        .remove(&handle)
                        .unwrap_or_default();
                    let mut out = BytesMut::new();
                    for value in log {
                        out.put_u32_le(value);
                    }
                    Ok(out.freeze())
                }
                op::WHOAMI => {
                    let mut out = match ctx.peer() {
                        Some(peer) => format!("{}\\{}", peer.user, peer.domain).into_bytes(),
                        None => b"anonymous".to_vec(),
                    };
                    out.push(ctx.auth_level().0);
                    Ok(Bytes::from(out))
                }
                op::STALL => {
                    self.stalled.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                    Ok(Bytes::new())
                }
                op::BAD_STUB => {
                    let mut r = NdrReader::new(drep, &stub);
                    let value = r.u32("value")?;
                    Ok(Bytes::from(value.to_le_bytes().to_vec()))
                }
                op::READ => {
                    let len = u32::from_le_bytes(stub[..4].try_into().unwrap());
                    let data = pattern(usize::try_from(len).unwrap(), len);
                    // In three segments, as a backup read's answer is (its counts, the shared
                    // data, its status): fragments then span segment boundaries.
                    let (a, b) = (data.len() / 7, data.len() / 7 * 5);
                    return Ok([data.slice(..a), data.slice(a..b), data.slice(b..)]
                        .into_iter()
                        .collect());
                }
                op::GATED => {
                    self.gated.fetch_add(1, Ordering::SeqCst);
                    self.gate.0.acquire().await.unwrap().forget();
                    Ok(stub)
                }
                _ => Err(CallError::Fault(FaultStatus::ACCESS_DENIED)),
            }
            .map(Chain::from)
        })
    }

    fn rundown(&self, handle: ContextHandle) {
        self.rundowns.fetch_add(1, Ordering::SeqCst);
        self.logs.lock().unwrap().remove(&handle);
    }
}

pub fn acceptor_config() -> AcceptorConfig {
    let mut users = InMemoryCredentials::new();
    users.insert_password(USER, DOMAIN, PASSWORD);
    AcceptorConfig::new(Arc::new(users), "DC1", DOMAIN, "corp.example")
}

pub fn server_options(frag: u16) -> ServerOptions {
    let mut options = ServerOptions::default();
    options.epm_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    options.ntlm = Some(acceptor_config());
    options.limits.max_recv_frag = frag;
    options.limits.max_xmit_frag = frag;
    options.shutdown_grace = Duration::from_secs(2);
    options.principal_name = "DC1$@CORP.EXAMPLE".into();
    options
}

pub async fn start(interfaces: &[Arc<dyn RpcInterface>], options: ServerOptions) -> RunningServer {
    let mut server = Server::new(options);
    for interface in interfaces {
        server.register(Arc::clone(interface));
    }
    server.start().await.unwrap()
}

pub fn client_options(level: AuthLevel, frag: u16, drep: DataRep) -> ClientOptions {
    let auth = if level == AuthLevel::NONE {
        ClientAuth::None
    } else {
        ClientAuth::ntlm(Credentials::from_password(USER, DOMAIN, PASSWORD), level)
    };
    let mut options = ClientOptions::with_auth(auth);
    let mut limits = Limits::client();
    limits.max_recv_frag = frag;
    limits.max_xmit_frag = frag;
    options.limits = limits;
    options.drep = drep;
    options.call_timeout = Duration::from_secs(30);
    options
}

/// A stub of `len` bytes that differs per call.
pub fn pattern(len: usize, seed: u32) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| u8::try_from((i * 31 + usize::try_from(seed).unwrap()) % 256).unwrap())
            .collect::<Vec<_>>(),
    )
}

/// Waits (bounded) until `check` holds; the counts settle as tasks end.
pub async fn settle(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..2000 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    check()
}

/// Which way a frame goes through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    ToServer,
    ToClient,
}

/// What the proxy does with a frame.
#[derive(Debug)]
pub enum Action {
    /// Sends these frames on (none: drop it).
    Forward(Vec<Bytes>),
    /// Sends these bytes and closes that direction.
    Close(Bytes),
}

pub type Mangle = Arc<dyn Fn(Dir, usize, Bytes) -> Action + Send + Sync>;

/// A TCP proxy for one connection that sees whole fragments and may change them.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<(Dir, Bytes)>>>,
    pub task: tokio::task::JoinHandle<()>,
}

pub fn forward_all() -> Mangle {
    Arc::new(|_, _, frame| Action::Forward(vec![frame]))
}

pub async fn proxy(target: SocketAddr, mangle: Mangle) -> Proxy {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log_for_task = Arc::clone(&log);
    let task = tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = tokio::net::TcpStream::connect(target).await.unwrap();
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let pump = |read: tokio::net::tcp::OwnedReadHalf,
                    mut write: tokio::net::tcp::OwnedWriteHalf,
                    dir: Dir| {
            let mangle = Arc::clone(&mangle);
            let log = Arc::clone(&log_for_task);
            async move {
                let mut frames = tokio_util::codec::FramedRead::new(
                    read,
                    dsbackup_transport::FrameCodec::default(),
                );
                let mut index = 0;
                while let Some(Ok(frame)) = frames.next().await {
                    log.lock().unwrap().push((dir, frame.clone()));
                    match mangle(dir, index, frame) {
                        Action::Forward(out) => {
                            for frame in out {
                                if write.write_all(&frame).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Action::Close(bytes) => {
                            let _ = write.write_all(&bytes).await;
                            break;
                        }
                    }
                    index += 1;
                }
                let _ = write.shutdown().await;
            }
        };
        tokio::join!(
            pump(client_read, server_write, Dir::ToServer),
            pump(server_read, client_write, Dir::ToClient)
        );
    });
    Proxy { addr, log, task }
}

/// The packet type of a frame.
pub fn ptype(frame: &[u8]) -> u8 {
    frame[2]
}

pub const REQUEST: u8 = 0;
pub const RESPONSE: u8 = 2;
pub const BIND: u8 = 11;

/// Calls `opnum` and returns the whole output stub (panics on failure).
pub async fn call_bytes(binding: &Binding, opnum: u16, stub: Bytes) -> Bytes {
    binding.call(opnum, stub).await.unwrap().stub.to_bytes()
}

/// Where the `conformance_dump_*` tests write their conversations:
/// `$DSBACKUP_CONFORMANCE_DIR`, else `target/conformance/` of the workspace.
pub fn conformance_dir() -> std::path::PathBuf {
    std::env::var_os("DSBACKUP_CONFORMANCE_DIR").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .nth(2)
                .unwrap()
                .join("target/conformance")
        },
        std::path::PathBuf::from,
    )
}

/// Writes a sealed conversation for `cargo xtask conformance`: `NAME.txt` (one PDU a line, `I`
/// client to server, `O` back) and its sidecar `NAME.stubs.json`, which holds `secret` (the
/// keys tshark decrypts with: `"password"` or `"keytab"`) and, per call, the request stub and
/// the response stub in plaintext (`None`: the call faulted).
pub fn dump_sealed_conversation(
    name: &str,
    pdus: &[(char, Vec<u8>)],
    secret: (&str, &str),
    calls: &[(u32, Bytes, Option<Bytes>)],
) {
    let dir = conformance_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let conversation: String = pdus
        .iter()
        .map(|(dir, pdu)| format!("{dir} {}\n", hex::encode(pdu)))
        .collect();
    std::fs::write(dir.join(format!("{name}.txt")), conversation).unwrap();
    let calls: Vec<serde_json::Value> = calls
        .iter()
        .map(|(id, sent, got)| {
            serde_json::json!({
                "call_id": id,
                "request": hex::encode(sent),
                "response": got.as_ref().map(hex::encode),
            })
        })
        .collect();
    let mut sidecar = serde_json::Map::new();
    sidecar.insert(secret.0.to_owned(), secret.1.into());
    sidecar.insert("calls".to_owned(), calls.into());
    std::fs::write(
        dir.join(format!("{name}.stubs.json")),
        serde_json::to_string_pretty(&sidecar).unwrap(),
    )
    .unwrap();
}

/// SAMR, which Samba serves on a TCP port of its own.
pub const SAMR: SyntaxId = SyntaxId {
    uuid: Uuid::from_str_const("12345778-1234-abcd-ef00-0123456789ac"),
    version: 1,
    version_minor: 0,
};

/// On a binding to Samba's SAMR at `level`: `SamrConnect` (opnum 0, no server name,
/// `MAXIMUM_ALLOWED`) gives a handle and `STATUS_SUCCESS`, `SamrCloseHandle` (opnum 1) gives the
/// handle back zeroed. At connect Samba faults the call `nca_s_fault_access_denied`, whatever
/// the security package (`dcesrv_interface_bind_reject_connect`): it serves SAMR from packet
/// integrity up.
pub async fn samr_connect_and_close(binding: &Binding, level: AuthLevel) {
    let mut connect = vec![0u8; 4];
    connect.extend_from_slice(&0x0200_0000u32.to_le_bytes());
    let reply = binding.call(0, Bytes::from(connect)).await;
    if level == AuthLevel::CONNECT {
        assert!(
            matches!(
                reply,
                Err(dsbackup_transport::TransportError::Fault {
                    status: FaultStatus::ACCESS_DENIED,
                    ..
                })
            ),
            "{reply:?}"
        );
        return;
    }
    let reply = reply.unwrap_or_else(|e| panic!("SamrConnect at {level:?}: {e}"));
    let reply = reply.stub.to_bytes();
    assert_eq!(reply.len(), 24, "a handle and a status at {level:?}");
    assert_eq!(reply[20..], [0; 4], "STATUS_SUCCESS at {level:?}");
    assert_ne!(reply[..20], [0; 20], "a handle at {level:?}");
    let closed = binding
        .call(1, reply.slice(..20))
        .await
        .unwrap_or_else(|e| panic!("SamrCloseHandle at {level:?}: {e}"))
        .stub
        .to_bytes();
    assert_eq!(closed[..], [0; 24], "at {level:?}");
}
