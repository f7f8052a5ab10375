//! The call types of the interfaces dsbackup speaks, one module per interface, each driven by
//! one table ([`CallInfo`]) beside the interface identity ([`InterfaceId`]).
//!
//! Every call has a request and a response type holding the parameters of that direction,
//! named after the IDL (`wszBackupAnnotation` becomes `wsz_backup_annotation`, and keeps its
//! IDL name in JSON). Both directions encode and decode: the client needs one half, the mock
//! server the other.
//!
//! - [`ad_backup`] and [`ad_restore`]: `spec/dsbackup.idl`;
//! - [`epm`]: the endpoint mapper ([C706 Appendix O], [MS-RPCE §2.2.1.2]);
//! - [`mgmt`]: the remote management interface ([C706 Appendix Q]).
//!
//! [C706 Appendix O]: https://pubs.opengroup.org/onlinepubs/9629399/apdxo.htm
//! [C706 Appendix Q]: https://pubs.opengroup.org/onlinepubs/9629399/apdxq.htm
//! [MS-RPCE §2.2.1.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

pub mod ad_backup;
pub mod ad_restore;
pub mod epm;
#[doc(hidden)]
pub mod fuzzing;
pub mod mgmt;
#[cfg(test)]
mod tests;

use core::fmt;
use core::str::FromStr;

use crate::drep::DataRep;
use crate::error::EncodeError;
use crate::ndr::NdrError;
use crate::syntax::SyntaxId;
use crate::uuid::Uuid;

/// One operation of an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallInfo {
    /// The operation number.
    pub opnum: u16,
    /// The IDL name of the operation.
    pub name: &'static str,
    /// The IDL names of the request's parameters (the `[in]` ones), in wire order.
    pub request: &'static [&'static str],
    /// The IDL names of the response's values (the `[out]` ones, then the status), in wire order.
    pub response: &'static [&'static str],
}

/// The identity of an interface: what a bind names and the endpoint mapper registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceId {
    /// The IDL name.
    pub name: &'static str,
    /// The interface UUID.
    pub uuid: Uuid,
    /// Major version.
    pub version_major: u16,
    /// Minor version.
    pub version_minor: u16,
    /// The annotation the endpoint mapper shows.
    pub annotation: &'static str,
    /// The call table, indexed by opnum.
    pub calls: &'static [CallInfo],
}

impl InterfaceId {
    /// The abstract syntax a bind names: the UUID and this version.
    pub const fn syntax(&self) -> SyntaxId {
        SyntaxId::new(self.uuid, self.version_major, self.version_minor)
    }

    /// How many operations the interface has: opnums `0..opnums()` exist.
    pub fn opnums(&self) -> u16 {
        u16::try_from(self.calls.len()).unwrap_or(u16::MAX)
    }

    /// The table entry of `opnum`.
    pub fn call(&self, opnum: u16) -> Option<&'static CallInfo> {
        self.calls.iter().find(|call| call.opnum == opnum)
    }
}

/// Which half of a call a stub is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Direction {
    /// Client to server: the `[in]` parameters.
    Request,
    /// Server to client: the `[out]` parameters and the status.
    Response,
}

/// The interfaces of this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Interface {
    /// `ad_backup`.
    AdBackup,
    /// `ad_restore`.
    AdRestore,
    /// The endpoint mapper `epm`.
    Epm,
    /// The remote management interface `mgmt`.
    Mgmt,
}

impl Interface {
    /// Every interface.
    pub const ALL: [Self; 4] = [Self::AdBackup, Self::AdRestore, Self::Epm, Self::Mgmt];

    /// The identity and call table.
    pub const fn id(self) -> &'static InterfaceId {
        match self {
            Self::AdBackup => &ad_backup::INTERFACE,
            Self::AdRestore => &ad_restore::INTERFACE,
            Self::Epm => &epm::INTERFACE,
            Self::Mgmt => &mgmt::INTERFACE,
        }
    }

    /// The interface with this UUID and major version.
    pub fn from_uuid(uuid: Uuid, version_major: u16) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|i| i.id().uuid == uuid && i.id().version_major == version_major)
    }
}

/// Error for an interface name that is not one of this crate's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown interface (expected ad_backup, ad_restore, epm or mgmt)")]
pub struct UnknownInterface;

