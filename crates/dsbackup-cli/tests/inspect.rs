//! `dsbackup inspect` end to end: the built binary run on fixtures, its JSON checked value by
//! value.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a failure is a panic"
)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use bytes::{Bytes, BytesMut};
use dsbackup_proto::iface::{Direction, Interface, decode_stub};
use dsbackup_proto::{
    AuthLevel, AuthType, Bind, BindAck, ClientAssociation, ClientConfig, ContextResult, DataRep,
    Fault, FaultStatus, Pdu, PduBody, PfcFlags, PortAny, PresentationContext, Request, Response,
    SecurityProvider, ServerAssociation, ServerConfig, ServerEvent, SyntaxId, Uuid,
};
use serde_json::Value;

const PASSWORD: &str = "Passw0rd!123";

fn fixture(path: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "..", "..", "fixtures", path]
        .iter()
        .collect()
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(fixture(path)).unwrap()
}

/// Runs `dsbackup inspect ARGS` with `stdin`, without the password variable of the caller.
fn inspect(args: &[&str], stdin: &[u8]) -> Output {
    inspect_env(args, stdin, None)
}

fn inspect_env(args: &[&str], stdin: &[u8], password_env: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dsbackup"));
    command
        .arg("inspect")
        .args(args)
        .env_remove("DSBACKUP_INSPECT_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(password) = password_env {
        command.env("DSBACKUP_INSPECT_PASSWORD", password);
    }
    let mut child = command.spawn().unwrap();
    // A run that fails on its arguments exits without reading its input: a broken pipe then.
    if let Err(error) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }
    child.wait_with_output().unwrap()
}

/// The JSON lines of a successful run.
fn lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "inspect failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn conversation(name: &str, password: Option<&str>) -> Vec<Value> {
    let path = fixture(&format!("pdu-conversations/{name}"));
    let path = path.to_str().unwrap();
    match password {
        Some(password) => lines(&inspect(&["--nt-password", password, path], b"")),
        None => lines(&inspect(&[path], b"")),
    }
}

fn encode(pdu: &Pdu) -> Vec<u8> {
    let mut out = BytesMut::new();
    pdu.encode(&mut out).unwrap();
    out.to_vec()
}

fn context(p_cont_id: u16, uuid: &str, version: u16) -> PresentationContext {
    PresentationContext {
        p_cont_id,
        abstract_syntax: SyntaxId::new(uuid.parse::<Uuid>().unwrap(), version, 0),
        transfer_syntaxes: vec![SyntaxId::NDR],
    }
}

fn request(call_id: u32, p_cont_id: u16, opnum: u16, stub: &[u8]) -> Pdu {
    Pdu::new(
        call_id,
        PduBody::Request(Request {
            alloc_hint: u32::try_from(stub.len()).unwrap(),
            p_cont_id,
            opnum,
            object: None,
            stub: Bytes::copy_from_slice(stub),
        }),
    )
}

fn response(call_id: u32, stub: &[u8], flags: PfcFlags) -> Pdu {
    let mut pdu = Pdu::new(
        call_id,
        PduBody::Response(Response {
            alloc_hint: 0,
            p_cont_id: 0,
            cancel_count: 0,
            reserved: 0,
            stub: Bytes::copy_from_slice(stub),
        }),
    );
    pdu.pfc_flags = flags;
    pdu
}

