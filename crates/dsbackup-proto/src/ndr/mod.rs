//! NDR 2.0, the transfer syntax of call stubs ([C706 chapter 14], [MS-RPCE §2.2.5]).
//!
//! A small engine: an [`NdrReader`] and an [`NdrWriter`] over the stub bytes in the stub's data
//! representation, and one trait, [`Ndr`], that every wire type implements in two halves, as NDR
//! lays a constructed type out in two passes:
//!
//! - the **scalars**: the fixed part, with a referent id in place of every embedded pointer;
//! - the **buffers**: the pointees of those pointers, deferred until the end of the enclosing
//!   top-level parameter, in the order the pointers appeared (recursively, each pointee's own
//!   scalars then its own buffers).
//!
//! ```text
//!  top-level [unique] pointer to a conformant array of struct { [string] wchar_t *a, *b }:
//!
//!  referent_id | max_count | a0 b0 | a1 b1 | ... | *a0 | *b0 | *a1 | *b1 | ...
//!   (pointer)    (array scalars: referent ids)     (buffers: deferred pointees, in order)
//! ```
//!
//! Rust types stand for IDL types as follows:
//!
//! | Rust | IDL, as a top-level parameter or a pointee |
//! | --- | --- |
//! | `u8`, `u16`, `u32`, `i32`, `u64`, `i64` | `byte`, `unsigned short`, `unsigned long`, `long`, `unsigned hyper`, `hyper` |
//! | [`Uuid`] | `uuid_t` |
//! | [`ContextHandle`] | a context handle, `ndr_context_handle` (20 bytes) |
//! | `String` | `[string] wchar_t *` (NUL-terminated UTF-16, conformant and varying) |
//! | `Vec<T>` | `[size_is(n)] T *`, a conformant array |
//! | [`Bytes`] | `[size_is(n)] byte *`, a conformant byte array (copied in bulk) |
//! | `Option<T>` | a `[unique]` pointer to `T` |
//! | [`Full<T>`] | a full (`[ptr]`) pointer to `T` |
//!
//! A top-level `[ref]` pointer has no wire representation of its own: the parameter is its
//! pointee, so `[in, string] wchar_t *wsz` is a plain `String` field.
//!
//! Every count read from the wire is checked against the bytes that remain before anything is
//! allocated, so a stub can never make the decoder reserve more memory than its own length.
//!
//! [C706 chapter 14]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
//! [MS-RPCE §2.2.5]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/

mod error;
pub(crate) mod reader;
mod writer;

use bytes::Bytes;

pub use self::error::NdrError;
pub use self::reader::NdrReader;
pub use self::writer::{FIRST_REFERENT_ID, NdrWriter};
use crate::drep::DataRep;
use crate::error::EncodeError;
use crate::uuid::Uuid;

/// A type with an NDR 2.0 representation, marshaled in two passes (see the [module docs](self)).
pub trait Ndr: Sized {
    /// The fewest wire bytes a value takes (scalars and buffers together), used to bound counts
    /// before allocating: an array of `n` values needs at least `n * MIN_LEN` bytes.
    const MIN_LEN: usize;

    /// Writes the scalars: the fixed part, with referent ids for embedded pointers.
    ///
    /// # Errors
    /// [`EncodeError`] when a length does not fit its wire field or related fields disagree.
    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError>;

    /// Writes the deferred pointees of the embedded pointers written by `encode_scalars`.
    ///
    /// # Errors
    /// As [`Ndr::encode_scalars`].
    fn encode_buffers(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        let _ = w;
        Ok(())
    }

    /// Reads the scalars. Embedded pointers that are not null come back as placeholders
    /// (`Some(T::default())`) that [`Ndr::decode_buffers`] fills.
    ///
    /// # Errors
    /// [`NdrError`] for bytes that do not decode.
    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError>;

    /// Reads the deferred pointees, in the order of the pointers.
    ///
    /// # Errors
    /// As [`Ndr::decode_scalars`].
    fn decode_buffers(&mut self, r: &mut NdrReader<'_>) -> Result<(), NdrError> {
        let _ = r;
        Ok(())
    }
}

/// The three kinds of NDR pointers ([C706 §14.3.10]).
///
/// [C706 §14.3.10]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointerKind {
    /// `[ref]`: never null. Embedded, it still carries a (non-zero) referent id.
    Ref,
    /// `[unique]`: may be null, never aliased.
    Unique,
    /// `[ptr]`: may be null and (in NDR) aliased; this decoder refuses repeated ids.
    Full,
}

