//! [`BackupSession`], the `HBC` of a backup, and [`FileReader`], one open file read with
//! several `HrRBackupRead` calls in flight.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf as _, Bytes};
use dsbackup_proto::iface::ad_backup::{
    AdBackupRequest, AdBackupResponse, HrRBackupCloseRequest, HrRBackupEndRequest,
    HrRBackupGetAttachmentInformationRequest, HrRBackupGetBackupLogsRequest,
    HrRBackupOpenFileRequest, HrRBackupPingRequest, HrRBackupReadRequest, HrRBackupReadResponse,
    HrRBackupTruncateLogsRequest,
};
use dsbackup_proto::iface::ad_restore;
use dsbackup_proto::ndr::ContextHandle;
use dsbackup_proto::{Chain, ExpiryToken, NameEntry};
use tokio::io::{AsyncRead, ReadBuf};

use crate::client::Inner;
use crate::error::Error;
use crate::manifest::BackupType;
use crate::rpc::{Rpc, check, name_list, wrong_response};

/// Most `HrRBackupRead` calls a reader keeps in flight.
///
/// INVARIANT: well under the transport's calls-in-flight limit (64 by default), so that every
/// read's request is queued at its first poll, in the order the reads were issued; the server
/// answers the reads of one association in order, so the n-th answer is the n-th block.
pub const MAX_READS_IN_FLIGHT: usize = 32;

/// A backup session (`HBC`): the context handle, the expiry token, and every binding the
/// session opened.
///
/// End it with [`end`](Self::end) (`DsBackupEnd`), after success and after failures alike.
/// Dropping it without `end` closes its bindings all the same; the server then runs the
/// session down.
#[derive(Debug)]
pub struct BackupSession {
    inner: Arc<Inner>,
    backup: Rpc,
    restore: Option<Rpc>,
    handle: ContextHandle,
    token: Bytes,
    backup_type: BackupType,
    file_open: bool,
}

impl BackupSession {
    pub(crate) fn new(
        inner: Arc<Inner>,
        backup: Rpc,
        handle: ContextHandle,
        token: Bytes,
        backup_type: BackupType,
    ) -> Self {
        Self {
            inner,
            backup,
            restore: None,
            handle,
            token,
            backup_type,
            file_open: false,
        }
    }

    /// The expiry token, as the server sent it (save it with the backup).
    pub fn expiry_token(&self) -> &[u8] {
        &self.token
    }

    /// The expiry token decoded, when it is in the format this project knows.
    pub fn decoded_expiry_token(&self) -> Option<ExpiryToken> {
        ExpiryToken::decode(&self.token).ok()
    }

    /// The backup type the session was prepared with.
    pub fn backup_type(&self) -> BackupType {
        self.backup_type
    }

    /// The server.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// How many bindings the session holds open (1, or 2 after
    /// [`database_locations`](Self::database_locations)).
    pub fn open_bindings(&self) -> usize {
        1 + usize::from(self.restore.is_some())
    }

    /// `DsBackupGetDatabaseNames`: the database files of the set.
    ///
    /// # Errors
    /// [`Error::Status`], [`Error::BadResponse`] (a list that does not parse), transport
    /// errors.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call on the wire; the session stays usable.
    pub async fn database_names(&mut self) -> Result<Vec<NameEntry>, Error> {
        const CALL: &str = "HrRBackupGetAttachmentInformation";
        let request = AdBackupRequest::HrRBackupGetAttachmentInformation(
            HrRBackupGetAttachmentInformationRequest {
                h_context: self.handle,
            },
        );
        let AdBackupResponse::HrRBackupGetAttachmentInformation(response) =
            self.backup.backup(&request).await?
        else {
            return Err(wrong_response(CALL));
        };
        name_list(CALL, response.status, response.entries())
    }

    /// `DsBackupGetBackupLogs`: the log and patch files of the set.
    ///
    /// # Errors
    /// As [`database_names`](Self::database_names).
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call on the wire; the session stays usable.
    pub async fn backup_logs(&mut self) -> Result<Vec<NameEntry>, Error> {
        const CALL: &str = "HrRBackupGetBackupLogs";
        let request = AdBackupRequest::HrRBackupGetBackupLogs(HrRBackupGetBackupLogsRequest {
            h_context: self.handle,
        });
        let AdBackupResponse::HrRBackupGetBackupLogs(response) =
            self.backup.backup(&request).await?
        else {
            return Err(wrong_response(CALL));
        };
        name_list(CALL, response.status, response.entries())
    }