/// A bind to ad_backup (context 0) and to an interface inspect does not know (context 1), then
/// HrRBackupPrepare with its response in two fragments, a call on the unknown interface, and
/// an HrRBackupOpenFile whose stub is cut short, answered by a fault.
fn our_conversation() -> Vec<u8> {
    let bind = Pdu::new(
        1,
        PduBody::Bind(Bind {
            max_xmit_frag: 4280,
            max_recv_frag: 4280,
            assoc_group_id: 0,
            p_context_elem: vec![
                context(0, "ecec0d70-a603-11d0-96b1-00a0c91ece30", 1),
                context(1, "12345778-1234-abcd-ef00-0123456789ac", 1),
            ],
        }),
    );
    let ack = Pdu::new(
        1,
        PduBody::BindAck(BindAck {
            max_xmit_frag: 4280,
            max_recv_frag: 4280,
            assoc_group_id: 0x1234,
            sec_addr: PortAny::new("49152"),
            p_result_list: vec![
                ContextResult::acceptance(SyntaxId::NDR),
                ContextResult::acceptance(SyntaxId::NDR),
            ],
        }),
    );
    let prepare = read("ndr/ad_backup-0-HrRBackupPrepare-request.bin");
    let prepared = read("ndr/ad_backup-0-HrRBackupPrepare-response.bin");
    let (head, tail) = prepared.split_at(10);
    let open = read("ndr/ad_backup-3-HrRBackupOpenFile-request.bin");
    let mut fault = Pdu::new(4, PduBody::Fault(Fault::new(0, FaultStatus(0x1c01_0003))));
    fault.pfc_flags = PfcFlags::FIRST_FRAG | PfcFlags::LAST_FRAG;
    [
        encode(&bind),
        encode(&ack),
        encode(&request(2, 0, 0, &prepare)),
        encode(&response(2, head, PfcFlags::FIRST_FRAG)),
        encode(&response(2, tail, PfcFlags::LAST_FRAG)),
        encode(&request(3, 1, 7, b"\x01\x02\x03\x04")),
        encode(&request(4, 0, 3, &open[..open.len() - 6])),
        encode(&fault),
    ]
    .concat()
}

#[test]
fn calls_of_a_bound_interface_decode_by_idl_name() {
    let out = lines(&inspect(&[], &our_conversation()));
    assert_eq!(out.len(), 8);
    assert!(out[..2].iter().all(|pdu| pdu.get("call").is_none()));

    let call = &out[2]["call"];
    assert_eq!(call["interface"], "ad_backup");
    assert_eq!(call["opnum"], 0);
    assert_eq!(call["name"], "HrRBackupPrepare");
    assert_eq!(call["direction"], "request");
    assert_eq!(
        call["params"]["wszBackupAnnotation"],
        "NTDS Backup Interface"
    );
    assert_eq!(call["params"]["dwClientIdentifier"], 4242);
    assert_eq!(call["params"]["grbit"], 1);

    // The first fragment of the response carries nothing; the last the whole call.
    assert!(out[3].get("call").is_none());
    let call = &out[4]["call"];
    assert_eq!(call["direction"], "response");
    assert_eq!(call["name"], "HrRBackupPrepare");
    assert_eq!(
        call["params"]["phContext"]["uuid"],
        "5f0c4a7e-91b2-4c3d-8e6f-0a1b2c3d4e5f"
    );
    assert_eq!(call["params"]["pcbExpiryToken"], 16);
    assert_eq!(call["params"]["status"]["value"], 0);

    // SAMR is not ours: the call is named by its interface UUID and opnum.
    let call = &out[5]["call"];
    assert_eq!(call["interface"], Value::Null);
    assert_eq!(
        call["interface_uuid"],
        "12345778-1234-abcd-ef00-0123456789ac"
    );
    assert_eq!(call["interface_version"], "1.0");
    assert_eq!(call["opnum"], 7);
    assert!(call.get("params").is_none());

    // A stub cut short: the call is named, its error given, the run goes on.
    assert_eq!(out[6]["call"]["name"], "HrRBackupOpenFile");
    assert!(out[6]["call"].get("params").is_none());
    assert!(!out[6]["call_error"].as_str().unwrap().is_empty());
    assert_eq!(out[7]["call"]["name"], "HrRBackupOpenFile");
    assert_eq!(out[7]["call"]["direction"], "fault");
}

#[test]
fn a_call_on_a_context_the_server_rejected_is_not_decoded() {
    let mut bytes = our_conversation();
    // Second bind_ack result (context 1) is fine; make the first a provider rejection by
    // re-encoding the ack.
    let ack = Pdu::new(
        1,
        PduBody::BindAck(BindAck {
            max_xmit_frag: 4280,
            max_recv_frag: 4280,
            assoc_group_id: 0x1234,
            sec_addr: PortAny::new("49152"),
            p_result_list: vec![
                ContextResult::provider_rejection(
                    dsbackup_proto::ProviderReason::ABSTRACT_SYNTAX_NOT_SUPPORTED,
                ),
                ContextResult::acceptance(SyntaxId::NDR),
            ],
        }),
    );
    let bind_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let old_ack_len = usize::from(u16::from_le_bytes([
        bytes[bind_len + 8],
        bytes[bind_len + 9],
    ]));
    bytes.splice(bind_len..bind_len + old_ack_len, encode(&ack));
    let out = lines(&inspect(&[], &bytes));
    // Only the call on the accepted (unknown) context is named; ad_backup's are not decoded.
    let calls: Vec<&Value> = out.iter().filter_map(|pdu| pdu.get("call")).collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["interface"], Value::Null);
    assert_eq!(calls[0]["opnum"], 7);
}

