//! `cargo xtask conformance`: our PDUs, read back by Wireshark's dissector.
//!
//! Two sets of PDUs are checked: every `fixtures/pdu/*.bin` (each file a TCP connection of its
//! own, each PDU sent in the direction its packet type travels, the connections end to end in one
//! pcap), and every conversation the tests dump into
//! `target/conformance/*.txt` (tests whose name contains `conformance_dump`, run first). A
//! conversation file has one PDU a line: `I <hex>` from client to server, `O <hex>` back.
//!
//! Each becomes a pcap (via `text2pcap`, one TCP segment per PDU, kept under
//! `target/conformance/pcap/` for people to open), which tshark must read with no malformed
//! frame, no expert warning beyond the known harmless ones, every payload taken as DCE/RPC, and,
//! PDU by PDU, the same packet type, call id, fragment length, context ids and opnum as our own
//! decoder prints through `dsbackup inspect`. A conversation sealed with NTLM, or with Kerberos
//! inside SPNEGO, comes with a sidecar of the plaintext stubs and the password or the service's
//! keytab (`NAME.stubs.json`): tshark must decrypt it into exactly that plaintext (see `sealed`).
//!
//! Then the transport meets third-party peers (see `peers`): our client against a throwaway Samba
//! AD DC, impacket's client and Samba's `rpcclient` against our server.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

use crate::args::Args;
use crate::peers::{self, Peers};
use crate::setup::{self, Needs};
use crate::{sealed, sh};

/// The server's TCP port in the pcaps; tshark is told to decode it as DCE/RPC.
const SERVER_PORT: u16 = 40135;
/// The client's TCP port in the pcaps.
const CLIENT_PORT: u16 = 49700;
/// The test-name filter that selects the tests which dump conversations.
const DUMP_FILTER: &str = "conformance_dump";
/// Separates the values of a multi-valued field in tshark's output.
const AGGREGATOR: char = '\u{1f}';
/// Expert severities (`_ws.expert.severity`): warning and error.
const SEVERITY_WARNING: u32 = 0x0060_0000;
/// Expert messages that are no fault of the PDUs: a bind_nak always carries the first, the
/// endpoint-mapper dissector does not know every tower floor, the rest are TCP-level notes.
const HARMLESS: &[&str] = &[
    "Bind not acknowledged",
    "RightHandSide not decoded yet",
    "D-SACK",
    "Duplicate ACK",
    "Retransmission",
    "Window",
    "Previous segment",
    "ACKed segment",
];

/// Which way a PDU travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Client to server (`I`).
    In,
    /// Server to client (`O`).
    Out,
}

impl Dir {
    fn letter(self) -> &'static str {
        match self {
            Self::In => "I",
            Self::Out => "O",
        }
    }

    /// The direction of a connection-oriented packet type (MS-RPCE 2.2.2 / C706 12.6.4).
    fn of_ptype(ptype: u8) -> Option<Self> {
        match ptype {
            // request, bind, alter_context, rpc_auth_3, co_cancel, orphaned
            0 | 11 | 14 | 16 | 18 | 19 => Some(Self::In),
            // response, fault, bind_ack, bind_nak, alter_context_resp, shutdown
            2 | 3 | 12 | 13 | 15 | 17 => Some(Self::Out),
            _ => None,
        }
    }
}

/// One PDU of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pdu {
    dir: Dir,
    bytes: Vec<u8>,
}

/// The header fields both decoders are compared on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Fields {
    ptype: u64,
    call_id: u64,
    frag_len: u64,
    /// `p_cont_id` of a request, response or fault; every `p_cont_id` of a bind's or
    /// alter_context's context list; empty for the other types (not compared).
    ctx_ids: Vec<u64>,
    /// Requests only (tshark also shows the matched request's opnum on responses).
    opnum: Option<u64>,
}

/// What tshark says about one frame.
#[derive(Debug, Clone, Default)]
struct Frame {
    number: u64,
    tcp_len: u64,
    dcerpc: bool,
    malformed: bool,
    /// `(severity, message)` of each expert item.
    experts: Vec<(u32, String)>,
    /// Values of each compared field, one entry per PDU tshark found in the frame.
    ptype: Vec<u64>,
    call_id: Vec<u64>,
    frag_len: Vec<u64>,
    ctx_ids: Vec<u64>,
    opnum: Vec<u64>,
}

