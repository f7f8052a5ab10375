//! `dsbackup inspect`: decodes connection-oriented DCE/RPC PDUs from files or standard input and
//! prints one JSON object per PDU.
//!
//! Input is either binary (one or more whole PDUs back to back, split by `frag_length`) or hex
//! text: one PDU a line, optionally prefixed by `I ` (client to server) or `O ` (server to
//! client); blank lines and lines starting with `#` are skipped.
//!
//! Each input is one conversation ([`conversation`]): the call stubs of ad_backup, ad_restore,
//! epm and mgmt are decoded under `"call"` once a bind in the same input has named the
//! interface; with `--nt-password` the NTLM handshake is followed and sealed stubs are unsealed.
//! With `--iface NAME --opnum N --request|--response` the input is one bare stub instead.
//!
//! Fields a PDU's object may carry beyond its header, body and verifier:
//!
//! | field | when |
//! | --- | --- |
//! | `call` | the last fragment of a call of a known interface: `interface`, `opnum`, `name`, `direction` (`request`, `response`, `fault`), `params` by IDL name, `trailing` (hex of bytes past the last parameter) |
//! | `call_error` | that stub does not decode (the run goes on) |
//! | `sealed` | a stub PDU at packet privacy |
//! | `unsealed`, `unsealed_stub` | with the password: the signature verified, the plaintext stub (hex) |
//! | `verified` | with the password: a signed (integrity) PDU whose signature verified |
//! | `security_error` | with the password: why a protected PDU could not be verified or unsealed |
//! | `ntlm` | an NTLM message in a bind-type verifier: `message`, and for AUTHENTICATE `user`, `domain`, `session_keys` or `session_error` |

mod call;
mod conversation;

use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use bytes::Bytes;
use dsbackup_ntlm::NtHash;
use dsbackup_proto::iface::Interface;
use dsbackup_proto::{
    AuthVerifier, ContextResult, DataRep, Pdu, PduBody, PresentationContext, SyntaxId, frame_len,
};
use serde_json::{Value, json};

use self::call::{Half, decode_call};
use self::conversation::Conversation;

/// Arguments of `dsbackup inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Files to read (binary PDUs or hex text); standard input when none, or for `-`.
    files: Vec<PathBuf>,
    /// Decode each input as one bare call stub of this interface (ad_backup, ad_restore, epm,
    /// mgmt) instead of PDUs.
    #[arg(long, value_name = "NAME", value_parser = parse_iface, requires = "opnum")]
    iface: Option<Interface>,
    /// The operation number of the bare stub.
    #[arg(long, value_name = "N", requires = "iface")]
    opnum: Option<u16>,
    /// The bare stub is a request (the `[in]` parameters).
    #[arg(long, requires = "iface", conflicts_with = "response")]
    request: bool,
    /// The bare stub is a response (the `[out]` parameters and the status).
    #[arg(long, requires = "iface")]
    response: bool,
    /// The bare stub is big-endian NDR (little-endian otherwise).
    #[arg(long, requires = "iface")]
    big_endian: bool,
    /// The password of the NTLM user, to unseal and verify protected stubs (as tshark's
    /// `-o ntlmssp.nt_password:PW`).
    #[arg(
        long,
        value_name = "PW",
        env = "DSBACKUP_INSPECT_PASSWORD",
        hide_env_values = true
    )]
    nt_password: Option<String>,
}

fn parse_iface(name: &str) -> Result<Interface, String> {
    name.parse().map_err(|error| format!("{error}"))
}

/// Decodes every input and prints its PDUs, or its bare stub.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let stdin_only = [PathBuf::from("-")];
    let files = if args.files.is_empty() {
        &stdin_only[..]
    } else {
        &args.files[..]
    };
    let bare = match (args.iface, args.opnum) {
        (Some(iface), Some(opnum)) => {
            let half = match (args.request, args.response) {
                (true, false) => Half::Request,
                (false, true) => Half::Response,
                _ => bail!("--iface needs --request or --response"),
            };
            let drep = if args.big_endian {
                DataRep::BIG_ENDIAN
            } else {
                DataRep::LITTLE_ENDIAN
            };
            Some((iface, opnum, half, drep))
        }
        _ => None,
    };
    for path in files {
        let (name, data) = read_input(path)?;
        if let Some((iface, opnum, half, drep)) = bare {
            let stub = stub_bytes(&name, &data)?;
            let call = decode_call(iface, opnum, half, drep, &stub)
                .map_err(|error| anyhow::anyhow!("{name}: the stub does not decode: {error}"))?;
            writeln!(out, "{call}").context("writing to standard output")?;
            continue;
        }
        let nt_hash = args.nt_password.as_deref().map(NtHash::from_password);
        let mut conversation = Conversation::new(nt_hash);
        for item in split_input(&name, &data)? {
            let Item {
                offset,
                line,
                direction,
                frame,
            } = item;
            let pdu = Pdu::decode(frame.clone()).with_context(|| {
                let place =
                    line.map_or_else(|| format!("offset {offset}"), |n| format!("line {n}"));
                format!("{name}, {place}: undecodable PDU ({} bytes)", frame.len())
            })?;
            let mut value = pdu_json(offset, direction, &pdu)?;
            if let Some(map) = value.as_object_mut() {
                conversation.follow(&frame, &pdu, map);
            }
            writeln!(out, "{value}").context("writing to standard output")?;
        }
    }
    Ok(())
}

