//! `ad_restore` (16e0cf3a-a604-11d0-96b1-00a0c91ece30 v1.0), the NTDS restore interface, as
//! `spec/dsbackup.idl` defines it.

use bytes::Bytes;

use crate::error::EncodeError;
use crate::iface::ad_backup::{name_list_response, names_check, names_entries, names_units};
use crate::iface::{CountCheck, InterfaceId, calls, params};
use crate::names::NameEntry;
use crate::ndr::{ContextHandle, Ndr, NdrError, NdrReader, NdrWriter};
use crate::status::Status;
use crate::token::ExpiryToken;
use crate::uuid::Uuid;

/// The interface identity and call table.
pub static INTERFACE: InterfaceId = InterfaceId {
    name: "ad_restore",
    uuid: Uuid::from_str_const("16e0cf3a-a604-11d0-96b1-00a0c91ece30"),
    version_major: 1,
    version_minor: 0,
    annotation: "NTDS Restore Interface",
    calls: AD_RESTORE,
};

/// `rtFlag` of a catch-up restore (`RESTORE_TYPE_CATCHUP`).
pub const RESTORE_TYPE_CATCHUP: u32 = 0x4;

calls! {
    interface: "ad_restore",
    table: AD_RESTORE,
    request: AdRestoreRequest,
    response: AdRestoreResponse,
    calls: [
        0 => HrRIsNTDSOnline(HrRIsNTDSOnlineRequest, HrRIsNTDSOnlineResponse),
        1 => HrRRestorePrepare(HrRRestorePrepareRequest, HrRRestorePrepareResponse),
        2 => HrRRestoreRegister(HrRRestoreRegisterRequest, HrRRestoreRegisterResponse),
        3 => HrRRestoreRegisterComplete(
            HrRRestoreRegisterCompleteRequest,
            HrRRestoreRegisterCompleteResponse
        ),
        4 => HrRRestoreGetDatabaseLocations(
            HrRRestoreGetDatabaseLocationsRequest,
            HrRRestoreGetDatabaseLocationsResponse
        ),
        5 => HrRRestoreEnd(HrRRestoreEndRequest, HrRRestoreEndResponse),
        6 => HrRRestoreSetCurrentLogNumber(
            HrRRestoreSetCurrentLogNumberRequest,
            HrRRestoreSetCurrentLogNumberResponse
        ),
        7 => HrRRestoreCheckLogsForBackup(
            HrRRestoreCheckLogsForBackupRequest,
            HrRRestoreCheckLogsForBackupResponse
        ),
    ]
}

/// `EDB_RSTMAPW`: one database name mapping of a restore, two embedded `[unique]`
/// `[string] wchar_t *` pointers whose strings are deferred after the enclosing array.
///
/// ```text
///  scalars: referent(wszDatabaseName) referent(wszNewDatabaseName)
///  buffers: *wszDatabaseName *wszNewDatabaseName
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct EdbRstmapW {
    /// The database name in the backup.
    #[cfg_attr(feature = "serde", serde(rename = "wszDatabaseName"))]
    pub wsz_database_name: Option<String>,
    /// Where it goes now.
    #[cfg_attr(feature = "serde", serde(rename = "wszNewDatabaseName"))]
    pub wsz_new_database_name: Option<String>,
}

impl Ndr for EdbRstmapW {
    const MIN_LEN: usize = 4 /* wszDatabaseName */ + 4 /* wszNewDatabaseName */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        self.wsz_database_name.encode_scalars(w)?;
        self.wsz_new_database_name.encode_scalars(w)
    }

    fn encode_buffers(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        self.wsz_database_name.encode_buffers(w)?;
        self.wsz_new_database_name.encode_buffers(w)
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        Ok(Self {
            wsz_database_name: Ndr::decode_scalars(r)?,
            wsz_new_database_name: Ndr::decode_scalars(r)?,
        })
    }

    fn decode_buffers(&mut self, r: &mut NdrReader<'_>) -> Result<(), NdrError> {
        self.wsz_database_name.decode_buffers(r)?;
        self.wsz_new_database_name.decode_buffers(r)
    }
}

params! {
    /// Opnum 0 request: no parameter on the wire (the stub is empty).
    HrRIsNTDSOnlineRequest {}
}

params! {
    /// Opnum 0 response.
    HrRIsNTDSOnlineResponse {
        /// TRUE (1) when the directory service runs, FALSE (0) in restore mode.
        "pfOnline" pf_online: i32,
        /// The status.
        "status" status: Status,
    }
}

params! {
    /// Opnum 1 request: starts a restore session.
    HrRRestorePrepareRequest check restore_prepare_counts {
        /// 0 or [`RESTORE_TYPE_CATCHUP`].
        "rtFlag" rt_flag: u32,
        /// The expiry token of the backup set; `None` opens a restricted session.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::iface::serialize_opt_hex"))]
        "pbExpiryToken" pb_expiry_token: Option<Bytes>,
        /// Length of the token; equals its conformance when there is one.
        "cbExpiryToken" cb_expiry_token: u32,
    }
}

fn restore_prepare_counts(v: &HrRRestorePrepareRequest) -> Option<CountCheck> {
    v.pb_expiry_token.as_ref().map(|token| CountCheck {
        what: "HrRRestorePrepare request",
        field: "cbExpiryToken",
        count: v.cb_expiry_token,
        array_len: token.len(),
    })
}

