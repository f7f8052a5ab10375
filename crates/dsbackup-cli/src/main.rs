//! `dsbackup`: the command line of the dsbackup project.
//!
//! Exit codes are documented in [`exit`]; `--json` prints one JSON document per command on
//! stdout; `-v` (repeatable) turns tracing on, on stderr.

mod commands;
mod connect;
mod creds;
mod endpoints;
mod exit;
mod inspect;
mod mock;
mod output;
mod progress;
mod signals;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::Output;

/// NTDS backup over DCE/RPC, and the tools around it.
#[derive(Debug, Parser)]
#[command(
    name = "dsbackup",
    version,
    about,
    after_help = "Exit codes: 0 success, 1 other failure, 2 usage, 3 verification failed, \
                  4 refused by the server, 5 authentication failed, 6 connection failed, \
                  7 local file problem, 8 a response failed its signature check (traffic altered)."
)]
struct Cli {
    /// Print results as one JSON document on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// No progress bars.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    /// More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Back a DC up into a new directory (database, logs, patch files, token, manifest).
    Backup(commands::BackupArgs),
    /// Re-hash a backup directory against its manifest.
    Verify(commands::VerifyArgs),
    /// Restore a backup directory to a DC in restore mode.
    Restore(commands::RestoreArgs),
    /// Whether the directory service of a DC is online (DsIsNTDSOnline).
    Online(commands::OnlineArgs),
    /// Set the current backup log number of a DC (DsSetCurrentBackupLog).
    SetLog(commands::SetLogArgs),
    /// List a server's endpoint-mapper entries, like rpcdump.
    Endpoints(endpoints::Args),
    /// Decode captured DCE/RPC PDUs to JSON, one object per line.
    Inspect(inspect::Args),
    /// Serve a mock domain controller (a directory, or a generated sample set).
    MockDc(mock::MockDcArgs),
    /// Start a mock DC on loopback, back it up with NTLM packet privacy, verify, summarize.
    Demo(mock::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let output = Output {
        json: cli.json,
        quiet: cli.quiet,
    };
    match run(cli.command, output) {
        Ok(code) => exit::exit(code),
        Err(error) => {
            let code = exit::code_of(&error);
            let message = render(&error);
            if output.json {
                let doc = serde_json::json!({
                    "error": message,
                    "exit_code": code,
                });
                println_json(&doc);
            }
            eprintln!("dsbackup: {message}");
            exit::exit(code)
        }
    }
}

fn run(command: Command, output: Output) -> anyhow::Result<u8> {
    match command {
        Command::Inspect(args) => inspect::run(&args).map(|()| exit::OK),
        Command::Endpoints(args) => runtime()?
            .block_on(endpoints::run(&args, output.json))
            .map(|()| exit::OK),
        Command::Verify(args) => commands::verify(&args, output),
        Command::Backup(args) => runtime()?.block_on(commands::backup(&args, output)),
        Command::Restore(args) => runtime()?.block_on(commands::restore(&args, output)),
        Command::Online(args) => runtime()?.block_on(commands::online(&args, output)),
        Command::SetLog(args) => runtime()?.block_on(commands::set_log(&args, output)),
        Command::MockDc(args) => runtime()?.block_on(mock::mock_dc(&args, output)),
        Command::Demo(args) => runtime()?.block_on(mock::demo(&args, output)),
    }
}

/// The error and its causes on one line, each cause once (library errors already name their
/// source in their message).
fn render(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn println_json(value: &serde_json::Value) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut stdout, value);
    let _ = writeln!(stdout);
}