/// The name and bytes of one input (`-` is standard input).
fn read_input(path: &PathBuf) -> anyhow::Result<(String, Vec<u8>)> {
    if path.as_os_str() == "-" {
        let mut data = Vec::new();
        io::stdin()
            .read_to_end(&mut data)
            .context("reading standard input")?;
        Ok(("<stdin>".to_owned(), data))
    } else {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Ok((path.display().to_string(), data))
    }
}

/// A bare stub: hex text (whitespace and `#` comment lines allowed) or binary.
fn stub_bytes(name: &str, data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(data.to_vec());
    };
    if !is_hex_text(text) {
        return Ok(data.to_vec());
    }
    let digits: Vec<u8> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .flat_map(str::bytes)
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !digits.len().is_multiple_of(2) {
        bail!("{name}: odd number of hex digits");
    }
    hex::decode(&digits).with_context(|| format!("{name}: not hex digits"))
}

/// One PDU of the input.
struct Item {
    /// Offset of its first byte among the input's PDUs.
    offset: usize,
    /// Its line, for hex text.
    line: Option<usize>,
    /// `I` or `O`, if the input gave a direction.
    direction: Option<&'static str>,
    /// Its bytes.
    frame: Bytes,
}

/// Splits an input into PDUs, as hex text or as binary.
fn split_input(name: &str, data: &[u8]) -> anyhow::Result<Vec<Item>> {
    match std::str::from_utf8(data) {
        Ok(text) if is_hex_text(text) => split_hex(name, text),
        _ => split_binary(name, data),
    }
}

/// Whether every line is blank, a comment, or hex digits with an optional direction.
fn is_hex_text(text: &str) -> bool {
    let mut any = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (_, hex) = direction(line);
        if !hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c.is_whitespace())
        {
            return false;
        }
        any = true;
    }
    any
}

/// Splits a leading `I ` or `O ` off a line.
fn direction(line: &str) -> (Option<&'static str>, &str) {
    if let Some(rest) = line.strip_prefix("I ") {
        (Some("I"), rest)
    } else if let Some(rest) = line.strip_prefix("O ") {
        (Some("O"), rest)
    } else {
        (None, line)
    }
}

fn split_hex(name: &str, text: &str) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut offset = 0;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (dir, hex) = direction(line);
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            bail!("{name}, line {}: odd number of hex digits", number + 1);
        }
        let bytes = hex::decode(&digits)
            .with_context(|| format!("{name}, line {}: not hex digits", number + 1))?;
        let len = bytes.len();
        items.push(Item {
            offset,
            line: Some(number + 1),
            direction: dir,
            frame: Bytes::from(bytes),
        });
        offset += len;
    }
    Ok(items)
}

fn split_binary(name: &str, data: &[u8]) -> anyhow::Result<Vec<Item>> {
    let data = Bytes::copy_from_slice(data);
    let mut items = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let rest = data.slice(offset..);
        match frame_len(&rest, u16::MAX) {
            Ok(Some(len)) => {
                items.push(Item {
                    offset,
                    line: None,
                    direction: None,
                    frame: rest.slice(..len),
                });
                offset += len;
            }
            Ok(None) => bail!(
                "{name}, offset {offset}: truncated PDU ({} bytes left)",
                rest.len()
            ),
            Err(error) => bail!("{name}, offset {offset}: {error}"),
        }
    }
    Ok(items)
}

/// The JSON object printed for one PDU.
fn pdu_json(offset: usize, direction: Option<&str>, pdu: &Pdu) -> anyhow::Result<Value> {
    Ok(json!({
        "offset": offset,
        "direction": direction,
        "header": header_json(pdu)?,
        "body": body_json(&pdu.body),
        "auth_verifier": pdu.auth_verifier.as_ref().map(auth_json),
    }))
}