/// How to run our decoder on a conversation file.
#[derive(Debug, Clone)]
enum Inspector {
    /// `cargo run --quiet -p dsbackup-cli -- inspect FILE`.
    Cli,
    /// A stand-in program (testing this harness): `PROGRAM [ARGS] FILE`.
    Program(Vec<String>),
}

impl Inspector {
    fn command(&self, file: &Path) -> Command {
        let mut cmd = match self {
            Self::Cli => {
                let mut cmd = sh::cargo();
                cmd.args([
                    "run",
                    "--quiet",
                    "--locked",
                    "-p",
                    "dsbackup-cli",
                    "--",
                    "inspect",
                ]);
                cmd
            }
            Self::Program(words) => {
                let mut words = words.iter();
                let mut cmd = Command::new(words.next().map_or("false", String::as_str));
                cmd.args(words);
                cmd
            }
        };
        cmd.arg(file);
        cmd
    }
}

pub(crate) fn run(mut args: Args) -> Result<()> {
    let fixtures = args
        .value("--fixtures")?
        .map_or_else(|| PathBuf::from("fixtures/pdu"), PathBuf::from);
    let conversations = args.value("--conversations")?.map(PathBuf::from);
    let inspector = match args.value("--inspect-with")? {
        Some(program) => {
            Inspector::Program(program.split_whitespace().map(str::to_owned).collect())
        }
        None => Inspector::Cli,
    };
    let peers = match args.value("--peers")?.as_deref() {
        None | Some("all") => Some(Peers::All),
        Some("impacket") => Some(Peers::ImpacketOnly),
        Some("none") => None,
        Some(other) => bail!("--peers takes all, impacket or none, not `{other}`"),
    };
    let no_install = args.flag("--no-install");
    args.finish()?;
    setup::ensure(
        Needs {
            tshark: true,
            impacket: peers.is_some(),
            samba: peers == Some(Peers::All),
            ..Needs::default()
        },
        sh::installs_allowed(no_install),
    )?;
    let pdus = check(&fixtures, conversations.as_deref(), &inspector);
    // The peers run even when the PDU checks failed: both verdicts are worth having.
    let peers = peers.map_or(Ok(()), |peers| {
        sh::step("conformance: peers", || peers::run(peers)).map(|_| ())
    });
    pdus.and(peers)
}

/// The whole check; `conversations` given means "take these, do not run the dumping tests".
fn check(fixtures: &Path, conversations: Option<&Path>, inspector: &Inspector) -> Result<()> {
    let out = sh::target_dir()?.join("conformance");
    let pcaps = out.join("pcap");
    std::fs::create_dir_all(&pcaps)
        .with_context(|| format!("cannot create {}", pcaps.display()))?;

    // (name, the whole conversation, the TCP connections it is made of)
    let mut sets: Vec<(String, PathBuf, Vec<PathBuf>)> = Vec::new();
    let fixture_files = sh::files_with_suffix(fixtures, ".bin")?;
    if fixture_files.is_empty() {
        println!("no {}/*.bin yet: no fixtures to check", fixtures.display());
    } else {
        // Each fixture file is a connection of its own: tshark remembers which interface a
        // context id was bound to per TCP connection, and would otherwise dissect one fixture's
        // stub as the interface another fixture's bind named.
        let parts_dir = pcaps.join("fixtures-pdu");
        std::fs::create_dir_all(&parts_dir)
            .with_context(|| format!("cannot create {}", parts_dir.display()))?;
        let mut pdus = Vec::new();
        let mut parts = Vec::new();
        for file in &fixture_files {
            let these = fixture_pdus(file)?;
            let stem = file.file_stem().unwrap_or_default().to_string_lossy();
            let part = parts_dir.join(format!("{stem}.txt"));
            write_conversation(&part, &these)?;
            parts.push(part);
            pdus.extend(these);
        }
        let txt = pcaps.join("fixtures-pdu.txt");
        write_conversation(&txt, &pdus)?;
        println!("{} fixture files, {} PDUs", fixture_files.len(), pdus.len());
        sets.push(("fixtures-pdu".to_owned(), txt, parts));
    }

    let dir = match conversations {
        Some(dir) => dir.to_path_buf(),
        None => {
            dump_conversations(&out)?;
            out.clone()
        }
    };
    let dumped = sh::files_with_suffix(&dir, ".txt")?;
    let mut failures = Vec::new();
    if dumped.is_empty() {
        if fixture_files.is_empty() {
            println!("no conversations dumped yet in {}", sh::shown(&dir));
        } else {
            println!(
                "no conversation files in {}: tests whose name contains `{DUMP_FILTER}` must \
                 write them (one PDU a line, `I <hex>` or `O <hex>`) into $DSBACKUP_CONFORMANCE_DIR",
                sh::shown(&dir)
            );
            failures.push("conversations (none dumped)");
        }
    }
    for file in dumped {
        let stem = file
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        sets.push((stem, file.clone(), vec![file]));
    }

    for (name, txt, parts) in &sets {
        let pcap = pcaps.join(format!("{name}.pcapng"));
        let sidecar = sealed::sidecar_path(txt);
        let verdict = check_one(txt, parts, &pcap, inspector).and_then(|summary| {
            if !sidecar.is_file() {
                return Ok(summary);
            }
            let sealed = sealed::check(&pcap, SERVER_PORT, &sealed::read_sidecar(&sidecar)?)
                .with_context(|| format!("decrypting with {}", sh::shown(&sidecar)))?;
            Ok(format!("{summary}; {sealed}"))
        });
        match verdict {
            Ok(summary) => println!("{}: {summary}", sh::shown(&pcap)),
            Err(e) => {
                println!("{}: FAILED\n{e:#}", sh::shown(&pcap));
                failures.push(name.as_str());
            }
        }
    }
    if !failures.is_empty() {
        bail!("conformance failed for: {}", failures.join(", "));
    }
    Ok(())
}

