//! Every command's `--json` output, from real runs against `mock-dc` and on fixtures, checked
//! against its JSON Schema in `docs/schema/` (one document per command; one schema per line for
//! the JSON Lines of `endpoints` and `inspect`; the error document of every command).

#![cfg(test)]

use serde_json::{Value, json};

#[path = "common/mock.rs"]
mod mock;
#[path = "common/schema.rs"]
mod walker;

use mock::{MockDc, PASSWORD, closed_port, dsbackup};
use walker::{assert_valid, check};

fn document(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn json_lines(output: &std::process::Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn every_schema_is_checked_by_a_test() {
    let mut names: Vec<String> = std::fs::read_dir(walker::dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let source = include_str!("schema.rs");
    for name in &names {
        assert!(
            source.contains(&format!("\"{name}\"")),
            "docs/schema/{name} is validated by no test"
        );
        // Each schema names itself by its file.
        assert!(
            walker::load(name)["$id"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{name}")),
            "{name}"
        );
    }
}

#[test]
fn the_checker_catches_what_a_schema_forbids() {
    let good = json!({"server": "dc1", "online": true});
    assert!(check("online.json", &good).is_empty());
    let cases = [
        json!({"server": "dc1"}),
        json!({"server": "dc1", "online": "yes"}),
        json!({"server": "dc1", "online": true, "extra": 1}),
    ];
    for bad in cases {
        assert_eq!(check("online.json", &bad).len(), 1, "{bad}");
    }
    let error = json!({"error": {"kind": "nope", "message": "m", "status": null,
        "status_name": null, "hresult": "0x8000ffff"}, "exit_code": 1});
    assert_eq!(check("error.json", &error).len(), 1);
    let error = json!({"error": {"kind": "refused", "message": "m", "status": 5,
        "status_name": "ERROR_ACCESS_DENIED", "hresult": "0x80070005"}, "exit_code": 4});
    assert!(check("error.json", &error).is_empty());
    let bad_hex = json!({"error": {"kind": "refused", "message": "m", "status": 5,
        "status_name": null, "hresult": "0x8007005"}, "exit_code": 4});
    assert_eq!(check("error.json", &bad_hex).len(), 1);
}

/// mock-dc, backup, verify (good and damaged), online, set-log, endpoints, restore --dry-run
/// and restore, each run for real.
#[test]
fn the_networked_commands_print_what_their_schemas_say() {
    let tmp = tempfile::tempdir().unwrap();
    let ntds = tmp.path().join("ntds");
    let out = tmp.path().join("set");
    let ntds_arg = ntds.to_str().unwrap();
    let user = ["--user", "Administrator"];
    {
        let dc = MockDc::generated(&ntds, "1MiB", "Administrator", &[]);
        assert_valid("mock-dc.json", &dc.started);
        assert_eq!(dc.started["root"], json!(dc.root));
        let json_run = |command: &str, args: &[&str]| {
            let mut all = vec!["--json"];
            all.extend(user);
            all.extend(args);
            dc.run(command, &all, PASSWORD)
        };
        let backup = json_run("backup", &["--out", out.to_str().unwrap()]);
        assert!(backup.status.success());
        assert_valid("backup.json", &document(&backup));

        let online = json_run("online", &[]);
        assert_eq!(online.status.code(), Some(0));
        assert_valid("online.json", &document(&online));

        let set_log = json_run("set-log", &["7"]);
        assert!(
            set_log.status.success(),
            "{}",
            String::from_utf8_lossy(&set_log.stderr)
        );
        assert_valid("set-log.json", &document(&set_log));

        let endpoints = json_run("endpoints", &[]);
        assert!(endpoints.status.success());
        let lines = json_lines(&endpoints);
        assert!(!lines.is_empty());
        for line in &lines {
            assert_valid("endpoints.json", line);
        }
    }
    let verify = dsbackup()
        .args(["--json", "verify"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(verify.status.success());
    assert_valid("verify.json", &document(&verify));

    let dc = MockDc::start(&[
        "--dir",
        ntds_arg,
        "--user",
        "Administrator",
        "--restore-mode",
    ]);
    let port = dc.port.to_string();
    let target = tmp.path().join("restored");
    std::fs::create_dir(&target).unwrap();
    let map = format!(r"\\DC1\C$\Windows\NTDS={}", target.display());
    let restore = |extra: &[&str]| {
        dsbackup()
            .args([
                "--json",
                "restore",
                "--server",
                "127.0.0.1",
                "--epm-port",
                &port,
            ])
            .args(user)
            .args(["--from", out.to_str().unwrap(), "--map", &map])
            .args(extra)
            .env("DSBACKUP_PASSWORD", PASSWORD)
            .output()
            .unwrap()
    };
    let plan = restore(&["--dry-run"]);
    assert!(plan.status.success());
    assert_valid("restore-dry-run.json", &document(&plan));
    let done = restore(&[]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_valid("restore.json", &document(&done));
    // The files are there now: the second restore fails, as the error document.
    let again = restore(&[]);
    assert_eq!(again.status.code(), Some(7));
    let error = document(&again);
    assert_valid("error.json", &error);
    assert_eq!(error["error"]["kind"], "local");

    // A damaged set: verify's document still, and exit code 3.
    std::fs::write(out.join("ntds/ntds.dit"), b"damaged").unwrap();
    let damaged = dsbackup()
        .args(["--json", "verify"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(damaged.status.code(), Some(3));
    let report = document(&damaged);
    assert_valid("verify.json", &report);
    assert_eq!(report["ok"], false);
}

#[test]
fn demo_prints_what_its_schema_says() {
    let demo = dsbackup()
        .args(["--json", "demo", "--size", "1MiB"])
        .output()
        .unwrap();
    assert!(demo.status.success());
    assert_valid("demo.json", &document(&demo));
}

#[test]
fn usage_and_connection_errors_are_error_documents() {
    // No --user: a usage error (2), as JSON.
    let usage = dsbackup()
        .args(["--json", "online", "--server", "127.0.0.1", "--port", "1"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let error = document(&usage);
    assert_valid("error.json", &error);
    assert_eq!(error["error"]["kind"], "usage");
    // Nothing listens: a connection error (6).
    let closed = closed_port();
    let unreachable = dsbackup()
        .args([
            "--json",
            "online",
            "-s",
            "127.0.0.1",
            "--port",
            &closed,
            "-u",
            "x",
        ])
        .env("DSBACKUP_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(6));
    let error = document(&unreachable);
    assert_valid("error.json", &error);
    assert_eq!(error["error"]["kind"], "connection");
}

#[test]
fn inspect_lines_match_their_schema() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let sealed = fixtures.join("pdu-conversations/samba-epm-lookup-sealed.txt");
    let capture = fixtures.join("capture");
    let mut inputs = vec![sealed.clone()];
    for entry in std::fs::read_dir(&capture).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "pcapng") {
            inputs.push(path);
        }
    }
    let mut seen = 0;
    for input in &inputs {
        let output = dsbackup()
            .args(["inspect", "--nt-password", "Passw0rd!123"])
            .arg(input)
            .env_remove("DSBACKUP_INSPECT_PASSWORD")
            .output()
            .unwrap();
        for line in json_lines(&output) {
            assert_valid("inspect.json", &line);
            seen += 1;
        }
    }
    assert!(seen > 10, "{seen} lines");
    // Bad input: error objects in the stream.
    let mut bad = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut bad, b"I 0500\nI 0500zz\n").unwrap();
    let output = dsbackup().arg("inspect").arg(bad.path()).output().unwrap();
    assert!(!output.status.success());
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_valid("inspect.json", line);
        assert!(line["error"]["message"].is_string());
    }
    // A bare stub.
    let stub = fixtures.join("ndr/ad_backup-3-HrRBackupOpenFile-request.bin");
    let output = dsbackup()
        .args([
            "inspect",
            "--iface",
            "ad_backup",
            "--opnum",
            "3",
            "--request",
        ])
        .arg(stub)
        .output()
        .unwrap();
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    assert_valid("inspect.json", &lines[0]);
}
