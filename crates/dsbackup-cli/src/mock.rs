//! `mock-dc` (a mock domain controller on the network) and `demo` (a mock DC on loopback,
//! backed up, verified and summarized in one command).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::Args;
use dsbackup_client::{
    AuthLevel, BackupOptions, Client, ClientConfig, Credentials, Endpoint, verify_dir,
};
use dsbackup_mock::serve::{MockServer, ServeOptions};
use dsbackup_mock::{DsMode, MockConfig, MockDc, MockUser, Privileges, SampleSpec};
use dsbackup_transport::{AcceptorConfig, ServiceKeys, parse_keytab};

use crate::commands::backup_text;
use crate::connect::Auth;
use crate::creds::PASSWORD_ENV;
use crate::exit;
use crate::output::Output;
use crate::progress::Bar;

/// `dsbackup mock-dc`.
#[derive(Debug, Args)]
pub(crate) struct MockDcArgs {
    /// Where ad_backup, ad_restore and an endpoint mapper listen (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: SocketAddr,
    /// Also serve the endpoint mapper on this port of the same address (135 on a real DC).
    #[arg(long)]
    pub(crate) epm_port: Option<u16>,
    /// A TOML configuration (users, privileges, mode, faults; see the dsbackup-mock docs).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// The NTDS directory to serve (without --config).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Generate a sample set of about this size first (e.g. 64MiB, 1GiB), into --dir or a
    /// temporary directory.
    #[arg(long, value_parser = parse_size)]
    pub(crate) generate: Option<u64>,
    /// The DC's NetBIOS name (without --config).
    #[arg(long, default_value = "DC1")]
    pub(crate) dc_name: String,
    /// The NetBIOS domain (without --config).
    #[arg(long, default_value = "CORP")]
    pub(crate) domain: String,
    /// A user `NAME[:PRIVILEGES]` (repeatable; privileges `backup`, `restore`, comma-separated,
    /// default `backup,restore`); the password comes from DSBACKUP_PASSWORD.
    #[arg(long = "user", value_name = "NAME[:PRIVILEGES]")]
    pub(crate) users: Vec<String>,
    /// The lowest auth level a call may come with (without --config).
    #[arg(long, value_enum, default_value_t = Auth::Integrity)]
    pub(crate) min_auth: Auth,
    /// Write what is served to this pcapng file, as it went on the wire.
    #[arg(long, value_name = "FILE.pcapng")]
    pub(crate) capture: Option<PathBuf>,
    /// Start in directory services restore mode.
    #[arg(long)]
    pub(crate) restore_mode: bool,
    /// Largest fragment the server sends and receives.
    #[arg(long, default_value_t = u16::MAX)]
    pub(crate) max_frag: u16,
    /// Also accept Kerberos (auth type 16) with the service keys of this keytab; a client
    /// of the keytab's realm acts as the configured user of its name.
    #[arg(long, value_name = "FILE")]
    pub(crate) keytab: Option<PathBuf>,
    /// Only the keytab's keys of this principal (`host/dc1.corp.example[@REALM]`).
    #[arg(long, requires = "keytab")]
    pub(crate) spn: Option<String>,
}

/// The Kerberos acceptor of `--keytab` and `--spn`.
fn kerberos(args: &MockDcArgs) -> anyhow::Result<Option<AcceptorConfig>> {
    let Some(path) = &args.keytab else {
        return Ok(None);
    };
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the keytab {}", path.display()))?;
    let entries = parse_keytab(&bytes).with_context(|| format!("{}", path.display()))?;
    let keys = ServiceKeys::new(entries, args.spn.as_deref());
    if keys.is_empty() {
        return Err(exit::usage(format!(
            "the keytab {} holds no key{}",
            path.display(),
            args.spn
                .as_deref()
                .map_or_else(String::new, |spn| format!(" of {spn}"))
        )));
    }
    Ok(Some(AcceptorConfig::new(keys)))
}

/// `dsbackup demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub(crate) progress: crate::connect::ProgressArgs,
    /// Size of the generated sample set (e.g. 64MiB, 1GiB).
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub(crate) size: u64,
    /// Keep the backup set in this directory (it must not exist, or be empty); by default
    /// everything is in a temporary directory removed at the end.
    #[arg(long)]
    pub(crate) keep: Option<PathBuf>,
}

