//! What the observer (`dsbackup_proto::observe`) made of a PDU, as fields of its JSON object.
//! The decoding state (contexts, calls, reassembly, keys) is the observer's; this only renders.

use dsbackup_ntlm::Message;
use dsbackup_proto::AuthType;
use dsbackup_proto::observe::{Handshake, Observation, Protected};
use serde_json::{Map, Value, json};

/// Adds `ntlm`, `sealed`, `unsealed`, `unsealed_stub`, `verified`, `security_error`, `call` and
/// `call_error` to `out` as `observation` warrants.
pub(crate) fn render(observation: &Observation, out: &mut Map<String, Value>) {
    if let Some(handshake) = &observation.handshake {
        render_handshake(observation, handshake, out);
    }
    match &observation.protection {
        None | Some(Protected::Clear | Protected::Unchecked) => {}
        Some(Protected::Verified) => {
            out.insert("verified".into(), json!(true));
        }
        Some(Protected::Sealed) => {
            out.insert("sealed".into(), json!(true));
        }
        Some(Protected::Unsealed(plain)) => {
            out.insert("sealed".into(), json!(true));
            out.insert("unsealed".into(), json!(true));
            out.insert("unsealed_stub".into(), json!(hex::encode(plain)));
        }
        Some(Protected::Failed { sealed, error }) => {
            if *sealed {
                out.insert("sealed".into(), json!(true));
            }
            out.insert("security_error".into(), json!(error.to_string()));
        }
    }
    if let Some(call) = &observation.call {
        super::call::observed(call, out);
    }
}

/// The `ntlm` object of an NTLM token, with `session_keys` or `session_error` when the
/// observer followed it with the password.
fn render_handshake(
    observation: &Observation,
    handshake: &Handshake,
    out: &mut Map<String, Value>,
) {
    let Some(verifier) = &observation.pdu.auth_verifier else {
        return;
    };
    if verifier.auth_type != AuthType::WINNT {
        return;
    }
    let mut info = match Message::decode(&verifier.auth_value) {
        Ok(message) => super::ntlm::message_json(&message),
        Err(error) => {
            out.insert("ntlm_error".into(), json!(error.to_string()));
            Map::new()
        }
    };
    match handshake {
        Handshake::Pending | Handshake::NotFollowed(_) => {}
        Handshake::Keys => {
            info.insert("session_keys".into(), json!("derived"));
        }
        Handshake::Failed(error) => {
            info.insert("session_error".into(), json!(error.to_string()));
        }
    }
    if !info.is_empty() {
        out.insert("ntlm".into(), Value::Object(info));
    }
}
