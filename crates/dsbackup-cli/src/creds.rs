//! Credentials from the command line: the user and domain from flags, the secret from an
//! environment variable, a file, a command or a prompt, never from a flag's value (flags show in
//! `ps`), never echoed, never logged.
//!
//! The first of these that is set wins: `DSBACKUP_NT_HASH`, `--password-file` (or
//! `DSBACKUP_PASSWORD_FILE`), `--password-command` (or `DSBACKUP_PASSWORD_COMMAND`),
//! `DSBACKUP_PASSWORD`, a prompt on the terminal.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use dsbackup_client::{Credentials, NtHash};
use zeroize::Zeroizing;

/// The environment variable holding the password.
pub(crate) const PASSWORD_ENV: &str = "DSBACKUP_PASSWORD";
/// The environment variable holding the NT hash (32 hex digits), instead of a password.
pub(crate) const NT_HASH_ENV: &str = "DSBACKUP_NT_HASH";

/// The account named by `--user` and `--domain`, in the forms Samba's and impacket's tools
/// take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Account {
    /// The NTLM user name.
    pub(crate) user: String,
    /// The NTLM domain name.
    pub(crate) domain: String,
    /// A `--domain` that the form of `--user` overrode (for a warning).
    pub(crate) ignored_domain: Option<String>,
}

impl Account {
    /// `DOMAIN\user` and `DOMAIN/user` (impacket's `domain/user`): that user in that domain.
    /// `user@REALM`: the whole name as the user, no domain (Samba's `-U user@REALM`: the
    /// server resolves the user principal name). A bare `user`: that user in `--domain`.
    /// A domain written in `--user` wins over `--domain`.
    pub(crate) fn parse(user: &str, domain_flag: &str) -> Self {
        let (user, domain) = if let Some((domain, name)) = user.split_once(['\\', '/']) {
            (name, domain)
        } else if user.contains('@') {
            (user, "")
        } else {
            return Self {
                user: user.to_owned(),
                domain: domain_flag.to_owned(),
                ignored_domain: None,
            };
        };
        let ignored_domain = (!domain_flag.is_empty() && !domain_flag.eq_ignore_ascii_case(domain))
            .then(|| domain_flag.to_owned());
        Self {
            user: user.to_owned(),
            domain: domain.to_owned(),
            ignored_domain,
        }
    }
}

/// Where else a password may come from (the flags every command that authenticates takes).
#[derive(Debug, Default, clap::Args)]
pub(crate) struct PasswordArgs {
    /// Read the password from this file (its first line).
    #[arg(long, value_name = "FILE", env = "DSBACKUP_PASSWORD_FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// Run this shell command and take the password from its output (its first line), as
    /// `pass show dc/svc-backup`.
    #[arg(long, value_name = "COMMAND", env = "DSBACKUP_PASSWORD_COMMAND")]
    pub(crate) password_command: Option<String>,
}

/// The credentials of `user@domain`, the secret from the first source that is set (see the
/// module documentation).
///
/// # Errors
/// When there is no secret and no terminal to ask on (a usage error), the hash is not 32 hex
/// digits (usage), the file cannot be read (local), or the command fails.
pub(crate) fn resolve(
    user: &str,
    domain: &str,
    sources: &PasswordArgs,
) -> anyhow::Result<Credentials> {
    if let Some(hash) = std::env::var_os(NT_HASH_ENV) {
        let hash = Zeroizing::new(hash.to_string_lossy().trim().to_owned());
        return Ok(Credentials::from_nt_hash(
            user,
            domain,
            parse_nt_hash(&hash)?,
        ));
    }
    let password = password(user, domain, sources)?;
    Ok(Credentials::from_password(user, domain, &password))
}

/// NTLM's credentials for `--user` `user` and `--domain` `domain_flag` ([`Account::parse`],
/// with a warning when the form of `--user` overrides `--domain`): `password` when it was
/// already asked for (by Kerberos), else from [`resolve`]'s sources.
///
/// # Errors
/// As [`resolve`].
pub(crate) fn ntlm(
    user: &str,
    domain_flag: &str,
    sources: &PasswordArgs,
    password: Option<Zeroizing<String>>,
) -> anyhow::Result<Credentials> {
    let account = Account::parse(user, domain_flag);
    if let Some(ignored) = &account.ignored_domain {
        eprintln!(
            "dsbackup: warning: --domain {ignored} is ignored: --user {user:?} names its own \
             domain"
        );
    }
    match password {
        Some(password) if std::env::var_os(NT_HASH_ENV).is_none() => Ok(
            Credentials::from_password(&account.user, &account.domain, &password),
        ),
        _ => resolve(&account.user, &account.domain, sources),
    }
}

/// Whether a password (not only an NT hash) is to be had: an NT hash set with no file,
/// command or `DSBACKUP_PASSWORD` is not one.
pub(crate) fn has_password(sources: &PasswordArgs) -> bool {
    std::env::var_os(NT_HASH_ENV).is_none()
        || sources.password_file.is_some()
        || sources.password_command.is_some()
        || std::env::var_os(PASSWORD_ENV).is_some()
}

