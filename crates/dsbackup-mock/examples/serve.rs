//! A minimal blocking server over the mock's core, one thread per connection: enough to point
//! an independent client (impacket) at the mock before the tokio transport is wired.
//! Not the product's server: no limit on connections. The connection faults of the config apply
//! (a refused bind closes the connection: this driver has no bind_nak of its own).
//!
//! `cargo run -p dsbackup-mock --example serve -- CONFIG.toml PORT`
//!
//! ad_backup, ad_restore and the endpoint mapper are all served on PORT, with NTLM.

use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use dsbackup_mock::{
    Caller, ConnectionFaults, ConnectionId, EndpointMap, MockConfig, MockDc, Principal,
    corrupt_fragment, filetime,
};
use dsbackup_ntlm::{Acceptor, AcceptorConfig, ServerInputs};
use dsbackup_proto::{
    AuthLevel, AuthStep, AuthType, Protection, SecurityError, SecurityFactory, SecurityProvider,
    ServerAssociation, ServerConfig, ServerEvent, frame_len,
};

/// The NTLM acceptor, remembering who logged on.
#[derive(Debug)]
struct Recording {
    inner: Acceptor,
    who: Arc<Mutex<Option<Principal>>>,
}

impl SecurityProvider for Recording {
    fn auth_type(&self) -> AuthType {
        self.inner.auth_type()
    }

    fn step(&mut self, peer_token: Option<&[u8]>) -> Result<AuthStep, SecurityError> {
        let step = self.inner.step(peer_token)?;
        if let (Some(identity), Ok(mut who)) = (self.inner.identity(), self.who.lock()) {
            *who = Some(Principal {
                user: identity.user.clone(),
                domain: identity.domain.clone(),
            });
        }
        Ok(step)
    }

    fn is_established(&self) -> bool {
        self.inner.is_established()
    }

    fn signature_len(&self) -> usize {
        self.inner.signature_len()
    }

    fn wrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &mut [u8],
    ) -> Result<(), SecurityError> {
        self.inner.wrap(protection, pdu, stub, signature)
    }

    fn unwrap(
        &mut self,
        protection: Protection,
        pdu: &mut [u8],
        stub: Range<usize>,
        signature: &[u8],
    ) -> Result<(), SecurityError> {
        self.inner.unwrap(protection, pdu, stub, signature)
    }
}

/// Eight bytes no one predicts (a per-process random hasher key over a counter).
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

fn serve_connection(
    dc: &MockDc,
    map: &EndpointMap,
    mut stream: TcpStream,
    conn: ConnectionId,
) -> Result<(), Box<dyn std::error::Error>> {
    let who = Arc::new(Mutex::new(None));
    let recorder = Arc::clone(&who);
    let store = Arc::new(dc.clone());
    let config = dc.config().clone();
    let factory: SecurityFactory = Box::new(move |auth_type| {
        (auth_type == AuthType::WINNT).then(|| {
            let acceptor = AcceptorConfig::new(
                store.clone(),
                &config.dc_name,
                &config.domain,
                "mock.example",
            );
            let inputs = ServerInputs {
                server_challenge: random_u64().to_le_bytes(),
                timestamp: filetime(SystemTime::now()),
            };
            Box::new(Recording {
                inner: Acceptor::new(acceptor, inputs),
                who: Arc::clone(&recorder),
            }) as Box<dyn SecurityProvider>
        })
    });
    let mut interfaces = dc.server_interfaces();
    interfaces.push(EndpointMap::server_interface());
    let group = u32::try_from(conn.0 & 0xFFFF_FFFF)?;
    let mut server = ServerAssociation::new(ServerConfig::new(interfaces, group), Some(factory))?;
    let mut faults = ConnectionFaults::new(dc.faults().clone());
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 || faults.refuse_bind() {
            return Ok(());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        while let Some(len) = frame_len(&buf, server.max_recv_frag())? {
            server.handle_frame(buf.split_to(len).freeze())?;
        }
        while let Some(event) = server.poll_event() {
            let ServerEvent::Request(request) = event else {
                continue;
            };
            let caller = Caller {
                principal: who.lock().ok().and_then(|p| p.clone()),
                auth_level: request.auth_level,
                connection: conn,
            };
            let now = SystemTime::now();
            let answer = match MockDc::SERVED_INTERFACES.get(request.interface) {
                Some(&iface) => dc
                    .serve_stub(
                        &caller,
                        now,
                        iface,
                        request.opnum,
                        request.drep,
                        &request.stub,
                    )
                    .map(|reply| {
                        std::thread::sleep(reply.delay);
                        reply.response
                    }),
                None => map.serve_stub(request.opnum, request.drep, &request.stub),
            };
            match answer {
                Ok(stub) => server.respond(request.call_id, Bytes::from(stub))?,
                Err(error) => server.fault(request.call_id, error.fault_status())?,
            }
            if faults.call_answered() {
                flush(&mut server, &mut stream, &mut faults)?;
                return Ok(());
            }
        }
        if !flush(&mut server, &mut stream, &mut faults)? {
            return Ok(());
        }
    }
}

/// Writes what the association has to send, applying the byte and fragment faults; false when
/// the connection must close.
fn flush(
    server: &mut ServerAssociation,
    stream: &mut TcpStream,
    faults: &mut ConnectionFaults,
) -> std::io::Result<bool> {
    while let Some(pdu) = server.poll_transmit() {
        let mut pdu = pdu.to_vec();
        if pdu.get(2) == Some(&2) && faults.response_fragment() {
            // PTYPE 2: a response fragment.
            corrupt_fragment(&mut pdu);
        }
        let allowed = faults.allow_bytes(pdu.len());
        stream.write_all(pdu.get(..allowed).unwrap_or_default())?;
        if faults.must_close() {
            return Ok(false);
        }
    }
    Ok(true)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: serve CONFIG.toml PORT";
    let config = MockConfig::load(Path::new(&args.next().ok_or(usage)?))?;
    let port: u16 = args.next().ok_or(usage)?.parse()?;
    let min_level: AuthLevel = config.min_auth_level;
    let dc = MockDc::new(config)?;
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let map = EndpointMap::new(listener.local_addr()?.port(), [127, 0, 0, 1]);
    eprintln!("mock DC on 127.0.0.1:{port} (minimum auth level {min_level})");
    // Sessions idle past the configured timeout end, as on a server.
    let sweeper = dc.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            for handle in sweeper.expire_idle(SystemTime::now()) {
                eprintln!("idle session {:?} ended", handle.uuid);
            }
        }
    });
    let mut next = 0u64;
    for stream in listener.incoming() {
        let stream = stream?;
        next += 1;
        let (dc, map, conn) = (dc.clone(), map.clone(), ConnectionId(next));
        std::thread::spawn(move || {
            if let Err(error) = serve_connection(&dc, &map, stream, conn) {
                eprintln!("connection {}: {error}", conn.0);
            }
            dc.connection_closed(conn);
        });
    }
    Ok(())
}