/// Runs the tests that dump conversations, into `out` (stale dumps removed first).
fn dump_conversations(out: &Path) -> Result<()> {
    let mut stale = sh::files_with_suffix(out, ".txt")?;
    stale.extend(sh::files_with_suffix(out, ".stubs.json")?);
    stale.extend(sh::files_with_suffix(out, ".keytab")?);
    for stale in stale {
        std::fs::remove_file(&stale)
            .with_context(|| format!("cannot remove {}", stale.display()))?;
    }
    sh::run(
        sh::cargo()
            .args(["test", "--workspace", "--locked", DUMP_FILTER])
            .env("DSBACKUP_CONFORMANCE_DIR", out),
    )
}

/// Converts one conversation into a pcap and checks it; returns the one-line summary. `txt` is
/// the whole conversation; `parts`, the files of its TCP connections, in order (just `txt` for a
/// conversation of one connection).
fn check_one(txt: &Path, parts: &[PathBuf], pcap: &Path, inspector: &Inspector) -> Result<String> {
    let text =
        std::fs::read_to_string(txt).with_context(|| format!("cannot read {}", txt.display()))?;
    let pdus = parse_conversation(&text).with_context(|| format!("in {}", txt.display()))?;
    ensure!(!pdus.is_empty(), "{} holds no PDU", txt.display());

    let _ignored = std::fs::remove_file(pcap);
    if let [only] = parts {
        text2pcap(only, pcap, CLIENT_PORT)?;
    } else {
        // One pcap per connection, each from a client port of its own, then end to end.
        let mut pieces = Vec::new();
        for (part, n) in parts.iter().zip(0u16..) {
            let port = CLIENT_PORT
                .checked_add(n)
                .context("more connections than client ports")?;
            let piece = part.with_extension("pcapng");
            text2pcap(part, &piece, port)?;
            pieces.push(piece);
        }
        let mut merge = Command::new("mergecap");
        merge.args(["-a", "-F", "pcapng", "-w"]).arg(pcap);
        // The pieces by name from their directory: a readable command line.
        if let Some(dir) = pieces.first().and_then(|p| p.parent()) {
            merge.current_dir(dir);
        }
        merge.args(pieces.iter().filter_map(|p| p.file_name()));
        sh::run_quiet(&mut merge)?;
    }

    let frames = tshark_frames(pcap)?;
    let ours = parse_inspect(&sh::read(&mut inspector.command(txt))?)?;
    let problems = compare(&pdus, &ours, &frames);
    if problems.is_empty() {
        Ok(format!(
            "{} DCE/RPC frames, none malformed, fields agree",
            pdus.len()
        ))
    } else {
        bail!("{}", problems.join("\n"))
    }
}

