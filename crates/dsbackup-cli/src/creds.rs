//! Credentials from the command line: the user and domain from flags, the secret from an
//! environment variable or a prompt, never from a flag (flags show in `ps`), never echoed,
//! never logged.

use std::io::IsTerminal as _;

use anyhow::{Context as _, bail};
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

/// The credentials of `user@domain`: the NT hash from `DSBACKUP_NT_HASH`, else the password
/// from `DSBACKUP_PASSWORD`, else a prompt on the terminal.
///
/// # Errors
/// When there is no secret and no terminal to ask on, or the hash is not 32 hex digits.
pub(crate) fn resolve(user: &str, domain: &str) -> anyhow::Result<Credentials> {
    if let Some(hash) = std::env::var_os(NT_HASH_ENV) {
        let hash = Zeroizing::new(hash.to_string_lossy().trim().to_owned());
        return Ok(Credentials::from_nt_hash(
            user,
            domain,
            parse_nt_hash(&hash)?,
        ));
    }
    let password = match std::env::var(PASSWORD_ENV) {
        Ok(password) => Zeroizing::new(password),
        Err(_) if std::io::stdin().is_terminal() => Zeroizing::new(
            rpassword::prompt_password(format!("Password for {domain}\\{user}: "))
                .context("cannot read the password")?,
        ),
        Err(_) => bail!(
            "no password: set {PASSWORD_ENV} (or {NT_HASH_ENV}), or run on a terminal to be asked"
        ),
    };
    Ok(Credentials::from_password(user, domain, &password))
}

/// 32 hex digits as an NT hash.
fn parse_nt_hash(text: &str) -> anyhow::Result<NtHash> {
    let mut bytes = Zeroizing::new([0_u8; 16]);
    hex::decode_to_slice(text, bytes.as_mut_slice())
        .ok()
        .with_context(|| format!("{NT_HASH_ENV} must be 32 hex digits"))?;
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
