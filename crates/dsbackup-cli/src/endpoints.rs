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
//! Anonymous by default; with `--user` the endpoint mapper is bound with NTLM at `--auth`
//! (privacy unless said otherwise). The flags are those of every command that talks to a server:
//! `-s/--server`, `--epm-port`, `-u/--user`, `-d/--domain`, `--auth`, `--connect-timeout`,
//! `--timeout`; the password comes from the same places too, never the command line. With
//! `--auth-type kerberos` the bind carries a Kerberos ticket instead (`--realm`, `--kdc`,
//! `--keytab`, `--ccache`, `--spn`: see the `kerberos` module).

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use dsbackup_transport::lookup_host;
use dsbackup_transport::{
    ClientAuth, ClientOptions, EndpointEntry, TransportError, list_endpoints,
};

use crate::connect::Auth;
use crate::{creds, exit};

/// List a server's endpoint-mapper entries (annotation, interface, string binding).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The server: host name or address.
    #[arg(long, short = 's')]
    server: String,
    /// The endpoint mapper's TCP port.
    #[arg(long, default_value_t = 135)]
    epm_port: u16,
    /// The account to authenticate as (anonymous without); its password comes from
    /// DSBACKUP_PASSWORD (or its NT hash from DSBACKUP_NT_HASH), else a prompt.
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// The account's domain (NetBIOS name).
    #[arg(long, short = 'd', default_value = "")]
    domain: String,
    #[command(flatten)]
    password: creds::PasswordArgs,
    /// The authentication package: negotiate (SPNEGO: Kerberos when a realm is known, NTLM
    /// when Kerberos is not possible or the server chooses it), kerberos alone, or ntlm alone.
    #[arg(long, value_enum, default_value = "negotiate")]
    auth_type: crate::kerberos::AuthType,
    #[command(flatten)]
    kerberos: crate::kerberos::KerberosArgs,
    /// The RPC authentication level: privacy with --user (or a Kerberos credential cache:
    /// --ccache, or KRB5CCNAME with --auth-type kerberos), none without, unless given.
    #[arg(long, value_enum)]
    auth: Option<Auth>,
    /// Seconds to connect and bind.
    #[arg(long, default_value_t = 10)]
    connect_timeout: u64,
    /// Seconds one call may take.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Write the traffic to this pcapng file, as it went on the wire.
    #[arg(long, value_name = "FILE.pcapng")]
    capture: Option<std::path::PathBuf>,
}

/// Runs the command; `json` (the global `--json`): one JSON object a line (JSON Lines) instead
/// of text.
pub(crate) async fn run(args: &Args, json: bool) -> Result<()> {
    let entries = fetch(args, &options(args)?).await?;
    let out = if json {
        render_json(&entries)?
    } else {
        render(&entries)
    };
    std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes())?;
    Ok(())
}

/// The connection options of `args`: credentials from the environment or a prompt when
/// authenticating.
///
/// # Errors
/// A usage error for `--auth` above none without `--user`, or no password.
fn options(args: &Args) -> Result<ClientOptions> {
    crate::connect::check_server(&args.server)?;
    use crate::kerberos::AuthType;
    // Without --auth, authenticate when there is someone to authenticate as: a user, or a
    // Kerberos credential cache (named, or KRB5CCNAME with Kerberos asked for).
    let ticket_cache = args.kerberos.ccache.is_some()
        || (args.auth_type == AuthType::Kerberos || args.kerberos.any())
            && std::env::var_os("KRB5CCNAME").is_some();
    let auth = match (args.auth, &args.user) {
        (Some(auth), _) => auth,
        (None, _) if args.auth_type == AuthType::Kerberos || ticket_cache => Auth::Privacy,
        (None, Some(_)) => Auth::Privacy,
        (None, None) => Auth::None,
    };
    let mut options = ClientOptions::default();
    if auth != Auth::None {
        use crate::kerberos::Login;
        let level = auth.level();
        options.auth = match crate::kerberos::login(
            args.auth_type,
            &args.kerberos,
            args.user.as_deref(),
            &args.domain,
            &args.server,
            &args.password,
            auth.name(),
        )? {
            Login::Kerberos(tickets) => ClientAuth::Kerberos { tickets, level },
            Login::Negotiate(tickets, ntlm) => ClientAuth::Negotiate {
                tickets,
                ntlm,
                level,
            },
            Login::Ntlm(credentials) => ClientAuth::ntlm(credentials, level),
        };
    }
    options.connect_timeout = Duration::from_secs(args.connect_timeout);
    options.call_timeout = Duration::from_secs(args.timeout);
    let capture = args
        .capture
        .as_deref()
        .map(crate::pcapng::Capture::create)
        .transpose()?;
    options.tap = crate::wirelog::client_tap(capture);
    Ok(options)
}

/// The entries of the endpoint map of `args.server`.
///
/// # Errors
/// The name, connection or lookup failing (exit code 6), the credentials refused (5).
pub(crate) async fn fetch(args: &Args, options: &ClientOptions) -> Result<Vec<EndpointEntry>> {
    let epm = lookup_host(&args.server, args.epm_port)
        .await
        .with_context(|| format!("cannot resolve the server name {:?}", args.server))?;
    list_endpoints(epm, options).await.map_err(|error| {
        let hint = match &error {
            TransportError::Io(_) | TransportError::TimedOut | TransportError::Closed => format!(
                "cannot read the endpoint map at {epm} (is the endpoint mapper on --epm-port {}?)",
                args.epm_port
            ),
            _ if exit::is_refused_logon(&error) => format!(
                "the endpoint mapper at {epm} refused the credentials of {:?} (check --user, --domain and the password)",
                args.user.as_deref().unwrap_or_default()
            ),
            _ => format!("cannot read the endpoint map at {epm}"),
        };
        anyhow::Error::new(error).context(hint)
    })
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
    use dsbackup_ntlm::{AcceptorConfig, Credentials, InMemoryCredentials};
    use dsbackup_proto::{AuthLevel, DataRep, SyntaxId, Uuid};
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

    fn args(epm_port: u16) -> Args {
        Args {
            server: "127.0.0.1".into(),
            epm_port,
            user: None,
            domain: String::new(),
            password: creds::PasswordArgs::default(),
            auth_type: crate::kerberos::AuthType::Ntlm,
            kerberos: crate::kerberos::KerberosArgs::default(),
            auth: None,
            connect_timeout: 10,
            timeout: 10,
            capture: None,
        }
    }

    fn ntlm(password: &str) -> ClientOptions {
        let mut options = ClientOptions::default();
        options.auth = ClientAuth::ntlm(
            Credentials::from_password("svc", "CORP", password),
            AuthLevel::PKT_PRIVACY,
        );
        options
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

        let entries = fetch(&args(port), &ClientOptions::default()).await.unwrap();
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

        assert_eq!(fetch(&args(port), &ntlm("pw")).await.unwrap(), entries);
        let refused = fetch(&args(port), &ntlm("wrong")).await.unwrap_err();
        assert_eq!(exit::code_of(&refused), exit::AUTH);
        server.shutdown().await;
    }
}
