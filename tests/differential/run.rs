//! Runs one case against one server: each step's PDU written in one write, the replies read
//! until the server falls silent or closes, each reply observed field by field.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use dsbackup_ntlm::{ClientInputs, Credentials, Initiator, InitiatorConfig};
use dsbackup_proto::{AuthLevel, AuthStep, SecurityProvider};

use crate::cases::{Auth, Case, Leg, Level, Mutation, Req, Step};
use crate::observe::{Roles, observe};
use crate::wire::{Assembled, Header, Trailer, Writer, assemble, ptype};

/// How long to wait for a first reply, for a further one, and for a close after a refusal.
const FIRST_REPLY: Duration = Duration::from_millis(600);
const NEXT_REPLY: Duration = Duration::from_millis(80);
const CLOSE_AFTER_REFUSAL: Duration = Duration::from_millis(300);

/// What an observation line says when our own decoder refuses a reply.
pub(crate) const UNDECODABLE: &str = "our decoder refuses it: ";

/// A server under test.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) user: String,
    pub(crate) domain: String,
    pub(crate) password: String,
}

/// One connection's state.
struct Conn {
    stream: Option<TcpStream>,
    initiator: Option<Initiator>,
    token: Option<Vec<u8>>,
}

pub(crate) fn initiator(target: &Target, level: Level, wrong_password: bool) -> Initiator {
    let password = if wrong_password {
        "not the password"
    } else {
        &target.password
    };
    let credentials = Credentials::from_password(&target.user, &target.domain, password);
    let protection = AuthLevel(level.wire()).protection();
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_add(11_644_473_600)
        .saturating_mul(10_000_000);
    Initiator::new(
        InitiatorConfig::for_protection(credentials, protection),
        ClientInputs {
            client_challenge: *b"dsbkdiff",
            random_session_key: *b"differential-key",
            timestamp,
        },
    )
}

fn apply(header: &mut Header, m: &Mutation) {
    if let Some(v) = m.vers {
        header.vers = v;
    }
    if let Some(v) = m.minor {
        header.minor = v;
    }
    if let Some(v) = m.ptype {
        header.ptype = v;
    }
    if let Some(v) = m.flags {
        header.flags = v;
    }
    header.flags |= m.flags_set;
    header.flags &= !m.flags_clear;
    if let Some(v) = m.drep {
        header.drep = v;
    }
    if let Some(v) = m.call_id {
        header.call_id = v;
    }
}

