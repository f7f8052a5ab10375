//! `dsbackup inspect`: decodes connection-oriented DCE/RPC PDUs from files or standard input and
//! prints one JSON object per PDU (JSON Lines).
//!
//! Input is a pcap or pcapng capture ([`capture`]: every TCP stream, in the order the capture
//! completes its PDUs), binary (whole PDUs back to back, split by `frag_length`), or hex text:
//! PDUs whose digits run on across lines (as `xxd -p` wraps them), optionally starting with `I `
//! (client to server) or `O ` (server to client); blank lines and lines starting with `#` are
//! skipped, and end an unfinished PDU.
//!
//! Every object starts with where it comes from: `file`, then `stream`, `frame`, `direction`,
//! `src`, `dst` and `offset` (in the direction's bytes) for a capture, or `line` (hex text),
//! `offset` and `direction` for the other inputs. What does not decode becomes an object with
//! `error: {kind, message}` in its place; the rest goes on, and the command fails at the end.
//!
//! Each stream or file is one association, followed by proto's observer
//! (`dsbackup_proto::observe`; [`observed`] renders what it tells): the call stubs of ad_backup, ad_restore,
//! epm and mgmt are decoded under `"call"` once a bind in the same input has named the
//! interface; with `--nt-password` the NTLM handshake is followed and sealed stubs are unsealed.
//! With `--iface NAME --opnum N --request|--response` the input is one bare stub instead.
//!
//! Fields a PDU's object may carry beyond its header, body and verifier:
//!
//! | field | when |
//! | --- | --- |
//! | `call` | the last fragment of a call of a known interface: `interface`, `opnum`, `name`, `direction` (`request`, `response`, `fault`), `params` by IDL name, `trailing` (hex of bytes past the last parameter); of another interface: `interface` null, `interface_uuid`, `interface_version`, `opnum`, `direction` |
//! | `call_error` | that stub does not decode (the run goes on) |
//! | `string_binding`, `floors` | beside each `tower_octet_string` of an endpoint-mapper call: the tower as a string binding (`ncacn_ip_tcp:10.0.0.1[49667]`) and its floors |
//! | `sealed` | a stub PDU at packet privacy |
//! | `unsealed`, `unsealed_stub` | with the password: the signature verified, the plaintext stub (hex) |
//! | `verified` | with the password: a signed (integrity) PDU whose signature verified |
//! | `security_error` | with the password: why a protected PDU could not be verified or unsealed |
//! | `ntlm` | an NTLM message in a bind-type verifier: `message`, `flags` (`value`, `names`), `version`; NEGOTIATE `domain`, `workstation`; CHALLENGE `target_name`, `server_challenge`, `target_info` (AV pairs by name); AUTHENTICATE `user`, `domain`, `workstation`, `mic`, and with the password `session_keys` or `session_error` |

mod call;
mod capture;
mod ntlm;
mod observed;
mod tower;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use dsbackup_ntlm::{NtHash, NtlmEavesdropper};
use dsbackup_proto::iface::Interface;
use dsbackup_proto::observe::{Eavesdropper, Half, Observer};
use dsbackup_proto::{
    AuthVerifier, ContextResult, DataRep, Pdu, PduBody, PresentationContext, SyntaxId, frame_len,
};
use serde_json::{Map, Value, json};

