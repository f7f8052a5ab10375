//! The transport against peers nobody on the project wrote.
//!
//! - `samba_*`: our client against a Samba AD DC (`scripts/peers/samba-dc.sh` starts a throwaway
//!   one), named by `DSBACKUP_SAMBA_HOST`, `DSBACKUP_SAMBA_USER`, `DSBACKUP_SAMBA_PASSWORD` and
//!   `DSBACKUP_SAMBA_DOMAIN`; impacket's listing of the same endpoint map is the reference.
//! - `impacket_*`: impacket's DCE/RPC client (`scripts/peers/impacket_client.py`, run with
//!   `DSBACKUP_PYTHON` or `python3`) against our server, in-process on a loopback port.
//! - `rpcclient_*`: Samba's `rpcclient` against our server's endpoint mapper, which has to be
//!   on port 135 (so the test runs as root), at 127.0.0.2 beside the Samba DC on 127.0.0.1.
//! - `conformance_dump_*`: our client against our server at packet privacy through a recording
//!   relay; the conversation and its plaintext go to `$DSBACKUP_CONFORMANCE_DIR` (default
//!   `target/conformance/`), where `cargo xtask conformance` has tshark decrypt it.
//!
//! The first three need peers installed, so they are `#[ignore]`d: `cargo xtask conformance`
//! starts Samba and runs them with `--ignored --test-threads=1`. Once asked for, a missing
//! variable or peer is a failure, never a skip; a peer that does not end within its deadline
//! is killed and fails its test.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "the helpers of an integration test: a step that fails fails the test"
)]

#[cfg(test)]
pub mod common;

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use dsbackup_ntlm::Credentials;
use dsbackup_proto::trailer::MAGIC;
use dsbackup_proto::{
    AuthLevel, CommonHeader, DataRep, FaultStatus, PacketType, PfcFlags, Uuid, frame_len,
};
use dsbackup_transport::{
    Binding, ClientAuth, ClientOptions, EndpointEntry, RpcInterface, RunningServer, TransportError,
    list_endpoints, resolve,
};
use dsbackup_transport::{epm_syntax, mgmt_syntax};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// Samba

/// A variable the Samba tests cannot do without.
fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the Samba tests need a DC (cargo xtask conformance starts one; \
             by hand: scripts/peers/samba-dc.sh start DIR, then DSBACKUP_SAMBA_HOST=127.0.0.1 \
             DSBACKUP_SAMBA_USER=Administrator DSBACKUP_SAMBA_PASSWORD='Passw0rd!123' \
             DSBACKUP_SAMBA_DOMAIN=TEST)"
        )
    })
}

struct Samba {
    host: String,
    epm: SocketAddr,
    user: String,
    password: String,
    domain: String,
}

impl Samba {
    async fn from_env() -> Self {
        let host = required("DSBACKUP_SAMBA_HOST");
        let epm = tokio::net::lookup_host((host.as_str(), 135))
            .await
            .unwrap()
            .find(SocketAddr::is_ipv4)
            .unwrap_or_else(|| panic!("{host} has no IPv4 address"));
        Self {
            host,
            epm,
            user: required("DSBACKUP_SAMBA_USER"),
            password: required("DSBACKUP_SAMBA_PASSWORD"),
            domain: required("DSBACKUP_SAMBA_DOMAIN"),
        }
    }

    fn options(&self, level: AuthLevel) -> ClientOptions {
        self.options_with_password(level, &self.password)
    }

    fn options_with_password(&self, level: AuthLevel, password: &str) -> ClientOptions {
        let auth = if level == AuthLevel::NONE {
            ClientAuth::None
        } else {
            ClientAuth::ntlm(
                Credentials::from_password(&self.user, &self.domain, password),
                level,
            )
        };
        let mut options = ClientOptions::with_auth(auth);
        options.call_timeout = Duration::from_secs(30);
        options
    }

    /// NTLM inside SPNEGO (auth type 9), no Kerberos offered, with `password`.
    fn spnego(&self, level: AuthLevel, password: &str) -> ClientOptions {
        let mut options = ClientOptions::with_auth(ClientAuth::Negotiate {
            tickets: None,
            ntlm: Some(Credentials::from_password(
                &self.user,
                &self.domain,
                password,
            )),
            level,
        });
        options.call_timeout = Duration::from_secs(30);
        options
    }

    /// impacket's answer, anonymously, on Samba's endpoint mapper.
    async fn impacket(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["--host", self.host.as_str(), "--port", "135"];
        all.extend_from_slice(args);
        impacket(&all).await
    }
}

/// An endpoint-map entry reduced to what both listings show: interface, version, annotation,
/// and the TCP port of an `ncacn_ip_tcp` tower.
type Listed = (String, String, String, Option<u16>);