/// Encodes a whole stub: `value` holds the parameters of one direction of one call.
///
/// # Errors
/// As [`Ndr::encode_scalars`].
pub fn encode_stub<T: Ndr>(value: &T, drep: DataRep) -> Result<Vec<u8>, EncodeError> {
    stub_writer(value, drep).map(NdrWriter::into_vec)
}

/// Encodes a whole stub as a [`Chain`](crate::chain::Chain): large byte runs (a backup read's
/// data) are segments of it, not copies.
///
/// # Errors
/// As [`Ndr::encode_scalars`].
pub fn encode_stub_chain<T: Ndr>(
    value: &T,
    drep: DataRep,
) -> Result<crate::chain::Chain, EncodeError> {
    stub_writer(value, drep).map(NdrWriter::into_chain)
}

fn stub_writer<T: Ndr>(value: &T, drep: DataRep) -> Result<NdrWriter, EncodeError> {
    let mut w = NdrWriter::new(drep);
    w.param(value)?;
    Ok(w)
}

/// Decodes a whole stub; bytes left after the last parameter are an error.
///
/// # Errors
/// [`NdrError`], with [`NdrError::TrailingBytes`] for leftovers.
pub fn decode_stub<T: Ndr>(drep: DataRep, stub: &[u8], what: &'static str) -> Result<T, NdrError> {
    let mut r = NdrReader::new(drep, stub);
    let value = r.param()?;
    r.finish(what)?;
    Ok(value)
}

/// A full (`[ptr]`) pointer: may be null; a repeated referent id is refused on decode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Full<T>(pub Option<T>);

/// A context handle as NDR marshals it: `ndr_context_handle` of [C706 Appendix N]
/// (`[MS-RPCE §2.2.5.2]`), 20 bytes, 4-aligned.
///
/// ```text
///  0               4                                       20
///  +---------------+---------------------------------------+
///  | attributes    | uuid (first three fields per drep)    |
///  +---------------+---------------------------------------+
/// ```
///
/// The all-zero handle is the null handle.
///
/// [C706 Appendix N]: https://pubs.opengroup.org/onlinepubs/9629399/apdxn.htm
/// [MS-RPCE §2.2.5.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ContextHandle {
    /// `context_handle_attributes`: 0 on every handle Windows hands out.
    pub attributes: u32,
    /// `context_handle_uuid`: the server's name for the handle.
    pub uuid: Uuid,
}

impl ContextHandle {
    /// The null handle (all zero).
    pub const NULL: Self = Self {
        attributes: 0,
        uuid: Uuid::NIL,
    };
    /// Encoded length on the wire: `4 /* attributes */ + 16 /* uuid */`.
    pub const LEN: usize = 4 /* attributes */ + 16 /* uuid */;

    /// Whether this is the null handle.
    pub const fn is_null(&self) -> bool {
        self.attributes == 0 && self.uuid.is_nil()
    }
}

impl Ndr for ContextHandle {
    const MIN_LEN: usize = Self::LEN;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        w.u32(self.attributes);
        w.bytes(&self.uuid.to_wire(w.drep()));
        Ok(())
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        let attributes = r.u32("context_handle_attributes")?;
        let uuid = r.param()?;
        Ok(Self { attributes, uuid })
    }
}

impl Ndr for Uuid {
    const MIN_LEN: usize = Self::LEN;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        w.align(4);
        w.bytes(&self.to_wire(w.drep()));
        Ok(())
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        r.align(4)?;
        let bytes = r.take(Self::LEN, "uuid")?;
        let mut out = [0; 16];
        out.copy_from_slice(bytes);
        Ok(Self::from_wire(out, r.drep()))
    }
}

macro_rules! primitive {
    ($($ty:ty => $read:ident, $len:literal;)*) => {$(
        impl Ndr for $ty {
            const MIN_LEN: usize = $len;

            fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
                w.$read(*self);
                Ok(())
            }

            fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
                r.$read(stringify!($ty))
            }
        }
    )*};
}

primitive! {
    u8 => u8, 1;
    u16 => u16, 2;
    u32 => u32, 4;
    i32 => i32, 4;
    u64 => u64, 8;
    i64 => i64, 8;
}

/// `Option<T>` is a `[unique]` pointer: a referent id in the scalars, `T` in the buffers.
impl<T: Ndr + Default> Ndr for Option<T> {
    const MIN_LEN: usize = 4 /* referent_id */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        w.referent(self.is_some());
        Ok(())
    }

    fn encode_buffers(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        match self {
            Some(value) => w.param(value),
            None => Ok(()),
        }
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        Ok(r.referent(PointerKind::Unique, "unique pointer")?
            .then(T::default))
    }

    fn decode_buffers(&mut self, r: &mut NdrReader<'_>) -> Result<(), NdrError> {
        if let Some(value) = self {
            *value = r.param()?;
        }
        Ok(())
    }
}

