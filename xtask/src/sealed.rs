//! Sealed conversations, decrypted by tshark: an independent check of our NTLM and Kerberos
//! sealing.
//!
//! A test that dumps a conversation at packet privacy (`NAME.txt`) also writes what it meant to
//! send and what it received in plaintext, in a sidecar `NAME.stubs.json`:
//!
//! ```json
//! {"password": "the NTLM password of the conversation",
//!  "calls": [{"call_id": 2, "request": "<stub hex>", "response": "<stub hex>"},
//!            {"call_id": 3, "request": "<stub hex>", "response": null}]}
//! ```
//!
//! (`null`: the call faulted, so no response, and a fault is not sealed.) A conversation sealed
//! with Kerberos names, instead of `"password"`, the service's keytab (`"keytab": "FILE"`, a
//! path relative to the sidecar's directory).
//!
//! tshark, given the password (`-o ntlmssp.nt_password:...`), follows the NTLM handshake in the
//! bind, bind_ack and auth3 legs, derives the sealing keys by itself and decrypts every request
//! and response. Given the keytab (`-o kerberos.decrypt:TRUE -o kerberos.file:...`), it
//! decrypts the ticket of the AP-REQ in the bind's SPNEGO token, learns the session key and the
//! subkeys of the authenticator and the AP-REP, and unwraps each stub (RFC 4121 wrap tokens);
//! tshark 4.0 does not do this for raw Kerberos (auth type 16), whose bind it does not dissect. Its decrypted bytes of each fragment ("Decrypted stub data", a data source of its
//! own that only the hex dump shows) still carry the fragment's auth padding: the sec_trailer's
//! `auth_pad_length` (MS-RPCE 2.2.2.11) says how many bytes to drop. The fragments of a call, in
//! order, must then make exactly the sidecar's stubs, and every request and response of the
//! conversation must belong to a call the sidecar lists.
//!
//! An empty stub is sealed into nothing: there is nothing for tshark to decrypt (and tshark 4.0,
//! given the password, calls such a frame malformed, impacket's as well as ours). Its size is told
//! by the header: `frag_length` less the request or response header, the `sec_trailer` and the
//! `auth_value`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

use crate::sh;

/// The data source tshark puts the plaintext of a sealed stub in.
const DECRYPTED: &str = "Decrypted stub data";
/// MS-RPCE packet types: request and response.
const REQUEST: u64 = 0;
const RESPONSE: u64 = 2;

/// What the test says went over the wire, in plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sidecar {
    keys: Keys,
    /// `call_id` -> (request stub, response stub or `None` for a fault).
    calls: BTreeMap<u64, (Vec<u8>, Option<Vec<u8>>)>,
}

/// What tshark decrypts a conversation with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Keys {
    /// NTLM: the password.
    Password(String),
    /// Kerberos: the service's keytab file.
    Keytab(PathBuf),
}

impl Keys {
    /// tshark's options for these keys.
    fn options(&self) -> Vec<String> {
        match self {
            Self::Password(password) => {
                vec!["-o".into(), format!("ntlmssp.nt_password:{password}")]
            }
            Self::Keytab(file) => vec![
                "-o".into(),
                "kerberos.decrypt:TRUE".into(),
                "-o".into(),
                format!("kerberos.file:{}", file.display()),
            ],
        }
    }
}

/// The sidecar of conversation `txt` (`NAME.txt` -> `NAME.stubs.json`), if the test wrote one.
pub(crate) fn sidecar_path(txt: &Path) -> PathBuf {
    txt.with_extension("stubs.json")
}

pub(crate) fn read_sidecar(path: &Path) -> Result<Sidecar> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    parse_sidecar(&text, dir).with_context(|| format!("in {}", path.display()))
}

/// Parses a sidecar whose keytab, if it names one, is relative to `dir`.
fn parse_sidecar(text: &str, dir: &Path) -> Result<Sidecar> {
    let value: Value = serde_json::from_str(text).context("not JSON")?;
    let text_of = |key: &str| value.get(key).and_then(Value::as_str);
    let keys = match (text_of("password"), text_of("keytab")) {
        (Some(password), None) => Keys::Password(password.to_owned()),
        (None, Some(keytab)) => Keys::Keytab(dir.join(keytab)),
        _ => bail!("not exactly one of a \"password\" and a \"keytab\" string"),
    };
    let mut calls = BTreeMap::new();
    for call in value
        .get("calls")
        .and_then(Value::as_array)
        .context("no \"calls\" array")?
    {
        let call_id = call
            .get("call_id")
            .and_then(Value::as_u64)
            .context("a call without a numeric \"call_id\"")?;
        let stub = |key: &str| -> Result<Option<Vec<u8>>> {
            match call.get(key) {
                Some(Value::Null) => Ok(None),
                Some(Value::String(hex)) => hex::decode(hex)
                    .map(Some)
                    .with_context(|| format!("call {call_id} \"{key}\"")),
                _ => bail!("call {call_id} has no \"{key}\" hex string (or null)"),
            }
        };
        let request =
            stub("request")?.with_context(|| format!("call {call_id} has a null \"request\""))?;
        let stubs = (request, stub("response")?);
        ensure!(
            calls.insert(call_id, stubs).is_none(),
            "call {call_id} listed twice"
        );
    }
    ensure!(!calls.is_empty(), "\"calls\" is empty");
    Ok(Sidecar { keys, calls })
}

