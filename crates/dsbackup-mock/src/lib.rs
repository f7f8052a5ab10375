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
//! The core uses no async runtime and reads no clock: time comes in as `now`, and the delays the
//! fault script asks for come back in [`Reply::delay`] for the transport glue to sleep on.

pub mod config;
mod dc;
pub mod faults;
pub mod marker;
pub mod ntds;
mod prng;
pub mod sample;

pub use crate::config::{ConfigError, DsMode, MockConfig, MockConfigBuilder, MockUser, Privileges};
pub use crate::dc::{
    Caller, ConnectionId, MockDc, MockError, Principal, Reply, ServeError, filetime,
};
pub use crate::faults::{FaultScript, Faults, StatusFault};
pub use crate::marker::{RestoreMapping, RestoreMarker, RestoreState};
pub use crate::sample::{
    SampleError, SampleFile, SampleFileKind, SampleManifest, SampleSpec, generate_sample_set,
};
