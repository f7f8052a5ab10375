//! [`NdrReader`]: a cursor over the bytes of one call stub.

use bytes::Bytes;

use crate::drep::DataRep;
use crate::ndr::error::NdrError;
use crate::ndr::{Ndr, PointerKind};

/// Reads NDR 2.0 primitives from a call stub, in the stub's data representation.
///
/// Alignment is relative to the first byte of the stub ([C706 §14.2.2]: "alignment is computed
/// from the beginning of the octet stream"), which is where the reader starts.
///
/// [C706 §14.2.2]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
#[derive(Debug)]
pub struct NdrReader<'a> {
    stub: &'a [u8],
    source: Option<&'a Bytes>,
    pos: usize,
    drep: DataRep,
    /// Referent ids of the full pointers seen so far (bounded by `stub.len() / 4`).
    full_referents: Vec<u32>,
}

impl<'a> NdrReader<'a> {
    /// A reader at the start of `stub`.
    pub fn new(drep: DataRep, stub: &'a [u8]) -> Self {
        Self {
            stub,
            source: None,
            pos: 0,
            drep,
            full_referents: Vec::new(),
        }
    }

    /// A reader over a shared buffer: large byte arrays are returned as slices of `stub`
    /// instead of copies (see [`NdrReader::byte_run`]).
    pub fn from_bytes(drep: DataRep, stub: &'a Bytes) -> Self {
        Self {
            source: Some(stub),
            ..Self::new(drep, stub)
        }
    }

    /// The data representation of the stub.
    pub const fn drep(&self) -> DataRep {
        self.drep
    }

    /// Offset from the start of the stub.
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub const fn remaining(&self) -> usize {
        self.stub.len().saturating_sub(self.pos)
    }

    /// Skips the padding up to the next multiple of `align` (1, 2, 4 or 8). The padding's
    /// content is ignored, as NDR leaves it undefined.
    ///
    /// # Errors
    /// [`NdrError::Truncated`] when the padding runs past the end of the stub.
    pub fn align(&mut self, align: usize) -> Result<(), NdrError> {
        let pad = padding(self.pos, align);
        self.take(pad, "alignment padding").map(drop)
    }