/// Decrypts `pcap` (whose server port is `server_port`) with the sidecar's keys and compares
/// the stubs; returns a one-line summary.
pub(crate) fn check(pcap: &Path, server_port: u16, sidecar: &Sidecar) -> Result<String> {
    // The same display filter for both runs, so that their packets pair up in order.
    let common = |cmd: &mut Command| {
        cmd.arg("-r").arg(pcap).args(sidecar.keys.options()).args([
            "-d",
            &format!("tcp.port=={server_port},dcerpc"),
            "-Y",
            &format!("dcerpc.pkt_type == {REQUEST} || dcerpc.pkt_type == {RESPONSE}"),
        ]);
    };
    let mut fields = Command::new("tshark");
    common(&mut fields);
    fields.args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]);
    for field in [
        "frame.number",
        "dcerpc.pkt_type",
        "dcerpc.cn_call_id",
        "dcerpc.auth_level",
        "dcerpc.auth_pad_len",
        "dcerpc.cn_frag_len",
        "dcerpc.cn_auth_len",
        "dcerpc.cn_flags",
    ] {
        fields.args(["-e", field]);
    }
    let mut dump = Command::new("tshark");
    common(&mut dump);
    dump.args(["--hexdump", "all", "--hexdump", "noascii"]);

    let rows = parse_rows(&tshark(&mut fields)?)?;
    let sources = parse_hexdump(&tshark(&mut dump)?)?;
    ensure!(
        rows.len() == sources.len(),
        "tshark listed {} requests and responses but dumped {} packets",
        rows.len(),
        sources.len()
    );
    let mut seen: BTreeMap<(u64, u64), Vec<u8>> = BTreeMap::new();
    let mut empty = 0;
    for (row, packet) in rows.iter().zip(&sources) {
        ensure!(
            row.auth_level == Some(6),
            "frame {}: auth level {:?}, not packet privacy (6)",
            row.frame,
            row.auth_level
        );
        let entry = seen.entry((row.call_id, row.ptype)).or_default();
        if row.sealed_len() == Some(0) {
            empty += 1;
            continue;
        }
        let plain = packet
            .iter()
            .find(|(name, _)| name == DECRYPTED)
            .map(|(_, bytes)| bytes.as_slice())
            .with_context(|| {
                format!(
                    "frame {}: tshark did not decrypt the stub (no \"{DECRYPTED}\"): wrong \
                     password or keytab, or sealing it cannot follow",
                    row.frame
                )
            })?;
        let pad = usize::try_from(row.auth_pad_len).unwrap_or(usize::MAX);
        let stub = plain
            .len()
            .checked_sub(pad)
            .and_then(|end| plain.get(..end))
            .with_context(|| {
                format!(
                    "frame {}: auth_pad_length {pad} but {} decrypted bytes",
                    row.frame,
                    plain.len()
                )
            })?;
        entry.extend_from_slice(stub);
    }
    let problems = compare(sidecar, &seen);
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    let bytes: usize = seen.values().map(Vec::len).sum();
    Ok(format!(
        "tshark decrypted {} sealed fragments ({empty} more with an empty stub) of {} calls \
         ({bytes} stub bytes) into exactly our plaintext",
        rows.len() - empty,
        sidecar.calls.len()
    ))
}

