//! `ad_backup` (ecec0d70-a603-11d0-96b1-00a0c91ece30 v1.0), the NTDS backup interface, as
//! `spec/dsbackup.idl` defines it.
//!
//! `handle_t hBinding` parameters have no wire representation and no field. Top-level pointers
//! are `[ref]` (the field is the pointee); `wchar_t **` and `byte **` out parameters are a
//! `[ref]` pointer to a `[unique]` pointer (`Option<...>`).

use bytes::Bytes;

use crate::chain::Chain;
use crate::drep::DataRep;
use crate::error::DecodeError;
use crate::iface::{CountCheck, InterfaceId, calls, params};
use crate::names::{NameEntry, build_name_list, parse_name_list};
use crate::ndr::reader::{count_fits, padding};
use crate::ndr::{ContextHandle, Ndr as _, NdrError, NdrReader, VaryingBytes};
use crate::status::Status;
use crate::token::ExpiryToken;
use crate::uuid::Uuid;

/// The interface identity and call table.
pub static INTERFACE: InterfaceId = InterfaceId {
    name: "ad_backup",
    uuid: Uuid::from_str_const("ecec0d70-a603-11d0-96b1-00a0c91ece30"),
    version_major: 1,
    version_minor: 0,
    annotation: "NTDS Backup Interface",
    calls: AD_BACKUP,
};

/// `btFlag` of a full backup (`BACKUP_TYPE_FULL`).
pub const BACKUP_TYPE_FULL: u32 = 0x1;
/// `btFlag` of a logs-only backup (`BACKUP_TYPE_LOGS_ONLY`).
pub const BACKUP_TYPE_LOGS_ONLY: u32 = 0x2;
/// `btFlag` of an incremental backup (`BACKUP_TYPE_INCREMENTAL`): refused by servers.
pub const BACKUP_TYPE_INCREMENTAL: u32 = 0x4;
/// The largest `cbBuffer` a server accepts in `HrRBackupRead` (16 MiB).
pub const MAX_READ_SIZE: u32 = 16 * 1024 * 1024;

calls! {
    interface: "ad_backup",
    table: AD_BACKUP,
    request: AdBackupRequest,
    response: AdBackupResponse,
    calls: [
        0 => HrRBackupPrepare(HrRBackupPrepareRequest, HrRBackupPrepareResponse),
        1 => HrRBackupEnd(HrRBackupEndRequest, HrRBackupEndResponse),
        2 => HrRBackupGetAttachmentInformation(
            HrRBackupGetAttachmentInformationRequest,
            HrRBackupGetAttachmentInformationResponse
        ),
        3 => HrRBackupOpenFile(HrRBackupOpenFileRequest, HrRBackupOpenFileResponse),
        4 => HrRBackupRead(HrRBackupReadRequest, HrRBackupReadResponse),
        5 => HrRBackupClose(HrRBackupCloseRequest, HrRBackupCloseResponse),
        6 => HrRBackupGetBackupLogs(HrRBackupGetBackupLogsRequest, HrRBackupGetBackupLogsResponse),
        7 => HrRBackupTruncateLogs(HrRBackupTruncateLogsRequest, HrRBackupTruncateLogsResponse),
        8 => HrRBackupPing(HrRBackupPingRequest, HrRBackupPingResponse),
    ]
}

params! {
    /// Opnum 0 request: starts a backup session.
    HrRBackupPrepareRequest {
        /// `DsBackupPrepare`'s grbit: 0 or 1.
        "grbit" grbit: u32,
        /// [`BACKUP_TYPE_FULL`] or [`BACKUP_TYPE_LOGS_ONLY`].
        "btFlag" bt_flag: u32,
        /// "NTDS Backup Interface".
        "wszBackupAnnotation" wsz_backup_annotation: String,
        /// The client's process id.
        "dwClientIdentifier" dw_client_identifier: u32,
    }
}

