//! `-v`, `-vv`, `-vvv`: what went on the wire, told from the traffic itself. A [`Tap`] on the
//! client's connections feeds each connection's PDUs to proto's observer (the one behind
//! `inspect`), and logs under the target `dsbackup::wire`:
//!
//! | level | flag | what |
//! | --- | --- | --- |
//! | info | `-v` | each step: the connection, the endpoint mapper's answer (as string bindings), each binding (interface, context, transfer syntax), the negotiated authentication (package, level, NTLM flags) |
//! | debug | `-vv` | each call: interface, operation name, call id, and its answer or fault |
//! | trace | `-vvv` | each PDU: type, call id, flags, length |
//!
//! The library's own events (each file opened, the session ended) come at `-v` too
//! (`dsbackup_client` at debug). Sealed stubs stay sealed: the log names calls, and decodes the
//! parameters of those that went in the clear (the endpoint mapper's).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use dsbackup_krb::{NTLM_OID, NegTokenResp, is_kerberos};
use dsbackup_ntlm::Message;
use dsbackup_proto::observe::{Half, Observation, Observer};
use dsbackup_proto::{AuthType, ContResult, PduBody, SyntaxId, frame_len};
use dsbackup_transport::{Tap, TapEnds, TapEvent};
use serde_json::{Map, Value};

use crate::pcapng::Capture;

const TARGET: &str = "dsbackup::wire";

/// One connection followed: the observer and the bytes of a PDU not whole yet, per direction.
struct Followed {
    observer: Observer,
    from_client: BytesMut,
    from_server: BytesMut,
}

/// The tap of a client's connections: the capture file's (`--capture`), the log's (`-v` and
/// more), both, or none.
pub(crate) fn client_tap(capture: Option<Capture>) -> Option<Tap> {
    let log = tracing::enabled!(target: TARGET, tracing::Level::INFO).then(Log::default);
    if capture.is_none() && log.is_none() {
        return None;
    }
    Some(Tap::new(move |ends, event| {
        if let Some(capture) = &capture {
            capture.event(ends, event);
        }
        if let Some(log) = &log {
            log.event(ends, event);
        }
    }))
}

/// The connections followed for the log.
#[derive(Default)]
struct Log(Mutex<HashMap<TapEnds, Followed>>);

impl Log {
    fn event(&self, ends: TapEnds, event: TapEvent<'_>) {
        let mut connections = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            TapEvent::Opened => {
                tracing::info!(target: TARGET, "connected to {} from {}", ends.server, ends.client);
                connections.insert(
                    ends,
                    Followed {
                        observer: Observer::new(None),
                        from_client: BytesMut::new(),
                        from_server: BytesMut::new(),
                    },
                );
            }
            TapEvent::Closed => {
                tracing::debug!(target: TARGET, "connection to {} closed", ends.server);
                connections.remove(&ends);
            }
            TapEvent::FromClient(bytes) | TapEvent::FromServer(bytes) => {
                let from_client = matches!(event, TapEvent::FromClient(_));
                if let Some(followed) = connections.get_mut(&ends) {
                    followed.bytes(ends, from_client, bytes);
                }
            }
        }
    }
}

impl Followed {
    fn bytes(&mut self, ends: TapEnds, from_client: bool, bytes: &[u8]) {
        let buf = if from_client {
            &mut self.from_client
        } else {
            &mut self.from_server
        };
        buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        while let Ok(Some(len)) = frame_len(buf, u16::MAX) {
            frames.push(buf.split_to(len).freeze());
        }
        if frame_len(buf, u16::MAX).is_err() {
            buf.clear();
        }
        for frame in frames {
            self.frame(ends, frame);
        }
    }

    fn frame(&mut self, ends: TapEnds, frame: Bytes) {
        let len = frame.len();
        let Ok(observation) = self.observer.observe(frame) else {
            tracing::trace!(target: TARGET, "{len} bytes that are not a PDU");
            return;
        };
        let pdu = &observation.pdu;
        tracing::trace!(
            target: TARGET,
            "{} {} call_id {} flags {:?} {len} bytes",
            match observation.sender {
                dsbackup_proto::observe::Sender::Client => "sent",
                dsbackup_proto::observe::Sender::Server => "received",
            },
            pdu.header().map_or("?", |h| h.ptype.name().unwrap_or("?")),
            pdu.call_id,
            pdu.pfc_flags.names(pdu.header().map_or(dsbackup_proto::PacketType(0), |h| h.ptype)),
        );
        step(ends, &observation);
    }
}

/// An authentication level as `--auth` spells it.
fn level_name(level: dsbackup_proto::AuthLevel) -> String {
    match level.0 {
        1 => "none".to_owned(),
        2 => "connect".to_owned(),
        3..=5 => "integrity".to_owned(),
        6 => "privacy".to_owned(),
        other => format!("level {other}"),
    }
}

fn syntax_name(syntax: &SyntaxId) -> String {
    dsbackup_proto::iface::Interface::from_uuid(syntax.uuid, syntax.version).map_or_else(
        || {
            format!(
                "{} v{}.{}",
                syntax.uuid, syntax.version, syntax.version_minor
            )
        },
        |iface| {
            format!(
                "{} v{}.{}",
                iface.id().name,
                syntax.version,
                syntax.version_minor
            )
        },
    )
}