/// Frame-level mutations, after assembly (and signing).
fn finish(mut bytes: Vec<u8>, header: &Header, m: &Mutation) -> Vec<u8> {
    let put = |bytes: &mut Vec<u8>, at: usize, v: u16| {
        let b = if header.big_endian() {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        if let Some(slot) = bytes.get_mut(at..at + 2) {
            slot.copy_from_slice(&b);
        }
    };
    if let Some(len) = m.auth_len {
        put(&mut bytes, 10, len);
    }
    if m.frag_delta != 0 {
        let len = bytes.len().saturating_add_signed(isize::from(m.frag_delta));
        bytes.resize(len, 0);
        put(&mut bytes, 8, u16::try_from(len).unwrap_or(u16::MAX));
    }
    bytes
}

impl Conn {
    /// The trailer of a handshake PDU.
    fn handshake_trailer(
        &mut self,
        target: &Target,
        level: Level,
        auth: &Auth,
        first: bool,
    ) -> Option<Trailer> {
        let value = match auth.leg {
            Leg::None => return None,
            Leg::Zeros => vec![0; 16],
            Leg::Natural => {
                let step = if first || auth.wrong_password {
                    let mut fresh = initiator(target, level, auth.wrong_password);
                    let step = if first {
                        fresh.step(None)
                    } else {
                        let _ = fresh.step(None);
                        fresh.step(self.token.as_deref())
                    };
                    self.initiator = Some(fresh);
                    step
                } else {
                    self.initiator.as_mut()?.step(self.token.as_deref())
                };
                match step {
                    Ok(AuthStep::Continue(t) | AuthStep::Complete(Some(t))) => t,
                    _ => vec![0; 16],
                }
            }
        };
        Some(Trailer {
            auth_type: auth.auth_type.unwrap_or(10),
            auth_level: auth.auth_level.unwrap_or_else(|| level.wire()),
            context_id: auth.context_id.unwrap_or(0),
            value,
        })
    }

    fn build(&mut self, step: &Step, target: &Target, level: Level) -> Option<Vec<u8>> {
        match step {
            Step::Bind {
                call_id,
                body,
                join_group: _,
                auth,
                mutation,
            }
            | Step::Alter {
                call_id,
                body,
                auth,
                mutation,
                ..
            } => {
                let is_bind = matches!(step, Step::Bind { .. });
                let p = if is_bind {
                    ptype::BIND
                } else {
                    ptype::ALTER_CONTEXT
                };
                let mut header = Header::new(p, *call_id);
                apply(&mut header, mutation);
                let mut w = Writer::new(header.big_endian());
                body.encode(&mut w);
                let trailer = self.handshake_trailer(target, level, auth, is_bind);
                let a = assemble(&header, &w.buf, 0, 4, trailer.as_ref());
                Some(finish(a.bytes, &header, mutation))
            }
            Step::Auth3 {
                call_id,
                auth,
                mutation,
            } => {
                let mut header = Header::new(ptype::AUTH3, *call_id);
                apply(&mut header, mutation);
                let trailer = self.handshake_trailer(target, level, auth, false);
                let a = assemble(&header, &[0; 4], 0, 4, trailer.as_ref());
                Some(finish(a.bytes, &header, mutation))
            }
            Step::Request(req, mutation) => Some(self.request(req, mutation, level)),
            Step::Bare {
                ptype: p,
                call_id,
                mutation,
            } => {
                let mut header = Header::new(*p, *call_id);
                apply(&mut header, mutation);
                let a = assemble(&header, &[], 0, 4, None);
                Some(finish(a.bytes, &header, mutation))
            }
            Step::Reconnect => None,
        }
    }

    fn request(&mut self, req: &Req, mutation: &Mutation, level: Level) -> Vec<u8> {
        let mut header = Header::new(ptype::REQUEST, req.call_id);
        header.flags = req.flags;
        if req.object.is_some() {
            header.flags |= crate::wire::pfc::OBJECT_UUID;
        }
        apply(&mut header, mutation);
        let mut w = Writer::new(header.big_endian());
        w.u32(
            req.alloc_hint
                .unwrap_or_else(|| u32::try_from(req.stub.len()).unwrap_or(0)),
        );
        w.u16(req.ctx);
        w.u16(req.opnum);
        if let Some(object) = req.object {
            w.guid(object);
        }
        let stub_start = w.buf.len();
        w.buf.extend_from_slice(&req.stub);
        let signs = matches!(level, Level::Integrity | Level::Privacy);
        let trailer = match req.auth.leg {
            Leg::None => None,
            Leg::Zeros => Some(Trailer {
                auth_type: req.auth.auth_type.unwrap_or(10),
                auth_level: req.auth.auth_level.unwrap_or_else(|| level.wire()),
                context_id: req.auth.context_id.unwrap_or(0),
                value: vec![0; 16],
            }),
            Leg::Natural if signs => Some(Trailer {
                auth_type: req.auth.auth_type.unwrap_or(10),
                auth_level: req.auth.auth_level.unwrap_or_else(|| level.wire()),
                context_id: req.auth.context_id.unwrap_or(0),
                value: vec![0; 16],
            }),
            Leg::Natural => None,
        };
        let Assembled {
            mut bytes,
            stub,
            trailer_end,
        } = assemble(&header, &w.buf, stub_start, 16, trailer.as_ref());
        if req.auth.leg == Leg::Natural
            && signs
            && let (Some(end), Some(provider)) = (trailer_end, self.initiator.as_mut())
        {
            let protection = AuthLevel(level.wire()).protection();
            let (head, signature) = bytes.split_at_mut(end);
            let _ = provider.wrap(protection, head, stub, signature);
        }
        finish(bytes, &header, mutation)
    }
}

/// Reads one PDU; `None` on silence, `Some(Err)` when the connection closed.
fn read_pdu(stream: &mut TcpStream, wait: Duration) -> Option<Result<Vec<u8>, String>> {
    let _ = stream.set_read_timeout(Some(wait));
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match stream.read(head.get_mut(got..).unwrap_or_default()) {
            Ok(0) => return Some(Err("closed".into())),
            Ok(n) => got += n,
            Err(e)
                if got == 0 && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                return None;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(Err("closed".into())),
            Err(e) => return Some(Err(format!("closed ({e})"))),
        }
    }
    let big_endian = head[4] & 0x10 == 0;
    let len = if big_endian {
        u16::from_be_bytes([head[8], head[9]])
    } else {
        u16::from_le_bytes([head[8], head[9]])
    };
    let mut frame = head.to_vec();
    frame.resize(usize::from(len).max(16), 0);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .read_exact(frame.get_mut(16..).unwrap_or_default())
        .is_err()
    {
        return Some(Err("closed mid-PDU".into()));
    }
    Some(Ok(frame))
}