/// Writes conversation file `txt` as a pcap of one TCP connection from `client_port` to
/// `SERVER_PORT`, one segment per PDU.
fn text2pcap(txt: &Path, pcap: &Path, client_port: u16) -> Result<()> {
    // text2pcap's regex mode: the `dir` group gives the direction (-D), `data` the hex bytes.
    sh::run_quiet(Command::new("text2pcap").args([
        "-q".as_ref(),
        "-r".as_ref(),
        r"^(?<dir>[IO])\s(?<data>[0-9a-fA-F]+)$".as_ref(),
        "-D".as_ref(),
        "-4".as_ref(),
        "127.0.0.1,127.0.0.1".as_ref(),
        "-T".as_ref(),
        format!("{client_port},{SERVER_PORT}").as_ref(),
        txt.as_os_str(),
        pcap.as_os_str(),
    ]))
}

/// Splits a fixture file into PDUs by their `frag_length`; each must be whole.
fn fixture_pdus(file: &Path) -> Result<Vec<Pdu>> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    split_pdus(&bytes).with_context(|| format!("in fixture {}", file.display()))
}

fn split_pdus(mut bytes: &[u8]) -> Result<Vec<Pdu>> {
    let mut pdus = Vec::new();
    while !bytes.is_empty() {
        let Some(header) = bytes.get(..16) else {
            bail!(
                "{} bytes left, less than a 16-byte common header",
                bytes.len()
            );
        };
        let (ptype, drep0) = (header.get(2).copied(), header.get(4).copied());
        let len_bytes = [
            header.get(8).copied().unwrap_or(0),
            header.get(9).copied().unwrap_or(0),
        ];
        // packed_drep[0] high nibble: 1 = little-endian integers, 0 = big-endian.
        let frag_length = if drep0.unwrap_or(0x10) & 0xf0 == 0x10 {
            u16::from_le_bytes(len_bytes)
        } else {
            u16::from_be_bytes(len_bytes)
        };
        let len = usize::from(frag_length);
        ensure!(
            len >= 16,
            "frag_length {len} is shorter than the common header"
        );
        let (pdu, rest) = bytes
            .split_at_checked(len)
            .with_context(|| format!("frag_length {len} but only {} bytes", bytes.len()))?;
        let ptype = ptype.unwrap_or(0xff);
        let dir = Dir::of_ptype(ptype).with_context(|| {
            format!("PTYPE {ptype} is not a connection-oriented PDU type (keep invalid PDUs out of fixtures/pdu/*.bin)")
        })?;
        pdus.push(Pdu {
            dir,
            bytes: pdu.to_vec(),
        });
        bytes = rest;
    }
    Ok(pdus)
}