fn ours_listed(entry: &EndpointEntry) -> Listed {
    let interface = entry
        .interface
        .expect("every Samba tower names an interface");
    (
        interface.uuid.to_string(),
        format!("{}.{}", interface.version, interface.version_minor),
        entry.annotation.clone(),
        entry.tower.tcp_port(),
    )
}

fn impacket_listed(entry: &Value) -> Listed {
    let text = |key: &str| entry[key].as_str().unwrap().to_owned();
    let port = (entry["protseq"] == "ncacn_ip_tcp").then(|| text("endpoint").parse().unwrap());
    (text("uuid"), text("version"), text("annotation"), port)
}

/// Anonymous, connect, integrity and privacy: each binds to Samba's endpoint mapper and reads the
/// whole map with `ept_lookup`, which must be exactly the entries impacket lists (53 for Samba
/// 4.17). At connect the NTLM NEGOTIATE asks for neither signing nor sealing: Samba cannot answer
/// a call at that level once it has granted signing (docs/PEERS.md).
#[tokio::test]
#[ignore = "needs a Samba DC: cargo xtask conformance"]
async fn samba_lists_the_same_endpoint_map_as_rpcdump_at_every_level() {
    let samba = Samba::from_env().await;
    let reference = samba.impacket(&["--ept-lookup"]).await;
    assert_eq!(reference[0]["ok"], true, "impacket: {}", reference[0]);
    let mut theirs: Vec<Listed> = reference[0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(impacket_listed)
        .collect();
    theirs.sort();
    assert!(
        theirs.len() > 20,
        "impacket lists only {} entries",
        theirs.len()
    );

    for level in [
        AuthLevel::NONE,
        AuthLevel::CONNECT,
        AuthLevel::PKT_INTEGRITY,
        AuthLevel::PKT_PRIVACY,
    ] {
        let entries = list_endpoints(samba.epm, &samba.options(level))
            .await
            .unwrap_or_else(|e| panic!("ept_lookup at {level:?}: {e}"));
        let mut ours: Vec<Listed> = entries.iter().map(ours_listed).collect();
        ours.sort();
        assert_eq!(ours, theirs, "at {level:?}");
        // Samba's TCP towers carry the address 0.0.0.0 (ept_map's answer is checked for the
        // substitution of the host asked, in the next test).
        let samr = entries
            .iter()
            .find(|e| e.interface == Some(SAMR) && e.binding.is_some())
            .expect("SAMR over ncacn_ip_tcp is listed");
        assert_eq!(samr.tower.ip_address(), Some([0, 0, 0, 0]));
        assert_eq!(samr.binding.as_ref().unwrap().protseq, "ncacn_ip_tcp");
        // Samba 4.17's endpoint mapper and mgmt are in it, as on every Windows DC.
        for known in [epm_syntax(), mgmt_syntax()] {
            assert!(
                entries.iter().any(|e| e.interface == Some(known)),
                "{known:?}"
            );
        }
    }
}

/// `ept_map` for SAMR gives the port Samba serves it on (impacket's `hept_map` says the same),
/// with the host we asked in place of Samba's 0.0.0.0; SAMR binds there.
#[tokio::test]
#[ignore = "needs a Samba DC: cargo xtask conformance"]
async fn samba_ept_map_resolves_samr_to_the_port_it_listens_on() {
    let samba = Samba::from_env().await;
    let reference = samba
        .impacket(&["--ept-map", "12345778-1234-abcd-ef00-0123456789ac:1.0"])
        .await;
    assert_eq!(reference[0]["ok"], true, "impacket: {}", reference[0]);
    let port = u16::try_from(reference[0]["port"].as_u64().unwrap()).unwrap();

    for level in [
        AuthLevel::NONE,
        AuthLevel::CONNECT,
        AuthLevel::PKT_INTEGRITY,
        AuthLevel::PKT_PRIVACY,
    ] {
        let options = samba.options(level);
        let addr = resolve(samba.epm, SAMR, &options)
            .await
            .unwrap_or_else(|e| panic!("ept_map at {level:?}: {e}"));
        assert_eq!(addr, SocketAddr::new(samba.epm.ip(), port), "at {level:?}");
        assert_ne!(port, 135);
        // Something listens there, and it is SAMR: the bind is accepted.
        let binding = Binding::connect(addr, &[SAMR], &options)
            .await
            .unwrap_or_else(|e| panic!("bind to SAMR on {addr} at {level:?}: {e}"));
        assert_eq!(binding.interface(), SAMR);
        binding.close().await;
    }
}

/// NTLM inside SPNEGO: at connect, packet integrity and packet privacy Samba's endpoint mapper
/// lists the same map as anonymously, and SAMR, on its own port, opens and closes a server
/// handle (`SamrConnect`, `SamrCloseHandle`; from integrity up, as Samba serves SAMR). Samba asks for the mechanism list MICs (the
/// AUTHENTICATE carries a MIC) from integrity up, checks ours and sends its own, which we check;
/// its RC4 handles then start afresh with sequence number 1, as ours, or no call would verify.
/// A wrong password is refused at the AUTHENTICATE's leg, typed.
#[tokio::test]
#[ignore = "needs a Samba DC: cargo xtask conformance"]
async fn samba_takes_ntlm_inside_spnego_at_every_level() {
    let samba = Samba::from_env().await;
    let anonymous = list_endpoints(samba.epm, &samba.options(AuthLevel::NONE))
        .await
        .unwrap();
    for level in [
        AuthLevel::CONNECT,
        AuthLevel::PKT_INTEGRITY,
        AuthLevel::PKT_PRIVACY,
    ] {
        let options = samba.spnego(level, &samba.password);
        let entries = list_endpoints(samba.epm, &options)
            .await
            .unwrap_or_else(|e| panic!("ept_lookup over SPNEGO at {level:?}: {e}"));
        assert_eq!(entries, anonymous, "at {level:?}");
        let addr = resolve(samba.epm, SAMR, &options)
            .await
            .unwrap_or_else(|e| panic!("ept_map over SPNEGO at {level:?}: {e}"));
        let binding = Binding::connect(addr, &[SAMR], &options)
            .await
            .unwrap_or_else(|e| panic!("bind to SAMR over SPNEGO at {level:?}: {e}"));
        samr_connect_and_close(&binding, level).await;
        binding.close().await;
    }
    let wrong = samba.spnego(AuthLevel::PKT_PRIVACY, "not the password");
    let error = list_endpoints(samba.epm, &wrong).await.unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::Fault {
                did_not_execute: true,
                ..
            } | TransportError::Protocol(dsbackup_proto::ProtocolError::Security(_))
        ),
        "{error:?}"
    );
}