params! {
    /// Opnum 0 response: the session handle and the expiry token.
    HrRBackupPrepareResponse check prepare_counts {
        /// The backup session.
        "phContext" ph_context: ContextHandle,
        /// The expiry token (16 bytes, see [`crate::ExpiryToken`]).
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::iface::serialize_opt_hex"))]
        "ppbExpiryToken" ppb_expiry_token: Option<Bytes>,
        /// Length of the token; equals its conformance.
        "pcbExpiryToken" pcb_expiry_token: u32,
        /// The status.
        "status" status: Status,
    }
}

fn prepare_counts(v: &HrRBackupPrepareResponse) -> [CountCheck; 1] {
    [CountCheck {
        what: "HrRBackupPrepare response",
        field: "pcbExpiryToken",
        count: v.pcb_expiry_token,
        array_len: v.ppb_expiry_token.as_ref().map_or(0, Bytes::len),
    }]
}

impl HrRBackupPrepareResponse {
    /// A successful response handing out `handle` and `token`.
    pub fn new(handle: ContextHandle, token: &ExpiryToken) -> Self {
        let token = token.encode();
        Self {
            ph_context: handle,
            pcb_expiry_token: 16,
            ppb_expiry_token: Some(Bytes::copy_from_slice(&token)),
            status: Status::SUCCESS,
        }
    }

    /// The expiry token, decoded.
    ///
    /// # Errors
    /// [`DecodeError::InvalidField`] when there is no token or it is not a known format.
    pub fn expiry_token(&self) -> Result<ExpiryToken, DecodeError> {
        match &self.ppb_expiry_token {
            Some(token) => ExpiryToken::decode(token),
            None => Err(DecodeError::InvalidField {
                what: "HrRBackupPrepare response",
                field: "ppbExpiryToken",
                reason: "no expiry token",
            }),
        }
    }
}

params! {
    /// Opnum 1 request: ends the session.
    HrRBackupEndRequest {
        /// The backup session.
        "phContext" ph_context: ContextHandle,
    }
}

params! {
    /// Opnum 1 response: the handle comes back null.
    HrRBackupEndResponse {
        /// The null handle.
        "phContext" ph_context: ContextHandle,
        /// The status.
        "status" status: Status,
    }
}

params! {
    /// Opnum 2 request: the database files of the backup set.
    HrRBackupGetAttachmentInformationRequest {
        /// The backup session.
        "hContext" h_context: ContextHandle,
    }
}

params! {
    /// Opnum 2 response: a name list (see [`crate::parse_name_list`]).
    HrRBackupGetAttachmentInformationResponse check attachment_counts {
        /// The list as UTF-16 code units, NULs included.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::iface::serialize_name_list"))]
        "ppwszzNames" ppwszz_names: Option<Vec<u16>>,
        /// Code units in the list; equals its conformance.
        "pcwcNames" pcwc_names: u32,
        /// The status.
        "status" status: Status,
    }
}

fn attachment_counts(v: &HrRBackupGetAttachmentInformationResponse) -> [CountCheck; 1] {
    [names_check(
        "HrRBackupGetAttachmentInformation response",
        v.ppwszz_names.as_ref(),
        v.pcwc_names,
    )]
}

/// The `(array, count)` pair of a name list response carrying `entries`.
pub(crate) fn names_units(entries: &[NameEntry]) -> (Option<Vec<u16>>, u32) {
    let units = build_name_list(entries);
    let count = u32::try_from(units.len()).unwrap_or(u32::MAX);
    (Some(units), count)
}

/// The entries of a name list array; a NULL list is empty.
pub(crate) fn names_entries(units: Option<&Vec<u16>>) -> Result<Vec<NameEntry>, NdrError> {
    units.map_or_else(|| Ok(Vec::new()), |units| parse_name_list(units))
}