fn write_conversation(path: &Path, pdus: &[Pdu]) -> Result<()> {
    let mut text = String::new();
    for pdu in pdus {
        text.push_str(pdu.dir.letter());
        text.push(' ');
        text.push_str(&hex::encode(&pdu.bytes));
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads `I <hex>` / `O <hex>` lines; blank lines and `#` comments are skipped.
fn parse_conversation(text: &str) -> Result<Vec<Pdu>> {
    let mut pdus = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (letter, hex) = line.split_once(' ').unwrap_or((line, ""));
        let dir = match letter {
            "I" => Dir::In,
            "O" => Dir::Out,
            _ => bail!("line {}: starts with `{letter}`, not I or O", n + 1),
        };
        let bytes = hex::decode(hex.trim()).with_context(|| format!("line {}", n + 1))?;
        pdus.push(Pdu { dir, bytes });
    }
    Ok(pdus)
}

/// Asks tshark for every frame's verdict and fields.
fn tshark_frames(pcap: &Path) -> Result<Vec<Frame>> {
    let fields = [
        "frame.number",
        "tcp.len",
        "dcerpc.ver",
        "_ws.malformed",
        "_ws.expert.severity",
        "_ws.expert.message",
        "dcerpc.pkt_type",
        "dcerpc.cn_call_id",
        "dcerpc.cn_frag_len",
        "dcerpc.cn_ctx_id",
        "dcerpc.opnum",
    ];
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(pcap)
        .args([
            "-d",
            &format!("tcp.port=={SERVER_PORT},dcerpc"),
            "-T",
            "fields",
        ])
        .args([
            "-E",
            "separator=/t",
            "-E",
            &format!("aggregator={AGGREGATOR}"),
            "-E",
            "occurrence=a",
        ]);
    for field in fields {
        cmd.args(["-e", field]);
    }
    // tshark complains on stderr about running as root; only its stdout matters.
    let output = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", sh::display(&cmd)))?;
    ensure!(
        output.status.success(),
        "`{}` failed: {}",
        sh::display(&cmd),
        String::from_utf8_lossy(&output.stderr)
    );
    parse_tshark(&String::from_utf8_lossy(&output.stdout))
}

fn parse_tshark(text: &str) -> Result<Vec<Frame>> {
    let mut frames = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let columns: Vec<&str> = line.split('\t').collect();
        let column = |i: usize| columns.get(i).copied().unwrap_or("");
        let numbers = |i: usize| -> Result<Vec<u64>> {
            column(i)
                .split(AGGREGATOR)
                .filter(|v| !v.is_empty())
                .map(|v| {
                    v.parse()
                        .with_context(|| format!("tshark printed `{v}` for a number"))
                })
                .collect()
        };
        let severities = numbers(4)?;
        let messages: Vec<&str> = column(5).split(AGGREGATOR).collect();
        let experts = severities
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                (
                    u32::try_from(s).unwrap_or(u32::MAX),
                    messages.get(i).copied().unwrap_or("").to_owned(),
                )
            })
            .collect();
        frames.push(Frame {
            number: numbers(0)?.first().copied().unwrap_or(0),
            tcp_len: numbers(1)?.iter().sum(),
            dcerpc: !column(2).is_empty(),
            malformed: !column(3).is_empty(),
            experts,
            ptype: numbers(6)?,
            call_id: numbers(7)?,
            frag_len: numbers(8)?,
            ctx_ids: numbers(9)?,
            opnum: numbers(10)?,
        });
    }
    Ok(frames)
}

/// Reads `dsbackup inspect`'s JSON lines (one object per PDU).
fn parse_inspect(text: &str) -> Result<Vec<(Option<Dir>, Fields)>> {
    let mut pdus = Vec::new();
    for (n, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let value: Value = serde_json::from_str(line)
            .with_context(|| format!("inspect output line {} is not JSON: {line}", n + 1))?;
        let number = |pointer: &str| value.pointer(pointer).and_then(Value::as_u64);
        let field = |pointer: &str| {
            number(pointer)
                .with_context(|| format!("inspect gave no {pointer} for PDU {}: {line}", n + 1))
        };
        let ptype = field("/header/ptype_value")?;
        let ctx_ids = match ptype {
            0 | 2 | 3 => vec![field("/body/p_cont_id")?],
            11 | 14 => value
                .pointer("/body/p_context_elem")
                .and_then(Value::as_array)
                .with_context(|| format!("inspect gave no /body/p_context_elem for PDU {}", n + 1))?
                .iter()
                .map(|elem| elem.get("p_cont_id").and_then(Value::as_u64))
                .collect::<Option<_>>()
                .with_context(|| format!("a context element without p_cont_id in PDU {}", n + 1))?,
            _ => Vec::new(),
        };
        let dir = match value.get("direction").and_then(Value::as_str) {
            Some("I") => Some(Dir::In),
            Some("O") => Some(Dir::Out),
            _ => None,
        };
        pdus.push((
            dir,
            Fields {
                ptype,
                call_id: field("/header/call_id")?,
                frag_len: field("/header/frag_length")?,
                ctx_ids,
                opnum: if ptype == 0 {
                    Some(field("/body/opnum")?)
                } else {
                    None
                },
            },
        ));
    }
    Ok(pdus)
}