/// Logs what `observation` tells at `-v` and `-vv`.
fn step(ends: TapEnds, observation: &Observation) {
    let pdu = &observation.pdu;
    match &pdu.body {
        PduBody::Bind(bind) => {
            for context in &bind.p_context_elem {
                tracing::info!(
                    target: TARGET,
                    "binding to {} on {} (context {})",
                    syntax_name(&context.abstract_syntax),
                    ends.server,
                    context.p_cont_id
                );
            }
        }
        PduBody::BindAck(ack) => {
            for result in &ack.p_result_list {
                if result.result == ContResult::ACCEPTANCE {
                    let syntax = if result.transfer_syntax == SyntaxId::NDR {
                        "NDR 2.0"
                    } else {
                        "another transfer syntax"
                    };
                    tracing::info!(target: TARGET, "bound on {} ({syntax})", ends.server);
                } else {
                    tracing::info!(
                        target: TARGET,
                        "a context was refused by {}: {}",
                        ends.server,
                        result.provider_reason().name().unwrap_or("unknown reason")
                    );
                }
            }
        }
        PduBody::BindNak(nak) => tracing::info!(
            target: TARGET,
            "bind refused by {}: {}",
            ends.server,
            nak.provider_reject_reason.name().unwrap_or("unknown reason")
        ),
        _ => {}
    }
    let spnego = pdu.auth_verifier.as_ref().and_then(|verifier| {
        (verifier.auth_type == AuthType::GSS_NEGOTIATE)
            .then(|| NegTokenResp::decode(&verifier.auth_value).ok())
            .flatten()
    });
    if let Some(mech) = spnego
        .as_ref()
        .and_then(|resp| resp.supported_mech.as_deref())
    {
        let name = if mech == NTLM_OID {
            "NTLM"
        } else if is_kerberos(mech) {
            "Kerberos"
        } else {
            "an unknown mechanism"
        };
        tracing::info!(target: TARGET, "{} chose {name} inside SPNEGO", ends.server);
    }
    // NTLM's AUTHENTICATE, by itself or inside SPNEGO.
    let ntlm = match (&pdu.auth_verifier, &spnego) {
        (Some(verifier), _) if verifier.auth_type == AuthType::WINNT => {
            Some(verifier.auth_value.as_ref())
        }
        (Some(_), Some(resp)) => resp.response_token.as_deref(),
        _ => None,
    };
    if let Some(verifier) = &pdu.auth_verifier
        && observation.handshake.is_some()
        && let Some(token) = ntlm
        && let Ok(Message::Authenticate(authenticate)) = Message::decode(token)
    {
        let inside = if spnego.is_some() {
            " inside SPNEGO"
        } else {
            ""
        };
        let flags: Vec<String> = authenticate
            .flags
            .iter_names()
            .map(|(name, _)| format!("NTLMSSP_{name}"))
            .collect();
        let user = authenticate.user().unwrap_or_default();
        let account = match authenticate.domain().unwrap_or_default() {
            domain if domain.is_empty() => user,
            domain => format!("{domain}\\{user}"),
        };
        tracing::info!(
            target: TARGET,
            "authenticating as {account} with NTLM{inside} at --auth {}, flags {}",
            level_name(verifier.auth_level),
            flags.join("|")
        );
    }
    let Some(call) = &observation.call else {
        return;
    };
    let name = call
        .iface
        .and_then(|iface| iface.id().call(call.opnum).map(|info| info.name))
        .map_or_else(|| format!("opnum {}", call.opnum), str::to_owned);
    let iface = syntax_name(&call.syntax);
    match call.half {
        Half::Request => {
            tracing::debug!(target: TARGET, "call {iface} {name} (call_id {})", pdu.call_id);
        }
        Half::Fault => {
            let status = match &pdu.body {
                PduBody::Fault(fault) => fault.status.name().unwrap_or("unknown status"),
                _ => "",
            };
            tracing::debug!(target: TARGET, "{name} faulted: {status} (call_id {})", pdu.call_id);
        }
        Half::Response => {
            tracing::debug!(target: TARGET, "{name} answered (call_id {})", pdu.call_id);
            // The endpoint mapper's answer: where the interface is.
            let mut out = Map::new();
            crate::inspect::render_call(call, &mut out);
            let mut bindings = Vec::new();
            collect_bindings(&out, &mut bindings);
            for binding in bindings {
                tracing::info!(target: TARGET, "the endpoint mapper answered {binding}");
            }
        }
    }
}

/// Every `string_binding` in a rendered call.
fn collect_bindings(map: &Map<String, Value>, out: &mut Vec<String>) {
    for (key, value) in map {
        match value {
            Value::String(text) if key == "string_binding" => out.push(text.clone()),
            Value::Object(inner) => collect_bindings(inner, out),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        collect_bindings(inner, out);
                    }
                }
            }
            _ => {}
        }
    }
}
