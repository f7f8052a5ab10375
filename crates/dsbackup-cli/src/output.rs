//! What commands print: human text, or one JSON document with `--json`.

use std::io::Write as _;

use serde::Serialize;

/// Where results go.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Output {
    /// `--json`: one JSON document on stdout, nothing else there.
    pub(crate) json: bool,
    /// No progress bars.
    pub(crate) quiet: bool,
}

impl Output {
    /// Prints `value` as JSON (with `--json`) or `text` (without).
    ///
    /// # Errors
    /// When stdout cannot be written.
    pub(crate) fn result<T: Serialize>(&self, value: &T, text: &str) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer(&mut stdout, value)?;
            writeln!(stdout)?;
        } else {
            stdout.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                writeln!(stdout)?;
            }
        }
        Ok(())
    }

    /// Whether progress bars may be drawn.
    pub(crate) fn bars(&self) -> bool {
        !(self.quiet || self.json)
    }
}