/// Every disagreement between the input, our decoder and tshark; empty when all is well.
fn compare(pdus: &[Pdu], ours: &[(Option<Dir>, Fields)], frames: &[Frame]) -> Vec<String> {
    let mut problems = Vec::new();
    for frame in frames {
        if frame.malformed {
            problems.push(format!("frame {}: malformed", frame.number));
        }
        if frame.tcp_len > 0 && !frame.dcerpc {
            problems.push(format!(
                "frame {}: {} payload bytes not taken for DCE/RPC",
                frame.number, frame.tcp_len
            ));
        }
        for (severity, message) in &frame.experts {
            let harmless = HARMLESS.iter().any(|h| message.contains(h))
                || (frame.malformed && message.starts_with("Malformed Packet"));
            if *severity >= SEVERITY_WARNING && !harmless {
                problems.push(format!(
                    "frame {}: expert {severity:#x}: {message}",
                    frame.number
                ));
            }
        }
    }
    let data: Vec<&Frame> = frames.iter().filter(|f| f.tcp_len > 0).collect();
    if data.len() != pdus.len() || ours.len() != pdus.len() {
        problems.push(format!(
            "{} PDUs in, {} TCP segments in the pcap, {} PDUs decoded by inspect",
            pdus.len(),
            data.len(),
            ours.len()
        ));
        return problems;
    }
    for (i, ((pdu, (dir, ours)), frame)) in pdus.iter().zip(ours).zip(data).enumerate() {
        let mut say =
            |what: String| problems.push(format!("PDU {} (frame {}): {what}", i + 1, frame.number));
        if dir.is_some_and(|d| d != pdu.dir) {
            say(format!(
                "inspect says direction {:?}, the file {:?}",
                dir, pdu.dir
            ));
        }
        if Dir::of_ptype(u8::try_from(ours.ptype).unwrap_or(u8::MAX)) != Some(pdu.dir) {
            say(format!("a PTYPE {} PDU sent {:?}", ours.ptype, pdu.dir));
        }
        if frame.ptype.len() != 1 {
            say(format!(
                "tshark found {} PDUs in one segment",
                frame.ptype.len()
            ));
            continue;
        }
        let theirs = Fields {
            ptype: frame.ptype.first().copied().unwrap_or_default(),
            call_id: frame.call_id.first().copied().unwrap_or_default(),
            frag_len: frame.frag_len.first().copied().unwrap_or_default(),
            ctx_ids: if ours.ctx_ids.is_empty() {
                Vec::new()
            } else {
                frame.ctx_ids.clone()
            },
            opnum: ours.opnum.and_then(|_| frame.opnum.first().copied()),
        };
        if theirs != *ours {
            say(format!("fields differ: ours {ours:?}, tshark {theirs:?}"));
        }
        let length = u64::try_from(pdu.bytes.len()).unwrap_or(u64::MAX);
        if ours.frag_len != length || frame.tcp_len != length {
            say(format!(
                "frag_length {} but the PDU has {length} bytes",
                ours.frag_len
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bind (PTYPE 11), little-endian, call_id 2, frag_length 72, one context (p_cont_id 1).
    const BIND: &str = "05000b03100000004800000002000000d016d016000000000100000001000100\
                        c84f324b7016d30112785a47bf6ee18803000000045d888aeb1cc9119fe808002b10486002000000";

    #[test]
    fn direction_follows_the_packet_type() {
        assert_eq!(Dir::of_ptype(0), Some(Dir::In));
        assert_eq!(Dir::of_ptype(11), Some(Dir::In));
        assert_eq!(Dir::of_ptype(16), Some(Dir::In));
        assert_eq!(Dir::of_ptype(2), Some(Dir::Out));
        assert_eq!(Dir::of_ptype(13), Some(Dir::Out));
        assert_eq!(Dir::of_ptype(17), Some(Dir::Out));
        assert_eq!(Dir::of_ptype(1), None, "ping is connectionless");
    }

    #[test]
    fn fixture_files_split_by_frag_length() {
        let one = hex::decode(BIND).unwrap();
        let mut two = one.clone();
        two.extend_from_slice(&one);
        let pdus = split_pdus(&two).unwrap();
        assert_eq!(pdus.len(), 2);
        assert_eq!(
            pdus[1],
            Pdu {
                dir: Dir::In,
                bytes: one.clone()
            }
        );
        assert!(split_pdus(&one[..71]).is_err(), "truncated PDU");
        let mut bad = one.clone();
        bad[2] = 1;
        assert!(split_pdus(&bad).is_err(), "connectionless PTYPE");
        let mut big_endian = one;
        big_endian[4] = 0x00;
        big_endian[8..10].copy_from_slice(&[0, 72]);
        assert_eq!(split_pdus(&big_endian).unwrap().len(), 1);
    }

    #[test]
    fn conversation_lines_round_trip() {
        let text = format!("# a comment\nI {BIND}\n\nO 0500\n");
        let pdus = parse_conversation(&text).unwrap();
        assert_eq!(pdus.len(), 2);
        assert_eq!(
            pdus[1],
            Pdu {
                dir: Dir::Out,
                bytes: vec![5, 0]
            }
        );
        assert!(parse_conversation("X 00").is_err());
        assert!(parse_conversation("I 0").is_err());
        assert!(parse_conversation("I zz").is_err());
    }

    fn bind_frame() -> Frame {
        Frame {
            number: 1,
            tcp_len: 72,
            dcerpc: true,
            ptype: vec![11],
            call_id: vec![2],
            frag_len: vec![72],
            ctx_ids: vec![1],
            ..Frame::default()
        }
    }

    #[test]
    fn tshark_rows_parse_multi_valued_fields() {
        let row = "3\t72\t5\t\t2097152\u{1f}6291456\tchat\u{1f}Bind not acknowledged\t11\t2\t72\t0\u{1f}1\t\n";
        let frames = parse_tshark(row).unwrap();
        assert_eq!(frames[0].number, 3);
        assert_eq!(frames[0].ctx_ids, [0, 1]);
        assert_eq!(
            frames[0].experts[1],
            (0x60_0000, "Bind not acknowledged".to_owned())
        );
        assert!(frames[0].dcerpc && !frames[0].malformed);
        assert!(frames[0].opnum.is_empty());
    }

    #[test]
    fn inspect_lines_give_the_compared_fields() {
        let text = r#"{"direction":"I","header":{"ptype_value":11,"call_id":2,"frag_length":72},"body":{"p_context_elem":[{"p_cont_id":1}]}}
{"direction":"I","header":{"ptype_value":0,"call_id":3,"frag_length":24},"body":{"p_cont_id":1,"opnum":4}}
{"direction":"O","header":{"ptype_value":12,"call_id":2,"frag_length":60},"body":{}}"#;
        let pdus = parse_inspect(text).unwrap();
        assert_eq!(pdus[0].1.ctx_ids, [1]);
        assert_eq!(pdus[1].1.opnum, Some(4));
        assert_eq!(
            pdus[2],
            (
                Some(Dir::Out),
                Fields {
                    ptype: 12,
                    call_id: 2,
                    frag_len: 60,
                    ..Fields::default()
                }
            )
        );
        assert!(
            parse_inspect(r#"{"error":"truncated"}"#).is_err(),
            "an undecoded PDU is an error"
        );
        assert!(parse_inspect("not json").is_err());
    }

    #[test]
    fn agreement_passes_and_each_disagreement_is_reported() {
        let pdus = parse_conversation(&format!("I {BIND}")).unwrap();
        let ours = vec![(
            Some(Dir::In),
            Fields {
                ptype: 11,
                call_id: 2,
                frag_len: 72,
                ctx_ids: vec![1],
                opnum: None,
            },
        )];
        assert_eq!(compare(&pdus, &ours, &[bind_frame()]), Vec::<String>::new());

        let other_call = Frame {
            call_id: vec![3],
            ..bind_frame()
        };
        assert_eq!(compare(&pdus, &ours, &[other_call]).len(), 1);
        let malformed = Frame {
            malformed: true,
            ..bind_frame()
        };
        assert_eq!(compare(&pdus, &ours, &[malformed]).len(), 1);
        let not_dcerpc = Frame {
            dcerpc: false,
            ptype: vec![],
            ..bind_frame()
        };
        assert!(
            compare(&pdus, &ours, &[not_dcerpc])
                .iter()
                .any(|p| p.contains("not taken for DCE/RPC"))
        );
        let warned = Frame {
            experts: vec![(0x60_0000, "Fragment data missing".to_owned())],
            ..bind_frame()
        };
        assert_eq!(compare(&pdus, &ours, &[warned]).len(), 1);
        let harmless = Frame {
            experts: vec![(0x60_0000, "Bind not acknowledged".to_owned())],
            ..bind_frame()
        };
        assert!(compare(&pdus, &ours, &[harmless]).is_empty());
        assert_eq!(
            compare(&pdus, &[], &[bind_frame()]).len(),
            1,
            "inspect decoded nothing"
        );
        let sent_backwards = parse_conversation(&format!("O {BIND}")).unwrap();
        assert_eq!(
            compare(&sent_backwards, &ours, &[bind_frame()]).len(),
            2,
            "a bind from the server"
        );
        let wrong_way = vec![(Some(Dir::Out), ours[0].1.clone())];
        assert_eq!(compare(&pdus, &wrong_way, &[bind_frame()]).len(), 1);
    }
}
