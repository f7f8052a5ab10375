//! A server with one echo interface (opnum 0), for trying third-party clients against the
//! runtime: `cargo run -p dsbackup-transport --example serve -- PORT EPM_PORT`. NTLM user
//! `svc-backup`, domain `CORP`, password `s3cret!Pa55`. Stops after 10 minutes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dsbackup_ntlm::{AcceptorConfig, InMemoryCredentials};
use dsbackup_proto::{DataRep, SyntaxId, Uuid};
use dsbackup_transport::{CallContext, CallFuture, RpcInterface, Server, ServerOptions};

/// Opnum 0 returns its input.
struct Echo;

impl RpcInterface for Echo {
    fn syntax(&self) -> SyntaxId {
        SyntaxId::new(
            Uuid::from_str_const("6b6f6f6c-7465-7374-8000-000000000001"),
            1,
            0,
        )
    }

    fn opnums(&self) -> u16 {
        1
    }

    fn annotation(&self) -> &str {
        "dsbackup echo"
    }

    fn call(self: Arc<Self>, _: CallContext, _: u16, stub: Bytes, _: DataRep) -> CallFuture {
        Box::pin(async move { Ok(stub.into()) })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let epm_port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let mut users = InMemoryCredentials::new();
    users.insert_password("svc-backup", "CORP", "s3cret!Pa55");
    let mut options = ServerOptions::default();
    options.listen = SocketAddr::from(([127, 0, 0, 1], port));
    options.epm_listen = Some(SocketAddr::from(([127, 0, 0, 1], epm_port)));
    options.ntlm = Some(AcceptorConfig::new(
        Arc::new(users),
        "DC1",
        "CORP",
        "corp.example",
    ));
    options.principal_name = "DC1$".into();
    let mut server = Server::new(options);
    server.register(Arc::new(Echo));
    let server = server.start().await?;
    let epm = server.epm_addr().map_or(0, |a| a.port());
    std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("serving {} (epm {epm})\n", server.string_binding()).as_bytes(),
    )?;
    tokio::time::sleep(Duration::from_secs(600)).await;
    server.shutdown().await;
    Ok(())
}