/// Every difference between the sidecar and what tshark decrypted, keyed by (call_id, ptype).
fn compare(sidecar: &Sidecar, seen: &BTreeMap<(u64, u64), Vec<u8>>) -> Vec<String> {
    let mut problems = Vec::new();
    for (&call_id, (request, response)) in &sidecar.calls {
        for (ptype, what, ours) in [
            (REQUEST, "request", Some(request)),
            (RESPONSE, "response", response.as_ref()),
        ] {
            match (seen.get(&(call_id, ptype)), ours) {
                (None, None) => {}
                (Some(_), None) => problems.push(format!(
                    "call {call_id}: a {what} in the capture, but the sidecar says it faulted"
                )),
                (None, Some(_)) => {
                    problems.push(format!("call {call_id}: no {what} in the capture"))
                }
                (Some(theirs), Some(ours)) if theirs != ours => problems.push(format!(
                    "call {call_id}: the {what} stub tshark decrypted differs from ours: {}",
                    difference(ours, theirs)
                )),
                (Some(_), Some(_)) => {}
            }
        }
    }
    for &(call_id, ptype) in seen.keys() {
        if !sidecar.calls.contains_key(&call_id) {
            problems.push(format!(
                "call {call_id}: a {} the sidecar does not list",
                if ptype == REQUEST {
                    "request"
                } else {
                    "response"
                }
            ));
        }
    }
    problems
}

/// Where two stubs part: lengths, the first differing offset and a few bytes of each from there.
fn difference(ours: &[u8], theirs: &[u8]) -> String {
    const SHOWN: usize = 16;
    let at = ours
        .iter()
        .zip(theirs)
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| ours.len().min(theirs.len()));
    let from = |bytes: &[u8]| {
        let rest = bytes.get(at..).unwrap_or_default();
        let shown = hex::encode(rest.get(..SHOWN).unwrap_or(rest));
        if rest.len() > SHOWN {
            format!("{shown}...")
        } else {
            shown
        }
    };
    format!(
        "ours {} bytes, tshark's {}; from offset {at}: ours {}, tshark {}",
        ours.len(),
        theirs.len(),
        from(ours),
        from(theirs)
    )
}

fn tshark(cmd: &mut Command) -> Result<String> {
    let output = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", sh::display(cmd)))?;
    ensure!(
        output.status.success(),
        "`{}` failed: {}",
        sh::display(cmd),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).context("tshark wrote non-UTF-8 output")
}

/// One request or response as tshark's fields show it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    frame: u64,
    ptype: u64,
    call_id: u64,
    auth_level: Option<u64>,
    auth_pad_len: u64,
    frag_len: u64,
    auth_len: u64,
    flags: u64,
}

impl Row {
    /// The bytes between the request or response header and the `sec_trailer`: the sealed stub
    /// and its padding (MS-RPCE 2.2.2.11); `None` if the lengths do not add up.
    fn sealed_len(&self) -> Option<u64> {
        /// The common header and the request's or response's own fields (alloc_hint, p_cont_id,
        /// opnum or cancel_count and reserved).
        const HEADER: u64 = 16 + 8;
        const SEC_TRAILER: u64 = 8;
        const PFC_OBJECT_UUID: u64 = 0x80;
        let object = if self.ptype == REQUEST && self.flags & PFC_OBJECT_UUID != 0 {
            16
        } else {
            0
        };
        self.frag_len
            .checked_sub(HEADER + object + SEC_TRAILER)?
            .checked_sub(self.auth_len)
    }
}

fn parse_rows(text: &str) -> Result<Vec<Row>> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let columns: Vec<&str> = line.split('\t').collect();
            let number = |i: usize| -> Result<Option<u64>> {
                match columns.get(i).copied().unwrap_or("") {
                    "" => Ok(None),
                    v => match v.strip_prefix("0x") {
                        Some(hex) => u64::from_str_radix(hex, 16),
                        None => v.parse(),
                    }
                    .map(Some)
                    .with_context(|| format!("tshark field {i} is `{v}`: {line}")),
                }
            };
            let required = |i: usize| -> Result<u64> {
                number(i)?.with_context(|| format!("tshark gave no field {i}: {line}"))
            };
            Ok(Row {
                frame: required(0)?,
                ptype: required(1)?,
                call_id: required(2)?,
                auth_level: number(3)?,
                auth_pad_len: number(4)?.unwrap_or(0),
                frag_len: required(5)?,
                auth_len: required(6)?,
                flags: required(7)?,
            })
        })
        .collect()
}

/// A data source of a packet in tshark's hex dump: its name and its bytes.
type Source = (String, Vec<u8>);