/// Arguments of `dsbackup inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Files to read (binary PDUs or hex text); standard input when none, or for `-`.
    files: Vec<PathBuf>,
    /// Decode each input as one bare call stub of this interface (ad_backup, ad_restore, epm,
    /// mgmt) instead of PDUs.
    #[arg(long, value_name = "NAME", value_parser = parse_iface, requires = "opnum")]
    iface: Option<Interface>,
    /// The operation of the bare stub: its number or its name (`EptMap` or `ept_map`,
    /// `HrRBackupRead`; any case).
    #[arg(long, value_name = "N|NAME", requires = "iface")]
    opnum: Option<String>,
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
    let bare = match (args.iface, args.opnum.as_deref()) {
        (Some(iface), Some(opnum)) => {
            let opnum = resolve_opnum(iface, opnum)?;
            let half = match (args.request, args.response) {
                (true, false) => Half::Request,
                (false, true) => Half::Response,
                _ => return Err(crate::exit::usage("--iface needs --request or --response")),
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
    let mut failed = false;
    for path in files {
        let (name, data) = read_input(path)?;
        if let Some((iface, opnum, half, drep)) = bare {
            let stub = stub_bytes(&name, &data)?;
            let call = call::bare(iface, opnum, half, drep, stub)
                .map_err(|error| anyhow::anyhow!("{name}: the stub does not decode: {error}"))?;
            writeln!(out, "{call}").context("writing to standard output")?;
            continue;
        }
        let eavesdropper = args
            .nt_password
            .as_deref()
            .map(|password| NtlmEavesdropper::new(NtHash::from_password(password)));
        let observer = || {
            Observer::new(
                // NTLM by itself (auth type 10) and inside SPNEGO (9).
                eavesdropper.clone().map(|e| {
                    Box::new(dsbackup_krb::SpnegoEavesdropper::new(Box::new(e)))
                        as Box<dyn Eavesdropper>
                }),
            )
        };
        let mut printer = Printer {
            out: &mut out,
            file: &name,
            failed: false,
        };
        if capture::is_capture(&data) {
            // One conversation per TCP stream.
            let mut observers: HashMap<usize, Observer> = HashMap::new();
            for event in capture::read(&data) {
                match event {
                    capture::Event::Pdu(place, frame) => {
                        let observer = observers.entry(place.stream).or_insert_with(observer);
                        let at = json!({
                            "stream": place.stream,
                            "frame": place.frame,
                            "direction": place.way.letter(),
                            "src": place.src.to_string(),
                            "dst": place.dst.to_string(),
                            "offset": place.offset,
                        });
                        printer.pdu(at, frame, observer)?;
                    }
                    capture::Event::Error {
                        stream,
                        frame,
                        message,
                    } => {
                        let at = json!({ "stream": stream, "frame": frame });
                        printer.error(at, "capture", &message)?;
                    }
                }
            }
        } else {
            let mut observer = observer();
            for piece in split_input(&data) {
                match piece {
                    Piece::Pdu(item) => {
                        let at = json!({
                            "line": item.line,
                            "offset": item.offset,
                            "direction": item.direction,
                        });
                        printer.pdu(at, item.frame, &mut observer)?;
                    }
                    Piece::Error {
                        line,
                        offset,
                        message,
                    } => {
                        let at = json!({ "line": line, "offset": offset });
                        printer.error(at, "input", &message)?;
                    }
                }
            }
        }
        failed |= printer.failed;
    }
    if failed {
        bail!("some input could not be decoded (see the error objects in the output)");
    }
    Ok(())
}

/// The `call` (and `call_error`) fields of an observed call, as `inspect` prints them.
pub(crate) fn render_call(
    call: &dsbackup_proto::observe::ObservedCall,
    out: &mut Map<String, Value>,
) {
    call::observed(call, out);
}

/// Writes the objects of one input.
struct Printer<'a, W> {
    out: &'a mut W,
    /// The input's name.
    file: &'a str,
    /// Whether an error object was written.
    failed: bool,
}

impl<W: Write> Printer<'_, W> {
    /// Decodes and prints one PDU at `at` (an object of location fields), or an error object.
    fn pdu(&mut self, at: Value, frame: Bytes, observer: &mut Observer) -> anyhow::Result<()> {
        let len = frame.len();
        let observation = match observer.observe(frame) {
            Ok(observation) => observation,
            Err(error) => {
                let message = format!("undecodable PDU ({len} bytes): {error}");
                return self.error(at, "pdu", &message);
            }
        };
        let mut value = self.located(at);
        if let Some(map) = value.as_object_mut() {
            map.extend(pdu_fields(&observation.pdu)?);
            observed::render(&observation, map);
        }
        self.write(&value)
    }

    /// Prints an error object: where, `kind` and `message`.
    fn error(&mut self, at: Value, kind: &str, message: &str) -> anyhow::Result<()> {
        self.failed = true;
        let mut value = self.located(at);
        if let Some(map) = value.as_object_mut() {
            map.insert("error".into(), json!({ "kind": kind, "message": message }));
        }
        self.write(&value)
    }

    /// `{"file": ..}` and the location fields that are not null.
    fn located(&self, at: Value) -> Value {
        let mut map = Map::new();
        map.insert("file".into(), json!(self.file));
        if let Value::Object(fields) = at {
            map.extend(fields.into_iter().filter(|(_, value)| !value.is_null()));
        }
        Value::Object(map)
    }

    fn write(&mut self, value: &Value) -> anyhow::Result<()> {
        writeln!(self.out, "{value}").context("writing to standard output")
    }
}