/// [`Full<T>`] is a full pointer: like `Option<T>`, with repeated referent ids refused.
impl<T: Ndr + Default> Ndr for Full<T> {
    const MIN_LEN: usize = 4 /* referent_id */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        w.referent(self.0.is_some());
        Ok(())
    }

    fn encode_buffers(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        self.0.encode_buffers(w)
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        Ok(Self(
            r.referent(PointerKind::Full, "full pointer")?
                .then(T::default),
        ))
    }

    fn decode_buffers(&mut self, r: &mut NdrReader<'_>) -> Result<(), NdrError> {
        self.0.decode_buffers(r)
    }
}

/// `Vec<T>` is a conformant array: `max_count`, then the elements ([C706 §14.3.3.2]).
///
/// [C706 §14.3.3.2]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
impl<T: Ndr> Ndr for Vec<T> {
    const MIN_LEN: usize = 4 /* max_count */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        w.count(self.len(), "conformant array")?;
        for value in self {
            value.encode_scalars(w)?;
        }
        Ok(())
    }

    fn encode_buffers(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        for value in self {
            value.encode_buffers(w)?;
        }
        Ok(())
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        let what = "conformant array";
        let count = r.count(what, T::MIN_LEN.max(1))?;
        // INVARIANT: `count * MIN_LEN <= remaining`, so the capacity is bounded by the stub.
        let mut out = Self::with_capacity(usize::try_from(count).unwrap_or(0));
        for _ in 0..count {
            out.push(T::decode_scalars(r)?);
        }
        Ok(out)
    }

    fn decode_buffers(&mut self, r: &mut NdrReader<'_>) -> Result<(), NdrError> {
        for value in self {
            value.decode_buffers(r)?;
        }
        Ok(())
    }
}

/// [`Bytes`] is a conformant byte array, copied (or sliced) in bulk.
impl Ndr for Bytes {
    const MIN_LEN: usize = 4 /* max_count */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        w.count(self.len(), "conformant byte array")?;
        w.bytes(self);
        Ok(())
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        let what = "conformant byte array";
        let count = r.count(what, 1)?;
        r.byte_run(count, what)
    }
}

/// A conformant varying byte array, `[size_is(max_count), length_is(n)] byte *`
/// ([C706 §14.3.3.4]): `max_count`, `offset` (0), `actual_count`, then the bytes.
///
/// The bytes are a [`Chain`](crate::chain::Chain): encoded, a large run goes into the stub as a
/// shared segment; decoded from a stub that arrived in fragments
/// ([`HrRBackupReadResponse::decode_chain`](crate::iface::ad_backup::HrRBackupReadResponse::decode_chain)),
/// they stay slices of those fragments.
///
/// [C706 §14.3.3.4]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct VaryingBytes {
    /// The conformance (`max_count`): the size of the caller's buffer.
    pub max_count: u32,
    /// The transmitted bytes (`actual_count` of them, at most `max_count`).
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "crate::iface::serialize_chain_hex")
    )]
    pub data: crate::chain::Chain,
}

impl VaryingBytes {
    pub(crate) const WHAT: &'static str = "conformant varying byte array";

    /// Checks `max_count` and the variance (offset 0, `actual_count <= max_count`) of a
    /// header whose bytes follow in `r` or elsewhere; returns `actual_count`.
    pub(crate) fn decode_header(r: &mut NdrReader<'_>) -> Result<(u32, u32), NdrError> {
        let max_count = r.u32(Self::WHAT)?;
        let offset = r.u32(Self::WHAT)?;
        if offset != 0 {
            return Err(NdrError::NonZeroOffset {
                what: Self::WHAT,
                offset,
            });
        }
        let actual_count = r.u32(Self::WHAT)?;
        if actual_count > max_count {
            return Err(NdrError::ActualCountAboveMax {
                what: Self::WHAT,
                actual_count,
                max_count,
            });
        }
        Ok((max_count, actual_count))
    }
}