    /// The next `len` bytes, unaligned.
    ///
    /// # Errors
    /// [`NdrError::Truncated`] when fewer than `len` bytes remain.
    pub fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], NdrError> {
        let end = self.pos.checked_add(len);
        let bytes = end
            .and_then(|end| self.stub.get(self.pos..end))
            .ok_or_else(|| NdrError::Truncated {
                what,
                needed: len,
                available: self.remaining(),
            })?;
        self.pos = self.pos.saturating_add(len);
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], NdrError> {
        self.align(N)?;
        let bytes = self.take(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// An `unsigned small` (`byte`).
    ///
    /// # Errors
    /// [`NdrError::Truncated`].
    pub fn u8(&mut self, what: &'static str) -> Result<u8, NdrError> {
        self.array::<1>(what).map(|[b]| b)
    }

    /// An `unsigned short`, 2-aligned.
    ///
    /// # Errors
    /// [`NdrError::Truncated`].
    pub fn u16(&mut self, what: &'static str) -> Result<u16, NdrError> {
        let bytes = self.array(what)?;
        Ok(self.drep.u16(bytes))
    }

    /// An `unsigned long`, 4-aligned.
    ///
    /// # Errors
    /// [`NdrError::Truncated`].
    pub fn u32(&mut self, what: &'static str) -> Result<u32, NdrError> {
        let bytes = self.array(what)?;
        Ok(self.drep.u32(bytes))
    }

    /// A `long`, 4-aligned.
    ///
    /// # Errors
    /// [`NdrError::Truncated`].
    pub fn i32(&mut self, what: &'static str) -> Result<i32, NdrError> {
        self.u32(what).map(|v| i32::from_ne_bytes(v.to_ne_bytes()))
    }

    /// An `unsigned hyper`, 8-aligned.
    ///
    /// # Errors
    /// [`NdrError::Truncated`].
    pub fn u64(&mut self, what: &'static str) -> Result<u64, NdrError> {
        let bytes = self.array(what)?;
        Ok(self.drep.u64(bytes))
    }

    /// A `hyper`, 8-aligned.
    ///
    /// # Errors
    /// [`NdrError::Truncated`].
    pub fn i64(&mut self, what: &'static str) -> Result<i64, NdrError> {
        self.u64(what).map(|v| i64::from_ne_bytes(v.to_ne_bytes()))
    }

    /// An `enum`: NDR transmits it as an `unsigned short` ([C706 §14.2.11]).
    ///
    /// [C706 §14.2.11]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
    ///
    /// # Errors
    /// [`NdrError::Truncated`].
    pub fn enum16(&mut self, what: &'static str) -> Result<u16, NdrError> {
        self.u16(what)
    }

    /// A `boolean`: one octet, 0 is false and any other value true ([C706 §14.2.3]).
    ///
    /// [C706 §14.2.3]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
    ///
    /// # Errors
    /// [`NdrError::Truncated`].
    pub fn boolean(&mut self, what: &'static str) -> Result<bool, NdrError> {
        self.u8(what).map(|b| b != 0)
    }

    /// An `unsigned long` checked against an IDL `range(min, max)`.
    ///
    /// # Errors
    /// [`NdrError::Truncated`], [`NdrError::OutOfRange`].
    pub fn u32_in_range(
        &mut self,
        what: &'static str,
        min: u32,
        max: u32,
    ) -> Result<u32, NdrError> {
        let value = self.u32(what)?;
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(NdrError::OutOfRange {
                what,
                value: value.into(),
                min: min.into(),
                max: max.into(),
            })
        }
    }

    /// The referent id of a pointer: `true` when a pointee follows (now, or deferred).
    ///
    /// # Errors
    /// [`NdrError::Truncated`]; [`NdrError::NullRefPointer`] for a null `[ref]` pointer;
    /// [`NdrError::RepeatedReferent`] when a full pointer repeats an earlier id.
    pub fn referent(&mut self, kind: PointerKind, what: &'static str) -> Result<bool, NdrError> {
        let id = self.u32(what)?;
        match (kind, id) {
            (PointerKind::Ref, 0) => Err(NdrError::NullRefPointer { what }),
            (_, 0) => Ok(false),
            (PointerKind::Full, id) => {
                if self.full_referents.contains(&id) {
                    return Err(NdrError::RepeatedReferent {
                        what,
                        referent_id: id,
                    });
                }
                // INVARIANT: one entry per 4 bytes read, so the list is bounded by the stub.
                self.full_referents.push(id);
                Ok(true)
            }
            _ => Ok(true),
        }
    }

    /// A count (conformance or actual count) announcing `count` elements of at least
    /// `element_size` wire bytes each, checked against the remaining bytes before any allocation.
    ///
    /// # Errors
    /// [`NdrError::Truncated`], [`NdrError::CountTooLarge`].
    pub fn count(&mut self, what: &'static str, element_size: usize) -> Result<u32, NdrError> {
        let count = self.u32(what)?;
        self.check_count(what, count, element_size)?;
        Ok(count)
    }

    /// Fails when `count` elements of `element_size` bytes cannot fit in what remains.
    ///
    /// # Errors
    /// [`NdrError::CountTooLarge`].
    pub fn check_count(
        &self,
        what: &'static str,
        count: u32,
        element_size: usize,
    ) -> Result<(), NdrError> {
        count_fits(what, count, element_size, self.remaining())
    }

    /// The `offset` and `actual_count` of a varying array, with `offset == 0` and
    /// `actual_count <= max_count` enforced, and the elements checked against the remaining bytes.
    ///
    /// # Errors
    /// [`NdrError::Truncated`], [`NdrError::NonZeroOffset`], [`NdrError::ActualCountAboveMax`],
    /// [`NdrError::CountTooLarge`].
    pub fn variance(
        &mut self,
        what: &'static str,
        max_count: u32,
        element_size: usize,
    ) -> Result<u32, NdrError> {
        let offset = self.u32(what)?;
        if offset != 0 {
            return Err(NdrError::NonZeroOffset { what, offset });
        }
        let actual_count = self.u32(what)?;
        if actual_count > max_count {
            return Err(NdrError::ActualCountAboveMax {
                what,
                actual_count,
                max_count,
            });
        }
        self.check_count(what, actual_count, element_size)?;
        Ok(actual_count)
    }

    /// `count` bytes as [`Bytes`]: a slice of the shared buffer when the reader was built with
    /// [`NdrReader::from_bytes`], a copy otherwise.
    ///
    /// # Errors
    /// [`NdrError::Truncated`].
    pub fn byte_run(&mut self, count: u32, what: &'static str) -> Result<Bytes, NdrError> {
        let len = usize::try_from(count).map_err(|_| NdrError::Truncated {
            what,
            needed: usize::MAX,
            available: self.remaining(),
        })?;
        let slice = self.take(len, what)?;
        Ok(match self.source {
            Some(source) => source.slice_ref(slice),
            None => Bytes::copy_from_slice(slice),
        })
    }

    /// `count` UTF-16 code units (2-aligned; the caller has aligned for the header already).
    ///
    /// # Errors
    /// [`NdrError::Truncated`], [`NdrError::CountTooLarge`].
    pub fn u16_units(&mut self, count: u32, what: &'static str) -> Result<Vec<u16>, NdrError> {
        self.check_count(what, count, 2)?;
        let len = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .saturating_mul(2);
        self.align(2)?;
        let bytes = self.take(len, what)?;
        let drep = self.drep;
        Ok(bytes
            .chunks_exact(2)
            .map(|pair| {
                drep.u16([
                    pair.first().copied().unwrap_or(0),
                    pair.get(1).copied().unwrap_or(0),
                ])
            })
            .collect())
    }

    /// `count` elements of `T`: first every element's scalars, then every element's deferred
    /// pointees, in order ([C706 §14.3.12.3]).
    ///
    /// [C706 §14.3.12.3]: https://pubs.opengroup.org/onlinepubs/9629399/chap14.htm
    ///
    /// # Errors
    /// Whatever an element's decoder returns; [`NdrError::CountTooLarge`] first.
    pub fn elements<T: Ndr>(&mut self, count: u32, what: &'static str) -> Result<Vec<T>, NdrError> {
        self.check_count(what, count, T::MIN_LEN.max(1))?;
        // INVARIANT: `count * MIN_LEN <= remaining`, so the capacity is bounded by the stub.
        let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for _ in 0..count {
            out.push(T::decode_scalars(self)?);
        }
        for element in &mut out {
            element.decode_buffers(self)?;
        }
        Ok(out)
    }

    /// A whole value of `T` (scalars, then deferred pointees): a top-level parameter.
    ///
    /// # Errors
    /// Whatever `T`'s decoder returns.
    pub fn param<T: Ndr>(&mut self) -> Result<T, NdrError> {
        let mut value = T::decode_scalars(self)?;
        value.decode_buffers(self)?;
        Ok(value)
    }

    /// Ends the stub: no byte may remain after the last parameter.
    ///
    /// # Errors
    /// [`NdrError::TrailingBytes`].
    pub const fn finish(&self, what: &'static str) -> Result<(), NdrError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(NdrError::TrailingBytes { what, count }),
        }
    }
}

/// Fails when `count` elements of `element_size` bytes cannot fit in `available` bytes.
pub(crate) fn count_fits(
    what: &'static str,
    count: u32,
    element_size: usize,
    available: usize,
) -> Result<(), NdrError> {
    let needed = usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(element_size));
    match needed {
        Some(needed) if needed <= available => Ok(()),
        _ => Err(NdrError::CountTooLarge {
            what,
            count,
            element_size,
            available,
        }),
    }
}

/// Padding from `pos` up to the next multiple of `align` (a power of two).
pub(crate) const fn padding(pos: usize, align: usize) -> usize {
    if align <= 1 {
        0
    } else {
        (align - pos % align) % align
    }
}
