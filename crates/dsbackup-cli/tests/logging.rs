//! `-v`, `-vv`, `-vvv` against `mock-dc`: each step, each call, each PDU, on a standard error
//! that is not a terminal (so without colour codes).

#![cfg(test)]

#[path = "common/mock.rs"]
mod mock;

use mock::{MockDc, PASSWORD, closed_port, dsbackup};

/// The standard error of `dsbackup -v… online` against `dc`.
fn log(dc: &MockDc, verbose: &str) -> String {
    let output = dc.run("online", &[verbose, "--user", "Administrator"], PASSWORD);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn each_v_adds_a_level_of_detail() {
    let tmp = tempfile::tempdir().unwrap();
    let ntds = tmp.path().join("ntds");
    let dc = MockDc::generated(&ntds, "1MiB", "Administrator", &[]);
    assert_eq!(dc.root, ntds);
    assert_eq!(dc.started["users"][0], "Administrator");
    let port = dc.port;

    let steps = log(&dc, "-v");
    for expected in [
        format!("the endpoint mapper answered ncacn_ip_tcp:127.0.0.1[{port}]"),
        "binding to ad_restore v1.0".to_owned(),
        "bound on 127.0.0.1".to_owned(),
        // negotiate by default: SPNEGO, NTLM inside for a mock without a keytab.
        "127.0.0.1:".to_owned(),
        "chose NTLM inside SPNEGO".to_owned(),
        "authenticating as Administrator with NTLM inside SPNEGO at --auth privacy".to_owned(),
        "NTLMSSP_NEGOTIATE_SEAL".to_owned(),
    ] {
        assert!(steps.contains(&expected), "no {expected:?} in\n{steps}");
    }
    assert!(
        !steps.contains("HrRIsNTDSOnline"),
        "calls only at -vv:\n{steps}"
    );
    assert!(
        !steps.contains('\u{1b}'),
        "colour codes into a pipe:\n{steps}"
    );

    let calls = log(&dc, "-vv");
    assert!(
        calls.contains("call ad_restore v1.0 HrRIsNTDSOnline"),
        "{calls}"
    );
    assert!(calls.contains("HrRIsNTDSOnline answered"), "{calls}");
    assert!(calls.contains("call epm v3.0 EptMap"), "{calls}");
    assert!(!calls.contains("sent bind"), "PDUs only at -vvv:\n{calls}");

    let pdus = log(&dc, "-vvv");
    for expected in [
        "sent bind call_id",
        "received bind_ack",
        // SPNEGO's third leg is answered: an alter_context.
        "sent alter_context",
        "received alter_context_resp",
        "received response",
    ] {
        assert!(pdus.contains(expected), "no {expected:?} in\n{pdus}");
    }
    assert!(!pdus.contains('\u{1b}'), "colour codes into a pipe");

    // Each file of a backup at -v.
    let out = tmp.path().join("set");
    let backup = dc.run(
        "backup",
        &[
            "-v",
            "-q",
            "--user",
            "Administrator",
            "--out",
            out.to_str().unwrap(),
        ],
        PASSWORD,
    );
    assert!(backup.status.success());
    let log = String::from_utf8(backup.stderr).unwrap();
    let opened = log
        .lines()
        .filter(|line| line.contains("File opened"))
        .count();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(opened, manifest["files"].as_array().unwrap().len(), "{log}");
}

#[test]
fn without_v_nothing_is_logged() {
    let closed = closed_port();
    let output = dsbackup()
        .args([
            "online",
            "-s",
            "127.0.0.1",
            "--epm-port",
            &closed,
            "-u",
            "a",
        ])
        .env("DSBACKUP_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    // The one error line, no log lines.
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("dsbackup::wire"), "{stderr}");
}
