//! `dsbackup`: the command line of the dsbackup project.
//!
//! Exit codes are documented in [`exit`]; `--json` prints one JSON document per command on
//! stdout; `-v` (repeatable) turns tracing on, on stderr.

mod commands;
mod connect;
mod creds;
mod diagnose;
mod endpoints;
mod exit;
mod inspect;
mod kerberos;
mod mock;
mod output;
mod pcapng;
mod progress;
mod signals;
mod wirelog;

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
                  7 local file problem, 8 a response (or SPNEGO's mechanism list MIC) failed \
                  its signature check (traffic altered), 9 (online) the directory service is \
                  offline."
)]
struct Cli {
    /// Print results as one JSON document on stdout.
    #[arg(long, global = true)]
    json: bool,
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
    /// Decode DCE/RPC from pcap/pcapng captures, hex or binary PDUs: JSON Lines, one object a PDU.
    Inspect(inspect::Args),
    /// Serve a mock domain controller (a directory, or a generated sample set).
    MockDc(mock::MockDcArgs),
    /// Start a mock DC on loopback, back it up with NTLM packet privacy, verify, summarize.
    Demo(mock::DemoArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `dsbackup man > ~/.local/share/man/man1/dsbackup.1`.
    Man,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    init_tracing(cli.verbose);
    let output = Output {
        json: cli.json,
        quiet: match &cli.command {
            Command::Backup(args) => args.progress.quiet,
            Command::Restore(args) => args.progress.quiet,
            Command::Verify(args) => args.progress.quiet,
            Command::Demo(args) => args.progress.quiet,
            _ => false,
        },
    };
    match run(cli.command, output) {
        Ok(code) => exit::exit(code),
        Err(error) => {
            let code = exit::code_of(&error);
            let message = render(&error);
            if output.json {
                println_json(&exit::error_json(&error, &message, code));
            }
            eprintln!("dsbackup: {message}");
            exit::exit(code)
        }
    }
}

/// clap's error: help and version as clap prints them; a usage error as clap prints it, and
/// with `--json` anywhere on the line also as the JSON error object on stdout.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        error.exit();
    }
    if std::env::args_os().any(|arg| arg == "--json") {
        let text = error.render().to_string();
        let message = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        let anyhow = anyhow::Error::new(exit::Usage(message.to_owned()));
        println_json(&exit::error_json(&anyhow, message, exit::USAGE));
    }
    let _ = error.print();
    exit::exit(exit::USAGE)
}

fn run(command: Command, output: Output) -> anyhow::Result<u8> {
    match command {
        Command::Inspect(args) => inspect::run(&args).map(|()| exit::OK),
        Command::Endpoints(args) => runtime()?
            .block_on(endpoints::run(&args, output.json))
            .map(|()| exit::OK),
        Command::Verify(args) => commands::verify(&args, output),
        Command::Backup(args) => {
            runtime()?.block_on(explained(&args.connect, commands::backup(&args, output)))
        }
        Command::Restore(args) => {
            runtime()?.block_on(explained(&args.connect, commands::restore(&args, output)))
        }
        Command::Online(args) => {
            runtime()?.block_on(explained(&args.connect, commands::online(&args, output)))
        }
        Command::SetLog(args) => {
            runtime()?.block_on(explained(&args.connect, commands::set_log(&args, output)))
        }
        Command::MockDc(args) => runtime()?.block_on(mock::mock_dc(&args, output)),
        Command::Demo(args) => runtime()?.block_on(mock::demo(&args, output)),
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics on a write error (a closed pipe).
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "dsbackup", &mut script);
            std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
            Ok(exit::OK)
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command).render(&mut std::io::stdout().lock())?;
            Ok(exit::OK)
        }
    }
}

/// Runs a networked command; a connection failure is told by its cause and its fix.
async fn explained(
    connect: &connect::ConnectArgs,
    command: impl Future<Output = anyhow::Result<u8>>,
) -> anyhow::Result<u8> {
    match command.await {
        Ok(code) => Ok(code),
        Err(error) => Err(diagnose::connection(connect, error).await),
    }
}

/// The error and its causes on one line, each cause once (library errors already name their
/// source in their message).
pub(crate) fn render(error: &anyhow::Error) -> String {
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
    // -v: each step (the wire's, and the library's: each binding, each file); -vv: each call;
    // -vvv: each PDU (see `wirelog`).
    let default = match verbose {
        0 => "warn",
        1 => "info,dsbackup_client=debug",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only for a person at a terminal, never into a file or a pipe.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

fn println_json(value: &serde_json::Value) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut stdout, value);
    let _ = writeln!(stdout);
}
