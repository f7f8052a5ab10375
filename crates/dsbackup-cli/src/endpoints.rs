//! `dsbackup endpoints`: a server's endpoint-mapper entries, like `rpcdump`.
//!
//! ```text
//! $ dsbackup endpoints --server dc1.corp.example
//! UUID       : e3514235-4b06-11d1-ab04-00c04fc2dcd2 v4.0
//! Annotation : MS NT Directory DRS Interface
//! Binding    : ncacn_ip_tcp:10.0.0.1[49667]
//!
//! 1 endpoint
//! ```
//!
//! Anonymous by default; with `--user` and `--domain` the endpoint mapper is bound with NTLM
//! at `--level`. The password comes from `DSBACKUP_PASSWORD` or a prompt, never the command
//! line.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use dsbackup_ntlm::Credentials;
use dsbackup_proto::AuthLevel;
use dsbackup_transport::resolve::lookup_host;
use dsbackup_transport::{ClientAuth, ClientOptions, EndpointEntry, list_endpoints};

use crate::creds::PASSWORD_ENV;

/// The auth level of an authenticated lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Level {
    /// `RPC_C_AUTHN_LEVEL_CONNECT`.
    Connect,
    /// `RPC_C_AUTHN_LEVEL_PKT_INTEGRITY`.
    Integrity,
    /// `RPC_C_AUTHN_LEVEL_PKT_PRIVACY`.
    Privacy,
}

impl Level {
    fn auth_level(self) -> AuthLevel {
        match self {
            Self::Connect => AuthLevel::CONNECT,
            Self::Integrity => AuthLevel::PKT_INTEGRITY,
            Self::Privacy => AuthLevel::PKT_PRIVACY,
        }
    }
}

/// List a server's endpoint-mapper entries (annotation, interface, string binding).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Host name or address of the server.
    #[arg(long)]
    server: String,
    /// TCP port of the endpoint mapper.
    #[arg(long, default_value_t = 135)]
    port: u16,
    /// User to authenticate as (anonymous without, unless Kerberos uses a ccache); the password
    /// comes from DSBACKUP_PASSWORD or a prompt.
    #[arg(long)]
    user: Option<String>,
    /// Domain of the user (NTLM).
    #[arg(long)]
    domain: Option<String>,
    /// Authentication package.
    #[arg(long, value_enum, default_value = "ntlm")]
    auth_type: crate::kerberos::AuthType,
    #[command(flatten)]
    kerberos: crate::kerberos::KerberosArgs,
    /// Auth level when authenticating.
    #[arg(long, value_enum, default_value = "privacy")]
    level: Level,
    /// Seconds to wait for the connection and each call.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

/// Runs the command; `json` (the global `--json`): one JSON object a line instead of text.
pub(crate) async fn run(args: &Args, json: bool) -> Result<()> {
    if args.auth_type == crate::kerberos::AuthType::Kerberos {
        let user = args.user.as_deref();
        let ticket = crate::kerberos::service_ticket(&args.kerberos, user, &args.server, |realm| {
            password(user.unwrap_or_default(), realm)
        })
        .await?;
        let mut options = ClientOptions::with_auth(ClientAuth::Kerberos {
            ticket: Box::new(ticket),
            level: args.level.auth_level(),
        });
        options.connect_timeout = Duration::from_secs(args.timeout);
        options.call_timeout = Duration::from_secs(args.timeout);
        let epm = lookup_host(&args.server, args.port)
            .await
            .with_context(|| format!("cannot resolve {}", args.server))?;
        let entries = list_endpoints(epm, &options)
            .await
            .with_context(|| format!("cannot read the endpoint map of {epm}"))?;
        return write(&entries, json);
    }
    if args.user.is_some() != args.domain.is_some() {
        anyhow::bail!("NTLM needs both --user and --domain");
    }
    let password = match &args.user {
        Some(user) => Some(password(user, args.domain.as_deref().unwrap_or_default())?),
        None => None,
    };
    let entries = fetch(args, password.as_deref()).await?;
    write(&entries, json)
}

fn write(entries: &[EndpointEntry], json: bool) -> Result<()> {
    let out = if json {
        render_json(entries)?
    } else {
        render(entries)
    };
    std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes())?;
    Ok(())
}

fn password(user: &str, domain: &str) -> Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    rpassword::prompt_password(format!("Password for {domain}\\{user}: "))
        .with_context(|| format!("no {PASSWORD_ENV} and no terminal to ask for the password"))
}

/// The entries of the endpoint map of `args.server`.
pub(crate) async fn fetch(args: &Args, password: Option<&str>) -> Result<Vec<EndpointEntry>> {
    let mut options = ClientOptions::default();
    if let (Some(user), Some(domain), Some(password)) = (&args.user, &args.domain, password) {
        options.auth = ClientAuth::ntlm(
            Credentials::from_password(user, domain, password),
            args.level.auth_level(),
        );
    }
    options.connect_timeout = Duration::from_secs(args.timeout);
    options.call_timeout = Duration::from_secs(args.timeout);
    let epm = lookup_host(&args.server, args.port)
        .await
        .with_context(|| format!("cannot resolve {}", args.server))?;
    list_endpoints(epm, &options)
        .await
        .with_context(|| format!("cannot read the endpoint map of {epm}"))
}