    /// `DsBackupOpenFile`: opens `name` (a UNC path from the lists, without its BFT
    /// character) for reading. One file at a time: the reader borrows the session.
    ///
    /// # Errors
    /// [`Error::Status`] (`ERROR_INVALID_PARAMETER` for a name not in the set,
    /// `hrAlreadyOpen`), transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call; if the server opened the file anyway, the next
    /// open or `end` closes it.
    pub async fn open_file(&mut self, name: &str) -> Result<FileReader<'_>, Error> {
        const CALL: &str = "HrRBackupOpenFile";
        if self.file_open {
            // A reader dropped without `close`: close its file on the server first.
            self.close_file().await?;
        }
        let read_size = self.inner.read_size;
        let request = AdBackupRequest::HrRBackupOpenFile(HrRBackupOpenFileRequest {
            h_context: self.handle,
            wsz_attachment_name: name.to_owned(),
            cb_read_hint_size: read_size,
        });
        let AdBackupResponse::HrRBackupOpenFile(response) = self.backup.backup(&request).await?
        else {
            return Err(wrong_response(CALL));
        };
        check(CALL, response.status)?;
        let size = u64::try_from(response.pli_file_size).map_err(|_| Error::Protocol {
            call: CALL,
            reason: format!("negative file size {}", response.pli_file_size),
        })?;
        self.file_open = true;
        tracing::debug!(name, size, "File opened");
        let depth = self.inner.reads_in_flight.clamp(1, MAX_READS_IN_FLIGHT);
        Ok(FileReader {
            session: self,
            name: name.to_owned(),
            size,
            received: 0,
            outstanding: 0,
            read_size,
            depth,
            in_flight: VecDeque::with_capacity(depth),
            buffered: Chain::new(),
            failed: false,
        })
    }

    /// `DsBackupTruncateLogs`: deletes the committed logs this session backed up.
    ///
    /// # Errors
    /// [`Error::Status`], transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call on the wire; the session stays usable.
    pub async fn truncate_logs(&mut self) -> Result<(), Error> {
        const CALL: &str = "HrRBackupTruncateLogs";
        let request = AdBackupRequest::HrRBackupTruncateLogs(HrRBackupTruncateLogsRequest {
            h_context: self.handle,
        });
        let AdBackupResponse::HrRBackupTruncateLogs(response) =
            self.backup.backup(&request).await?
        else {
            return Err(wrong_response(CALL));
        };
        check(CALL, response.status)
    }

    /// `HrRBackupPing`: tells the server the session is still in use (it has no `ntdsbcli`
    /// counterpart; a caller that pauses longer than the server's idle limit sends it, as
    /// [`crate::blocking::BackupSession`] does).
    ///
    /// # Errors
    /// [`Error::Status`], transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call on the wire; the session stays usable.
    pub async fn ping(&mut self) -> Result<(), Error> {
        const CALL: &str = "HrRBackupPing";
        let request = AdBackupRequest::HrRBackupPing(HrRBackupPingRequest {});
        let AdBackupResponse::HrRBackupPing(response) = self.backup.backup(&request).await? else {
            return Err(wrong_response(CALL));
        };
        check(CALL, response.status)
    }

    /// Runs `pause` (whatever the caller waits on between two calls: a tape changer, an
    /// operator, a slow sink) while sending `HrRBackupPing` every `interval` of it, so that the
    /// server does not end an idle session meanwhile; returns what `pause` returned. The
    /// interval must be shorter than the server's idle limit. The blocking facade (and so the C
    /// API) does this on its own whenever its caller is away.
    ///
    /// # Errors
    /// The first ping that fails ([`Error::Status`], transport errors); `pause` is dropped then.
    ///
    /// # Cancel safety
    /// Dropping the future drops `pause` and cancels a ping on the wire; the session stays
    /// usable.
    pub async fn keep_alive_during<F: Future>(
        &mut self,
        interval: std::time::Duration,
        pause: F,
    ) -> Result<F::Output, Error> {
        let mut pause = std::pin::pin!(pause);
        loop {
            match tokio::time::timeout(interval, pause.as_mut()).await {
                Ok(output) => return Ok(output),
                Err(_elapsed) => self.ping().await?,
            }
        }
    }

    /// `DsRestoreGetDatabaseLocations` at backup time: where a restore would put the files.
    /// Called on the restore interface with the backup session's handle (as the API allows
    /// for an `HBC` of `DsBackupPrepare`), over a second binding kept until
    /// [`end`](Self::end).
    ///
    /// # Errors
    /// [`Error::Status`], [`Error::BadResponse`], transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call on the wire; the session stays usable.
    pub async fn database_locations(&mut self) -> Result<Vec<NameEntry>, Error> {
        if self.restore.is_none() {
            self.restore = Some(Rpc::connect(&self.inner, &ad_restore::INTERFACE).await?);
        }
        let rpc = self
            .restore
            .as_ref()
            .ok_or(Error::Internal("no restore binding after connecting one"))?;
        rpc.database_locations(self.handle).await
    }

    /// `DsBackupEnd`: `HrRBackupEnd`, then every binding of the session closed. It runs after
    /// failures too (a failed read, a server that died): the bindings are closed whatever
    /// happened, and the session is consumed.
    ///
    /// # Errors
    /// The failure of `HrRBackupEnd` (a status, or the transport's error when the server is
    /// gone); the bindings are closed all the same.
    ///
    /// # Cancel safety
    /// Dropping the future drops the session: its bindings close and the server runs the
    /// session down.
    pub async fn end(self) -> Result<(), Error> {
        const CALL: &str = "HrRBackupEnd";
        let request = AdBackupRequest::HrRBackupEnd(HrRBackupEndRequest {
            ph_context: self.handle,
        });
        let result = if self.backup.is_closed() {
            Err(Error::Transport {
                context: CALL,
                source: dsbackup_transport::TransportError::Closed,
            })
        } else {
            match self.backup.backup(&request).await {
                Ok(AdBackupResponse::HrRBackupEnd(response)) => check(CALL, response.status),
                Ok(_) => Err(wrong_response(CALL)),
                Err(error) => Err(error),
            }
        };
        if let Some(restore) = &self.restore {
            restore.close().await;
        }
        self.backup.close().await;
        match &result {
            Ok(()) => tracing::debug!(server = %self.inner.server, "Backup session ended"),
            Err(error) => {
                tracing::debug!(server = %self.inner.server, %error, "Backup session ended after an error");
            }
        }
        result
    }

    /// `HrRBackupClose` of the open file.
    async fn close_file(&mut self) -> Result<(), Error> {
        const CALL: &str = "HrRBackupClose";
        let request = AdBackupRequest::HrRBackupClose(HrRBackupCloseRequest {
            h_context: self.handle,
        });
        self.file_open = false;
        let AdBackupResponse::HrRBackupClose(response) = self.backup.backup(&request).await? else {
            return Err(wrong_response(CALL));
        };
        check(CALL, response.status)
    }
}