#[test]
fn samba_ept_lookup_lists_53_entries() {
    let out = conversation("samba-epm-lookup.txt", None);
    assert_eq!(out[2]["call"]["name"], "EptLookup");
    assert_eq!(out[2]["call"]["params"]["max_ents"], 500);
    // Two fragments: the second carries the call.
    assert!(out[3].get("call").is_none());
    let params = &out[4]["call"]["params"];
    assert_eq!(params["num_ents"], 53);
    let entries = params["entries"]["items"].as_array().unwrap();
    assert_eq!(entries.len(), 53);
    assert_eq!(entries[0]["annotation"], "dnsserver");
    // The DNS server interface 50abc2a4-574d-40b3-9d66-ee4fd5fba076 in its first tower floor.
    let tower = entries[0]["tower"]["tower_octet_string"].as_str().unwrap();
    assert!(
        tower.contains("a4c2ab504d57b3409d66ee4fd5fba076"),
        "{tower}"
    );
    // SAMR (12345778-1234-abcd-ef00-0123456789ac) is registered too.
    assert!(entries.iter().any(|entry| {
        entry["tower"]["tower_octet_string"]
            .as_str()
            .unwrap()
            .contains("785734123412cdabef000123456789ac")
    }));
}

#[test]
fn sealed_stubs_without_the_password_say_sealed_and_nothing_more() {
    let out = conversation("samba-epm-lookup-sealed.txt", None);
    for pdu in &out[3..6] {
        assert_eq!(pdu["sealed"], true);
        assert!(pdu.get("call").is_none());
        assert!(pdu.get("unsealed").is_none());
    }
}

#[test]
fn the_password_unseals_the_impacket_ept_lookup() {
    let plain = conversation("samba-epm-lookup.txt", None);
    let out = conversation("samba-epm-lookup-sealed.txt", Some(PASSWORD));
    assert_eq!(out[2]["ntlm"]["message"], "AUTHENTICATE");
    assert_eq!(out[2]["ntlm"]["user"], "Administrator");
    assert_eq!(out[2]["ntlm"]["session_keys"], "derived");
    for pdu in &out[3..6] {
        assert_eq!(pdu["unsealed"], true, "{pdu}");
    }
    assert_eq!(out[3]["call"]["params"]["max_ents"], 500);
    let params = &out[5]["call"]["params"];
    assert_eq!(params["num_ents"], 53);
    // The same listing as the anonymous connection's.
    assert_eq!(
        params["entries"], plain[4]["call"]["params"]["entries"],
        "sealed and plain listings differ"
    );
    // The same through the environment.
    let path = fixture("pdu-conversations/samba-epm-lookup-sealed.txt");
    let env = lines(&inspect_env(&[path.to_str().unwrap()], b"", Some(PASSWORD)));
    assert_eq!(env[5]["call"]["params"]["num_ents"], 53);
}

#[test]
fn the_password_unseals_rpcclient_ept_map() {
    let out = conversation("samba-epm-map-sealed.txt", Some(PASSWORD));
    let request = &out[3]["call"];
    assert_eq!(request["name"], "EptMap");
    assert_eq!(request["params"]["max_towers"], 500);
    // rpcclient pads this stub with 60 bytes past the last parameter.
    assert_eq!(request["trailing"].as_str().unwrap().len(), 120);
    let answer = &out[4]["call"]["params"];
    assert_eq!(answer["num_towers"], 1);
    assert_eq!(answer["status"]["value"], 0);
    // LSARPC by named pipe: \pipe\lsass.
    let tower = answer["towers"]["items"][0]["tower_octet_string"]
        .as_str()
        .unwrap();
    assert!(tower.contains("5c706970655c6c7361737300"), "{tower}");
}

