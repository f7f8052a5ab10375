//! The signals that interrupt a backup: SIGINT, SIGTERM and SIGHUP are caught while it runs,
//! so that it ends its session with the server, removes its partial set and exits with
//! 128 + the signal's number (130, 143, 129), as a shell reports a process killed by it.

/// A caught signal (only Ctrl-C, as `Interrupt`, outside Unix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) enum Signal {
    /// SIGHUP (1): the terminal went away.
    Hangup,
    /// SIGINT (2): Ctrl-C.
    Interrupt,
    /// SIGTERM (15): asked to stop.
    Terminate,
}

impl Signal {
    /// Its name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Hangup => "SIGHUP",
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }

    /// 128 + its number.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Self::Hangup => 129,
            Self::Interrupt => 130,
            Self::Terminate => 143,
        }
    }
}

/// The handlers, installed from [`Signals::new`] until dropped.
#[derive(Debug)]
pub(crate) struct Signals {
    #[cfg(unix)]
    streams: [(Signal, tokio::signal::unix::Signal); 3],
}

impl Signals {
    /// Installs the handlers (from then on the signals no longer kill the process).
    ///
    /// # Errors
    /// When a handler cannot be installed.
    pub(crate) fn new() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use anyhow::Context as _;
            use tokio::signal::unix::{SignalKind, signal};
            let install =
                |kind: SignalKind| signal(kind).context("cannot install a signal handler");
            Ok(Self {
                streams: [
                    (Signal::Interrupt, install(SignalKind::interrupt())?),
                    (Signal::Terminate, install(SignalKind::terminate())?),
                    (Signal::Hangup, install(SignalKind::hangup())?),
                ],
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// The next signal.
    pub(crate) async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        {
            let [(a, sa), (b, sb), (c, sc)] = &mut self.streams;
            tokio::select! {
                _ = sa.recv() => *a,
                _ = sb.recv() => *b,
                _ = sc.recv() => *c,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}
