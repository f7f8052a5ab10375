//! The `dsbackup` binary end to end: `mock-dc` in one process, `backup`, `verify` and
//! `restore` in others, over loopback.

#![cfg(test)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::Digest as _;

#[path = "common/mock.rs"]
mod mock;

use mock::{MockDc, PASSWORD, closed_port, dsbackup};
const EXIT_MISMATCH: i32 = 3;
const EXIT_AUTH: i32 = 5;
const EXIT_CONNECTION: i32 = 6;

fn sha256_file(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A generated set backed up from `mock-dc` and checked against the server's files.
fn backup_matches_the_served_files(size: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let ntds = tmp.path().join("ntds");
    let dc = MockDc::start(&[
        "--dir",
        ntds.to_str().unwrap(),
        "--generate",
        size,
        "--user",
        "svc-backup:backup",
        "--min-auth",
        "privacy",
    ]);
    let out = tmp.path().join("set");
    let backup = dc.run(
        "backup",
        &[
            "--user",
            "svc-backup",
            "--domain",
            "CORP",
            "--out",
            out.to_str().unwrap(),
        ],
        PASSWORD,
    );
    assert!(backup.status.success(), "{}", text(&backup.stderr));
    let stdout = text(&backup.stdout);
    assert!(stdout.contains("backed up 6 files"), "{stdout}");
    assert!(!stdout.contains(PASSWORD) && !text(&backup.stderr).contains(PASSWORD));
    let manifest = manifest(&out);
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 6);
    for file in files {
        let unc = file["unc"].as_str().unwrap();
        let name = unc.rsplit('\\').next().unwrap();
        assert_eq!(
            file["sha256"].as_str().unwrap(),
            sha256_file(&dc.root.join(name)),
            "{name}"
        );
    }
    let verify = dsbackup().arg("verify").arg(&out).output().unwrap();
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    assert!(text(&verify.stdout).contains("verified: 7 of 7 files match"));
}

#[test]
fn a_set_backed_up_from_mock_dc_matches_the_served_files() {
    backup_matches_the_served_files("6MiB");
}

/// The issue's size: run by `cargo xtask ci` as an ignored test.
#[test]
#[ignore = "1 GiB over loopback: run by `cargo xtask e2e-large`"]
fn a_1_gib_set_backed_up_from_mock_dc_matches_the_served_files() {
    backup_matches_the_served_files("1GiB");
}