/// An opnum given as a number or as the IDL name of a call of `iface`.
fn resolve_opnum(iface: Interface, text: &str) -> anyhow::Result<u16> {
    if let Ok(opnum) = text.parse::<u16>() {
        return Ok(opnum);
    }
    // `EptMap`, `ept_map`, `eptmap`: the same call.
    let fold = |name: &str| -> String {
        name.chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let id = iface.id();
    if let Some(call) = id.calls.iter().find(|call| fold(call.name) == fold(text)) {
        return Ok(call.opnum);
    }
    let names: Vec<&str> = id.calls.iter().map(|call| call.name).collect();
    Err(crate::exit::usage(format!(
        "--opnum {text}: not a number, nor a call of {} ({})",
        id.name,
        names.join(", ")
    )))
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
    /// The line it starts on, for hex text.
    line: Option<usize>,
    /// `I` or `O`, if the input gave a direction.
    direction: Option<&'static str>,
    /// Its bytes.
    frame: Bytes,
}

/// What an input is cut into: PDUs, and what could not be read (the rest goes on).
enum Piece {
    Pdu(Item),
    Error {
        line: Option<usize>,
        offset: usize,
        message: String,
    },
}

/// Splits an input into PDUs, as hex text or as binary.
fn split_input(data: &[u8]) -> Vec<Piece> {
    match std::str::from_utf8(data) {
        Ok(text) if is_hex_text(text) => split_hex(text),
        _ => split_binary(data),
    }
}

/// Whether the input is hex text: its first line that is not blank or a comment is hex digits
/// with an optional direction (a binary PDU starts with byte 5, never a hex digit).
fn is_hex_text(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .is_some_and(|line| {
            let (_, hex) = direction(line);
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() || c.is_whitespace())
        })
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

/// Hex text: the digits of consecutive lines run on (as `xxd -p` wraps them), cut into PDUs by
/// `frag_length`. A direction (`I `, `O `), a blank line or a comment starts afresh; a line that
/// does not read, or a PDU header that is not one, is reported and skipped up to the next line.
fn split_hex(text: &str) -> Vec<Piece> {
    let mut cutter = Cutter::default();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            cutter.flush(number);
            continue;
        }
        let (dir, hex) = direction(line);
        if dir.is_some() {
            cutter.flush(number);
            cutter.direction = dir;
        }
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        let bytes = if digits.len().is_multiple_of(2) {
            hex::decode(&digits).map_err(|error| format!("not hex digits: {error}"))
        } else {
            Err("odd number of hex digits".to_owned())
        };
        match bytes {
            Ok(bytes) => cutter.push(number, &bytes),
            Err(message) => {
                cutter.flush(number);
                cutter.pieces.push(Piece::Error {
                    line: Some(number),
                    offset: cutter.offset,
                    message,
                });
            }
        }
    }
    cutter.flush(0);
    cutter.pieces
}

/// Cuts the bytes of hex lines into PDUs.
#[derive(Default)]
struct Cutter {
    pieces: Vec<Piece>,
    /// Bytes of a PDU not yet whole.
    buf: BytesMut,
    /// The line `buf` starts on.
    start: usize,
    /// Offset of `buf`'s first byte among the input's bytes.
    offset: usize,
    direction: Option<&'static str>,
}

impl Cutter {
    fn push(&mut self, line: usize, bytes: &[u8]) {
        if self.buf.is_empty() {
            self.start = line;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            match frame_len(&self.buf, u16::MAX) {
                Ok(Some(len)) => {
                    let frame = self.buf.split_to(len).freeze();
                    self.pieces.push(Piece::Pdu(Item {
                        offset: self.offset,
                        line: Some(self.start),
                        direction: self.direction,
                        frame,
                    }));
                    self.offset += len;
                    // What is left starts on this line.
                    self.start = line;
                }
                Ok(None) => return,
                Err(error) => {
                    self.pieces.push(Piece::Error {
                        line: Some(self.start),
                        offset: self.offset,
                        message: format!("not a DCE/RPC PDU: {error}"),
                    });
                    self.offset += self.buf.len();
                    self.buf.clear();
                    return;
                }
            }
        }
    }

    /// Reports the bytes of a PDU left unfinished before `line` (0: the end).
    fn flush(&mut self, line: usize) {
        if self.buf.is_empty() {
            return;
        }
        let end = if line == 0 {
            "the end of the input".to_owned()
        } else {
            format!("line {line}")
        };
        self.pieces.push(Piece::Error {
            line: Some(self.start),
            offset: self.offset,
            message: format!("truncated PDU: {} bytes before {end}", self.buf.len()),
        });
        self.offset += self.buf.len();
        self.buf.clear();
    }
}

/// Binary: PDUs back to back. A header that is not one ends the input (nothing to resynchronise
/// on).
fn split_binary(data: &[u8]) -> Vec<Piece> {
    let data = Bytes::copy_from_slice(data);
    let mut pieces = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let rest = data.slice(offset..);
        match frame_len(&rest, u16::MAX) {
            Ok(Some(len)) => {
                pieces.push(Piece::Pdu(Item {
                    offset,
                    line: None,
                    direction: None,
                    frame: rest.slice(..len),
                }));
                offset += len;
            }
            Ok(None) => {
                pieces.push(Piece::Error {
                    line: None,
                    offset,
                    message: format!("truncated PDU ({} bytes left)", rest.len()),
                });
                break;
            }
            Err(error) => {
                pieces.push(Piece::Error {
                    line: None,
                    offset,
                    message: format!("not a DCE/RPC PDU: {error}"),
                });
                break;
            }
        }
    }
    pieces
}