/// The observations of one case against one server: `step N label: field = value` lines.
pub(crate) fn run(case: &Case, target: &Target) -> Vec<String> {
    let mut lines = Vec::new();
    let mut roles = Roles {
        port: target.addr.port(),
        ..Roles::default()
    };
    let connect = || {
        TcpStream::connect_timeout(&target.addr, Duration::from_secs(3))
            .inspect(|s| {
                let _ = s.set_nodelay(true);
            })
            .ok()
    };
    let mut conns = vec![Conn {
        stream: connect(),
        initiator: None,
        token: None,
    }];
    for (i, step) in case.steps.iter().enumerate() {
        let label = format!("step {} {}", i + 1, step.label());
        if matches!(step, Step::Reconnect) {
            conns.push(Conn {
                stream: connect(),
                initiator: None,
                token: None,
            });
            continue;
        }
        let Some(conn) = conns.last_mut() else { break };
        let bytes = {
            let mut step = step.clone();
            if let Step::Bind {
                join_group: Some(n),
                body,
                ..
            } = &mut step
            {
                body.assoc_group = roles.group_id(*n).unwrap_or(0);
            }
            conn.build(&step, target, case.level)
        };
        let Some(bytes) = bytes else { continue };
        let Some(stream) = conn.stream.as_mut() else {
            lines.push(format!("{label}: not sent, connection closed"));
            break;
        };
        if stream.write_all(&bytes).is_err() {
            lines.push(format!("{label}: not sent, connection closed"));
            conn.stream = None;
            break;
        }
        let mut wait = FIRST_REPLY;
        let mut refused = false;
        let mut n = 0;
        loop {
            match read_pdu(stream, wait) {
                None => break,
                Some(Err(why)) => {
                    lines.push(format!("{label}: connection {why}"));
                    conn.stream = None;
                    break;
                }
                Some(Ok(frame)) => {
                    n += 1;
                    let p = frame.get(2).copied().unwrap_or(0);
                    refused |= matches!(p, ptype::FAULT | ptype::BIND_NAK);
                    if matches!(p, ptype::BIND_ACK | ptype::ALTER_CONTEXT_RESP) {
                        conn.token = token(&frame);
                    }
                    for field in observe(&frame, &mut roles) {
                        lines.push(format!("{label} reply {n}: {field}"));
                    }
                    if let Some(why) = crate::client::undecodable(&frame) {
                        lines.push(format!("{label} reply {n}: {UNDECODABLE}{why}"));
                    }
                    wait = NEXT_REPLY;
                }
            }
        }
        if n == 0 && conn.stream.is_some() {
            lines.push(format!("{label}: no reply"));
        }
        if refused
            && let Some(stream) = conn.stream.as_mut()
            && let Some(Err(why)) = read_pdu(stream, CLOSE_AFTER_REFUSAL)
        {
            lines.push(format!("{label}: connection {why}"));
            conn.stream = None;
        }
        if conn.stream.is_none() {
            break;
        }
    }
    if let Some(stream) = conns.last_mut().and_then(|c| c.stream.as_mut()) {
        match read_pdu(stream, CLOSE_AFTER_REFUSAL) {
            Some(Err(why)) => lines.push(format!("end: connection {why}")),
            Some(Ok(frame)) => {
                for field in observe(&frame, &mut roles) {
                    lines.push(format!("end: late reply: {field}"));
                }
            }
            None => lines.push("end: connection open".to_owned()),
        }
    }
    lines
}

/// The auth_value of a bind_ack or alter_context_resp.
fn token(frame: &[u8]) -> Option<Vec<u8>> {
    let big_endian = frame.get(4)? & 0x10 == 0;
    let pick = |a: u8, b: u8| {
        if big_endian {
            u16::from_be_bytes([a, b])
        } else {
            u16::from_le_bytes([a, b])
        }
    };
    let frag = usize::from(pick(*frame.get(8)?, *frame.get(9)?));
    let auth = usize::from(pick(*frame.get(10)?, *frame.get(11)?));
    if auth == 0 {
        return None;
    }
    frame.get(frag.checked_sub(auth)?..frag).map(<[u8]>::to_vec)
}