#[test]
fn a_wrong_password_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dc = MockDc::generated(&tmp.path().join("ntds"), "1MiB", "svc-backup", &[]);
    let out = tmp.path().join("set");
    let backup = dc.run(
        "backup",
        &["--user", "svc-backup", "--out", out.to_str().unwrap()],
        "not-the-password",
    );
    assert_eq!(
        backup.status.code(),
        Some(EXIT_AUTH),
        "{}",
        text(&backup.stderr)
    );
    let stderr = text(&backup.stderr);
    assert!(stderr.contains("authentication failed"), "{stderr}");
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn a_server_killed_mid_file_fails_clearly_and_leaves_no_complete_looking_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("mock.toml");
    std::fs::write(
        &config,
        r#"
dc_name = "DC1"
domain = "CORP"
root = "ntds"
min_auth_level = "packet_integrity"

[[users]]
name = "svc-backup"
password = "Passw0rd!"
privileges = ["backup"]

[[faults.delay]]
interface = "ad_backup"
opnum = 4
millis = 30
"#,
    )
    .unwrap();
    let mut dc = MockDc::start(&["--config", config.to_str().unwrap(), "--generate", "8MiB"]);
    let out = tmp.path().join("set");
    let partial = tmp.path().join("set.partial");
    let backup = dsbackup()
        .args([
            "backup",
            "--server",
            "127.0.0.1",
            "--epm-port",
            &dc.port.to_string(),
        ])
        .args([
            "--user",
            "svc-backup",
            "--read-size",
            "65536",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("DSBACKUP_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tmp_file = partial.join("ntds/.ntds.dit.tmp");
    let mut waited = 0;
    while !std::fs::metadata(&tmp_file).is_ok_and(|m| m.len() > 0) {
        assert!(
            waited < 2000,
            "the backup never started writing the database"
        );
        std::thread::sleep(Duration::from_millis(10));
        waited += 1;
    }
    dc.child.kill().unwrap();
    let output = backup.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(EXIT_CONNECTION),
        "{}",
        text(&output.stderr)
    );
    let stderr = text(&output.stderr);
    assert!(stderr.contains("HrRBackupRead"), "{stderr}");
    assert!(!out.exists());
    assert!(!partial.exists());
}

#[test]
fn restore_puts_the_files_where_the_mock_says_and_verify_catches_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let ntds = tmp.path().join("ntds");
    let out = tmp.path().join("set");
    {
        let dc = MockDc::generated(&ntds, "2MiB", "Administrator", &[]);
        let backup = dc.run(
            "backup",
            &["--user", "Administrator", "--out", out.to_str().unwrap()],
            PASSWORD,
        );
        assert!(backup.status.success(), "{}", text(&backup.stderr));
    }
    let dc = MockDc::start(&[
        "--dir",
        ntds.to_str().unwrap(),
        "--user",
        "Administrator",
        "--restore-mode",
    ]);
    // The map below names the DC the mock says it is.
    assert_eq!(dc.started["dc_name"], "DC1");
    let online = dc.run("online", &["--user", "Administrator"], PASSWORD);
    assert!(
        text(&online.stdout).starts_with("offline"),
        "{}",
        text(&online.stderr)
    );
    let target = tmp.path().join("restored");
    std::fs::create_dir(&target).unwrap();
    let map = format!(r"\\DC1\C$\Windows\NTDS={}", target.display());
    // The plan first: printed, nothing written.
    let dry_run = dc.run(
        "restore",
        &[
            "--user",
            "Administrator",
            "--from",
            out.to_str().unwrap(),
            "--map",
            &map,
            "--dry-run",
        ],
        PASSWORD,
    );
    assert!(dry_run.status.success(), "{}", text(&dry_run.stderr));
    let plan = text(&dry_run.stdout);
    assert!(plan.contains("nothing was changed"), "{plan}");
    assert!(
        plan.contains(&target.join("ntds.dit").display().to_string()),
        "{plan}"
    );
    assert!(std::fs::read_dir(&target).unwrap().next().is_none());
    let restore = dc.run(
        "restore",
        &[
            "--user",
            "Administrator",
            "--from",
            out.to_str().unwrap(),
            "--map",
            &map,
        ],
        PASSWORD,
    );
    assert!(restore.status.success(), "{}", text(&restore.stderr));
    for file in manifest(&out)["files"].as_array().unwrap() {
        let name = file["unc"].as_str().unwrap().rsplit('\\').next().unwrap();
        assert_eq!(
            sha256_file(&target.join(name)),
            file["sha256"].as_str().unwrap(),
            "{name}"
        );
    }
    // The files are there now: a second restore refuses, naming --overwrite, and changes
    // nothing.
    let again = dc.run(
        "restore",
        &[
            "--user",
            "Administrator",
            "--from",
            out.to_str().unwrap(),
            "--map",
            &map,
        ],
        PASSWORD,
    );
    assert_eq!(again.status.code(), Some(7), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("--overwrite"),
        "{}",
        text(&again.stderr)
    );
    // Without --map nothing is restored, and the message says what to add.
    let unmapped = dc.run(
        "restore",
        &["--user", "Administrator", "--from", out.to_str().unwrap()],
        PASSWORD,
    );
    assert!(!unmapped.status.success());
    assert!(
        text(&unmapped.stderr).contains("--map"),
        "{}",
        text(&unmapped.stderr)
    );
    // A damaged set fails verification with its own exit code.
    std::fs::write(out.join("ntds/ntds.dit"), b"damaged").unwrap();
    let verify = dsbackup()
        .args(["--json", "verify"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(EXIT_MISMATCH));
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["ok"], false);
}