#[test]
fn the_password_unseals_and_verifies_samr() {
    let sealed = conversation("samba-samr-sealed.txt", Some(PASSWORD));
    let stubs: Vec<&Value> = sealed.iter().skip(3).collect();
    assert_eq!(stubs.len(), 14);
    for pdu in &stubs {
        assert_eq!(pdu["unsealed"], true, "{pdu}");
        assert!(pdu["call"].get("params").is_none(), "SAMR is not decoded");
        assert_eq!(
            pdu["call"]["interface_uuid"],
            "12345778-1234-abcd-ef00-0123456789ac"
        );
    }
    let opnums: Vec<&Value> = stubs
        .iter()
        .step_by(2)
        .map(|pdu| &pdu["body"]["opnum"])
        .collect();
    assert_eq!(opnums, [64, 6, 5, 7, 13, 1, 1]);
    // SamrConnect5 (64) names the server, \\127.0.0.1 in UTF-16LE, and gets a handle back
    // with status 0.
    let connect = stubs[0]["unsealed_stub"].as_str().unwrap();
    assert!(
        connect.contains("5c005c003100320037002e0030002e0030002e003100"),
        "{connect}"
    );
    let handle = stubs[1]["unsealed_stub"].as_str().unwrap();
    assert!(
        handle.ends_with("00000000") && handle.len() == 80,
        "{handle}"
    );

    let signed = conversation("samba-samr-signed.txt", Some(PASSWORD));
    assert!(signed.iter().skip(3).all(|pdu| pdu["verified"] == true));
}

#[test]
fn a_wrong_password_is_reported_and_the_run_goes_on() {
    let out = conversation("samba-samr-wrong-password.txt", Some(PASSWORD));
    assert!(
        out[2]["ntlm"]["session_error"]
            .as_str()
            .unwrap()
            .contains("NTProofStr"),
    );
    assert_eq!(out[3]["sealed"], true);
    assert!(out[3]["security_error"].is_string());
    assert_eq!(out[4]["header"]["ptype"], "fault");

    let out = conversation("samba-epm-lookup-sealed.txt", Some("not the password"));
    assert!(out[2]["ntlm"]["session_error"].is_string());
    assert!(out.iter().all(|pdu| pdu.get("call").is_none()));
}

#[test]
fn bare_stubs_decode_as_the_named_call() {
    let path = fixture("ndr/ad_backup-3-HrRBackupOpenFile-request.bin");
    let out = lines(&inspect(
        &[
            "--iface",
            "ad_backup",
            "--opnum",
            "3",
            "--request",
            path.to_str().unwrap(),
        ],
        b"",
    ));
    let call = &out[0];
    assert_eq!(call["name"], "HrRBackupOpenFile");
    assert_eq!(call["params"]["cbReadHintSize"], 65536);
    assert_eq!(
        call["params"]["wszAttachmentName"],
        r"\\DC1\C$\Windows\NTDS\ntds.dit"
    );

    // Hex on standard input.
    let stub = read("ndr/samba-epm-3-ept_map-response.bin");
    let hex: String = stub.iter().map(|b| format!("{b:02x} ")).collect();
    let out = lines(&inspect(
        &["--iface", "epm", "--opnum", "3", "--response", "-"],
        format!("# ept_map answer\n{hex}\n").as_bytes(),
    ));
    let tower = out[0]["params"]["towers"]["items"][0]["tower_octet_string"]
        .as_str()
        .unwrap();
    // Floor 4: TCP port 49154 (0xc002, big-endian on the wire).
    assert!(
        tower.contains("01000702 00c002".replace(' ', "").as_str()),
        "{tower}"
    );

    // Big-endian: our encoder's big-endian form of the same response decodes the same.
    let read_response = read("ndr/ad_backup-4-HrRBackupRead-response-short.bin");
    let decoded = decode_stub(
        Interface::AdBackup,
        4,
        Direction::Response,
        DataRep::LITTLE_ENDIAN,
        &read_response,
    )
    .unwrap();
    let big = decoded.encode(DataRep::BIG_ENDIAN).unwrap();
    let args = ["--iface", "ad_backup", "--opnum", "4", "--response"];
    let little = lines(&inspect(&args, &read_response));
    let big = lines(&inspect(&[&args[..], &["--big-endian"]].concat(), &big));
    assert_eq!(little, big);
    assert!(little[0]["params"]["pcbRead"].as_u64().unwrap() > 0);
}