pub(crate) async fn mock_dc(args: &MockDcArgs, output: Output) -> anyhow::Result<u8> {
    let mut _temp = None;
    let config = if let Some(path) = &args.config {
        let config = MockConfig::load(path)?;
        if let Some(size) = args.generate {
            generate(&config.root, size)?;
        }
        config
    } else {
        let root = match (&args.dir, args.generate) {
            (Some(dir), _) => dir.clone(),
            (None, Some(_)) => {
                let temp = tempfile::tempdir()?;
                let root = temp.path().join("ntds");
                _temp = Some(temp);
                root
            }
            (None, None) => {
                return Err(exit::usage(
                    "nothing to serve: give --dir, --generate or --config",
                ));
            }
        };
        if let Some(size) = args.generate {
            generate(&root, size)?;
        }
        let mut builder = MockConfig::builder(args.dc_name.clone(), root)
            .domain(args.domain.clone())
            .min_auth_level(args.min_auth.level());
        if args.restore_mode {
            builder = builder.mode(DsMode::Restore);
        }
        let mut config = builder.build();
        config.users = users(&args.users)?;
        config
    };
    let dc = MockDc::new(config)?;
    let options = ServeOptions {
        listen: args.listen,
        epm_listen: args
            .epm_port
            .map(|port| SocketAddr::new(args.listen.ip(), port)),
        max_frag: args.max_frag,
        domain: String::new(),
        danger_anonymous_user: None,
        capture: match &args.capture {
            Some(path) => Some(crate::pcapng::Capture::create(path)?.tap()),
            None => None,
        },
        kerberos: kerberos(args)?,
    };
    let server = MockServer::start(dc, &options)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = server.local_addr();
    let config = server.dc().config();
    output.result(
        &serde_json::json!({
            "addr": addr,
            "epm": server.epm_addr(),
            "dc_name": config.dc_name,
            "root": config.root,
            "users": config.users.iter().map(|u| &u.name).collect::<Vec<_>>(),
        }),
        &format!(
            "mock DC {} serving {} on {addr} (endpoint mapper on the same port{}); Ctrl-C stops it",
            config.dc_name,
            config.root.display(),
            server
                .epm_addr()
                .map_or_else(String::new, |epm| format!(" and on {epm}"))
        ),
    )?;
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(exit::OK)
}

pub(crate) async fn demo(args: &DemoArgs, output: Output) -> anyhow::Result<u8> {
    const USER: &str = "svc-backup";
    let temp = tempfile::tempdir()?;
    let root = temp.path().join("ntds");
    let started = Instant::now();
    let sample = generate(&root, args.size)?;
    let generated = started.elapsed();
    // The demo's own account: a random password, never shown.
    let password = hex::encode(random_bytes()?);
    let config = MockConfig::builder("DC1", &root)
        .domain("CORP")
        .user(USER, &password, Privileges::BACKUP)
        .min_auth_level(AuthLevel::PKT_PRIVACY)
        .build();
    let server = MockServer::start(MockDc::new(config)?, &ServeOptions::loopback()).await?;
    let client = Client::new(
        ClientConfig::new("127.0.0.1")
            .credentials(Credentials::from_password(USER, "CORP", &password))
            .auth_level(AuthLevel::PKT_PRIVACY)
            .endpoint(Endpoint::Mapper {
                port: server.local_addr().port(),
            }),
    )?;
    let out = args
        .keep
        .clone()
        .unwrap_or_else(|| temp.path().join("backup"));
    let mut bar = Bar::new(0, !output.bars());
    bar.grow_per_file(true);
    let backup_started = Instant::now();
    let summary =
        dsbackup_client::backup_to_dir(&client, &out, &BackupOptions::default(), &mut bar).await;
    bar.finish();
    let summary = summary?;
    let backup_time = backup_started.elapsed();
    let report = verify_dir(&out, &mut dsbackup_client::NoProgress)?.into_result()?;
    // Every file matches what the mock serves, byte for byte.
    let mut mismatches = Vec::new();
    for entry in &summary.manifest.files {
        let served = sample
            .file(entry.server_name())
            .map(|f| dsbackup_mock::hex(&f.sha256));
        if served.as_deref() != Some(entry.sha256.as_str()) {
            mismatches.push(entry.path.clone());
        }
    }
    let bindings = client.registry().metrics().snapshot().bindings;
    server.shutdown().await;
    if !mismatches.is_empty() {
        bail!("files differ from the server's: {mismatches:?}");
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "demo: generated a {} sample set in {:.2} s, served by a mock DC on {}",
        indicatif::HumanBytes(args.size),
        generated.as_secs_f64(),
        server.local_addr()
    );
    let _ = writeln!(
        text,
        "NTLMv2 at packet privacy (every PDU signed and sealed); endpoint found through the endpoint mapper"
    );
    text.push_str(&backup_text(&summary, backup_time));
    let _ = writeln!(
        text,
        "verified: the expiry token and {} files match the manifest, and the server's SHA-256; {} bindings left open",
        report.files.len().saturating_sub(1),
        bindings
    );
    if args.keep.is_none() {
        let _ = writeln!(
            text,
            "(the set was in a temporary directory, now removed; --keep DIR keeps it)"
        );
    }
    output.result(
        &serde_json::json!({
            "size": args.size,
            "auth_level": Auth::Privacy.name(),
            "backup": {
                "out": summary.out,
                "files": summary.manifest.files.len(),
                "bytes": summary.bytes,
                "seconds": backup_time.as_secs_f64(),
            },
            "verified": true,
            "open_bindings": bindings,
        }),
        &text,
    )?;
    Ok(exit::OK)
}

