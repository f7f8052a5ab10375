//! [`RestoreSession`]: `DsRestorePrepare` .. `DsRestoreEnd`.

use dsbackup_proto::iface::ad_restore::{
    AdRestoreRequest, AdRestoreResponse, EdbRstmapW, HrRRestoreEndRequest,
    HrRRestoreRegisterCompleteRequest, HrRRestoreRegisterRequest,
};
use dsbackup_proto::ndr::ContextHandle;
use dsbackup_proto::{NameEntry, Status};

use crate::error::Error;
use crate::rpc::{Rpc, check, wrong_response};

/// What `DsRestoreRegister` tells the server about a restore.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registration {
    /// The checkpoint directory (the `BFT_CHECKPOINT_DIR` location).
    pub checkpoint_file_path: String,
    /// The log directory (the `BFT_LOG_DIR` location).
    pub log_path: String,
    /// `(old, new)` database names.
    pub rstmap: Vec<(String, String)>,
    /// Where the backed-up logs now are.
    pub backup_log_path: String,
    /// Lowest log generation restored (0..=0xFFFFF).
    pub gen_low: u32,
    /// Highest log generation restored (`gen_low..=0xFFFFF`).
    pub gen_high: u32,
}

/// A restore session. End it with [`end`](Self::end) (`DsRestoreEnd`); dropped without, its
/// binding is closed and the server runs the session down.
#[derive(Debug)]
pub struct RestoreSession {
    rpc: Rpc,
    handle: ContextHandle,
}

impl RestoreSession {
    pub(crate) fn new(rpc: Rpc, handle: ContextHandle) -> Self {
        Self { rpc, handle }
    }

    /// `DsRestoreGetDatabaseLocations`: where the restored files go (`BFT_NTDS_DATABASE`,
    /// `BFT_LOG_DIR`, `BFT_CHECKPOINT_DIR` entries).
    ///
    /// # Errors
    /// [`Error::Status`], [`Error::BadResponse`], transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call on the wire; the session stays usable.
    pub async fn database_locations(&self) -> Result<Vec<NameEntry>, Error> {
        self.rpc.database_locations(self.handle).await
    }

    /// `DsRestoreRegister`: registers the restore (the server will not start until
    /// [`register_complete`](Self::register_complete)).
    ///
    /// # Errors
    /// [`Error::Status`] (`hrMissingExpiryToken` on a session without token,
    /// `ERROR_INVALID_PARAMETER` for bad generations), transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call on the wire; the session stays usable.
    pub async fn register(&self, registration: &Registration) -> Result<(), Error> {
        const CALL: &str = "HrRRestoreRegister";
        let rstmap: Vec<EdbRstmapW> = registration
            .rstmap
            .iter()
            .map(|(old, new)| EdbRstmapW {
                wsz_database_name: Some(old.clone()),
                wsz_new_database_name: Some(new.clone()),
            })
            .collect();
        let crstmap =
            u32::try_from(rstmap.len()).map_err(|_| Error::Misuse("too many database mappings"))?;
        let request = HrRRestoreRegisterRequest {
            h_context: self.handle,
            wsz_checkpoint_file_path: registration.checkpoint_file_path.clone(),
            wsz_log_path: registration.log_path.clone(),
            rgrstmap: (!rstmap.is_empty()).then_some(rstmap),
            crstmap,
            wsz_backup_log_path: registration.backup_log_path.clone(),
            gen_low: registration.gen_low,
            gen_high: registration.gen_high,
        };
        let AdRestoreResponse::HrRRestoreRegister(response) = self
            .rpc
            .restore(&AdRestoreRequest::HrRRestoreRegister(request))
            .await?
        else {
            return Err(wrong_response(CALL));
        };
        check(CALL, response.status)
    }

    /// `DsRestoreRegisterComplete`: the restore's outcome (`Status::SUCCESS` or the failure).
    ///
    /// # Errors
    /// [`Error::Status`], transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future cancels the call on the wire; the session stays usable.
    pub async fn register_complete(&self, outcome: Status) -> Result<(), Error> {
        const CALL: &str = "HrRRestoreRegisterComplete";
        let AdRestoreResponse::HrRRestoreRegisterComplete(response) = self
            .rpc
            .restore(&AdRestoreRequest::HrRRestoreRegisterComplete(
                HrRRestoreRegisterCompleteRequest {
                    h_context: self.handle,
                    hr_restore_state: outcome,
                },
            ))
            .await?
        else {
            return Err(wrong_response(CALL));
        };
        check(CALL, response.status)
    }

    /// `DsRestoreEnd`: `HrRRestoreEnd`, then the binding closed whatever happened.
    ///
    /// # Errors
    /// The failure of `HrRRestoreEnd`; the binding is closed all the same.
    ///
    /// # Cancel safety
    /// Dropping the future drops the session: its bindings close and the server runs the
    /// session down.
    pub async fn end(self) -> Result<(), Error> {
        const CALL: &str = "HrRRestoreEnd";
        let result = match self
            .rpc
            .restore(&AdRestoreRequest::HrRRestoreEnd(HrRRestoreEndRequest {
                ph_context: self.handle,
            }))
            .await
        {
            Ok(AdRestoreResponse::HrRRestoreEnd(response)) => check(CALL, response.status),
            Ok(_) => Err(wrong_response(CALL)),
            Err(error) => Err(error),
        };
        self.rpc.close().await;
        result
    }
}
