//! `dsbackup endpoints` (the built binary) against our own server on loopback.

#![cfg(test)]

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use dsbackup_ntlm::{AcceptorConfig, InMemoryCredentials};
use dsbackup_proto::{AuthLevel, DataRep, SyntaxId, Uuid};
use dsbackup_transport::{CallContext, CallFuture, RpcInterface, Server, ServerOptions};

struct Backup;

impl RpcInterface for Backup {
    fn syntax(&self) -> SyntaxId {
        SyntaxId::new(
            Uuid::from_str_const("6b6f6f6c-7465-7374-8000-0000000000bb"),
            1,
            0,
        )
    }
    fn opnums(&self) -> u16 {
        1
    }
    fn annotation(&self) -> &str {
        "NTDS backup (test)"
    }
    fn min_auth_level(&self) -> AuthLevel {
        AuthLevel::PKT_PRIVACY
    }
    fn call(self: Arc<Self>, _: CallContext, _: u16, stub: Bytes, _: DataRep) -> CallFuture {
        Box::pin(async move { Ok(stub.into()) })
    }
}

fn dsbackup(args: &[String], password: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dsbackup"));
    command.args(args).env_remove("DSBACKUP_PASSWORD");
    if let Some(password) = password {
        command.env("DSBACKUP_PASSWORD", password);
    }
    command.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_lists_the_map_anonymously_and_with_a_password_from_the_environment() {
    let mut users = InMemoryCredentials::new();
    users.insert_password("svc-backup", "CORP", "s3cret!");
    let mut options = ServerOptions::default();
    options.epm_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    options.ntlm = Some(AcceptorConfig::new(
        Arc::new(users),
        "DC1",
        "CORP",
        "corp.example",
    ));
    let mut server = Server::new(options);
    server.register(Arc::new(Backup));
    let server = server.start().await.unwrap();
    let port = server.epm_addr().unwrap().port().to_string();
    let binding = format!("ncacn_ip_tcp:127.0.0.1[{}]", server.local_addr().port());

    let base = vec![
        "endpoints".to_owned(),
        "--server".to_owned(),
        "127.0.0.1".to_owned(),
        "--epm-port".to_owned(),
        port,
    ];
    let run = |extra: &[&str], password: Option<&'static str>| {
        let mut args = base.clone();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        tokio::task::spawn_blocking(move || dsbackup(&args, password))
    };

    let out = run(&[], None).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        format!(
            "UUID       : 6b6f6f6c-7465-7374-8000-0000000000bb v1.0\n\
             Annotation : NTDS backup (test)\n\
             Binding    : {binding}\n\n\
             1 endpoint\n"
        )
    );

    let user = ["--user", "svc-backup", "--domain", "CORP", "--json"];
    let out = run(&user, Some("s3cret!")).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["binding"], binding.as_str());
    assert_eq!(line["version"], "1.0");

    // Refused credentials: exit code 5.
    let out = run(&user, Some("wrong")).await.unwrap();
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    // An auth level without a user: a usage error, 2.
    let out = run(&["--auth", "integrity"], None).await.unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--user is needed at --auth integrity"));
    // No password on the command line: there is no such option.
    let out = run(&["--password", "s3cret!"], None).await.unwrap();
    assert!(!out.status.success());
    server.shutdown().await;
}

/// Nothing listening on the endpoint-mapper port: a connection failure, exit code 6, and the
/// message names the port flag.
#[test]
fn endpoints_without_a_listener_exits_6() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let args: Vec<String> = [
        "endpoints",
        "-s",
        "127.0.0.1",
        "--epm-port",
        &port.to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = dsbackup(&args, None);
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--epm-port"));
}
