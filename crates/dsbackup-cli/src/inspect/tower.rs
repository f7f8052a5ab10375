//! Protocol towers of the endpoint mapper's calls, shown as string bindings as `rpcdump` and
//! tshark show them: `ncacn_ip_tcp:10.0.0.1[49667]`, `ncacn_np:\\DC1[\pipe\lsass]`.

use dsbackup_proto::iface::epm::{Floor, Tower};
use serde_json::{Value, json};

/// Adds `string_binding` and `floors` beside every `tower_octet_string` in `value` (an EPM call's
/// parameters), or `tower_error` when the tower does not decode.
pub(crate) fn annotate(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let tower = map
                .get("tower_octet_string")
                .and_then(Value::as_str)
                .and_then(|text| hex::decode(text).ok());
            if let Some(octets) = tower {
                match Tower::decode(&octets) {
                    Ok(tower) => {
                        map.insert("string_binding".into(), json!(string_binding(&tower)));
                        map.insert(
                            "floors".into(),
                            serde_json::to_value(&tower.floors).unwrap_or(Value::Null),
                        );
                    }
                    Err(error) => {
                        map.insert("tower_error".into(), json!(error.to_string()));
                    }
                }
            }
            map.values_mut().for_each(annotate);
        }
        Value::Array(items) => items.iter_mut().for_each(annotate),
        _ => {}
    }
}

/// Protocol identifiers of the floors below the interface and transfer syntax.
const NCACN: u8 = 0x0b;
const NCALRPC: u8 = 0x0c;
const NAMED_PIPE: u8 = 0x0f;
const LRPC_PORT: u8 = 0x10;
const NETBIOS: u8 = 0x11;
const HTTP: u8 = 0x1f;

/// The string binding of a tower (`PROTSEQ:HOST[ENDPOINT]`), or `None` for a tower whose
/// protocol sequence is not one a string binding names.
pub(crate) fn string_binding(tower: &Tower) -> Option<String> {
    let mut tcp = None;
    let mut ip = None;
    let mut rpc = None;
    let mut other: Vec<(u8, &[u8])> = Vec::new();
    for floor in tower.floors.iter().skip(2) {
        match floor {
            Floor::ConnectionOriented { .. } => rpc = Some(NCACN),
            Floor::Tcp { port } => tcp = Some(*port),
            Floor::Ip { address } => ip = Some(std::net::Ipv4Addr::from(*address)),
            Floor::Other {
                protocol, rhs_data, ..
            } => {
                if *protocol == NCALRPC {
                    rpc = Some(NCALRPC);
                }
                other.push((*protocol, rhs_data));
            }
            Floor::Uuid { .. } => {}
        }
    }
    let text = |protocol: u8| {
        other.iter().find(|(p, _)| *p == protocol).map(|(_, rhs)| {
            let rhs = rhs.split(|b| *b == 0).next().unwrap_or_default();
            String::from_utf8_lossy(rhs).into_owned()
        })
    };
    let host = ip.map(|ip| ip.to_string()).unwrap_or_default();
    match rpc {
        Some(NCACN) => {
            if let Some(port) = tcp {
                let protseq = if other.iter().any(|(p, _)| *p == HTTP) {
                    "ncacn_http"
                } else {
                    "ncacn_ip_tcp"
                };
                return Some(format!("{protseq}:{host}[{port}]"));
            }
            if let Some(pipe) = text(NAMED_PIPE) {
                let host = text(NETBIOS).unwrap_or_default();
                let host = if host.is_empty() {
                    String::new()
                } else {
                    format!("\\\\{host}")
                };
                return Some(format!("ncacn_np:{host}[{pipe}]"));
            }
            other
                .iter()
                .find(|(p, _)| *p == HTTP)
                .and_then(|(_, rhs)| <[u8; 2]>::try_from(*rhs).ok())
                .map(|port| format!("ncacn_http:{host}[{}]", u16::from_be_bytes(port)))
        }
        Some(NCALRPC) => text(LRPC_PORT).map(|port| format!("ncalrpc:[{port}]")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use dsbackup_proto::iface::Interface;

    use super::*;

    #[test]
    fn tcp_and_named_pipe_towers_read_as_rpcdump_writes_them() {
        let tcp = Tower::ncacn_ip_tcp(Interface::Epm.id(), 49667, [10, 0, 0, 1]);
        assert_eq!(
            string_binding(&tcp).as_deref(),
            Some("ncacn_ip_tcp:10.0.0.1[49667]")
        );
        // Samba's answer to rpcclient's ept_map for SAMR: a named pipe on host 127.0.0.1.
        let octets = hex::decode(
            "050013000d785734123412cdabef000123456789ab00000200000013000d045d888aeb1cc9119fe80800\
             2b10486002000200000001000b0200000001000f0c005c706970655c6c7361737300010011010000",
        )
        .unwrap();
        let pipe = Tower::decode(&octets).unwrap();
        assert_eq!(
            string_binding(&pipe).as_deref(),
            Some("ncacn_np:[\\pipe\\lsass]")
        );
    }

    #[test]
    fn towers_inside_call_parameters_are_annotated() {
        let tcp = Tower::ncacn_ip_tcp(Interface::Epm.id(), 135, [127, 0, 0, 1]);
        let mut params = json!({
            "towers": {"items": [{"tower_octet_string": hex::encode(tcp.encode().unwrap())}]},
            "bad": {"tower_octet_string": "0500"},
        });
        annotate(&mut params);
        assert_eq!(
            params["towers"]["items"][0]["string_binding"],
            "ncacn_ip_tcp:127.0.0.1[135]"
        );
        assert_eq!(
            params["towers"]["items"][0]["floors"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
        assert!(params["bad"]["tower_error"].is_string());
    }
}