/// The password of `domain\user` from `--password-file`, `--password-command`,
/// `DSBACKUP_PASSWORD` or a prompt, in that order (what needs the password itself, such as a
/// Kerberos AS exchange, rather than an NT hash).
///
/// # Errors
/// When there is no password and no terminal to ask on (a usage error), the file cannot be
/// read (local), or the command fails.
pub(crate) fn password(
    user: &str,
    domain: &str,
    sources: &PasswordArgs,
) -> anyhow::Result<Zeroizing<String>> {
    if let Some(password) = password_from(sources)? {
        return Ok(password);
    }
    match std::env::var(PASSWORD_ENV) {
        Ok(password) => Ok(Zeroizing::new(password)),
        Err(_) if std::io::stdin().is_terminal() => Ok(Zeroizing::new(
            rpassword::prompt_password(format!("Password for {domain}\\{user}: "))
                .context("cannot read the password")?,
        )),
        Err(_) => Err(crate::exit::usage(format!(
            "no password: set {PASSWORD_ENV} (or {NT_HASH_ENV}), or run on a terminal to be asked"
        ))),
    }
}

/// The password of `--password-file` or `--password-command`, if either is given.
fn password_from(sources: &PasswordArgs) -> anyhow::Result<Option<Zeroizing<String>>> {
    let text = if let Some(path) = &sources.password_file {
        Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the password file {}", path.display()))?,
        )
    } else if let Some(command) = &sources.password_command {
        run_password_command(command)?
    } else {
        return Ok(None);
    };
    Ok(Some(Zeroizing::new(first_line(&text).to_owned())))
}

/// The first line of a password file or command's output, without its line end.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Runs `command` with `sh -c`; its standard output. Its standard error goes to ours, so a
/// password manager can ask for its own passphrase.
fn run_password_command(command: &str) -> anyhow::Result<Zeroizing<String>> {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run the --password-command with sh")?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        anyhow::bail!("the --password-command failed ({})", output.status);
    }
    let text = std::str::from_utf8(&stdout)
        .context("the --password-command printed something that is not UTF-8")?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// 32 hex digits as an NT hash.
fn parse_nt_hash(text: &str) -> anyhow::Result<NtHash> {
    let mut bytes = Zeroizing::new([0_u8; 16]);
    hex::decode_to_slice(text, bytes.as_mut_slice())
        .map_err(|_| crate::exit::usage(format!("{NT_HASH_ENV} must be 32 hex digits")))?;
    Ok(NtHash::from_bytes(*bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_take_the_forms_of_samba_and_impacket() {
        let parse = |user, domain| {
            let account = Account::parse(user, domain);
            (account.user, account.domain, account.ignored_domain)
        };
        let s = |text: &str| text.to_owned();
        assert_eq!(parse("backup", "MOCK"), (s("backup"), s("MOCK"), None));
        assert_eq!(parse(r"MOCK\backup", ""), (s("backup"), s("MOCK"), None));
        assert_eq!(parse("MOCK/backup", ""), (s("backup"), s("MOCK"), None));
        assert_eq!(parse("backup@MOCK", ""), (s("backup@MOCK"), s(""), None));
        assert_eq!(
            parse(r"mock\backup", "MOCK"),
            (s("backup"), s("mock"), None)
        );
        assert_eq!(
            parse(r"MOCK\backup", "OTHER"),
            (s("backup"), s("MOCK"), Some(s("OTHER")))
        );
        assert_eq!(
            parse("backup@corp.example", "OTHER"),
            (s("backup@corp.example"), s(""), Some(s("OTHER")))
        );
    }

    #[test]
    fn passwords_come_from_a_file_or_a_command_first_line_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret!\nignored\n").unwrap();
        let from_file = PasswordArgs {
            password_file: Some(file),
            password_command: None,
        };
        assert_eq!(
            password_from(&from_file).unwrap().unwrap().as_str(),
            "s3cret!"
        );

        let from_command = PasswordArgs {
            password_file: None,
            password_command: Some("printf 's3cret!\\r\\n'".to_owned()),
        };
        assert_eq!(
            password_from(&from_command).unwrap().unwrap().as_str(),
            "s3cret!"
        );
        assert!(password_from(&PasswordArgs::default()).unwrap().is_none());

        let failing = PasswordArgs {
            password_file: None,
            password_command: Some("exit 3".to_owned()),
        };
        let error = password_from(&failing).unwrap_err().to_string();
        assert!(error.contains("--password-command failed"), "{error}");
    }

    #[test]
    fn nt_hashes_are_32_hex_digits() {
        assert!(parse_nt_hash("8846f7eaee8fb117ad06bdd830b7586c").is_ok());
        let error = parse_nt_hash("8846f7ea").unwrap_err().to_string();
        assert!(error.contains("32 hex digits"), "{error}");
        // The message never repeats the secret.
        let error = parse_nt_hash("secret-not-hex-secret-not-hex-12")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("secret"), "{error}");
    }
}