#[test]
fn errors_are_reported() {
    // Odd number of hex digits in a conversation: an error object, and the run fails at the
    // end.
    let output = inspect(&[], b"I 05000b0\n");
    assert_eq!(output.status.code(), Some(1));
    let error = error_objects(&output);
    assert_eq!(error[0]["line"], 1);
    assert_eq!(error[0]["error"]["message"], "odd number of hex digits");
    assert!(String::from_utf8_lossy(&output.stderr).contains("could not be decoded"));

    // An unknown interface name is a usage error.
    let output = inspect(&["--iface", "samr", "--opnum", "1", "--request"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown interface"));

    // A direction is required.
    let output = inspect(&["--iface", "epm", "--opnum", "1"], b"");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--request or --response"));

    // A bare stub that does not decode.
    let output = inspect(
        &["--iface", "ad_backup", "--opnum", "0", "--request"],
        &[1, 2, 3],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not decode"));

    // An opnum outside the table.
    let output = inspect(&["--iface", "mgmt", "--opnum", "9", "--request"], b"");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("opnum 9"));

    // A PDU that does not decode fails the run, after the rest.
    let nak = hex::encode(read("pdu/samba-bind_nak.bin"));
    let output = inspect(&[], format!("O 0500\nO {nak}\n").as_bytes());
    assert_eq!(output.status.code(), Some(1));
    let error = error_objects(&output);
    assert_eq!(error.len(), 1);
    assert_eq!(error[0]["error"]["kind"], "input");
    assert!(
        error[0]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("truncated PDU")
    );
    let decoded = String::from_utf8(output.stdout.clone()).unwrap();
    assert!(decoded.lines().nth(1).unwrap().contains("\"bind_nak\""));
}

/// The error objects a run printed.
fn error_objects(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|value| value.get("error").is_some())
        .collect()
}

/// The real capture, read directly: every DCE/RPC PDU tshark finds, in its frame and TCP
/// stream, each stream followed through its binds and unsealed with the password.
#[test]
fn a_pcapng_capture_is_read_stream_by_stream() {
    let path = fixture("capture/samba-4.17-epm-samr-ntlm.pcapng");
    let out = lines(&inspect(
        &["--nt-password", PASSWORD, path.to_str().unwrap()],
        b"",
    ));
    let ours: Vec<String> = out
        .iter()
        .map(|pdu| {
            format!(
                "{}\t{}\t{}\t{}",
                pdu["frame"], pdu["stream"], pdu["header"]["call_id"], pdu["header"]["ptype_value"]
            )
        })
        .collect();
    let tshark = String::from_utf8(read("capture/samba-4.17-epm-samr-ntlm.tshark.tsv")).unwrap();
    let theirs: Vec<&str> = tshark.lines().collect();
    assert_eq!(ours, theirs);

    // Stream 2 (impacket at packet privacy): the two-fragment ept_lookup answer unsealed and
    // decoded at its last fragment.
    let lookup: Vec<&Value> = out
        .iter()
        .filter(|pdu| pdu["stream"] == 2 && pdu["call"]["direction"] == "response")
        .collect();
    assert_eq!(lookup.len(), 1);
    assert_eq!(lookup[0]["unsealed"], true);
    assert_eq!(lookup[0]["call"]["name"], "EptLookup");
    assert_eq!(lookup[0]["call"]["params"]["num_ents"], 53);
    assert_eq!(lookup[0]["direction"], "O");
    assert_eq!(lookup[0]["src"], "127.0.0.1:135");
    // Every entry's tower as a string binding (Samba registers its addresses as 0.0.0.0).
    let entries = lookup[0]["call"]["params"]["entries"]["items"]
        .as_array()
        .unwrap();
    let bindings: Vec<&str> = entries
        .iter()
        .filter_map(|entry| entry["tower"]["string_binding"].as_str())
        .collect();
    assert!(
        bindings.contains(&"ncacn_ip_tcp:0.0.0.0[49154]"),
        "{bindings:?}"
    );

    // SAMR is not decoded, but every call is named by UUID and opnum, and unsealed.
    let samr: Vec<&Value> = out
        .iter()
        .filter(|pdu| pdu["call"]["interface_uuid"] == "12345778-1234-abcd-ef00-0123456789ac")
        .collect();
    assert!(samr.len() >= 14, "{}", samr.len());
    assert!(samr.iter().any(|pdu| pdu["unsealed"] == true));

    // The wrong-password client: its keys do not derive, the fault is still shown.
    assert!(
        out.iter()
            .any(|pdu| pdu["ntlm"]["session_error"].is_string())
    );
    let fault = out
        .iter()
        .find(|pdu| pdu["header"]["ptype"] == "fault")
        .unwrap();
    assert_eq!(fault["body"]["status"], 0x1c01_000b);
    assert_eq!(fault["body"]["status_hex"], "0x1c01000b");
    assert_eq!(fault["body"]["status_name"], "nca_s_proto_error");

    // The CHALLENGE in full, as tshark reads frame 24 (stream 1): flags, server challenge,
    // target info.
    let challenge = out.iter().find(|pdu| pdu["frame"] == 24).unwrap();
    let ntlm = &challenge["ntlm"];
    assert_eq!(ntlm["message"], "CHALLENGE");
    assert_eq!(ntlm["flags"]["value"], "0xe2898235");
    let names = ntlm["flags"]["names"].as_array().unwrap();
    assert!(names.contains(&Value::from("NTLMSSP_NEGOTIATE_SEAL")));
    assert!(names.contains(&Value::from("NTLMSSP_TARGET_TYPE_DOMAIN")));
    assert_eq!(ntlm["server_challenge"], "edebef84edf499b6");
    assert_eq!(ntlm["target_name"], "TEST");
    let info = ntlm["target_info"].as_array().unwrap();
    assert!(
        info.contains(
            &serde_json::json!({"id": "MsvAvDnsComputerName", "value": "dc1.test.local"})
        )
    );
}

/// Our client and server associations, NTLM at packet privacy with header signing: the
/// conversation as `I`/`O` hex lines. HrRBackupPrepare, then HrRBackupRead whose 64 KiB answer
/// goes out in sealed fragments.
fn our_sealed_conversation() -> String {
    let ad_backup = SyntaxId::new(
        "ecec0d70-a603-11d0-96b1-00a0c91ece30".parse().unwrap(),
        1,
        0,
    );
    let initiator = dsbackup_ntlm::Initiator::new(
        dsbackup_ntlm::InitiatorConfig::new(dsbackup_ntlm::Credentials::from_password(
            "svc-backup",
            "CORP",
            "s3cret!",
        )),
        dsbackup_ntlm::ClientInputs {
            client_challenge: [1; 8],
            random_session_key: [2; 16],
            timestamp: 0,
        },
    );
    let mut config = ClientConfig::default();
    config.auth_level = AuthLevel::PKT_PRIVACY;
    config.header_signing = true;
    let mut client = ClientAssociation::new(config, Some(Box::new(initiator))).unwrap();
    let factory: dsbackup_proto::SecurityFactory = Box::new(|auth_type| {
        (auth_type == AuthType::WINNT).then(|| {
            let mut users = dsbackup_ntlm::InMemoryCredentials::new();
            users.insert_password("svc-backup", "CORP", "s3cret!");
            let config = dsbackup_ntlm::AcceptorConfig::new(
                std::sync::Arc::new(users),
                "DC1",
                "CORP",
                "corp.example",
            );
            Box::new(dsbackup_ntlm::Acceptor::new(
                config,
                dsbackup_ntlm::ServerInputs {
                    server_challenge: [7; 8],
                    timestamp: 0,
                },
            )) as Box<dyn SecurityProvider>
        })
    });
    let interface = dsbackup_proto::Interface {
        syntax: ad_backup,
        opnums: 9,
        min_auth_level: AuthLevel::PKT_PRIVACY,
    };
    let mut server =
        ServerAssociation::new(ServerConfig::new(vec![interface], 1), Some(factory)).unwrap();
    let mut lines = String::new();
    let mut shuttle = |c: &mut ClientAssociation, s: &mut ServerAssociation| loop {
        let mut idle = true;
        while let Some(frame) = c.poll_transmit().map(|frame| frame.to_bytes()) {
            idle = false;
            writeln!(lines, "I {}", hex(&frame)).unwrap();
            s.handle_frame(frame).unwrap();
        }
        while let Some(frame) = s.poll_transmit().map(|frame| frame.to_bytes()) {
            idle = false;
            writeln!(lines, "O {}", hex(&frame)).unwrap();
            c.handle_frame(frame).unwrap();
        }
        let requests: Vec<_> = std::iter::from_fn(|| s.poll_event())
            .filter_map(|event| match event {
                ServerEvent::Request(request) => Some(request),
                _ => None,
            })
            .collect();
        for request in requests {
            idle = false;
            let answer = match request.opnum {
                0 => read("ndr/ad_backup-0-HrRBackupPrepare-response.bin"),
                _ => read("ndr/ad_backup-4-HrRBackupRead-response.bin"),
            };
            s.respond(request.call_id, answer).unwrap();
        }
        if idle {
            return;
        }
    };
    let contexts = client.bind(&[ad_backup]).unwrap();
    shuttle(&mut client, &mut server);
    assert!(client.is_bound());
    for (opnum, stub) in [
        (0, "ndr/ad_backup-0-HrRBackupPrepare-request.bin"),
        (4, "ndr/ad_backup-4-HrRBackupRead-request.bin"),
    ] {
        client.call(contexts[0], opnum, None, read(stub)).unwrap();
        shuttle(&mut client, &mut server);
    }
    lines
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        write!(out, "{byte:02x}").unwrap();
        out
    })
}