impl FromStr for Interface {
    type Err = UnknownInterface;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|i| i.id().name.eq_ignore_ascii_case(s))
            .ok_or(UnknownInterface)
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id().name)
    }
}

/// A decoded stub of any interface, in either direction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
#[non_exhaustive]
pub enum DecodedStub {
    /// An ad_backup request.
    AdBackupRequest(ad_backup::AdBackupRequest),
    /// An ad_backup response.
    AdBackupResponse(ad_backup::AdBackupResponse),
    /// An ad_restore request.
    AdRestoreRequest(ad_restore::AdRestoreRequest),
    /// An ad_restore response.
    AdRestoreResponse(ad_restore::AdRestoreResponse),
    /// An epm request.
    EpmRequest(epm::EpmRequest),
    /// An epm response.
    EpmResponse(epm::EpmResponse),
    /// A mgmt request.
    MgmtRequest(mgmt::MgmtRequest),
    /// A mgmt response.
    MgmtResponse(mgmt::MgmtResponse),
}

impl DecodedStub {
    /// Encodes the stub again.
    ///
    /// # Errors
    /// As the call type's `encode`.
    pub fn encode(&self, drep: DataRep) -> Result<Vec<u8>, EncodeError> {
        match self {
            Self::AdBackupRequest(v) => v.encode(drep),
            Self::AdBackupResponse(v) => v.encode(drep),
            Self::AdRestoreRequest(v) => v.encode(drep),
            Self::AdRestoreResponse(v) => v.encode(drep),
            Self::EpmRequest(v) => v.encode(drep),
            Self::EpmResponse(v) => v.encode(drep),
            Self::MgmtRequest(v) => v.encode(drep),
            Self::MgmtResponse(v) => v.encode(drep),
        }
    }
}

/// Decodes the stub of one call of `iface` (for `dsbackup inspect`); with the `serde` feature
/// the result serializes with every parameter under its IDL name.
///
/// # Errors
/// [`NdrError::UnknownOpnum`] for an opnum outside the table; any [`NdrError`] of the stub.
pub fn decode_stub(
    iface: Interface,
    opnum: u16,
    direction: Direction,
    drep: DataRep,
    stub: &[u8],
) -> Result<DecodedStub, NdrError> {
    Ok(match (iface, direction) {
        (Interface::AdBackup, Direction::Request) => {
            DecodedStub::AdBackupRequest(ad_backup::AdBackupRequest::decode(opnum, drep, stub)?)
        }
        (Interface::AdBackup, Direction::Response) => {
            DecodedStub::AdBackupResponse(ad_backup::AdBackupResponse::decode(opnum, drep, stub)?)
        }
        (Interface::AdRestore, Direction::Request) => {
            DecodedStub::AdRestoreRequest(ad_restore::AdRestoreRequest::decode(opnum, drep, stub)?)
        }
        (Interface::AdRestore, Direction::Response) => DecodedStub::AdRestoreResponse(
            ad_restore::AdRestoreResponse::decode(opnum, drep, stub)?,
        ),
        (Interface::Epm, Direction::Request) => {
            DecodedStub::EpmRequest(epm::EpmRequest::decode(opnum, drep, stub)?)
        }
        (Interface::Epm, Direction::Response) => {
            DecodedStub::EpmResponse(epm::EpmResponse::decode(opnum, drep, stub)?)
        }
        (Interface::Mgmt, Direction::Request) => {
            DecodedStub::MgmtRequest(mgmt::MgmtRequest::decode(opnum, drep, stub)?)
        }
        (Interface::Mgmt, Direction::Response) => {
            DecodedStub::MgmtResponse(mgmt::MgmtResponse::decode(opnum, drep, stub)?)
        }
    })
}

/// A relation between a count parameter and the array it sizes, checked both ways by the
/// `params!` types that declare a `check`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CountCheck {
    pub(crate) what: &'static str,
    pub(crate) field: &'static str,
    pub(crate) count: u32,
    pub(crate) array_len: usize,
}

impl CountCheck {
    pub(crate) fn decoded(self) -> Result<(), NdrError> {
        crate::ndr::check_count_param(self.what, self.field, self.count, self.array_len)
    }

