//! The mock NTDS domain controller of dsbackup, as a library: the behaviour of the `ad_backup`
//! and `ad_restore` interfaces of `spec/dsbackup.idl`, independent of any transport.
//!
//! - [`MockDc`] serves every operation as a method over the decoded call types of
//!   `dsbackup_proto::iface` (plus [`MockDc::dispatch_ad_backup`] /
//!   [`MockDc::dispatch_ad_restore`] for whole request enums), given the [`Caller`] and `now`;
//! - [`MockConfig`] configures it (builder, or TOML for `dsbackup mock-dc --config`);
//! - [`Faults`] scripts faults while it runs;
//! - [`generate_sample_set`] lays out a realistic NTDS directory of any size with
//!   deterministic content;
//! - [`ntds`] names the files of that directory.
//!
//! ```
//! use std::time::SystemTime;
//!
//! use dsbackup_mock::{Caller, ConnectionId, MockConfig, MockDc, Privileges, SampleSpec};
//! use dsbackup_proto::iface::ad_backup::{
//!     BACKUP_TYPE_FULL, HrRBackupGetAttachmentInformationRequest, HrRBackupPrepareRequest,
//! };
//! use dsbackup_proto::{AuthLevel, Status};
//!
//! let dir = tempfile::tempdir()?;
//! let manifest = dsbackup_mock::generate_sample_set(dir.path(), &SampleSpec::default())?;
//! let config = MockConfig::builder("DC1", dir.path())
//!     .user("svc-backup", "Passw0rd!", Privileges::BACKUP)
//!     .build();
//! let dc = MockDc::new(config)?;
//!
//! let who = Caller::user("svc-backup", "", AuthLevel::PKT_PRIVACY, ConnectionId(1));
//! let now = SystemTime::now();
//! let prepared = dc.backup_prepare(&who, now, &HrRBackupPrepareRequest {
//!     grbit: 0,
//!     bt_flag: BACKUP_TYPE_FULL,
//!     wsz_backup_annotation: "NTDS Backup Interface".into(),
//!     dw_client_identifier: 1,
//! });
//! assert_eq!(prepared.status, Status::SUCCESS);
//! let list = dc.backup_get_attachment_information(&who, now,
//!     &HrRBackupGetAttachmentInformationRequest { h_context: prepared.ph_context });
//! assert_eq!(list.entries()?[0].name, r"\\DC1\C$\Windows\NTDS\ntds.dit");
//! assert_eq!(manifest.file("ntds.dit").map(|f| f.size), Some(8 * 1024 * 1024));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Wiring to a server runtime
//!
//! [`serve`] does all of this on the transport's server runtime (its endpoint mapper and mgmt
//! included), applying the connection faults through the runtime's connection hook. Another
//! runtime would do the same: per listener: register [`MockDc::server_interfaces`] (ad_backup, ad_restore, with the
//! configured minimum auth level) and build NTLM acceptors over the `MockDc` itself (it is a
//! `dsbackup_ntlm::CredentialStore`). Per connection: pick a [`ConnectionId`], keep a
//! [`ConnectionFaults`], refuse binds when it says so. Per request: build the [`Caller`] from the
//! association's peer identity and auth level, map the request's interface index through
//! [`MockDc::SERVED_INTERFACES`], call [`MockDc::serve_stub`], sleep [`Reply::delay`], then
//! respond with the stub, or fault with [`ServeError::fault_status`]. When a connection ends:
//! [`MockDc::connection_closed`]; on a timer: [`MockDc::expire_idle`].
//!
//! The core uses no async runtime and reads no clock: time comes in as `now`, and the delays the
//! fault script asks for come back in [`Reply::delay`] for the transport glue to sleep on.

mod config;
mod dc;
mod faults;
mod marker;
pub mod ntds;
mod prng;
mod sample;
pub mod scripted;
pub mod serve;

pub use crate::config::{
    ConfigError, DsMode, MockConfig, MockConfigBuilder, MockUser, Privileges, ServerLimits,
};
pub use crate::dc::{
    ByteOrders, Caller, ConnectionId, MockDc, MockError, Principal, Reply, ServeError, filetime,
};
pub use crate::faults::{ConnectionFaults, FaultScript, Faults, StatusFault, corrupt_fragment};
pub use crate::marker::{RestoreMapping, RestoreMarker, RestoreState};
pub use crate::sample::{
    SampleError, SampleFile, SampleFileKind, SampleManifest, SampleSpec, generate_sample_set, hex,
    sha256_file,
};