/// A wrong password: Samba lets the bind and the auth3 through and faults the first request
/// with `nca_s_proto_error`; the caller gets that fault, typed.
#[tokio::test]
#[ignore = "needs a Samba DC: cargo xtask conformance"]
async fn samba_refuses_a_wrong_password_with_a_typed_fault() {
    let samba = Samba::from_env().await;
    for level in [AuthLevel::PKT_INTEGRITY, AuthLevel::PKT_PRIVACY] {
        let options = samba.options_with_password(level, "not the password");
        let binding = Binding::connect(samba.epm, &[epm_syntax()], &options)
            .await
            .unwrap_or_else(|e| panic!("Samba takes the bind whatever the password: {e}"));
        let error = binding
            .call(3, Bytes::from_static(&[0; 8]))
            .await
            .expect_err("a call with a wrong password");
        assert!(
            matches!(
                error,
                TransportError::Fault {
                    status: FaultStatus::PROTO_ERROR,
                    ..
                }
            ),
            "at {level:?}: {error:?}"
        );
        binding.close().await;
        // The endpoint helpers report the same.
        let error = list_endpoints(samba.epm, &options).await.unwrap_err();
        assert!(
            matches!(
                error,
                TransportError::Fault {
                    status: FaultStatus::PROTO_ERROR,
                    ..
                }
            ),
            "list_endpoints at {level:?}: {error:?}"
        );
    }
}

/// At connect, a wrong password is no refusal: the auth3 fails, so Samba runs the requests,
/// which carry no verifier, in the connection's anonymous auth state (`dcesrv_core.c` takes
/// `default_auth_level_connect` only once a connect-level context has completed). The endpoint
/// mapper serves anonymous callers, so the whole map comes back.
#[tokio::test]
#[ignore = "needs a Samba DC: cargo xtask conformance"]
async fn samba_serves_a_wrong_password_at_connect_as_anonymous() {
    let samba = Samba::from_env().await;
    let options = samba.options_with_password(AuthLevel::CONNECT, "not the password");
    let entries = list_endpoints(samba.epm, &options)
        .await
        .unwrap_or_else(|e| panic!("ept_lookup at connect with a wrong password: {e}"));
    let anonymous = list_endpoints(samba.epm, &samba.options(AuthLevel::NONE))
        .await
        .unwrap();
    let mut ours: Vec<Listed> = entries.iter().map(ours_listed).collect();
    let mut reference: Vec<Listed> = anonymous.iter().map(ours_listed).collect();
    ours.sort();
    reference.sort();
    assert_eq!(ours, reference);
}

// ---------------------------------------------------------------------------------------------
// impacket

/// How long a peer's command may run (a few seconds is the norm).
const PEER_DEADLINE: Duration = Duration::from_secs(120);
/// What is kept of a peer's stdout and of its stderr (a client that lists forever prints
/// without end until the deadline).
const OUTPUT_CAP: u64 = 4 << 20;