/// The entries as text, one block each.
pub(crate) fn render(entries: &[EndpointEntry]) -> String {
    let mut out = String::new();
    for entry in entries {
        match entry.interface {
            Some(interface) => {
                let _ = writeln!(
                    out,
                    "UUID       : {} v{}.{}",
                    interface.uuid, interface.version, interface.version_minor
                );
            }
            None => out.push_str("UUID       : (no interface floor)\n"),
        }
        if !entry.object.is_nil() {
            let _ = writeln!(out, "Object     : {}", entry.object);
        }
        let _ = writeln!(out, "Annotation : {}", entry.annotation);
        match &entry.binding {
            Some(binding) => {
                let _ = writeln!(out, "Binding    : {binding}");
            }
            None => {
                let _ = writeln!(out, "Binding    : (not ncacn_ip_tcp: {:?})", entry.tower);
            }
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{} endpoint{}",
        entries.len(),
        if entries.len() == 1 { "" } else { "s" }
    );
    out
}

/// The entries as JSON lines.
fn render_json(entries: &[EndpointEntry]) -> Result<String> {
    let mut out = String::new();
    for entry in entries {
        let value = serde_json::json!({
            "annotation": entry.annotation,
            "uuid": entry.interface.map(|i| i.uuid.to_string()),
            "version": entry.interface.map(|i| format!("{}.{}", i.version, i.version_minor)),
            "object": entry.object.to_string(),
            "binding": entry.binding.as_ref().map(ToString::to_string),
        });
        out.push_str(&serde_json::to_string(&value)?);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use bytes::Bytes;
    use dsbackup_ntlm::{AcceptorConfig, InMemoryCredentials};
    use dsbackup_proto::{DataRep, SyntaxId, Uuid};
    use dsbackup_transport::{CallContext, CallFuture, RpcInterface, Server, ServerOptions};

    use super::*;

    struct Named(u16);

    impl RpcInterface for Named {
        fn syntax(&self) -> SyntaxId {
            SyntaxId::new(
                Uuid::from_str_const("6b6f6f6c-7465-7374-8000-0000000000aa"),
                self.0,
                1,
            )
        }
        fn opnums(&self) -> u16 {
            1
        }
        fn annotation(&self) -> &str {
            "cli test"
        }
        fn call(self: Arc<Self>, _: CallContext, _: u16, stub: Bytes, _: DataRep) -> CallFuture {
            Box::pin(async move { Ok(stub.into()) })
        }
    }

    fn args(port: u16, user: bool) -> Args {
        Args {
            server: "127.0.0.1".into(),
            port,
            user: user.then(|| "svc".into()),
            domain: user.then(|| "CORP".into()),
            level: Level::Privacy,
            auth_type: crate::kerberos::AuthType::Ntlm,
            kerberos: crate::kerberos::KerberosArgs::default(),
            timeout: 10,
        }
    }

    #[tokio::test]
    async fn lists_our_servers_endpoints_anonymously_and_with_ntlm() {
        let mut users = InMemoryCredentials::new();
        users.insert_password("svc", "CORP", "pw");
        let mut options = ServerOptions::default();
        options.epm_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        options.ntlm = Some(AcceptorConfig::new(
            Arc::new(users),
            "DC1",
            "CORP",
            "corp.example",
        ));
        let mut server = Server::new(options);
        server
            .register(Arc::new(Named(1)))
            .register(Arc::new(Named(2)));
        let server = server.start().await.unwrap();
        let port = server.epm_addr().unwrap().port();

        let entries = fetch(&args(port, false), None).await.unwrap();
        let text = render(&entries);
        let binding = format!("ncacn_ip_tcp:127.0.0.1[{}]", server.local_addr().port());
        assert_eq!(
            text,
            format!(
                "UUID       : 6b6f6f6c-7465-7374-8000-0000000000aa v1.1\n\
                 Annotation : cli test\n\
                 Binding    : {binding}\n\n\
                 UUID       : 6b6f6f6c-7465-7374-8000-0000000000aa v2.1\n\
                 Annotation : cli test\n\
                 Binding    : {binding}\n\n\
                 2 endpoints\n"
            )
        );
        let json = render_json(&entries).unwrap();
        assert!(
            json.lines()
                .next()
                .unwrap()
                .contains(&format!("\"binding\":\"{binding}\""))
        );

        assert_eq!(fetch(&args(port, true), Some("pw")).await.unwrap(), entries);
        assert!(fetch(&args(port, true), Some("wrong")).await.is_err());
        server.shutdown().await;
    }
}