fn header_json(pdu: &Pdu) -> anyhow::Result<Value> {
    let header = pdu.header().context("re-encoding the header")?;
    Ok(json!({
        "rpc_vers": 5,
        "rpc_vers_minor": header.rpc_vers_minor,
        "ptype": header.ptype.name(),
        "ptype_value": header.ptype.0,
        "pfc_flags": {
            "value": header.pfc_flags.bits(),
            "names": header.pfc_flags.names(header.ptype),
        },
        "drep": if header.drep.is_little_endian() { "little_endian" } else { "big_endian" },
        "frag_length": header.frag_length,
        "auth_length": header.auth_length,
        "call_id": header.call_id,
    }))
}

fn body_json(body: &PduBody) -> Value {
    match body {
        PduBody::Request(request) => json!({
            "alloc_hint": request.alloc_hint,
            "p_cont_id": request.p_cont_id,
            "opnum": request.opnum,
            "object": request.object.map(|uuid| uuid.to_string()),
            "stub_length": request.stub.len(),
        }),
        PduBody::Response(response) => json!({
            "alloc_hint": response.alloc_hint,
            "p_cont_id": response.p_cont_id,
            "cancel_count": response.cancel_count,
            "reserved": response.reserved,
            "stub_length": response.stub.len(),
        }),
        PduBody::Fault(fault) => json!({
            "alloc_hint": fault.alloc_hint,
            "p_cont_id": fault.p_cont_id,
            "cancel_count": fault.cancel_count,
            "flags": fault.flags,
            "status": fault.status.0,
            "status_name": fault.status.name(),
            "reserved2": fault.reserved2,
            "stub_length": fault.stub.len(),
        }),
        PduBody::Bind(bind) => bind_json(
            bind.max_xmit_frag,
            bind.max_recv_frag,
            bind.assoc_group_id,
            &bind.p_context_elem,
        ),
        PduBody::AlterContext(alter) => bind_json(
            alter.max_xmit_frag,
            alter.max_recv_frag,
            alter.assoc_group_id,
            &alter.p_context_elem,
        ),
        PduBody::BindAck(ack) => ack_json(
            ack.max_xmit_frag,
            ack.max_recv_frag,
            ack.assoc_group_id,
            &ack.sec_addr.0,
            &ack.p_result_list,
        ),
        PduBody::AlterContextResp(ack) => ack_json(
            ack.max_xmit_frag,
            ack.max_recv_frag,
            ack.assoc_group_id,
            &ack.sec_addr.0,
            &ack.p_result_list,
        ),
        PduBody::BindNak(nak) => json!({
            "provider_reject_reason": nak.provider_reject_reason.0,
            "provider_reject_reason_name": nak.provider_reject_reason.name(),
            "versions": nak.versions.iter().map(|v| json!({"major": v.major, "minor": v.minor})).collect::<Vec<_>>(),
            "trailer_length": nak.trailer.len(),
        }),
        PduBody::Auth3(auth3) => json!({ "pad": hex::encode(auth3.pad) }),
        PduBody::Shutdown(_) | PduBody::CoCancel(_) | PduBody::Orphaned(_) => json!({}),
    }
}

fn syntax_json(syntax: &SyntaxId) -> Value {
    let mut value = json!({
        "uuid": syntax.uuid.to_string(),
        "version": syntax.version,
        "version_minor": syntax.version_minor,
    });
    if let (Some(features), Some(map)) = (syntax.bind_time_features(), value.as_object_mut()) {
        map.insert("bind_time_features".into(), json!(features.bits()));
    }
    value
}