/// Runs `command` to its end and returns what it printed; a command still running after
/// `deadline` is killed and fails the test, with the start of its output.
async fn run_to_end(mut command: Command, deadline: Duration) -> Output {
    tokio::task::spawn_blocking(move || {
        let name = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
        // Keeps the first OUTPUT_CAP bytes and reads the rest into the void, so that the
        // command runs on (to its end or to the deadline) whatever it prints.
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                (&mut pipe)
                    .take(OUTPUT_CAP)
                    .read_to_end(&mut bytes)
                    .unwrap();
                std::io::copy(&mut pipe, &mut std::io::sink()).unwrap();
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                let stdout = stdout.join().unwrap();
                let head: String = String::from_utf8_lossy(&stdout)
                    .chars()
                    .take(2000)
                    .collect();
                panic!(
                    "{name} did not end within {deadline:?}; it printed {} lines, first:\n{head}",
                    stdout.split(|&b| b == b'\n').count()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Output {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    })
    .await
    .unwrap()
}

/// Runs `scripts/peers/impacket_client.py ARGS` and returns its results, one per operation.
async fn impacket(args: &[&str]) -> Vec<Value> {
    let script = workspace().join("scripts/peers/impacket_client.py");
    let python = std::env::var("DSBACKUP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut command = Command::new(python);
    command.arg(script).args(args);
    let output = run_to_end(command, PEER_DEADLINE).await;
    assert!(
        output.status.success(),
        "impacket_client.py failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let value: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "impacket_client.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    value["results"].as_array().unwrap().clone()
}

/// Our server with the test interface demanding packet integrity, on a loopback port.
async fn our_server() -> (RunningServer, Arc<TestInterface>) {
    let interface = TestInterface::new(AuthLevel::PKT_INTEGRITY);
    let mut options = server_options(4280);
    options.epm_listen = None;
    let server = start(&[interface.clone() as Arc<dyn RpcInterface>], options).await;
    (server, interface)
}

fn test_interface_arg() -> String {
    format!("{TEST_UUID}:1.0")
}

/// impacket at connect, integrity and privacy: mgmt `inq_if_ids` lists our interfaces,
/// `ept_map` finds the test interface on our port, and an echo to the test interface comes back
/// at integrity and privacy but is refused at connect, below the interface's minimum.
#[tokio::test]
#[ignore = "needs python3 with impacket: cargo xtask conformance"]
async fn impacket_calls_our_server_at_connect_integrity_and_privacy() {
    let (server, _interface) = our_server().await;
    let port = server.local_addr().port().to_string();
    let echo = format!(
        "{}:0:{}",
        test_interface_arg(),
        hex::encode(b"impacket was here")
    );
    for level in ["connect", "integrity", "privacy"] {
        let results = impacket(&[
            "--port",
            &port,
            "--user",
            USER,
            "--password",
            PASSWORD,
            "--domain",
            DOMAIN,
            "--level",
            level,
            "--inq-if-ids",
            "--ept-map",
            &test_interface_arg(),
            "--call",
            &echo,
        ])
        .await;
        let [inq, map, call] = &results[..] else {
            panic!("three results expected: {results:?}")
        };
        assert_eq!(inq["ok"], true, "inq_if_ids at {level}: {inq}");
        let mut ids: Vec<(&str, &str)> = inq["if_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| {
                (
                    id["uuid"].as_str().unwrap(),
                    id["version"].as_str().unwrap(),
                )
            })
            .collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            [(TEST_UUID.to_string().as_str(), "1.0")],
            "inq_if_ids at {level}"
        );
        assert_eq!(map["ok"], true, "ept_map at {level}: {map}");
        assert_eq!(
            map["port"],
            server.local_addr().port(),
            "ept_map at {level}"
        );
        if level == "connect" {
            assert_eq!(call["ok"], false, "echo at connect: {call}");
            assert_eq!(call["error"]["message"], "rpc_s_access_denied", "{call}");
        } else {
            assert_eq!(call["ok"], true, "echo at {level}: {call}");
            assert_eq!(
                call["response"],
                hex::encode(b"impacket was here"),
                "echo at {level}"
            );
        }
    }
    server.shutdown().await;
}

/// A wrong password: impacket's bind and auth3 go out, and our server refuses the call.
#[tokio::test]
#[ignore = "needs python3 with impacket: cargo xtask conformance"]
async fn impacket_with_a_wrong_password_is_refused() {
    let (server, _interface) = our_server().await;
    let port = server.local_addr().port().to_string();
    for level in ["connect", "integrity", "privacy"] {
        let results = impacket(&[
            "--port",
            &port,
            "--user",
            USER,
            "--password",
            "not the password",
            "--domain",
            DOMAIN,
            "--level",
            level,
            "--inq-if-ids",
        ])
        .await;
        assert_eq!(results[0]["ok"], false, "at {level}: {}", results[0]);
        assert_eq!(
            results[0]["error"]["message"], "rpc_s_access_denied",
            "at {level}: {}",
            results[0]
        );
    }
    server.shutdown().await;
}

/// No authentication at all: the bind to the test interface is accepted (a bind names no auth
/// level to refuse), its calls are refused; mgmt, which asks for none, still answers.
#[tokio::test]
#[ignore = "needs python3 with impacket: cargo xtask conformance"]
async fn impacket_without_authentication_is_refused_by_the_integrity_interface() {
    let (server, _interface) = our_server().await;
    let port = server.local_addr().port().to_string();
    let echo = format!("{}:0:00", test_interface_arg());
    let results = impacket(&["--port", &port, "--call", &echo, "--inq-if-ids"]).await;
    let [call, inq] = &results[..] else {
        panic!("two results expected: {results:?}")
    };
    assert_eq!(call["ok"], false, "{call}");
    assert_eq!(call["error"]["type"], "DCERPCException", "{call}");
    assert_eq!(call["error"]["message"], "rpc_s_access_denied", "{call}");
    assert_eq!(inq["ok"], true, "{inq}");
    server.shutdown().await;
}

/// Our server with the test interface at versions 1 to 5 (an endpoint map of five entries),
/// its endpoint mapper at `epm` when given.
async fn five_interfaces(epm: Option<SocketAddr>) -> RunningServer {
    let interfaces: Vec<Arc<dyn RpcInterface>> = (1..=5)
        .map(|version| {
            Arc::new(TestInterface {
                version,
                ..TestInterface::default()
            }) as Arc<dyn RpcInterface>
        })
        .collect();
    let mut options = server_options(4280);
    options.epm_listen = epm;
    start(&interfaces, options).await
}

/// impacket's own `hept_lookup` (its loop stops at the null entry handle and raises on any
/// other status) lists our five entries once each and ends.
#[tokio::test]
#[ignore = "needs python3 with impacket: cargo xtask conformance"]
async fn impacket_hept_lookup_lists_our_interfaces_and_ends() {
    let server = five_interfaces(None).await;
    let port = server.local_addr().port();
    let results = impacket(&["--port", &port.to_string(), "--hept-lookup"]).await;
    assert_eq!(results[0]["ok"], true, "{}", results[0]);
    let listed: Vec<(String, String, String, String)> = results[0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let text = |key: &str| entry[key].as_str().unwrap().to_owned();
            (
                text("uuid"),
                text("version"),
                text("annotation"),
                text("binding"),
            )
        })
        .collect();
    let expected: Vec<_> = (1..=5)
        .map(|version| {
            (
                TEST_UUID.to_string(),
                format!("{version}.0"),
                "dsbackup test interface".to_owned(),
                format!("ncacn_ip_tcp:127.0.0.1[{port}]"),
            )
        })
        .collect();
    assert_eq!(listed, expected);
    server.shutdown().await;
}

/// Where `rpcclient` finds our endpoint mapper: it dials port 135 for the endpoint mapper
/// whatever port the binding string names; 127.0.0.2 keeps clear of the Samba DC that
/// `cargo xtask conformance` runs on 127.0.0.1:135 meanwhile.
const RPCCLIENT_EPM: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 135);

