//! Our own client association against each server: a bind asking for `PFC_CONC_MPX` and
//! header signing at each auth level, then several calls in flight at once, every answer
//! handled by the client's state machine; and every PDU a server sent in the cases read back
//! by the client's decoder.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use dsbackup_proto::iface::Interface;
use dsbackup_proto::{
    AuthLevel, ClientAssociation, ClientConfig, ClientEvent, Pdu, SecurityProvider, frame_len,
};

use crate::cases::Level;
use crate::run::{Target, initiator};

/// Calls sent before the first answer is read.
const CALLS: usize = 4;
/// mgmt `inq_if_ids`: no input, a vector of interface ids back.
const INQ_IF_IDS: u16 = 0;

/// What the client saw against one server at one level, as lines; `Err` when it failed.
pub(crate) fn exchange(target: &Target, level: Level) -> Result<Vec<String>, String> {
    let mut config = ClientConfig::default();
    config.conc_mpx = true;
    config.header_signing = true;
    let security: Option<Box<dyn SecurityProvider>> = match level {
        Level::None => None,
        _ => {
            config.auth_level = AuthLevel(level.wire());
            Some(Box::new(initiator(target, level, false)))
        }
    };
    let mut client = ClientAssociation::new(config, security).map_err(|e| e.to_string())?;
    let mut stream = TcpStream::connect_timeout(&target.addr, Duration::from_secs(3))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let contexts = client
        .bind(&[Interface::Mgmt.id().syntax()])
        .map_err(|e| format!("bind: {e}"))?;
    let context = *contexts.first().ok_or("no context proposed")?;
    let mut lines = Vec::new();
    let mut bound = false;
    while !bound {
        flush(&mut client, &mut stream)?;
        receive(&mut client, &mut stream)?;
        while let Some(event) = client.poll_event() {
            match event {
                ClientEvent::Bound {
                    conc_mpx,
                    header_signing,
                    ..
                } => {
                    lines.push(format!(
                        "bound: conc_mpx {conc_mpx}, header_signing {header_signing}"
                    ));
                    // Asked for, both must be granted (header signing needs a security
                    // context: our client asks for it from connect up).
                    if !conc_mpx || header_signing != (level != Level::None) {
                        return Err(format!(
                            "not granted what it asked: conc_mpx {conc_mpx}, header_signing {header_signing}"
                        ));
                    }
                    bound = true;
                }
                ClientEvent::BindRejected { reason, .. } => {
                    return Err(format!("bind refused: {reason:?}"));
                }
                _ => {}
            }
        }
    }
    let mut ids = Vec::new();
    for _ in 0..CALLS {
        ids.push(
            client
                .call(context, INQ_IF_IDS, None, Bytes::new())
                .map_err(|e| format!("call: {e}"))?,
        );
    }
    lines.push(format!("calls in flight: {}", client.calls_in_flight()));
    let mut answered = 0;
    while answered < CALLS {
        flush(&mut client, &mut stream)?;
        receive(&mut client, &mut stream)?;
        while let Some(event) = client.poll_event() {
            match event {
                ClientEvent::Response { call_id, stub, .. } if ids.contains(&call_id) => {
                    answered += 1;
                    lines.push(format!(
                        "call {}: response, {} stub bytes",
                        answered,
                        stub.len()
                    ));
                }
                ClientEvent::Fault {
                    call_id, status, ..
                } => {
                    return Err(format!("call {call_id}: fault {status:?}"));
                }
                _ => {}
            }
        }
    }
    Ok(lines)
}

fn flush(client: &mut ClientAssociation, stream: &mut TcpStream) -> Result<(), String> {
    while let Some(frame) = client.poll_transmit() {
        stream
            .write_all(&frame.to_bytes())
            .map_err(|e| format!("write: {e}"))?;
    }
    Ok(())
}

/// Reads one whole PDU and hands it to the client.
fn receive(client: &mut ClientAssociation, stream: &mut TcpStream) -> Result<(), String> {
    let frame = read_frame(stream)?;
    client
        .handle_frame(frame)
        .map_err(|e| format!("the client refused the server's PDU: {e}"))
}

fn read_frame(stream: &mut TcpStream) -> Result<Bytes, String> {
    let mut buf = vec![0u8; 16];
    stream
        .read_exact(&mut buf)
        .map_err(|e| format!("read: {e}"))?;
    let len = match frame_len(&buf, u16::MAX) {
        Ok(Some(len)) => len,
        // The header alone: `frag_length`, in the byte order `packed_drep` names.
        Ok(None) => {
            let raw: [u8; 2] = buf
                .get(8..10)
                .and_then(|b| b.try_into().ok())
                .ok_or("short header")?;
            usize::from(if buf.get(4).is_some_and(|d| d & 0x10 == 0) {
                u16::from_be_bytes(raw)
            } else {
                u16::from_le_bytes(raw)
            })
        }
        Err(e) => return Err(format!("header: {e}")),
    };
    buf.resize(len.max(16), 0);
    stream
        .read_exact(buf.get_mut(16..).unwrap_or_default())
        .map_err(|e| format!("read: {e}"))?;
    Ok(Bytes::from(buf))
}

/// Whether our decoder reads `frame`, a PDU a server sent: `None` when it does.
pub(crate) fn undecodable(frame: &[u8]) -> Option<String> {
    Pdu::decode(Bytes::copy_from_slice(frame))
        .err()
        .map(|e| e.to_string())
}