fn bind_json(
    max_xmit_frag: u16,
    max_recv_frag: u16,
    assoc_group_id: u32,
    contexts: &[PresentationContext],
) -> Value {
    json!({
        "max_xmit_frag": max_xmit_frag,
        "max_recv_frag": max_recv_frag,
        "assoc_group_id": assoc_group_id,
        "p_context_elem": contexts.iter().map(|context| json!({
            "p_cont_id": context.p_cont_id,
            "abstract_syntax": syntax_json(&context.abstract_syntax),
            "transfer_syntaxes": context.transfer_syntaxes.iter().map(syntax_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn ack_json(
    max_xmit_frag: u16,
    max_recv_frag: u16,
    assoc_group_id: u32,
    sec_addr: &[u8],
    results: &[ContextResult],
) -> Value {
    let text = sec_addr.strip_suffix(&[0]).unwrap_or(sec_addr);
    json!({
        "max_xmit_frag": max_xmit_frag,
        "max_recv_frag": max_recv_frag,
        "assoc_group_id": assoc_group_id,
        "sec_addr": String::from_utf8_lossy(text),
        "p_result_list": results.iter().map(|result| json!({
            "result": result.result.0,
            "result_name": result.result.name(),
            "reason": result.reason,
            "reason_name": if result.result == dsbackup_proto::ContResult::NEGOTIATE_ACK {
                None
            } else {
                result.provider_reason().name()
            },
            "transfer_syntax": syntax_json(&result.transfer_syntax),
        })).collect::<Vec<_>>(),
    })
}

fn auth_json(auth: &AuthVerifier) -> Value {
    json!({
        "auth_type": auth.auth_type.0,
        "auth_type_name": auth.auth_type.name(),
        "auth_level": auth.auth_level.0,
        "auth_level_name": auth.auth_level.name(),
        "auth_pad_length": auth.auth_pad_length,
        "auth_reserved": auth.auth_reserved,
        "auth_context_id": auth.auth_context_id,
        "auth_value": hex::encode(&auth.auth_value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIND_NAK: &[u8] = include_bytes!("../../../fixtures/pdu/samba-bind_nak.bin");
    const BIND_ACK: &[u8] =
        include_bytes!("../../../fixtures/pdu/samba-bind_ack-ntlm-challenge.bin");
    const REQUEST: &[u8] = include_bytes!("../../../fixtures/pdu/impacket-request-ept_lookup.bin");
    const BIND: &[u8] = include_bytes!("../../../fixtures/pdu/bind-multi-context.bin");

    fn json_of(bytes: &'static [u8]) -> Value {
        let pdu = Pdu::decode(Bytes::from_static(bytes)).unwrap();
        pdu_json(0, None, &pdu).unwrap()
    }

    #[test]
    fn hex_text_with_comments_and_directions() {
        let text = format!(
            "# a conversation\n\nI {}\nO {}\n",
            hex::encode(BIND_NAK),
            hex::encode(REQUEST)
        );
        let items = split_input("t", text.as_bytes()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].direction, Some("I"));
        assert_eq!(items[1].direction, Some("O"));
        assert_eq!(items[1].line, Some(4));
        assert_eq!((items[0].offset, items[1].offset), (0, BIND_NAK.len()));
        assert_eq!(items[1].frame, REQUEST);
    }

    #[test]
    fn binary_input_is_split_by_frag_length() {
        let data = [BIND_NAK, REQUEST].concat();
        let items = split_input("b", &data).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].offset, 24);
        assert_eq!(items[1].direction, None);
        let error = split_input("b", &data[..40]).err().unwrap().to_string();
        assert_eq!(error, "b, offset 24: truncated PDU (16 bytes left)");
    }

    #[test]
    fn json_names_the_fields_the_conformance_check_compares() {
        let request = json_of(REQUEST);
        assert_eq!(request["header"]["ptype"], "request");
        assert_eq!(request["header"]["ptype_value"], 0);
        assert_eq!(request["header"]["call_id"], 1);
        assert_eq!(request["header"]["frag_length"], 64);
        assert_eq!(request["body"]["p_cont_id"], 0);
        assert_eq!(request["body"]["opnum"], 2);
        assert_eq!(request["auth_verifier"], Value::Null);

        let bind = json_of(BIND);
        let contexts = bind["body"]["p_context_elem"].as_array().unwrap();
        let ids: Vec<_> = contexts.iter().map(|c| c["p_cont_id"].clone()).collect();
        assert_eq!(ids, [json!(0), json!(1), json!(2)]);
        assert_eq!(
            contexts[0]["transfer_syntaxes"][1]["uuid"],
            "71710533-beba-4937-8319-b5dbef9ccc36"
        );
        assert_eq!(contexts[2]["transfer_syntaxes"][0]["bind_time_features"], 3);

        let ack = json_of(BIND_ACK);
        assert_eq!(
            ack["header"]["pfc_flags"]["names"],
            json!(["PFC_FIRST_FRAG", "PFC_LAST_FRAG"])
        );
        assert_eq!(ack["body"]["sec_addr"], "135");
        assert_eq!(ack["body"]["p_result_list"][0]["result_name"], "acceptance");
        assert_eq!(ack["auth_verifier"]["auth_type_name"], "RPC_C_AUTHN_WINNT");

        let nak = json_of(BIND_NAK);
        assert_eq!(
            nak["body"]["provider_reject_reason_name"],
            "reason_not_specified"
        );
        assert_eq!(nak["body"]["versions"], json!([{"major": 5, "minor": 0}]));
    }
}
