//! The `dsbackup` binary end to end: `mock-dc` in one process, `backup`, `verify` and
//! `restore` in others, over loopback.

#![cfg(test)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use sha2::Digest as _;

const PASSWORD: &str = "Passw0rd!";
const EXIT_MISMATCH: i32 = 3;
const EXIT_AUTH: i32 = 5;
const EXIT_CONNECTION: i32 = 6;

fn dsbackup() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dsbackup"));
    command
        .env_remove("DSBACKUP_PASSWORD")
        .env_remove("DSBACKUP_NT_HASH")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

/// A `dsbackup mock-dc` process, killed when dropped.
struct MockDc {
    child: Child,
    port: u16,
    root: PathBuf,
}

impl MockDc {
    /// Starts `mock-dc` with `args` and reads the address it prints.
    fn start(args: &[&str]) -> Self {
        let mut child = dsbackup()
            .arg("--json")
            .arg("mock-dc")
            .args(args)
            .env("DSBACKUP_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let started: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("mock-dc printed {line:?}: {e}"));
        let addr: std::net::SocketAddr = started["addr"].as_str().unwrap().parse().unwrap();
        Self {
            child,
            port: addr.port(),
            root: PathBuf::from(started["root"].as_str().unwrap()),
        }
    }

    /// `dsbackup <command> --server 127.0.0.1 --epm-port PORT <args>` with `password`.
    fn run(&self, command: &str, args: &[&str], password: &str) -> Output {
        dsbackup()
            .arg(command)
            .args([
                "--server",
                "127.0.0.1",
                "--epm-port",
                &self.port.to_string(),
            ])
            .args(args)
            .env("DSBACKUP_PASSWORD", password)
            .output()
            .unwrap()
    }
}

impl Drop for MockDc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let dc = MockDc::start(&[
        "--dir",
        tmp.path().join("ntds").to_str().unwrap(),
        "--generate",
        "1MiB",
        "--user",
        "svc-backup",
    ]);
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
        let dc = MockDc::start(&[
            "--dir",
            ntds.to_str().unwrap(),
            "--generate",
            "2MiB",
            "--user",
            "Administrator",
        ]);
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
    assert_eq!(summary["auth_level"], "packet_privacy");
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