    pub(crate) fn encoding(self) -> Result<(), EncodeError> {
        crate::ndr::check_count_field(self.what, self.field, self.count, self.array_len)
    }
}

/// Declares the parameters of one direction of a call: a struct whose fields are the top-level
/// parameters in wire order, each with its IDL name, and its [`Ndr`](crate::ndr::Ndr)
/// implementation (each field a whole top-level parameter). An optional `check` function returns
/// the count relations to enforce on both encode and decode.
macro_rules! params {
    (
        $(#[$meta:meta])*
        $name:ident $(check $check:path)? {
            $(
                $(#[$fmeta:meta])*
                $idl:literal $field:ident : $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[cfg_attr(feature = "serde", serde(rename = $idl))]
                pub $field: $ty,
            )*
        }

        impl $name {
            /// The IDL names of the parameters, in wire order.
            pub const PARAMS: &'static [&'static str] = &[$($idl),*];
        }

        impl $crate::ndr::Ndr for $name {
            const MIN_LEN: usize = 0 $(+ <$ty as $crate::ndr::Ndr>::MIN_LEN)*;

            fn encode_scalars(
                &self,
                w: &mut $crate::ndr::NdrWriter,
            ) -> Result<(), $crate::error::EncodeError> {
                $(
                    for relation in $check(self).into_iter() {
                        relation.encoding()?;
                    }
                )?
                let _ = &w;
                $( w.param(&self.$field)?; )*
                Ok(())
            }

            fn decode_scalars(
                r: &mut $crate::ndr::NdrReader<'_>,
            ) -> Result<Self, $crate::ndr::NdrError> {
                let _ = &r;
                let value = Self { $( $field: r.param()?, )* };
                $(
                    for relation in $check(&value).into_iter() {
                        relation.decoded()?;
                    }
                )?
                Ok(value)
            }
        }
    };
}
pub(crate) use params;

/// Declares the request and response enums of an interface and its call table from one list of
/// `opnum => Name(RequestType, ResponseType)`.
macro_rules! calls {
    (
        interface: $iface:literal,
        table: $table:ident,
        request: $req:ident,
        response: $resp:ident,
        calls: [ $( $opnum:literal => $variant:ident ( $req_ty:ty, $resp_ty:ty ), )* ]
    ) => {
        /// The call table: one entry per opnum.
        pub static $table: &[$crate::iface::CallInfo] = &[$(
            $crate::iface::CallInfo {
                opnum: $opnum,
                name: stringify!($variant),
                request: <$req_ty>::PARAMS,
                response: <$resp_ty>::PARAMS,
            },
        )*];

        $crate::iface::call_enum! {
            interface: $iface,
            direction: "request",
            name: $req,
            calls: [ $( $opnum => $variant($req_ty), )* ]
        }

        $crate::iface::call_enum! {
            interface: $iface,
            direction: "response",
            name: $resp,
            calls: [ $( $opnum => $variant($resp_ty), )* ]
        }
    };
}
pub(crate) use calls;

/// Declares one half of [`calls!`]: the enum of the requests (or of the responses) of an
/// interface, one variant per opnum, with its stub codec. `direction` is `"request"` or
/// `"response"`, for the docs and the names of errors.
macro_rules! call_enum {
    (
        interface: $iface:literal,
        direction: $dir:literal,
        name: $name:ident,
        calls: [ $( $opnum:literal => $variant:ident ( $ty:ty ), )* ]
    ) => {
        #[doc = concat!("A ", $dir, " of ", $iface, ", one variant per opnum.")]
        #[derive(Clone, Debug, PartialEq, Eq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        pub enum $name {
            $(
                #[doc = concat!("Opnum ", stringify!($opnum), ", `", stringify!($variant), "`.")]
                $variant($ty),
            )*
        }

        impl $name {
            /// The operation number.
            pub const fn opnum(&self) -> u16 {
                match self { $( Self::$variant(_) => $opnum, )* }
            }

            #[doc = concat!("Decodes the ", $dir, " stub of `opnum`.")]
            ///
            /// # Errors
            /// [`NdrError::UnknownOpnum`](crate::ndr::NdrError::UnknownOpnum); any
            /// [`NdrError`](crate::ndr::NdrError) of the stub, trailing bytes included.
            pub fn decode(
                opnum: u16,
                drep: $crate::drep::DataRep,
                stub: &[u8],
            ) -> Result<Self, $crate::ndr::NdrError> {
                match opnum {
                    $(
                        $opnum => $crate::ndr::decode_stub(
                            drep,
                            stub,
                            concat!(stringify!($variant), " ", $dir),
                        )
                        .map(Self::$variant),
                    )*
                    _ => Err($crate::ndr::NdrError::UnknownOpnum { interface: $iface, opnum }),
                }
            }

            #[doc = concat!("Decodes the ", $dir, " stub of `opnum` from a shared buffer: byte")]
            /// arrays come back as slices of `stub` instead of copies.
            ///
            /// # Errors
            /// As [`Self::decode`].
            pub fn decode_shared(
                opnum: u16,
                drep: $crate::drep::DataRep,
                stub: &bytes::Bytes,
            ) -> Result<Self, $crate::ndr::NdrError> {
                let mut r = $crate::ndr::NdrReader::from_bytes(drep, stub);
                let value = match opnum {
                    $( $opnum => Self::$variant(r.param()?), )*
                    _ => return Err($crate::ndr::NdrError::UnknownOpnum { interface: $iface, opnum }),
                };
                r.finish(concat!($iface, " ", $dir))?;
                Ok(value)
            }

            #[doc = concat!("Encodes the ", $dir, " stub.")]
            ///
            /// # Errors
            /// [`EncodeError`](crate::error::EncodeError) for a value that cannot go on the wire.
            pub fn encode(
                &self,
                drep: $crate::drep::DataRep,
            ) -> Result<Vec<u8>, $crate::error::EncodeError> {
                match self { $( Self::$variant(v) => $crate::ndr::encode_stub(v, drep), )* }
            }

            #[doc = concat!("Encodes the ", $dir, " stub as a chain whose large byte runs are")]
            /// shared with `self`, not copied.
            ///
            /// # Errors
            /// [`EncodeError`](crate::error::EncodeError) for a value that cannot go on the wire.
            pub fn encode_chain(
                &self,
                drep: $crate::drep::DataRep,
            ) -> Result<$crate::chain::Chain, $crate::error::EncodeError> {
                match self { $( Self::$variant(v) => $crate::ndr::encode_stub_chain(v, drep), )* }
            }

            /// Encodes, also returning the byte ranges written as alignment padding.
            #[cfg(test)]
            pub(crate) fn encode_with_pads(
                &self,
                drep: $crate::drep::DataRep,
            ) -> (Vec<u8>, Vec<core::ops::Range<usize>>) {
                let mut w = $crate::ndr::NdrWriter::new(drep);
                match self { $( Self::$variant(v) => w.param(v).unwrap(), )* }
                let pads = core::mem::take(&mut w.pads);
                (w.into_vec(), pads)
            }
        }
    };
}
pub(crate) use call_enum;