impl Ndr for VaryingBytes {
    const MIN_LEN: usize = 4 /* max_count */ + 4 /* offset */ + 4 /* actual_count */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        if usize::try_from(self.max_count).is_ok_and(|max| self.data.len() > max) {
            return Err(EncodeError::TooLong {
                what: Self::WHAT,
                field: "actual_count",
                value: self.data.len(),
                max: usize::try_from(self.max_count).unwrap_or(usize::MAX),
            });
        }
        w.u32(self.max_count);
        w.u32(0);
        w.count(self.data.len(), Self::WHAT)?;
        for segment in self.data.segments() {
            w.shared_bytes(segment);
        }
        Ok(())
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        let (max_count, actual) = Self::decode_header(r)?;
        r.check_count(Self::WHAT, actual, 1)?;
        let data = r.byte_run(actual, Self::WHAT)?;
        Ok(Self {
            max_count,
            data: data.into(),
        })
    }
}

/// A conformant varying array of `T` ([C706 §14.3.3.4]): `max_count`, `offset` (0),
/// `actual_count`, the elements' scalars, then (in the buffers) their pointees.
///
/// [C706 §14.3.3.4]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ConformantVarying<T> {
    /// The conformance (`max_count`).
    pub max_count: u32,
    /// The transmitted elements (`actual_count` of them, at most `max_count`).
    pub items: Vec<T>,
}

impl<T: Ndr> Ndr for ConformantVarying<T> {
    const MIN_LEN: usize = 4 /* max_count */ + 4 /* offset */ + 4 /* actual_count */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        let what = "conformant varying array";
        if usize::try_from(self.max_count).is_ok_and(|max| self.items.len() > max) {
            return Err(EncodeError::TooLong {
                what,
                field: "actual_count",
                value: self.items.len(),
                max: usize::try_from(self.max_count).unwrap_or(usize::MAX),
            });
        }
        w.u32(self.max_count);
        w.u32(0);
        w.count(self.items.len(), what)?;
        for item in &self.items {
            item.encode_scalars(w)?;
        }
        Ok(())
    }

    fn encode_buffers(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        for item in &self.items {
            item.encode_buffers(w)?;
        }
        Ok(())
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        let what = "conformant varying array";
        let max_count = r.u32(what)?;
        let actual = r.variance(what, max_count, T::MIN_LEN.max(1))?;
        // INVARIANT: `variance` checked `actual * MIN_LEN <= remaining`.
        let mut items = Vec::with_capacity(usize::try_from(actual).unwrap_or(0));
        for _ in 0..actual {
            items.push(T::decode_scalars(r)?);
        }
        Ok(Self { max_count, items })
    }

    fn decode_buffers(&mut self, r: &mut NdrReader<'_>) -> Result<(), NdrError> {
        for item in &mut self.items {
            item.decode_buffers(r)?;
        }
        Ok(())
    }
}

/// `String` is a `[string] wchar_t *` pointee: a conformant varying array of UTF-16 code units
/// whose last unit is the NUL ([C706 §14.3.4], [MS-RPCE §2.2.5.3.4.2]).
///
/// ```text
///  max_count (u32) | offset = 0 (u32) | actual_count (u32) | units[actual_count], last = 0
/// ```
///
/// [C706 §14.3.4]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
/// [MS-RPCE §2.2.5.3.4.2]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rpce/
impl Ndr for String {
    const MIN_LEN: usize = 4 /* max_count */ + 4 /* offset */ + 4 /* actual_count */ + 2 /* NUL */;

    fn encode_scalars(&self, w: &mut NdrWriter) -> Result<(), EncodeError> {
        encode_wstring(w, self, "[string] wchar_t")
    }

    fn decode_scalars(r: &mut NdrReader<'_>) -> Result<Self, NdrError> {
        decode_wstring(r, "[string] wchar_t")
    }
}

/// Writes a `[string] wchar_t *` pointee (see [`Ndr for String`](#impl-Ndr-for-String)).
///
/// # Errors
/// [`EncodeError::Inconsistent`] for a string holding a NUL; [`EncodeError::TooLong`].
pub fn encode_wstring(
    w: &mut NdrWriter,
    value: &str,
    what: &'static str,
) -> Result<(), EncodeError> {
    if value.contains('\0') {
        return Err(EncodeError::Inconsistent {
            what,
            field: "string",
            reason: "a [string] cannot hold a NUL before its end",
        });
    }
    let count = value.encode_utf16().count().saturating_add(1);
    w.count(count, what)?;
    w.u32(0);
    w.count(count, what)?;
    w.align(2);
    let drep = w.drep();
    for unit in value.encode_utf16().chain([0]) {
        w.bytes(&drep.u16_bytes(unit));
    }
    Ok(())
}