/// The data sources of each packet in `tshark --hexdump all --hexdump noascii` output. Packets are
/// separated by a blank line; in a packet, each source is a `NAME (N bytes):` line followed by
/// `OFFSET  XX XX ...` lines, except that a packet with the frame as its only source shows the
/// frame's hex without a name line (it is then called `Frame` here).
fn parse_hexdump(text: &str) -> Result<Vec<Vec<Source>>> {
    let mut packets: Vec<Vec<Source>> = Vec::new();
    let mut in_packet = false;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            in_packet = false;
            continue;
        }
        if !in_packet {
            packets.push(Vec::new());
            in_packet = true;
        }
        let packet = packets
            .last_mut()
            .context("no packet in tshark's hex dump")?;
        if let Some((name, rest)) = line.rsplit_once(" (")
            && rest.ends_with(" bytes):")
        {
            packet.push((name.to_owned(), Vec::new()));
            continue;
        }
        if packet.is_empty() {
            packet.push(("Frame".to_owned(), Vec::new()));
        }
        let (_, bytes) = packet
            .last_mut()
            .context("no data source in tshark's hex dump")?;
        let mut words = line.split_whitespace();
        let offset = words.next().unwrap_or("");
        ensure!(
            usize::from_str_radix(offset, 16).ok() == Some(bytes.len()),
            "hex dump line at offset `{offset}` after {} bytes: {line}",
            bytes.len()
        );
        for word in words {
            bytes.extend(hex::decode(word).with_context(|| format!("in `{line}`"))?);
        }
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tshark 4.0's hex dump (shortened) of a sealed two-fragment response, each frame with its
    /// decrypted stub and the last one with the reassembled call too, then of a frame that was
    /// not decrypted: its only source, the frame, comes without a name line.
    const DUMP: &str = "\
Frame (8 bytes):
0000  05 00 02 03 10 00 00 00
Decrypted data (4 bytes):
0000  aa bb cc dd
Decrypted stub data (4 bytes):
0000  aa bb cc dd

Frame (4 bytes):
0000  05 00 02 03
Decrypted stub data (20 bytes):
0000  ee ff 00 11 22 33 44 55 66 77 88 99 aa bb cc dd
0010  00 00 00 00
Reassembled DCE/RPC (24 bytes):
0000  aa bb cc dd ee ff 00 11 22 33 44 55 66 77 88 99
0010  aa bb cc dd 00 00 00 00