/// Samba's `rpcclient -c epmlookup` asks for one entry at a time, passes back the entry handle
/// it gets and stops only at `ept_s_not_registered`: against our endpoint mapper it prints our
/// five entries once each and ends.
#[tokio::test]
#[ignore = "needs rpcclient (Debian smbclient) and port 135 (root): cargo xtask conformance"]
async fn rpcclient_epmlookup_lists_our_interfaces_and_ends() {
    let server = five_interfaces(Some(RPCCLIENT_EPM)).await;
    let port = server.local_addr().port();
    let mut command = Command::new("rpcclient");
    command.args([
        "--configfile=/dev/null",
        "-U%",
        "ncacn_ip_tcp:127.0.0.2",
        "-c",
        "epmlookup",
    ]);
    let output = run_to_end(command, PEER_DEADLINE).await;
    assert_rpcclient_listed("anonymous", &output, port, 1..=5);
    server.shutdown().await;
}

/// `rpcclient -c epmlookup` (run with `option`) exited 0, stopped at ept_s_not_registered,
/// and printed exactly our test interface at `versions` on `port`.
fn assert_rpcclient_listed(
    option: &str,
    output: &Output,
    port: u16,
    versions: std::ops::RangeInclusive<u16>,
) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "[{option}] {}: {stderr}",
        output.status
    );
    assert!(
        stderr.contains("epm_Lookup no more entries"),
        "[{option}] rpcclient did not end at ept_s_not_registered: {stderr}"
    );
    let listed: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        listed,
        rpcclient_listing(port, versions),
        "[{option}] {stdout}"
    );
}

