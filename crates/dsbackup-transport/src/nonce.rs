//! Randomness and time for the NTLM legs (the sans-IO crates take them as inputs).

use std::time::{SystemTime, UNIX_EPOCH};

/// `N` bytes from the operating system's CSPRNG.
///
/// # Errors
/// The OS error when no randomness is available.
pub(crate) fn random<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes)
}

/// Now as seconds since 1970 and microseconds.
pub(crate) fn unix_now() -> (i64, u32) {
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (
        i64::try_from(since_unix.as_secs()).unwrap_or(i64::MAX),
        since_unix.subsec_micros(),
    )
}

/// A fresh confounder for a Kerberos encryption. The OS generator answered moments earlier
/// for the context's subkey; should it fail now, the confounder is all zeros, which leaves the
/// encryption sound (the confounder randomizes, the key protects) and is logged.
pub(crate) fn confounder() -> [u8; 16] {
    random().unwrap_or_else(|e| {
        tracing::error!("no randomness for a Kerberos confounder: {e}");
        [0; 16]
    })
}

/// Now as a FILETIME: 100 ns intervals since 1601-01-01 UTC.
pub(crate) fn filetime_now() -> u64 {
    /// Seconds from 1601-01-01 to 1970-01-01.
    const EPOCH_DELTA_SECS: u64 = 11_644_473_600;
    let since_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let intervals = since_unix.as_nanos() / 100 + u128::from(EPOCH_DELTA_SECS) * 10_000_000;
    u64::try_from(intervals).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_differ_and_filetime_is_after_2020() {
        assert_ne!(random::<16>().unwrap(), random::<16>().unwrap());
        // 2020-01-01 as a FILETIME.
        assert!(filetime_now() > 132_223_104_000_000_000);
    }
}