type ReadFuture = Pin<Box<dyn Future<Output = Result<HrRBackupReadResponse, Error>> + Send>>;

/// One `HrRBackupRead` in flight: its future until it completes, then its output.
struct Slot {
    future: ReadFuture,
    output: Option<Result<HrRBackupReadResponse, Error>>,
    cb_buffer: u32,
}

impl Slot {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<HrRBackupReadResponse, Error>> {
        if let Some(output) = self.output.take() {
            return Poll::Ready(output);
        }
        self.future.as_mut().poll(cx)
    }
}

/// An open file of a backup session (`DsBackupOpenFile` .. `DsBackupClose`).
///
/// Reads are pipelined: up to `reads_in_flight` `HrRBackupRead` calls are outstanding on the
/// binding, and their data is delivered in order, without a copy: each read's bytes stay in
/// the buffers the fragments were received into. [`next_block`](Self::next_block) gives one
/// read's bytes as a [`Chain`] of those pieces, [`next_chunk`](Self::next_chunk) one piece at
/// a time; the reader is also an [`AsyncRead`].
///
/// Close it with [`close`](Self::close). Dropped without, the file is closed on the server
/// before the session's next open, or by `end`.
pub struct FileReader<'s> {
    session: &'s mut BackupSession,
    name: String,
    size: u64,
    received: u64,
    /// Bytes asked for by the reads in flight.
    outstanding: u64,
    read_size: u32,
    depth: usize,
    in_flight: VecDeque<Slot>,
    /// What is left of the read delivered last.
    buffered: Chain,
    failed: bool,
}

