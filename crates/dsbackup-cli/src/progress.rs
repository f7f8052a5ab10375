//! Progress bars on transfers (indicatif), drawn on stderr only when it is a terminal.

use std::io::IsTerminal as _;

use dsbackup_client::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A [`Progress`] drawing one bar for the whole transfer on stderr.
#[derive(Debug)]
pub(crate) struct Bar {
    bar: ProgressBar,
    /// The total grows by each file's size as it starts (when it is not known up front).
    grow: bool,
}

impl Bar {
    /// A bar for `total` bytes; hidden when stderr is not a terminal or `quiet` is set.
    pub(crate) fn new(total: u64, quiet: bool) -> Self {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let style = ProgressStyle::with_template(
            "{spinner} {msg:24!} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Self { bar, grow: false }
    }

    /// Makes the total grow by each file's size as it starts.
    pub(crate) fn grow_per_file(&mut self, grow: bool) {
        self.grow = grow;
    }

    /// Removes the bar from the terminal.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn start_file(&mut self, name: &str, size: u64) {
        if self.grow {
            self.bar.inc_length(size);
        }
        self.bar.set_message(name.to_owned());
    }

    fn advance(&mut self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn finish_file(&mut self) {}
}
