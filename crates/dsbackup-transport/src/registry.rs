//! A registry of bindings: every binding opened through it is tracked, and closing the
//! registry closes them all (what `DsBackupEnd` stands on: it "closes outstanding binding
//! handles").
//!
//! The registry does not keep associations alive: a binding dropped by its owner closes its
//! association as usual; the registry only keeps what it needs to close the others.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use dsbackup_proto::SyntaxId;

use crate::binding::StringBinding;
use crate::client::{Binding, ClientOptions, CloseHandle};
use crate::error::TransportError;
use crate::metrics::{Metrics, Snapshot};
use crate::resolve;

/// Opens and tracks bindings; see the module docs.
#[derive(Debug)]
pub struct Registry {
    options: ClientOptions,
    metrics: Metrics,
    open: Mutex<Vec<CloseHandle>>,
    closed: AtomicBool,
}

impl Registry {
    /// A registry opening bindings with `options`.
    pub fn new(options: ClientOptions) -> Self {
        Self {
            options,
            metrics: Metrics::new(),
            open: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// The options bindings are opened with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Opens a binding to the first of `versions` the server accepts at `binding`; without
    /// an endpoint in the string binding, the port comes from the host's endpoint mapper
    /// (`ClientOptions::epm_port`), asked for the first version.
    ///
    /// # Errors
    /// [`TransportError::Closed`] once the registry is closed; [`TransportError::Binding`]
    /// for a protocol sequence other than `ncacn_ip_tcp`; errors of resolution and
    /// [`Binding::connect`].
    pub async fn open(
        &self,
        binding: &StringBinding,
        versions: &[SyntaxId],
    ) -> Result<Binding, TransportError> {
        let addr = match binding.tcp_port()? {
            Some(port) => resolve::lookup_host(&binding.host, port).await?,
            None => {
                let epm = resolve::lookup_host(&binding.host, self.options.epm_port).await?;
                let first = versions
                    .first()
                    .copied()
                    .ok_or(TransportError::Resolve("no interface version to resolve"))?;
                self.check_open()?;
                resolve::resolve_with(epm, first, &self.options, &self.metrics).await?
            }
        };
        self.open_addr(addr, versions).await
    }

    /// Opens a binding to `addr` directly.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_addr(
        &self,
        addr: SocketAddr,
        versions: &[SyntaxId],
    ) -> Result<Binding, TransportError> {
        self.check_open()?;
        let binding = Binding::connect_with(addr, versions, &self.options, &self.metrics).await?;
        let handle = binding.association().close_handle();
        let closed = {
            let mut open = self
                .open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            open.retain(|handle| !handle.is_finished());
            // Checked under the lock: `close` takes the list under it after setting the flag.
            let closed = self.closed.load(Ordering::Acquire);
            if !closed {
                open.push(handle);
            }
            closed
        };
        if closed {
            binding.close().await;
            return Err(TransportError::Closed);
        }
        Ok(binding)
    }

    /// Closes every binding opened through the registry (their calls in flight fail with
    /// [`TransportError::Closed`]) and refuses further opens; returns when their
    /// associations and tasks are gone.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let handles = core::mem::take(
            &mut *self
                .open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for handle in &handles {
            handle.close().await;
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Associations opened through the registry and still open.
    pub fn open_associations(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|handle| !handle.is_finished())
            .count()
    }

    /// The counters of every binding, association, task and call of the registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A reading of [`metrics`](Self::metrics).
    pub fn snapshot(&self) -> Snapshot {
        self.metrics.snapshot()
    }

    fn check_open(&self) -> Result<(), TransportError> {
        if self.is_closed() {
            return Err(TransportError::Closed);
        }
        Ok(())
    }
}