#[test]
fn demo_backs_up_and_verifies_a_generated_set() {
    let output = dsbackup()
        .args(["--json", "demo", "--size", "4MiB"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["verified"], true);
    // As --auth spells it.
    assert_eq!(summary["auth_level"], "privacy");
    assert_eq!(summary["open_bindings"], 0);
    assert_eq!(summary["backup"]["bytes"], 4 << 20);
}

#[test]
fn a_separate_endpoint_mapper_port_leads_to_the_interfaces() {
    let tmp = tempfile::tempdir().unwrap();
    // A port that was free a moment ago.
    let epm_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let epm = epm_port.to_string();
    let _dc = MockDc::start(&[
        "--dir",
        tmp.path().join("ntds").to_str().unwrap(),
        "--generate",
        "1MiB",
        "--user",
        "svc-backup",
        "--epm-port",
        &epm,
    ]);
    let online = dsbackup()
        .args([
            "--json",
            "online",
            "--server",
            "127.0.0.1",
            "--epm-port",
            &epm,
        ])
        .args(["--user", "svc-backup"])
        .env("DSBACKUP_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(online.status.success(), "{}", text(&online.stderr));
    let result: serde_json::Value = serde_json::from_slice(&online.stdout).unwrap();
    assert_eq!(result["online"], true);
}

/// Runs `dsbackup ARGS` with `env`; its exit code and stderr.
fn code_of(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = dsbackup()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (output.status.code(), text(&output.stderr))
}

/// The exit codes of the README's table that need no server, each with its message.
#[test]
fn usage_local_and_connection_failures_have_their_documented_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("set");
    let out = out.to_str().unwrap();
    let closed = closed_port();
    let server = ["-s", "127.0.0.1", "--epm-port", closed.as_str()];
    let with = |command: &str, extra: &[&'static str]| -> Vec<String> {
        let mut args = vec![command.to_owned()];
        args.extend(server.iter().map(|s| (*s).to_owned()));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let run = |args: &[String], env: &[(&str, &str)]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        code_of(&args, env)
    };

    // 2: usage. A missing --user, named with the --auth value as the command line spells it.
    let (code, stderr) = run(&with("online", &[]), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--user is needed at --auth privacy"),
        "{stderr}"
    );
    // A read size the protocol does not allow.
    let mut args = with(
        "backup",
        &["--auth", "none", "--read-size", "99999999", "--out"],
    );
    args.push(out.to_owned());
    let (code, stderr) = run(&args, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    // A malformed NT hash.
    let (code, stderr) = run(
        &with("online", &["-u", "svc"]),
        &[("DSBACKUP_NT_HASH", "xyz")],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("DSBACKUP_NT_HASH must be 32 hex digits"),
        "{stderr}"
    );
    // mock-dc with nothing to serve.
    let (code, stderr) = code_of(&["mock-dc"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--dir, --generate or --config"), "{stderr}");
    // A port in --server: the message names the port flags.
    let (code, stderr) = code_of(&["online", "-s", "dc1:135", "--auth", "none"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--epm-port") && stderr.contains("--port"),
        "{stderr}"
    );
    // clap's own.
    assert_eq!(code_of(&["backup"], &[]).0, Some(2));
    // With --json, usage errors are the JSON error object too, clap's included.
    for args in [
        &["--json", "backup"][..],
        &["--json", "online", "-s", "127.0.0.1"],
    ] {
        let output = dsbackup().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2));
        let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(doc["error"]["kind"], "usage", "{doc}");
        assert_eq!(doc["exit_code"], 2);
        assert!(!doc["error"]["message"].as_str().unwrap().is_empty());
    }
    // online and set-log do not take read options.
    assert_eq!(
        run(&with("online", &["--read-size", "65536"]), &[]).0,
        Some(2)
    );

    // 6: nothing listens on the endpoint-mapper port.
    let (code, stderr) = run(&with("online", &["--auth", "none"]), &[]);
    assert_eq!(code, Some(EXIT_CONNECTION), "{stderr}");

    // 7: local files. A configuration file that is not there, a backup set that is not there.
    let missing = tmp.path().join("missing.toml");
    let (code, stderr) = code_of(&["mock-dc", "--config", missing.to_str().unwrap()], &[]);
    assert_eq!(code, Some(7), "{stderr}");
    let (code, stderr) = code_of(&["verify", out], &[]);
    assert_eq!(code, Some(7), "{stderr}");
}

/// `online` answers with its exit code too: 0 online, 9 in restore mode; and a server refusing
/// an operation is 4.
#[test]
fn online_offline_and_refused_have_their_documented_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let ntds = tmp.path().join("ntds");
    let ntds = ntds.to_str().unwrap();
    let args = [
        "--dir",
        ntds,
        "--generate",
        "1MiB",
        "--user",
        "svc-backup",
        "--user",
        "nobody:none",
    ];
    let dc = MockDc::start(&args);
    let online = dc.run("online", &["--user", "svc-backup"], PASSWORD);
    assert_eq!(online.status.code(), Some(0), "{}", text(&online.stderr));
    // A password file, and a password command, come before DSBACKUP_PASSWORD (wrong here).
    let file = tmp.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let file = file.to_str().unwrap();
    let online = dc.run(
        "online",
        &["-u", "svc-backup", "--password-file", file],
        "wrong",
    );
    assert_eq!(online.status.code(), Some(0), "{}", text(&online.stderr));
    let command = format!("cat '{file}'");
    let online = dc.run(
        "online",
        &["-u", "svc-backup", "--password-command", &command],
        "wrong",
    );
    assert_eq!(online.status.code(), Some(0), "{}", text(&online.stderr));
    // A password file that is not there: a local file problem, 7.
    let missing = tmp.path().join("nothing");
    let online = dc.run(
        "online",
        &[
            "-u",
            "svc-backup",
            "--password-file",
            missing.to_str().unwrap(),
        ],
        PASSWORD,
    );
    assert_eq!(online.status.code(), Some(7), "{}", text(&online.stderr));
    // No backup privilege: the server refuses, 4.
    let out = tmp.path().join("set");
    let backup = dc.run(
        "backup",
        &["--user", "nobody", "--out", out.to_str().unwrap()],
        PASSWORD,
    );
    assert_eq!(backup.status.code(), Some(4), "{}", text(&backup.stderr));
    // The same with --json: the status by name and as an HRESULT.
    let backup = dc.run(
        "backup",
        &["--json", "--user", "nobody", "--out", out.to_str().unwrap()],
        PASSWORD,
    );
    let doc: serde_json::Value = serde_json::from_slice(&backup.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "refused");
    assert_eq!(doc["error"]["status_name"], "ERROR_ACCESS_DENIED");
    assert_eq!(doc["error"]["hresult"], "0x80070005");
    drop(dc);

    let dc = MockDc::start(&[&args[..], &["--restore-mode"]].concat());
    let online = dc.run("online", &["--user", "svc-backup", "--json"], PASSWORD);
    assert_eq!(online.status.code(), Some(9), "{}", text(&online.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&online.stdout).unwrap();
    assert_eq!(answer["online"], false);
}

/// `completions SHELL` prints a script that names the subcommands; `man` a roff page.
#[test]
fn completions_and_man_page() {
    let bash = dsbackup().args(["completions", "bash"]).output().unwrap();
    assert!(bash.status.success());
    let script = text(&bash.stdout);
    assert!(script.contains("complete -F _dsbackup"), "{script}");
    assert!(script.contains("--password-file"));
    let fish = dsbackup().args(["completions", "fish"]).output().unwrap();
    assert!(text(&fish.stdout).contains("complete -c dsbackup"));
    let man = dsbackup().arg("man").output().unwrap();
    assert!(man.status.success());
    let page = text(&man.stdout);
    assert!(page.contains(".TH dsbackup 1"), "{page}");
    assert!(page.contains("inspect"));
    assert_eq!(
        dsbackup()
            .args(["completions", "cmd"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

/// `backup --capture` writes the traffic as pcapng: our own `inspect` follows it and unseals
/// every call with the password; tshark (where installed, as in CI) reads it with no malformed
/// frame and decrypts the sealed stubs with `-o ntlmssp.nt_password:...`.
#[test]
fn backup_capture_is_a_pcapng_that_inspect_and_tshark_unseal() {
    let tmp = tempfile::tempdir().unwrap();
    let ntds = tmp.path().join("ntds");
    let served = tmp.path().join("served.pcapng");
    let dc = MockDc::start(&[
        "--dir",
        ntds.to_str().unwrap(),
        "--generate",
        "1MiB",
        "--user",
        "svc-backup",
        "--capture",
        served.to_str().unwrap(),
    ]);
    let out = tmp.path().join("set");
    let pcap = tmp.path().join("backup.pcapng");
    let backup = dc.run(
        "backup",
        &[
            "-q",
            "--user",
            "svc-backup",
            "--out",
            out.to_str().unwrap(),
            "--capture",
            pcap.to_str().unwrap(),
        ],
        PASSWORD,
    );
    assert!(backup.status.success(), "{}", text(&backup.stderr));
    drop(dc);

    let read = |path: &Path| -> Vec<serde_json::Value> {
        let inspect = dsbackup()
            .args(["inspect", "--nt-password", PASSWORD, path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(inspect.status.success(), "{}", text(&inspect.stderr));
        text(&inspect.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let pdus = read(&pcap);
    // The server's capture of the same traffic has the same PDUs (the two ends may see the
    // streams interleave in another order).
    let headers = |pdus: &[serde_json::Value]| -> Vec<String> {
        let mut all: Vec<String> = pdus
            .iter()
            .map(|pdu| format!("{} {} {}", pdu["header"], pdu["body"], pdu["auth_verifier"]))
            .collect();
        all.sort();
        all
    };
    let served = read(&served);
    assert_eq!(served.len(), pdus.len());
    assert!(
        headers(&served) == headers(&pdus),
        "the server's capture differs"
    );
    let calls = |name: &str| {
        pdus.iter()
            .filter(|pdu| pdu["call"]["name"] == name && pdu["call"]["params"].is_object())
            .count()
    };
    // The endpoint-mapper lookup and the backup calls, request and response each.
    assert_eq!(calls("EptMap"), 2);
    assert_eq!(calls("HrRBackupPrepare"), 2);
    assert_eq!(calls("HrRBackupEnd"), 2);
    assert!(calls("HrRBackupRead") >= 12);
    let streams: std::collections::BTreeSet<u64> = pdus
        .iter()
        .filter_map(|pdu| pdu["stream"].as_u64())
        .collect();
    assert!(streams.len() >= 2, "{streams:?}");
    assert!(pdus.iter().any(|pdu| pdu["unsealed"] == true));

    let Ok(tshark) = Command::new("tshark")
        .args(["-r", pcap.to_str().unwrap()])
        .args(["-o", &format!("ntlmssp.nt_password:{PASSWORD}")])
        .args([
            "-T",
            "fields",
            "-e",
            "_ws.malformed",
            "-e",
            "dcerpc.decrypted_stub_data",
        ])
        .args(["-Y", "dcerpc"])
        .output()
    else {
        eprintln!("tshark is not installed: its half of this test did not run");
        return;
    };
    assert!(tshark.status.success(), "{}", text(&tshark.stderr));
    let lines = text(&tshark.stdout);
    assert!(!lines.is_empty());
    for line in lines.lines() {
        let (malformed, _) = line.split_once('\t').unwrap_or((line, ""));
        assert!(malformed.is_empty(), "malformed frame: {line}");
    }
    assert!(
        lines
            .lines()
            .any(|line| line.split('\t').nth(1).is_some_and(|d| !d.is_empty())),
        "tshark decrypted nothing"
    );
}
