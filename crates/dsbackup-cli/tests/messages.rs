//! Errors that name their cause and the fix, each from a real run: the wrong endpoint-mapper
//! port, a name that does not resolve, `host:port` in `--server`, a peer that is not DCE/RPC,
//! an existing `--out`, a restore to a DC that is online.

#![cfg(test)]

use std::io::{Read as _, Write as _};
use std::process::Output;

#[path = "common/mock.rs"]
mod mock;

use mock::{MockDc, PASSWORD, closed_port, dsbackup};

fn run(args: &[&str]) -> Output {
    dsbackup()
        .args(args)
        .env("DSBACKUP_PASSWORD", PASSWORD)
        .output()
        .unwrap()
}

/// The exit code and the message on stderr.
fn failure(output: &Output) -> (Option<i32>, String) {
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn nothing_at_the_endpoint_mapper_port_names_epm_port() {
    let closed = closed_port();
    let (code, message) = failure(&run(&[
        "online",
        "-s",
        "127.0.0.1",
        "--epm-port",
        &closed,
        "-u",
        "a",
    ]));
    assert_eq!(code, Some(6));
    assert!(
        message.contains(&format!("nothing listens on 127.0.0.1 port {closed}"))
            && message.contains("check --epm-port")
            && message.contains("--port"),
        "{message}"
    );
    let (code, message) = failure(&run(&[
        "online",
        "-s",
        "127.0.0.1",
        "--port",
        &closed,
        "-u",
        "a",
    ]));
    assert_eq!(code, Some(6));
    assert!(message.contains("(--port): check --port"), "{message}");
}

#[test]
fn a_name_that_does_not_resolve_says_so() {
    // `.invalid` never resolves (RFC 2606).
    let (code, message) = failure(&run(&["online", "-s", "no-such-dc.invalid", "-u", "a"]));
    assert_eq!(code, Some(6));
    assert!(
        message.contains("cannot resolve the server name \"no-such-dc.invalid\""),
        "{message}"
    );
    assert!(
        !message.contains("connection to the server was lost"),
        "{message}"
    );
}

#[test]
fn host_and_port_in_server_points_at_the_port_flags() {
    let (code, message) = failure(&run(&["online", "-s", "dc1:135", "-u", "a"]));
    assert_eq!(code, Some(2));
    assert!(
        message.contains("give dc1 to --server, and 135 to --epm-port"),
        "{message}"
    );
}

#[test]
fn a_peer_that_is_not_rpc_is_named_so() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    // An HTTP server: it reads the bind and answers with an HTTP error.
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            let mut buf = [0; 2048];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let (code, message) = failure(&run(&[
        "online",
        "-s",
        "127.0.0.1",
        "--port",
        &port,
        "-u",
        "a",
    ]));
    assert_eq!(code, Some(6));
    assert!(
        message.contains(&format!(
            "127.0.0.1 port {port} (--port) is not a DCE/RPC server"
        )),
        "{message}"
    );
}

#[test]
fn an_existing_out_says_it_exists_and_a_restore_to_an_online_dc_names_restore_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let ntds = tmp.path().join("ntds");
    let dc = MockDc::generated(&ntds, "1MiB", "Administrator", &[]);
    // The map below names the DC the mock says it is, serving what it was given.
    assert_eq!(dc.started["dc_name"], "DC1");
    assert_eq!(dc.root, ntds);
    let out = tmp.path().join("set");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep"), b"mine").unwrap();
    let user = ["--user", "Administrator"];
    let with_out = |out: &std::path::Path| {
        let mut args = user.to_vec();
        args.extend(["--out", out.to_str().unwrap()]);
        dc.run("backup", &args, PASSWORD)
    };
    let (code, message) = failure(&with_out(&out));
    assert_eq!(code, Some(7));
    assert!(message.contains("exists and is not empty"), "{message}");
    assert_eq!(std::fs::read(out.join("keep")).unwrap(), b"mine");

    let set = tmp.path().join("good");
    assert!(with_out(&set).status.success());
    let target = tmp.path().join("restored");
    std::fs::create_dir(&target).unwrap();
    let map = format!(r"\\DC1\C$\Windows\NTDS={}", target.display());
    let mut args = user.to_vec();
    args.extend(["--from", set.to_str().unwrap(), "--map", &map]);
    let (code, message) = failure(&dc.run("restore", &args, PASSWORD));
    assert_eq!(code, Some(4));
    assert!(
        message.contains("the DC is online: a restore needs it in directory services restore mode"),
        "{message}"
    );
    assert!(std::fs::read_dir(&target).unwrap().next().is_none());
    drop(dc);

    // In restore mode: a target no --map rule covers is named as the server spells it.
    let dc = MockDc::start(&[
        "--dir",
        ntds.to_str().unwrap(),
        "--user",
        "Administrator",
        "--restore-mode",
    ]);
    let other = format!(r"\\DC2\D$={}", target.display());
    let mut args = user.to_vec();
    args.extend(["--from", set.to_str().unwrap(), "--map", &other]);
    let (code, message) = failure(&dc.run("restore", &args, PASSWORD));
    assert_eq!(code, Some(7));
    assert!(
        message.contains(r"restore target \\DC1\C$\Windows\NTDS\ntds.dit: no --map rule covers it"),
        "{message}"
    );
    assert!(message.contains("add --map"), "{message}");

    // A level the DC refuses is not only a matter of credentials.
    let (code, message) = failure(&dc.run(
        "online",
        &["--user", "Administrator", "--auth", "connect"],
        PASSWORD,
    ));
    assert_eq!(code, Some(5));
    assert!(
        message.contains("or the authentication level --auth connect")
            && message.contains("--auth privacy"),
        "{message}"
    );
}