/// What `rpcclient -c epmlookup` prints for our test interface at `versions` on `port`:
/// `OBJECT ncacn_ip_tcp:127.0.0.1[PORT,abstract_syntax=UUID/0xVERSION]: ANNOTATION`.
fn rpcclient_listing(port: u16, versions: std::ops::RangeInclusive<u16>) -> Vec<String> {
    versions
        .map(|version| {
            format!(
                "{} ncacn_ip_tcp:127.0.0.1[{port},abstract_syntax={TEST_UUID}/0x{version:08x}]: \
                 dsbackup test interface",
                Uuid::NIL
            )
        })
        .collect()
}

/// The PDUs of a recorded byte stream.
fn split_pdus(mut rest: &[u8]) -> Vec<Vec<u8>> {
    let mut pdus = Vec::new();
    while rest.len() >= 16 {
        let len = usize::from(u16::from_le_bytes([rest[8], rest[9]]));
        pdus.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    pdus
}

/// Runs `rpcclient -c epmlookup` as our NTLM user against our endpoint mapper (the test
/// interface registered) at `ncacn_ip_tcp:127.0.0.2[OPTIONS]`, Kerberos off: its output, our
/// server's port, and the bytes each way (client's, server's).
async fn rpcclient_epmlookup(binding_options: &str) -> (Output, u16, [Vec<u8>; 2]) {
    let seen: Arc<Mutex<[Vec<u8>; 2]>> = Arc::default();
    let mut options = server_options(4280);
    options.epm_listen = Some(RPCCLIENT_EPM);
    let record = Arc::clone(&seen);
    options.capture = Some(dsbackup_transport::Tap::new(move |_, event| {
        let mut seen = record.lock().unwrap();
        match event {
            dsbackup_transport::TapEvent::FromClient(bytes) => seen[0].extend_from_slice(bytes),
            dsbackup_transport::TapEvent::FromServer(bytes) => seen[1].extend_from_slice(bytes),
            _ => {}
        }
    }));
    let interface = TestInterface::new(AuthLevel::NONE) as Arc<dyn RpcInterface>;
    let server = start(&[interface], options).await;
    let port = server.local_addr().port();
    let mut command = Command::new("rpcclient");
    command.args([
        "--configfile=/dev/null",
        "--use-kerberos=off",
        &format!("-U{DOMAIN}\\{USER}%{PASSWORD}"),
        &format!("ncacn_ip_tcp:127.0.0.2[{binding_options}]"),
        "-c",
        "epmlookup",
    ]);
    let output = run_to_end(command, PEER_DEADLINE).await;
    server.shutdown().await;
    let recorded = seen.lock().unwrap().clone();
    (output, port, recorded)
}

/// Samba's `rpcclient` with NTLM at `[sign]` and `[seal]` against our endpoint mapper: each
/// request's stub ends with the verification trailer of [MS-RPCE §2.2.2.13] (its three
/// commands: bitmask, presentation context, header), which our server checks and strips; the
/// calls are answered, and rpcclient lists the map and ends.
///
/// [MS-RPCE §2.2.2.13]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
#[tokio::test]
#[ignore = "needs rpcclient (Debian smbclient) and port 135 (root): cargo xtask conformance"]
async fn rpcclient_epmlookup_with_ntlm_signed_and_sealed_sends_a_trailer_we_accept() {
    for option in ["sign", "seal"] {
        let (output, port, [sent, _]) = rpcclient_epmlookup(option).await;
        assert_rpcclient_listed(option, &output, port, 1..=1);
        // The requests were NTLM (auth_type 10) at the level asked for.
        let sent = split_pdus(&sent);
        let requests: Vec<&Vec<u8>> = sent.iter().filter(|pdu| pdu[2] == 0).collect();
        assert!(
            requests.len() >= 2,
            "[{option}] {} requests",
            requests.len()
        );
        let level = if option == "sign" { 5 } else { 6 };
        let body = |request: &Vec<u8>| {
            let auth_len = usize::from(u16::from_le_bytes([request[10], request[11]]));
            let at = request.len() - auth_len - 8;
            assert_eq!((request[at], request[at + 1]), (10, level), "[{option}]");
            request[24..at].to_vec()
        };
        let bodies: Vec<Vec<u8>> = requests.into_iter().map(body).collect();
        // Signed only, the trailer shows in the clear: rpcclient sends it until a call was
        // answered (then it has verified the bitmask and the context, and header signing
        // makes the header command needless).
        if option == "sign" {
            assert!(
                bodies[0].windows(8).any(|w| w == MAGIC),
                "[{option}] a verification trailer in the first request"
            );
        }
    }
}

/// Samba's `rpcclient` with SPNEGO (`[spnego,sign]` and `[spnego,seal]`, Kerberos off: NTLM
/// inside) against our endpoint mapper, which has no keytab: its bind offers NTLM in SPNEGO,
/// the mechanism list MICs go both ways in the alter_context legs (ours verified by
/// rpcclient, which goes on), and its first request, signed or sealed with sequence number 1
/// and fresh RC4 handles, passes our check: the server gets to its stub.
///
/// That stub ends with the verification trailer of [MS-RPCE §2.2.2.13], which our server checks
/// and strips: the calls are answered and rpcclient lists our endpoint map.
///
/// [MS-RPCE §2.2.2.13]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
#[tokio::test]
#[ignore = "needs rpcclient (Debian smbclient) and port 135 (root): cargo xtask conformance"]
async fn rpcclient_binds_with_ntlm_inside_spnego_signed_and_sealed() {
    for (option, level) in [
        ("sign", AuthLevel::PKT_INTEGRITY),
        ("seal", AuthLevel::PKT_PRIVACY),
    ] {
        let (output, port, [sent, answered]) =
            rpcclient_epmlookup(&format!("spnego,{option}")).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let (sent, answered) = (split_pdus(&sent), split_pdus(&answered));
        // (auth_type, auth_level, auth_value) of a PDU with a verifier.
        let verifier = |pdu: &[u8]| {
            let auth_len = usize::from(u16::from_le_bytes([pdu[10], pdu[11]]));
            let start = pdu.len() - auth_len;
            (pdu[start - 8], pdu[start - 7], pdu[start..].to_vec())
        };
        let resp = |pdu: &[u8]| dsbackup_krb::NegTokenResp::decode(&verifier(pdu).2);
        let bind = sent.iter().find(|pdu| pdu[2] == 11).expect("a bind");
        let (auth_type, _, init) = verifier(bind);
        assert_eq!(auth_type, 9, "[{option}] SPNEGO");
        let init = dsbackup_krb::NegTokenInit::decode(&init).unwrap();
        assert_eq!(init.mech_types, [dsbackup_krb::NTLM_OID.to_vec()]);
        assert!(
            sent.iter()
                .filter(|pdu| pdu[2] == 14)
                .any(|pdu| resp(pdu).is_ok_and(|r| r.mech_list_mic.is_some())),
            "[{option}] rpcclient sent its mechanism list MIC"
        );
        let done = answered
            .iter()
            .rfind(|pdu| pdu[2] == 15)
            .expect("an alter_context_resp");
        let done = resp(done).unwrap();
        assert_eq!(done.neg_state, Some(0), "[{option}] accept-completed");
        assert!(done.mech_list_mic.is_some(), "[{option}] with our MIC");
        let request = sent.iter().find(|pdu| pdu[2] == 0).unwrap_or_else(|| {
            panic!("[{option}] rpcclient refused our MIC and sent no request: {stderr}")
        });
        let (auth_type, auth_level, signature) = verifier(request);
        assert_eq!((auth_type, auth_level), (9, level.0), "[{option}]");
        assert_eq!(signature[12..16], 1u32.to_le_bytes(), "[{option}] seq 1");
        // Its stub ends with a verification trailer, which our server strips and checks: the
        // call is answered, and rpcclient lists our one entry and ends.
        assert!(
            answered.iter().all(|pdu| pdu[2] != 3),
            "[{option}] no fault: {stderr}"
        );
        assert!(
            answered.iter().any(|pdu| pdu[2] == 2),
            "[{option}] a response"
        );
        assert_rpcclient_listed(option, &output, port, 1..=1);
    }
}

// ---------------------------------------------------------------------------------------------
// tshark, through `cargo xtask conformance`

/// The workspace root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// Which way a PDU went: `I` client to server, `O` back.
type Recorded = Arc<Mutex<Vec<(char, Vec<u8>)>>>;

/// A TCP relay for one connection: every PDU it passes on is recorded whole, in the order
/// they completed, before it is passed on (so a response is never recorded before its request).
async fn relay(upstream: SocketAddr) -> (SocketAddr, Recorded, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let recorded: Recorded = Arc::default();
    let log = Arc::clone(&recorded);
    let task = tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(upstream).await.unwrap();
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::join!(
            pump(client_read, server_write, 'I', Arc::clone(&log)),
            pump(server_read, client_write, 'O', log),
        );
    });
    (addr, recorded, task)
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, dir: char, log: Recorded) {
    let mut pending = Vec::new();
    let mut chunk = vec![0; 65536];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        while let Some(len) = frame_len(&pending, u16::MAX).unwrap() {
            let pdu: Vec<u8> = pending.drain(..len).collect();
            log.lock().unwrap().push((dir, pdu));
        }
        if to.write_all(&chunk[..n]).await.is_err() {
            break;
        }
    }
    assert!(
        pending.is_empty(),
        "{} bytes of a partial PDU",
        pending.len()
    );
    let _ = to.shutdown().await;
}