macro_rules! name_list_response {
    ($ty:ident, $list:ident, $count:ident) => {
        impl $ty {
            /// A response carrying `entries` (an empty list goes as two NULs).
            pub fn new(entries: &[NameEntry], status: Status) -> Self {
                let ($list, $count) = names_units(entries);
                Self {
                    $list,
                    $count,
                    status,
                }
            }

            /// The entries of the list (a NULL list is empty).
            ///
            /// # Errors
            /// As [`parse_name_list`](crate::names::parse_name_list).
            pub fn entries(&self) -> Result<Vec<NameEntry>, NdrError> {
                names_entries(self.$list.as_ref())
            }
        }
    };
}
pub(crate) use name_list_response;

name_list_response!(
    HrRBackupGetAttachmentInformationResponse,
    ppwszz_names,
    pcwc_names
);
name_list_response!(HrRBackupGetBackupLogsResponse, ppwszz_names, pcwc_names);

pub(crate) fn names_check(what: &'static str, names: Option<&Vec<u16>>, count: u32) -> CountCheck {
    CountCheck {
        what,
        field: "pcwcNames",
        count,
        array_len: names.map_or(0, Vec::len),
    }
}

params! {
    /// Opnum 3 request: opens one file of the backup set.
    HrRBackupOpenFileRequest {
        /// The backup session.
        "hContext" h_context: ContextHandle,
        /// The UNC path from opnum 2 or 6, without its BFT character.
        "wszAttachmentName" wsz_attachment_name: String,
        /// The read size the client means to use.
        "cbReadHintSize" cb_read_hint_size: u32,
    }
}

params! {
    /// Opnum 3 response: the file's size.
    HrRBackupOpenFileResponse {
        /// Size of the file in bytes.
        "pliFileSize" pli_file_size: i64,
        /// The status.
        "status" status: Status,
    }
}

params! {
    /// Opnum 4 request: reads the next bytes of the open file.
    HrRBackupReadRequest {
        /// The backup session.
        "hContext" h_context: ContextHandle,
        /// The most bytes to return (at most [`MAX_READ_SIZE`]).
        "cbBuffer" cb_buffer: u32,
    }
}

params! {
    /// Opnum 4 response: the bytes read; none with status 0 is the end of the file.
    ///
    /// `pbBuffer` is a conformant varying array: `max_count` = the request's `cbBuffer`,
    /// offset 0, `actual_count` = `*pcbRead`. Check it against the request with
    /// [`HrRBackupReadResponse::check_request`].
    HrRBackupReadResponse check read_counts {
        /// The bytes, with the request's `cbBuffer` as conformance.
        "pbBuffer" pb_buffer: VaryingBytes,
        /// Bytes read; equals the array's actual count.
        "pcbRead" pcb_read: u32,
        /// The status.
        "status" status: Status,
    }
}

fn read_counts(v: &HrRBackupReadResponse) -> [CountCheck; 1] {
    [CountCheck {
        what: "HrRBackupRead response",
        field: "pcbRead",
        count: v.pcb_read,
        array_len: v.pb_buffer.data.len(),
    }]
}

impl HrRBackupReadResponse {
    /// A response carrying `data` for a request of `cb_buffer` bytes.
    pub fn new(cb_buffer: u32, data: impl Into<Chain>, status: Status) -> Self {
        let data = data.into();
        Self {
            pcb_read: u32::try_from(data.len()).unwrap_or(u32::MAX),
            pb_buffer: VaryingBytes {
                max_count: cb_buffer,
                data,
            },
            status,
        }
    }