/// Reads a `[string] wchar_t *` pointee: offset must be 0, `actual_count <= max_count`, the last
/// unit NUL and no other NUL, the units valid UTF-16.
///
/// # Errors
/// [`NdrError::NonZeroOffset`], [`NdrError::ActualCountAboveMax`], [`NdrError::CountTooLarge`],
/// [`NdrError::MissingNul`], [`NdrError::EmbeddedNul`], [`NdrError::InvalidUtf16`],
/// [`NdrError::Truncated`].
pub fn decode_wstring(r: &mut NdrReader<'_>, what: &'static str) -> Result<String, NdrError> {
    let max_count = r.u32(what)?;
    let actual = r.variance(what, max_count, 2)?;
    let units = r.u16_units(actual, what)?;
    string_from_units(&units, what)
}

/// The text of NUL-terminated UTF-16 `units`.
///
/// # Errors
/// [`NdrError::MissingNul`], [`NdrError::EmbeddedNul`], [`NdrError::InvalidUtf16`].
pub fn string_from_units(units: &[u16], what: &'static str) -> Result<String, NdrError> {
    let Some((&0, text)) = units.split_last() else {
        return Err(NdrError::MissingNul { what });
    };
    if text.contains(&0) {
        return Err(NdrError::EmbeddedNul { what });
    }
    char::decode_utf16(text.iter().copied())
        .collect::<Result<String, _>>()
        .map_err(|_| NdrError::InvalidUtf16 { what })
}

/// Writes the `offset`, `actual_count` and characters of a varying `[string] char` array
/// holding `value` plus its NUL, one octet per character (ISO 8859-1, so any octet round-trips).
///
/// # Errors
/// [`EncodeError::Inconsistent`] for a character above U+00FF or a NUL;
/// [`EncodeError::TooLong`] when the string plus NUL exceeds `max` characters.
pub fn encode_char_variance(
    w: &mut NdrWriter,
    value: &str,
    max: usize,
    what: &'static str,
) -> Result<(), EncodeError> {
    let octets = latin1(value, what)?;
    let count = octets.len().saturating_add(1);
    if count > max {
        return Err(EncodeError::TooLong {
            what,
            field: "actual_count",
            value: count,
            max,
        });
    }
    w.u32(0);
    w.count(count, what)?;
    w.bytes(&octets);
    w.u8(0);
    Ok(())
}

/// Reads the `offset`, `actual_count` and characters of a varying `[string] char` array of at
/// most `max_count` characters (NUL included), as ISO 8859-1.
///
/// # Errors
/// As [`decode_wstring`].
pub fn decode_char_variance(
    r: &mut NdrReader<'_>,
    max_count: u32,
    what: &'static str,
) -> Result<String, NdrError> {
    let actual = r.variance(what, max_count, 1)?;
    let len = usize::try_from(actual).unwrap_or(usize::MAX);
    let octets = r.take(len, what)?;
    let Some((&0, text)) = octets.split_last() else {
        return Err(NdrError::MissingNul { what });
    };
    if text.contains(&0) {
        return Err(NdrError::EmbeddedNul { what });
    }
    Ok(text.iter().copied().map(char::from).collect())
}

fn latin1(value: &str, what: &'static str) -> Result<Vec<u8>, EncodeError> {
    value
        .chars()
        .map(|c| match u8::try_from(u32::from(c)) {
            Ok(0) => Err(EncodeError::Inconsistent {
                what,
                field: "string",
                reason: "a [string] cannot hold a NUL before its end",
            }),
            Ok(octet) => Ok(octet),
            Err(_) => Err(EncodeError::Inconsistent {
                what,
                field: "string",
                reason: "character above U+00FF in an octet string",
            }),
        })
        .collect()
}

/// Checks that a count parameter equals the count of the array it sizes (decode side).
///
/// # Errors
/// [`NdrError::CountMismatch`].
pub fn check_count_param(
    what: &'static str,
    field: &'static str,
    count: u32,
    array_len: usize,
) -> Result<(), NdrError> {
    let array_count = u32::try_from(array_len).unwrap_or(u32::MAX);
    if count == array_count {
        Ok(())
    } else {
        Err(NdrError::CountMismatch {
            what,
            field,
            count,
            array_count,
        })
    }
}

/// Checks that a count parameter equals the count of the array it sizes (encode side).
///
/// # Errors
/// [`EncodeError::Inconsistent`].
pub fn check_count_field(
    what: &'static str,
    field: &'static str,
    count: u32,
    array_len: usize,
) -> Result<(), EncodeError> {
    if usize::try_from(count).is_ok_and(|c| c == array_len) {
        Ok(())
    } else {
        Err(EncodeError::Inconsistent {
            what,
            field,
            reason: "does not equal the length of the array it sizes",
        })
    }
}

#[cfg(test)]
mod tests;
