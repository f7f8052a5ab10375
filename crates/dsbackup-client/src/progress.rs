//! Progress reporting for transfers, so that a command line can draw bars and a library user
//! can stay silent.

/// Receives the progress of a transfer (backup, verify, restore copy), file by file.
pub trait Progress: Send {
    /// A file of `size` bytes starts (`name` is its path in the backup set).
    fn start_file(&mut self, name: &str, size: u64);
    /// `bytes` more bytes of the current file are done.
    fn advance(&mut self, bytes: u64);
    /// The current file is done.
    fn finish_file(&mut self);
}

/// A [`Progress`] that reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start_file(&mut self, _name: &str, _size: u64) {}

    fn advance(&mut self, _bytes: u64) {}

    fn finish_file(&mut self) {}
}