/// A sample set of `size` bytes (at least 32 KiB): the database, four logs (all after the
/// checkpoint, so all in a backup) and a patch file.
fn generate(root: &Path, size: u64) -> anyhow::Result<dsbackup_mock::SampleManifest> {
    let log_size = (size / 64).clamp(4096, 1 << 20) / 4096 * 4096;
    let patch_size = (size / 128).clamp(4096, 64 * 1024) / 4096 * 4096;
    let database_size = size.saturating_sub(4 * log_size + patch_size).max(8192);
    let spec = SampleSpec {
        database_size,
        log_count: 4,
        uncommitted_logs: 4,
        log_size,
        with_patch_file: true,
        patch_size,
        ..SampleSpec::default()
    };
    dsbackup_mock::generate_sample_set(root, &spec)
        .with_context(|| format!("cannot generate a sample set in {}", root.display()))
}

/// The users of `--user NAME[:PRIVILEGES]`, all with the password of DSBACKUP_PASSWORD.
fn users(specs: &[String]) -> anyhow::Result<Vec<MockUser>> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let password = zeroize::Zeroizing::new(
        std::env::var(PASSWORD_ENV)
            .with_context(|| format!("--user needs the password in {PASSWORD_ENV}"))?,
    );
    specs
        .iter()
        .map(|spec| {
            let (name, privileges) = spec.split_once(':').unwrap_or((spec, "backup,restore"));
            let mut granted = Privileges::NONE;
            for privilege in privileges.split(',').filter(|p| !p.is_empty()) {
                match privilege.trim().to_ascii_lowercase().as_str() {
                    "backup" => granted.backup = true,
                    "restore" => granted.restore = true,
                    "none" => {}
                    other => {
                        return Err(exit::usage(format!(
                            "unknown privilege {other:?} (backup, restore, none)"
                        )));
                    }
                }
            }
            Ok(MockUser::with_password(name, &password, granted))
        })
        .collect()
}

/// `64MiB`, `1GiB`, `500M`, `4096`: a size in bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 64MiB, 1GiB)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("unknown size unit in {text:?} (B, KiB, MiB, GiB)")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// 16 random bytes from the operating system.
fn random_bytes() -> anyhow::Result<[u8; 16]> {
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("500m"), Ok(500 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1TiB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }

    #[test]
    fn generated_sets_are_about_the_size_asked() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = generate(dir.path(), 2 << 20).unwrap();
        let total: u64 = manifest
            .files
            .iter()
            .filter(|f| f.kind.bft().is_some())
            .map(|f| f.size)
            .sum();
        assert_eq!(total, 2 << 20);
    }
}