#[test]
fn the_password_unseals_our_own_fragmented_calls() {
    let text = our_sealed_conversation();
    let sealed = lines(&inspect(&[], text.as_bytes()));
    assert!(sealed.iter().all(|pdu| pdu.get("call").is_none()));
    assert!(sealed.iter().any(|pdu| pdu["sealed"] == true));

    let out = lines(&inspect(
        &["--nt-password", "s3cret!", "-"],
        text.as_bytes(),
    ));
    let calls: Vec<&Value> = out.iter().filter_map(|pdu| pdu.get("call")).collect();
    assert_eq!(calls.len(), 4, "two requests, two responses");
    assert_eq!(
        calls[0]["params"]["wszBackupAnnotation"],
        "NTDS Backup Interface"
    );
    assert_eq!(calls[1]["params"]["pcbExpiryToken"], 16);
    assert_eq!(calls[2]["name"], "HrRBackupRead");
    assert_eq!(calls[3]["params"]["pcbRead"], 65536);
    let data = calls[3]["params"]["pbBuffer"]["data"].as_str().unwrap();
    assert_eq!(data.len(), 2 * 65536);
    // Every protected PDU verified; the read's answer took many fragments.
    let stubs: Vec<&Value> = out.iter().filter(|pdu| pdu["sealed"] == true).collect();
    assert!(stubs.len() > 10, "{} sealed PDUs", stubs.len());
    assert!(stubs.iter().all(|pdu| pdu["unsealed"] == true));
    assert!(out.iter().all(|pdu| pdu.get("security_error").is_none()));
}

/// `--opnum` takes the call's IDL name (any case) as well as its number; an unknown name is a
/// usage error that lists the interface's calls.
#[test]
fn opnum_by_name() {
    let stub = read("ndr/epm-3-ept_map-request.bin");
    let by_number = lines(&inspect(
        &["--iface", "epm", "--opnum", "3", "--request"],
        &stub,
    ));
    let by_name = lines(&inspect(
        &["--iface", "epm", "--opnum", "EPT_MAP", "--request"],
        &stub,
    ));
    assert_eq!(by_name, by_number);
    assert_eq!(by_name[0]["name"], "EptMap");
    let output = inspect(
        &["--iface", "epm", "--opnum", "ept_nothing", "--request"],
        &stub,
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("EptLookup, EptMap"), "{stderr}");
}