/// Serializes bytes as lowercase hex (for `dsbackup inspect`).
#[cfg(feature = "serde")]
pub(crate) fn serialize_hex<S: serde::Serializer>(
    bytes: &[u8],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    serializer.serialize_str(&out)
}

/// Serializes a chain's bytes as lowercase hex.
#[cfg(feature = "serde")]
pub(crate) fn serialize_chain_hex<S: serde::Serializer>(
    bytes: &crate::chain::Chain,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serialize_hex(&bytes.to_bytes(), serializer)
}

/// Serializes optional bytes as lowercase hex, or `null`.
#[cfg(feature = "serde")]
pub(crate) fn serialize_opt_hex<S: serde::Serializer>(
    bytes: &Option<bytes::Bytes>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(bytes) => serialize_hex(bytes, serializer),
        None => serializer.serialize_none(),
    }
}

/// Serializes a name list as its entries when it parses, else as raw UTF-16 code units.
#[cfg(feature = "serde")]
pub(crate) fn serialize_name_list<S: serde::Serializer>(
    units: &Option<Vec<u16>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::Serialize as _;
    match units {
        None => serializer.serialize_none(),
        Some(units) => match crate::names::parse_name_list(units) {
            Ok(entries) => entries.serialize(serializer),
            Err(_) => units.serialize(serializer),
        },
    }
}