/// Our client and our server at packet privacy, through the recording relay, on one
/// association: echoes of 0 bytes, a few bytes and several fragments each way, the caller's name,
/// a call that faults, then mgmt `inq_if_ids` on a second context (alter_context). Writes the
/// conversation (`ntlm-privacy-sealed.txt`) and, with the password, what each call sent and got
/// back in plaintext (`ntlm-privacy-sealed.stubs.json`, `null` for a fault);
/// `cargo xtask conformance` checks the first with tshark, then has tshark decrypt it and compares
/// with the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_dump_ntlm_privacy_sealed() {
    const FRAG: u16 = 1432;
    let interface = TestInterface::new(AuthLevel::PKT_PRIVACY);
    let mut options = server_options(FRAG);
    options.epm_listen = None;
    let server = start(&[interface as Arc<dyn RpcInterface>], options).await;
    let (relay_addr, recorded, relay_task) = relay(server.local_addr()).await;

    let options = client_options(AuthLevel::PKT_PRIVACY, FRAG, DataRep::LITTLE_ENDIAN);
    let binding = Binding::connect(relay_addr, &[syntax(1)], &options)
        .await
        .unwrap();
    // (request stub, response stub or None for a fault), call by call.
    let mut plain: Vec<(Bytes, Option<Bytes>)> = Vec::new();
    for stub in [
        Bytes::new(),
        Bytes::from_static(b"sealed by dsbackup"),
        pattern(3 * usize::from(FRAG) + 100, 7),
    ] {
        let reply = binding.call(op::ECHO, stub.clone()).await.unwrap();
        assert_eq!(reply.stub.to_bytes(), stub);
        plain.push((stub, Some(reply.stub.to_bytes())));
    }
    let who = call_bytes(&binding, op::WHOAMI, Bytes::new()).await;
    assert_eq!(
        who[..],
        [
            format!("{USER}\\{DOMAIN}").as_bytes(),
            &[AuthLevel::PKT_PRIVACY.0]
        ]
        .concat()
    );
    plain.push((Bytes::new(), Some(who)));
    let denied = binding.call(op::DENY, Bytes::new()).await.unwrap_err();
    assert!(
        matches!(
            denied,
            TransportError::Fault {
                status: FaultStatus::ACCESS_DENIED,
                ..
            }
        ),
        "{denied:?}"
    );
    plain.push((Bytes::new(), None));
    let mgmt = binding
        .association()
        .bind_interface(&[mgmt_syntax()])
        .await
        .unwrap();
    let ids = call_bytes(&mgmt, 0, Bytes::new()).await;
    assert!(!ids.is_empty());
    plain.push((Bytes::new(), Some(ids)));
    drop(mgmt);
    binding.close().await;
    tokio::time::timeout(Duration::from_secs(30), relay_task)
        .await
        .expect("the relay ends when both sides have closed")
        .unwrap();
    server.shutdown().await;

    let pdus = std::mem::take(&mut *recorded.lock().unwrap());
    // The calls' ids, in the order their first fragments went out.
    let mut call_ids = Vec::new();
    for (dir, pdu) in &pdus {
        let header = CommonHeader::decode(pdu).unwrap();
        if *dir == 'I'
            && header.ptype == PacketType::REQUEST
            && header.pfc_flags.contains(PfcFlags::FIRST_FRAG)
        {
            call_ids.push(header.call_id);
        }
        // Sealed: every request and response carries an NTLM verifier.
        if [PacketType::REQUEST, PacketType::RESPONSE].contains(&header.ptype) {
            assert_eq!(header.auth_length, 16, "{header:?}");
        }
    }
    assert_eq!(call_ids.len(), plain.len(), "one request per call");
    let count = |ptype: PacketType| {
        pdus.iter()
            .filter(|(_, pdu)| CommonHeader::decode(pdu).unwrap().ptype == ptype)
            .count()
    };
    assert!(
        count(PacketType::REQUEST) > plain.len() + 2 && count(PacketType::RESPONSE) > 7,
        "the long echo is fragmented both ways"
    );
    assert_eq!(count(PacketType::ALTER_CONTEXT), 1);
    assert_eq!(count(PacketType::FAULT), 1);

    let calls: Vec<(u32, Bytes, Option<Bytes>)> = call_ids
        .iter()
        .zip(plain)
        .map(|(&id, (sent, got))| (id, sent, got))
        .collect();
    dump_sealed_conversation("ntlm-privacy-sealed", &pdus, ("password", PASSWORD), &calls);
}