impl core::fmt::Debug for FileReader<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileReader")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("received", &self.received)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl FileReader<'_> {
    /// The file's size, as `HrRBackupOpenFile` gave it.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes delivered so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The file's UNC path.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next bytes of the file, `None` at its end (once `size` bytes came): what is left
    /// of one read, as the slices of the fragments that brought it (no byte copied; write
    /// them with `write_vectored`, hash them one after the other).
    ///
    /// # Errors
    /// [`Error::Status`] for a failed read, [`Error::Protocol`] when the server sends more or
    /// fewer bytes than the file's size, transport errors. After an error the reader is
    /// failed: every further read returns [`Error::Misuse`].
    ///
    /// # Cancel safety
    /// Cancel-safe: bytes are only taken from the reader when they are returned.
    pub async fn next_block(&mut self) -> Result<Option<Chain>, Error> {
        std::future::poll_fn(|cx| self.poll_block(cx)).await
    }

    /// The next piece of the file, `None` at its end: one slice of a received fragment (no
    /// copy), so pieces are about as long as the negotiated fragments, or a whole read when it
    /// came in one.
    ///
    /// # Errors
    /// As [`next_block`](Self::next_block).
    ///
    /// # Cancel safety
    /// Cancel-safe, as [`next_block`](Self::next_block).
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        std::future::poll_fn(|cx| {
            if self.buffered.is_empty() {
                match self.poll_block(cx) {
                    Poll::Ready(Ok(Some(block))) => self.buffered = block,
                    other => return other.map_ok(|_| None),
                }
            }
            Poll::Ready(Ok(self.buffered.pop_front()))
        })
        .await
    }

    /// Reads the rest of the file into memory (for small files and tests).
    ///
    /// # Errors
    /// As [`next_chunk`](Self::next_chunk).
    ///
    /// # Cancel safety
    /// Not cancel-safe: the bytes gathered so far are lost (the reader stays usable).
    pub async fn read_to_vec(&mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// `DsBackupClose`: stops the reads still in flight (cancelled on the wire) and closes the
    /// file on the server.
    ///
    /// # Errors
    /// [`Error::Status`] (`hrInvalidHandle` when no file is open), transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the file open on the server; the next open or `end` closes
    /// it.
    pub async fn close(mut self) -> Result<(), Error> {
        self.in_flight.clear();
        self.session.close_file().await
    }

    fn poll_block(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Chain>, Error>> {
        const CALL: &str = "HrRBackupRead";
        if !self.buffered.is_empty() {
            return Poll::Ready(Ok(Some(std::mem::take(&mut self.buffered))));
        }
        if self.failed {
            return Poll::Ready(Err(Error::Misuse("the file's reads already failed")));
        }
        self.issue_reads(cx);
        let Some(front) = self.in_flight.front_mut() else {
            // Nothing in flight: every byte came.
            return Poll::Ready(Ok(None));
        };
        let output = match front.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(output) => output,
        };
        let cb_buffer = front.cb_buffer;
        self.in_flight.pop_front();
        self.outstanding = self.outstanding.saturating_sub(u64::from(cb_buffer));
        match self.accept(cb_buffer, output) {
            Ok(data) => Poll::Ready(Ok(Some(data))),
            Err(error) => {
                self.failed = true;
                // Dropping the other reads cancels them on the wire.
                self.in_flight.clear();
                tracing::debug!(name = %self.name, %error, "{CALL} failed");
                Poll::Ready(Err(error))
            }
        }
    }

    /// Checks one read's output against the request and the file's size.
    fn accept(
        &mut self,
        cb_buffer: u32,
        output: Result<HrRBackupReadResponse, Error>,
    ) -> Result<Chain, Error> {
        const CALL: &str = "HrRBackupRead";
        let response = output?;
        check(CALL, response.status)?;
        response
            .check_request(&HrRBackupReadRequest {
                h_context: self.session.handle,
                cb_buffer,
            })
            .map_err(|source| Error::BadResponse { call: CALL, source })?;
        let data = response.pb_buffer.data;
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        if len == 0 {
            return Err(Error::Protocol {
                call: CALL,
                reason: format!(
                    "{} ended after {} of its {} bytes",
                    self.name, self.received, self.size
                ),
            });
        }
        let received = self.received.saturating_add(len);
        if received > self.size {
            return Err(Error::Protocol {
                call: CALL,
                reason: format!("{} is longer than its {} bytes", self.name, self.size),
            });
        }
        self.received = received;
        Ok(data)
    }

    /// Issues reads until `depth` are in flight or the ones in flight ask for every byte left;
    /// each is polled once at once, so its request is queued in issue order.
    fn issue_reads(&mut self, cx: &mut Context<'_>) {
        while self.in_flight.len() < self.depth
            && self.received.saturating_add(self.outstanding) < self.size
        {
            let request = HrRBackupReadRequest {
                h_context: self.session.handle,
                cb_buffer: self.read_size,
            };
            let mut slot = Slot {
                future: Box::pin(self.session.backup.read(request)),
                output: None,
                cb_buffer: self.read_size,
            };
            if let Poll::Ready(output) = slot.future.as_mut().poll(cx) {
                slot.output = Some(output);
            }
            self.outstanding = self.outstanding.saturating_add(u64::from(self.read_size));
            self.in_flight.push_back(slot);
        }
    }
}

impl AsyncRead for FileReader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.buffered.is_empty() {
            match this.poll_block(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(std::io::Error::other(error))),
                Poll::Ready(Ok(None)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(Some(block))) => this.buffered = block,
            }
        }
        while buf.remaining() > 0 && !this.buffered.is_empty() {
            let chunk = this.buffered.chunk();
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(chunk.get(..n).unwrap_or_default());
            this.buffered.advance(n);
        }
        Poll::Ready(Ok(()))
    }
}