0000  05 00 00 03 10 00 00 00 30 00 10 00 04 00 00 00
0010  00 00 00 00
";

    #[test]
    fn hex_dumps_split_into_packets_and_sources() {
        let packets = parse_hexdump(DUMP).unwrap();
        assert_eq!(packets.len(), 3);
        assert_eq!(
            packets[0][2],
            (DECRYPTED.to_owned(), vec![0xaa, 0xbb, 0xcc, 0xdd])
        );
        assert_eq!(packets[1][1].1.len(), 20);
        assert_eq!(packets[1][2].0, "Reassembled DCE/RPC");
        assert_eq!(packets[2].len(), 1);
        assert_eq!(packets[2][0].0, "Frame");
        assert_eq!(packets[2][0].1.len(), 20);
        assert!(
            parse_hexdump("Frame (2 bytes):\n0010  00 01\n").is_err(),
            "a line whose offset does not follow on"
        );
        assert!(parse_hexdump("Frame (1 bytes):\n0000  0g\n").is_err());
    }

    #[test]
    fn rows_parse_with_optional_fields() {
        let rows = parse_rows("5\t0\t2\t6\t4\t68\t16\t0x03\n7\t2\t2\t\t\t24\t0\t0x03\n").unwrap();
        assert_eq!(
            rows[0],
            Row {
                frame: 5,
                ptype: 0,
                call_id: 2,
                auth_level: Some(6),
                auth_pad_len: 4,
                frag_len: 68,
                auth_len: 16,
                flags: 3,
            }
        );
        assert_eq!(rows[1].auth_level, None);
        assert_eq!(rows[1].auth_pad_len, 0);
        assert!(parse_rows("5\tx\t2\t6\t0\t68\t16\t0x03\n").is_err());
        assert!(
            parse_rows("5\t\t2\t6\t0\t68\t16\t0x03\n").is_err(),
            "no packet type"
        );
        assert!(parse_rows("5\t0\t2\t6\t0\t68\t16\t0xzz\n").is_err());
    }

    #[test]
    fn the_sealed_length_comes_from_the_header() {
        let row = |ptype, frag_len, flags| Row {
            frame: 1,
            ptype,
            call_id: 2,
            auth_level: Some(6),
            auth_pad_len: 0,
            frag_len,
            auth_len: 16,
            flags,
        };
        // An empty request stub: 24 + 8 + 16 bytes (impacket's inq_if_ids at privacy).
        assert_eq!(row(REQUEST, 48, 0x03).sealed_len(), Some(0));
        assert_eq!(row(REQUEST, 68, 0x03).sealed_len(), Some(20));
        assert_eq!(
            row(REQUEST, 64, 0x83).sealed_len(),
            Some(0),
            "an object UUID"
        );
        assert_eq!(
            row(RESPONSE, 64, 0x83).sealed_len(),
            Some(16),
            "bit 0x80 means nothing on a response"
        );
        assert_eq!(row(REQUEST, 40, 0x03).sealed_len(), None);
    }

    #[test]
    fn sidecars_parse_and_reject_what_is_missing() {
        let here = Path::new("t/conformance");
        let sidecar = parse_sidecar(
            r#"{"password":"pw","calls":[{"call_id":2,"request":"0001","response":""}]}"#,
            here,
        )
        .unwrap();
        assert_eq!(sidecar.keys, Keys::Password("pw".to_owned()));
        assert_eq!(sidecar.calls[&2], (vec![0, 1], Some(vec![])));
        let faulted = parse_sidecar(
            r#"{"password":"pw","calls":[{"call_id":2,"request":"","response":null}]}"#,
            here,
        )
        .unwrap();
        assert_eq!(faulted.calls[&2], (vec![], None));
        let kerberos = parse_sidecar(
            r#"{"keytab":"krb.keytab","calls":[{"call_id":2,"request":"","response":""}]}"#,
            here,
        )
        .unwrap();
        assert_eq!(
            kerberos.keys,
            Keys::Keytab(PathBuf::from("t/conformance/krb.keytab"))
        );
        assert_eq!(
            kerberos.keys.options(),
            [
                "-o",
                "kerberos.decrypt:TRUE",
                "-o",
                "kerberos.file:t/conformance/krb.keytab"
            ]
        );
        assert!(
            parse_sidecar(
                r#"{"password":"p","keytab":"k","calls":[{"call_id":2,"request":"","response":""}]}"#,
                here,
            )
            .is_err(),
            "a password and a keytab"
        );
        assert!(
            parse_sidecar(
                r#"{"password":"p","calls":[{"call_id":2,"request":null,"response":""}]}"#,
                here,
            )
            .is_err(),
            "a call always has a request"
        );
        assert!(
            parse_sidecar(r#"{"calls":[]}"#, here).is_err(),
            "no password"
        );
        assert!(parse_sidecar(r#"{"password":"p","calls":[]}"#, here).is_err());
        assert!(
            parse_sidecar(
                r#"{"password":"p","calls":[{"call_id":2,"request":"0","response":""}]}"#,
                here,
            )
            .is_err()
        );
        let twice = r#"{"password":"p","calls":[{"call_id":2,"request":"","response":""},{"call_id":2,"request":"","response":""}]}"#;
        assert!(parse_sidecar(twice, here).is_err());
    }

    #[test]
    fn comparison_reports_each_difference() {
        let sidecar = Sidecar {
            keys: Keys::Password("p".to_owned()),
            calls: BTreeMap::from([(2, (vec![1, 2], Some(vec![3]))), (4, (vec![], None))]),
        };
        let mut seen = BTreeMap::from([
            ((2, REQUEST), vec![1, 2]),
            ((2, RESPONSE), vec![3]),
            ((4, REQUEST), vec![]),
        ]);
        assert!(compare(&sidecar, &seen).is_empty());
        seen.insert((4, RESPONSE), vec![]);
        assert_eq!(
            compare(&sidecar, &seen).len(),
            1,
            "a response to a faulted call"
        );
        seen.remove(&(4, RESPONSE));
        seen.insert((2, RESPONSE), vec![4]);
        assert_eq!(compare(&sidecar, &seen).len(), 1, "a different response");
        seen.remove(&(2, RESPONSE));
        assert_eq!(compare(&sidecar, &seen).len(), 1, "a missing response");
        seen.insert((2, RESPONSE), vec![3]);
        seen.insert((3, REQUEST), vec![]);
        assert_eq!(compare(&sidecar, &seen).len(), 1, "a call nobody listed");
    }

    #[test]
    fn differences_show_where_the_stubs_part() {
        assert_eq!(
            difference(&[1, 2, 3], &[1, 9]),
            "ours 3 bytes, tshark's 2; from offset 1: ours 0203, tshark 09"
        );
        assert_eq!(
            difference(&[0; 40], &[0; 20]),
            "ours 40 bytes, tshark's 20; from offset 20: ours 00000000000000000000000000000000..., tshark "
        );
    }

    #[test]
    fn sidecars_sit_beside_their_conversation() {
        assert_eq!(
            sidecar_path(Path::new("t/conformance/ntlm-privacy.txt")),
            Path::new("t/conformance/ntlm-privacy.stubs.json")
        );
    }
}