    /// Decodes the response from its stub as the fragments brought it, without joining the
    /// file data: `pbBuffer`'s bytes stay slices of the fragments (a backup reads the
    /// database at the speed of its socket, not of a copy).
    ///
    /// ```text
    ///  stub   [max_count offset actual_count] [data: actual_count bytes] [pad] [pcbRead] [hr]
    ///          first 12 bytes, joined           split off, not copied     the rest, joined
    /// ```
    ///
    /// It accepts and refuses exactly the stubs that [`AdBackupResponse::decode_shared`]
    /// accepts and refuses for opnum 4, with the same errors (a property test holds the two
    /// together).
    ///
    /// # Errors
    /// [`NdrError`], as [`AdBackupResponse::decode_shared`].
    pub fn decode_chain(drep: DataRep, mut stub: Chain) -> Result<Self, NdrError> {
        const WHAT: &str = "ad_backup response";
        let head = stub.split_to_contiguous(VaryingBytes::MIN_LEN);
        let mut r = NdrReader::new(drep, &head);
        let (max_count, actual_count) = VaryingBytes::decode_header(&mut r)?;
        count_fits(VaryingBytes::WHAT, actual_count, 1, stub.len())?;
        // `count_fits` checked `actual_count <= stub.len()`, so it fits in usize.
        let len = usize::try_from(actual_count).unwrap_or(usize::MAX);
        let data = stub.split_to(len);
        // The rest is `pcbRead` and the status, 4-aligned from the start of the stub.
        let tail = stub.to_bytes();
        let pad = padding(VaryingBytes::MIN_LEN + len, 4);
        NdrReader::new(drep, &tail).take(pad, "alignment padding")?;
        let mut r = NdrReader::new(drep, tail.get(pad..).unwrap_or_default());
        let value = Self {
            pb_buffer: VaryingBytes { max_count, data },
            pcb_read: r.param()?,
            status: r.param()?,
        };
        for relation in read_counts(&value) {
            relation.decoded()?;
        }
        r.finish(WHAT)?;
        Ok(value)
    }

    /// Checks the response against its request: the conformance must be the request's
    /// `cbBuffer`, so no more bytes than requested can come back.
    ///
    /// # Errors
    /// [`NdrError::CountMismatch`] when `max_count` is not
    /// `cbBuffer`.
    pub fn check_request(&self, request: &HrRBackupReadRequest) -> Result<(), NdrError> {
        crate::ndr::check_count_param(
            "HrRBackupRead response",
            "cbBuffer",
            request.cb_buffer,
            usize::try_from(self.pb_buffer.max_count).unwrap_or(usize::MAX),
        )
    }
}

params! {
    /// Opnum 5 request: closes the open file.
    HrRBackupCloseRequest {
        /// The backup session.
        "hContext" h_context: ContextHandle,
    }
}

params! {
    /// Opnum 5 response.
    HrRBackupCloseResponse {
        /// The status (`hrInvalidHandle` when no file is open).
        "status" status: Status,
    }
}

params! {
    /// Opnum 6 request: the log and patch files to back up.
    HrRBackupGetBackupLogsRequest {
        /// The backup session.
        "hContext" h_context: ContextHandle,
    }
}

params! {
    /// Opnum 6 response: a name list (see [`crate::parse_name_list`]).
    HrRBackupGetBackupLogsResponse check backup_logs_counts {
        /// The list as UTF-16 code units, NULs included.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::iface::serialize_name_list"))]
        "ppwszzNames" ppwszz_names: Option<Vec<u16>>,
        /// Code units in the list; equals its conformance.
        "pcwcNames" pcwc_names: u32,
        /// The status.
        "status" status: Status,
    }
}

fn backup_logs_counts(v: &HrRBackupGetBackupLogsResponse) -> [CountCheck; 1] {
    [names_check(
        "HrRBackupGetBackupLogs response",
        v.ppwszz_names.as_ref(),
        v.pcwc_names,
    )]
}

params! {
    /// Opnum 7 request: deletes the committed logs this session backed up.
    HrRBackupTruncateLogsRequest {
        /// The backup session.
        "hContext" h_context: ContextHandle,
    }
}

params! {
    /// Opnum 7 response.
    HrRBackupTruncateLogsResponse {
        /// The status.
        "status" status: Status,
    }
}

params! {
    /// Opnum 8 request: keep-alive (no parameter on the wire: the stub is empty).
    HrRBackupPingRequest {}
}

params! {
    /// Opnum 8 response.
    HrRBackupPingResponse {
        /// The status.
        "status" status: Status,
    }
}