params! {
    /// Opnum 1 response.
    HrRRestorePrepareResponse {
        /// The restore session.
        "phContext" ph_context: ContextHandle,
        /// The status.
        "status" status: Status,
    }
}

params! {
    /// Opnum 2 request: registers a restore.
    HrRRestoreRegisterRequest check register_counts {
        /// The restore session.
        "hContext" h_context: ContextHandle,
        /// Where the checkpoint file is.
        "wszCheckpointFilePath" wsz_checkpoint_file_path: String,
        /// Where the logs go.
        "wszLogPath" wsz_log_path: String,
        /// The database name mappings.
        "rgrstmap" rgrstmap: Option<Vec<EdbRstmapW>>,
        /// Number of mappings; equals the array's conformance when there is one.
        "crstmap" crstmap: u32,
        /// Where the backed-up logs are.
        "wszBackupLogPath" wsz_backup_log_path: String,
        /// Lowest log generation (0..=0xFFFFF).
        "genLow" gen_low: u32,
        /// Highest log generation (`genLow..=0xFFFFF`).
        "genHigh" gen_high: u32,
    }
}

fn register_counts(v: &HrRRestoreRegisterRequest) -> Option<CountCheck> {
    v.rgrstmap.as_ref().map(|map| CountCheck {
        what: "HrRRestoreRegister request",
        field: "crstmap",
        count: v.crstmap,
        array_len: map.len(),
    })
}

params! {
    /// Opnum 2 response.
    HrRRestoreRegisterResponse {
        /// The status.
        "status" status: Status,
    }
}

params! {
    /// Opnum 3 request: completes a registered restore.
    HrRRestoreRegisterCompleteRequest {
        /// The restore session.
        "hContext" h_context: ContextHandle,
        /// The caller's outcome: 0 or a failure code.
        "hrRestoreState" hr_restore_state: Status,
    }
}

params! {
    /// Opnum 3 response.
    HrRRestoreRegisterCompleteResponse {
        /// The status.
        "status" status: Status,
    }
}

params! {
    /// Opnum 4 request: where restored files must go.
    HrRRestoreGetDatabaseLocationsRequest {
        /// The restore session.
        "hContext" h_context: ContextHandle,
    }
}

params! {
    /// Opnum 4 response: a name list of `BFT_NTDS_DATABASE`, `BFT_LOG_DIR` and
    /// `BFT_CHECKPOINT_DIR` entries (see [`crate::parse_name_list`]).
    HrRRestoreGetDatabaseLocationsResponse check locations_counts {
        /// The list as UTF-16 code units, NULs included.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::iface::serialize_name_list"))]
        "ppwszzLocations" ppwszz_locations: Option<Vec<u16>>,
        /// Code units in the list; equals its conformance.
        "pcwcLocations" pcwc_locations: u32,
        /// The status.
        "status" status: Status,
    }
}

name_list_response!(
    HrRRestoreGetDatabaseLocationsResponse,
    ppwszz_locations,
    pcwc_locations
);

impl HrRRestorePrepareRequest {
    /// A request with `token` (a full restore session) or without (a restricted one).
    pub fn new(rt_flag: u32, token: Option<&ExpiryToken>) -> Self {
        let pb_expiry_token = token.map(|t| Bytes::copy_from_slice(&t.encode()));
        Self {
            rt_flag,
            cb_expiry_token: pb_expiry_token
                .as_ref()
                .map_or(0, |t| u32::try_from(t.len()).unwrap_or(u32::MAX)),
            pb_expiry_token,
        }
    }
}

fn locations_counts(v: &HrRRestoreGetDatabaseLocationsResponse) -> [CountCheck; 1] {
    let mut check = names_check(
        "HrRRestoreGetDatabaseLocations response",
        v.ppwszz_locations.as_ref(),
        v.pcwc_locations,
    );
    check.field = "pcwcLocations";
    [check]
}

params! {
    /// Opnum 5 request: ends the session.
    HrRRestoreEndRequest {
        /// The restore session.
        "phContext" ph_context: ContextHandle,
    }
}

params! {
    /// Opnum 5 response: the handle comes back null.
    HrRRestoreEndResponse {
        /// The null handle.
        "phContext" ph_context: ContextHandle,
        /// The status.
        "status" status: Status,
    }
}

params! {
    /// Opnum 6 request: sets the current backup log number.
    HrRRestoreSetCurrentLogNumberRequest {
        /// The log number (0xFFFFFFFF disables incremental backups until the next full one).
        "dwCurrentLog" dw_current_log: u32,
    }
}

params! {
    /// Opnum 6 response.
    HrRRestoreSetCurrentLogNumberResponse {
        /// The status.
        "status" status: Status,
    }
}

params! {
    /// Opnum 7 request: whether the logs a backup needs are still there.
    HrRRestoreCheckLogsForBackupRequest {
        /// The backup's annotation.
        "wszBackupAnnotation" wsz_backup_annotation: String,
    }
}

params! {
    /// Opnum 7 response.
    HrRRestoreCheckLogsForBackupResponse {
        /// 0 when the logs are there, `hrLogFileNotFound` otherwise.
        "status" status: Status,
    }
}