/// The fields printed for one PDU after its location.
fn pdu_fields(pdu: &Pdu) -> anyhow::Result<Map<String, Value>> {
    let mut map = Map::new();
    map.insert("header".into(), header_json(pdu)?);
    map.insert("body".into(), body_json(&pdu.body));
    map.insert(
        "auth_verifier".into(),
        pdu.auth_verifier.as_ref().map_or(Value::Null, auth_json),
    );
    Ok(map)
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
            "status_hex": format!("{:#010x}", fault.status.0),
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
        Value::Object(pdu_fields(&pdu).unwrap())
    }

    fn pdus(pieces: &[Piece]) -> Vec<&Item> {
        pieces
            .iter()
            .filter_map(|piece| match piece {
                Piece::Pdu(item) => Some(item),
                Piece::Error { .. } => None,
            })
            .collect()
    }

    fn errors(pieces: &[Piece]) -> Vec<(Option<usize>, usize, &str)> {
        pieces
            .iter()
            .filter_map(|piece| match piece {
                Piece::Pdu(_) => None,
                Piece::Error {
                    line,
                    offset,
                    message,
                } => Some((*line, *offset, message.as_str())),
            })
            .collect()
    }

    #[test]
    fn hex_text_with_comments_and_directions() {
        let text = format!(
            "# a conversation\n\nI {}\nO {}\n",
            hex::encode(BIND_NAK),
            hex::encode(REQUEST)
        );
        let pieces = split_input(text.as_bytes());
        let items = pdus(&pieces);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].direction, Some("I"));
        assert_eq!(items[1].direction, Some("O"));
        assert_eq!(items[1].line, Some(4));
        assert_eq!((items[0].offset, items[1].offset), (0, BIND_NAK.len()));
        assert_eq!(items[1].frame, REQUEST);
    }

    #[test]
    fn xxd_plain_hex_runs_across_line_breaks() {
        // `xxd -p` writes 30 bytes a line, whatever the PDUs.
        let data = [BIND, REQUEST, BIND_NAK].concat();
        let text: String = hex::encode(&data)
            .as_bytes()
            .chunks(60)
            .map(|line| format!("{}\n", std::str::from_utf8(line).unwrap()))
            .collect();
        let pieces = split_input(text.as_bytes());
        assert!(errors(&pieces).is_empty());
        let items = pdus(&pieces);
        let frames: Vec<&[u8]> = items.iter().map(|item| &item.frame[..]).collect();
        assert_eq!(frames, [BIND, REQUEST, BIND_NAK]);
        // Each PDU is placed on the line its first byte is on.
        let lines: Vec<_> = items.iter().map(|item| item.line.unwrap()).collect();
        let expected: Vec<_> = [0, BIND.len(), BIND.len() + REQUEST.len()]
            .iter()
            .map(|offset| offset / 30 + 1)
            .collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn bad_lines_are_reported_and_the_rest_decoded() {
        let text = format!(
            "I {}\nI 0500zz\nI 4745542f20485454502f312e310d0a0d0a\nO {}\nI {}\n",
            hex::encode(BIND_NAK),
            hex::encode(&REQUEST[..20]),
            hex::encode(REQUEST)
        );
        let pieces = split_input(text.as_bytes());
        let frames: Vec<&[u8]> = pdus(&pieces).iter().map(|item| &item.frame[..]).collect();
        assert_eq!(frames, [BIND_NAK, REQUEST]);
        let errors = errors(&pieces);
        let lines: Vec<_> = errors.iter().map(|(line, _, _)| line.unwrap()).collect();
        assert_eq!(lines, [2, 3, 4]);
        assert!(errors[0].2.starts_with("not hex digits"), "{}", errors[0].2);
        assert!(
            errors[1].2.starts_with("not a DCE/RPC PDU"),
            "{}",
            errors[1].2
        );
        assert_eq!(errors[2].2, "truncated PDU: 20 bytes before line 5");
    }

    #[test]
    fn binary_input_is_split_by_frag_length() {
        let data = [BIND_NAK, REQUEST].concat();
        let pieces = split_input(&data);
        let items = pdus(&pieces);
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].offset, 24);
        assert_eq!(items[1].direction, None);
        let pieces = split_input(&data[..40]);
        assert_eq!(pdus(&pieces).len(), 1);
        assert_eq!(
            errors(&pieces),
            [(None, 24, "truncated PDU (16 bytes left)")]
        );
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
