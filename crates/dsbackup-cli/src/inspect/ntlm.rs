//! The `ntlm` object of a bind-type PDU: every field of an NTLM message, flags by name, the
//! CHALLENGE's server challenge and target info.

use dsbackup_ntlm::{AvId, AvPairs, Version, decode_string};
use dsbackup_ntlm::{Message, NegotiateFlags};
use serde_json::{Map, Value, json};

/// The fields of `message` (its name under `message`).
pub(crate) fn message_json(message: &Message) -> Map<String, Value> {
    let mut info = Map::new();
    match message {
        Message::Negotiate(negotiate) => {
            let flags = negotiate.flags;
            info.insert("message".into(), json!("NEGOTIATE"));
            info.insert("flags".into(), flags_json(flags));
            info.insert(
                "domain".into(),
                json!(decode_string(flags, &negotiate.domain_name)),
            );
            info.insert(
                "workstation".into(),
                json!(decode_string(flags, &negotiate.workstation)),
            );
            info.insert("version".into(), version_json(negotiate.version));
        }
        Message::Challenge(challenge) => {
            let flags = challenge.flags;
            info.insert("message".into(), json!("CHALLENGE"));
            info.insert("flags".into(), flags_json(flags));
            info.insert(
                "target_name".into(),
                json!(decode_string(flags, &challenge.target_name)),
            );
            info.insert(
                "server_challenge".into(),
                json!(hex::encode(challenge.server_challenge)),
            );
            info.insert(
                "target_info".into(),
                challenge.target_info.as_ref().map_or(Value::Null, av_json),
            );
            info.insert("version".into(), version_json(challenge.version));
        }
        Message::Authenticate(authenticate) => {
            info.insert("message".into(), json!("AUTHENTICATE"));
            info.insert("flags".into(), flags_json(authenticate.flags));
            info.insert("user".into(), json!(authenticate.user()));
            info.insert("domain".into(), json!(authenticate.domain()));
            info.insert("workstation".into(), json!(authenticate.workstation_name()));
            info.insert(
                "nt_response_length".into(),
                json!(authenticate.nt_challenge_response.len()),
            );
            info.insert("mic".into(), json!(authenticate.mic.map(hex::encode)));
            info.insert("version".into(), version_json(authenticate.version));
        }
    }
    info
}

/// `{"value": "0x…", "names": [...]}`: every set bit by its MS-NLMP name (`NTLMSSP_…`), unknown
/// bits as hex.
fn flags_json(flags: NegotiateFlags) -> Value {
    let mut names: Vec<String> = flags
        .iter_names()
        .map(|(name, _)| format!("NTLMSSP_{name}"))
        .collect();
    let unknown = flags.bits() & !NegotiateFlags::all().bits();
    if unknown != 0 {
        names.push(format!("{unknown:#010x}"));
    }
    json!({ "value": format!("{:#010x}", flags.bits()), "names": names })
}

fn version_json(version: Option<Version>) -> Value {
    version.map_or(Value::Null, |v| {
        json!(format!(
            "{}.{} build {} (NTLM revision {})",
            v.product_major_version,
            v.product_minor_version,
            v.product_build,
            v.ntlm_revision_current
        ))
    })
}

/// The target info: one object per AV_PAIR, names as text, MsvAvFlags by name, the timestamp
/// as a FILETIME, the rest as hex.
fn av_json(pairs: &AvPairs) -> Value {
    let text_ids = [
        AvId::NB_COMPUTER_NAME,
        AvId::NB_DOMAIN_NAME,
        AvId::DNS_COMPUTER_NAME,
        AvId::DNS_DOMAIN_NAME,
        AvId::DNS_TREE_NAME,
        AvId::TARGET_NAME,
    ];
    let items: Vec<Value> = pairs
        .0
        .iter()
        .filter(|pair| pair.id != AvId::EOL)
        .map(|pair| {
            let value =
                if text_ids.contains(&pair.id) {
                    json!(pairs.name(pair.id))
                } else if pair.id == AvId::TIMESTAMP {
                    json!(pairs.timestamp())
                } else if pair.id == AvId::FLAGS {
                    let flags = pairs.flags();
                    json!(flags.map(|flags| {
                        flags.iter_names().map(|(name, _)| name).collect::<Vec<_>>()
                    }))
                } else {
                    json!(hex::encode(&pair.value))
                };
            json!({
                "id": pair.id.name().map_or_else(|| format!("{:#06x}", pair.id.0), str::to_owned),
                "value": value,
            })
        })
        .collect();
    Value::Array(items)
}
