//! A tiny command-line parser: `--flag`, `--option VALUE` / `--option=VALUE`, positional words.

use std::collections::VecDeque;

use anyhow::{Context as _, Result, bail};

/// The arguments after `cargo xtask`, consumed as the task asks for them.
#[derive(Debug)]
pub(crate) struct Args {
    rest: VecDeque<String>,
}

impl Args {
    pub(crate) fn from_env() -> Self {
        Self::new(std::env::args().skip(1))
    }

    pub(crate) fn new(args: impl IntoIterator<Item = String>) -> Self {
        Self {
            rest: args.into_iter().collect(),
        }
    }

    /// The next word if it is not an option.
    pub(crate) fn subcommand(&mut self) -> Option<String> {
        match self.rest.front() {
            Some(word) if !word.starts_with("--") => self.rest.pop_front(),
            _ => None,
        }
    }

    /// Whether `--name` was given (and removes it).
    pub(crate) fn flag(&mut self, name: &str) -> bool {
        let before = self.rest.len();
        self.rest.retain(|arg| arg != name);
        self.rest.len() != before
    }

    /// The value of `--name VALUE` or `--name=VALUE` (and removes it).
    pub(crate) fn value(&mut self, name: &str) -> Result<Option<String>> {
        let prefix = format!("{name}=");
        let Some(index) = self
            .rest
            .iter()
            .position(|arg| arg == name || arg.starts_with(&prefix))
        else {
            return Ok(None);
        };
        let arg = self.rest.remove(index).unwrap_or_default();
        if let Some(value) = arg.strip_prefix(&prefix) {
            return Ok(Some(value.to_owned()));
        }
        match self.rest.remove(index) {
            Some(value) if !value.starts_with("--") => Ok(Some(value)),
            _ => bail!("{name} needs a value"),
        }
    }

    /// The value of `--name N` as a number.
    pub(crate) fn number(&mut self, name: &str) -> Result<Option<u64>> {
        self.value(name)?
            .map(|v| {
                v.parse()
                    .with_context(|| format!("{name} takes a number, not `{v}`"))
            })
            .transpose()
    }

    /// Fails on anything not consumed.
    pub(crate) fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            bail!("unexpected arguments: {}", Vec::from(self.rest).join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &str) -> Args {
        Args::new(words.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn options_flags_and_leftovers() {
        let mut a = args("fuzz --secs=5 --no-install --target pdu_decode");
        assert_eq!(a.subcommand().as_deref(), Some("fuzz"));
        assert_eq!(a.number("--secs").unwrap(), Some(5));
        assert!(a.flag("--no-install"));
        assert!(!a.flag("--check"));
        assert_eq!(a.value("--target").unwrap().as_deref(), Some("pdu_decode"));
        a.finish().unwrap();
    }

    #[test]
    fn missing_value_and_unknown_argument_are_errors() {
        assert!(args("--target").value("--target").is_err());
        assert!(args("--target --secs 3").value("--target").is_err());
        assert!(args("--secs x").number("--secs").is_err());
        assert!(args("--bogus").finish().is_err());
    }
}
