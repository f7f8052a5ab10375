//! Private helpers shared by the PDU decoders and encoders: a bounds-checked reader over a frame
//! and writers in the frame's data representation.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use nom::number::Endianness;
use nom::number::complete as number;
use nom::{IResult, Parser};

use crate::drep::DataRep;
use crate::error::DecodeError;
use crate::ndr::reader::padding;
use crate::uuid::Uuid;

/// A cursor over part of a received frame: nom's `complete` parsers read each field in the
/// frame's byte order, and their errors become [`DecodeError`] here, at the module's edge, so
/// that nom never shows in an API. Sliced fields stay [`Bytes`] of the frame (no copy).
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
    drep: DataRep,
    what: &'static str,
    /// Offset of `buf` within the frame, for alignment.
    offset: usize,
}

/// nom's error type over a frame's bytes.
type NomError<'a> = nom::error::Error<&'a [u8]>;

impl Reader {
    /// A reader over `buf`, whose first byte is at `offset` in the frame.
    pub(crate) fn new(buf: Bytes, drep: DataRep, what: &'static str, offset: usize) -> Self {
        Self {
            buf,
            drep,
            what,
            offset,
        }
    }

    /// Fails unless `needed` bytes remain: called before allocating for a count from the wire.
    pub(crate) fn ensure(&self, needed: usize) -> Result<(), DecodeError> {
        if self.buf.len() < needed {
            return Err(self.truncated(needed));
        }
        Ok(())
    }

    fn truncated(&self, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            what: self.what,
            needed,
            available: self.buf.len(),
        }
    }

    fn endianness(&self) -> Endianness {
        if self.drep.is_little_endian() {
            Endianness::Little
        } else {
            Endianness::Big
        }
    }

    /// Runs a complete nom parser that needs `needed` bytes, and consumes what it read.
    fn parse<O>(
        &mut self,
        needed: usize,
        parser: impl FnOnce(&[u8]) -> IResult<&[u8], O>,
    ) -> Result<O, DecodeError> {
        let input: &[u8] = &self.buf;
        let (rest, value) = parser(input).map_err(|_| self.truncated(needed))?;
        let consumed = input.len() - rest.len();
        self.advance(consumed);
        Ok(value)
    }

    fn advance(&mut self, n: usize) {
        self.offset += n;
        self.buf.advance(n);
    }

    /// Takes `n` bytes as a slice of the frame (no copy).
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let input: &[u8] = &self.buf;
        let (_, field) = nom::bytes::complete::take::<_, _, NomError<'_>>(n)
            .parse(input)
            .map_err(|_| self.truncated(n))?;
        let field = self.buf.slice_ref(field);
        self.advance(n);
        Ok(field)
    }

    /// Takes everything that is left.
    pub(crate) fn rest(&mut self) -> Bytes {
        self.offset += self.buf.len();
        self.buf.split_off(0)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.parse(1, |input| number::u8(input))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let endianness = self.endianness();
        self.parse(2, |input| number::u16(endianness).parse(input))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let endianness = self.endianness();
        self.parse(4, |input| number::u32(endianness).parse(input))
    }

    pub(crate) fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        let drep = self.drep;
        self.parse(Uuid::LEN, |input| {
            nom::bytes::complete::take(Uuid::LEN)
                .map_opt(|bytes: &[u8]| bytes.try_into().ok())
                .map(|bytes| Uuid::from_wire(bytes, drep))
                .parse(input)
        })
    }

    /// Skips the padding up to the next multiple of `align` within the frame.
    pub(crate) fn align(&mut self, align: usize) -> Result<(), DecodeError> {
        let pad = padding(self.offset, align);
        self.take(pad).map(drop)
    }

    /// Fails when bytes are left.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                what: self.what,
                count: self.buf.len(),
            })
        }
    }
}

/// Writers in a data representation.
pub(crate) trait PutDrep {
    fn put_u16_drep(&mut self, drep: DataRep, value: u16);
    fn put_u32_drep(&mut self, drep: DataRep, value: u32);
    fn put_uuid_drep(&mut self, drep: DataRep, value: Uuid);
}

impl PutDrep for BytesMut {
    fn put_u16_drep(&mut self, drep: DataRep, value: u16) {
        self.put_slice(&drep.u16_bytes(value));
    }

    fn put_u32_drep(&mut self, drep: DataRep, value: u32) {
        self.put_slice(&drep.u32_bytes(value));
    }

    fn put_uuid_drep(&mut self, drep: DataRep, value: Uuid) {
        self.put_slice(&value.to_wire(drep));
    }
}

/// A count that must fit a `u8` wire field.
pub(crate) fn count_u8(
    what: &'static str,
    field: &'static str,
    value: usize,
) -> Result<u8, crate::error::EncodeError> {
    u8::try_from(value).map_err(|_| crate::error::EncodeError::TooLong {
        what,
        field,
        value,
        max: u8::MAX.into(),
    })
}

/// A length that must fit a `u16` wire field.
pub(crate) fn len_u16(
    what: &'static str,
    field: &'static str,
    value: usize,
) -> Result<u16, crate::error::EncodeError> {
    u16::try_from(value).map_err(|_| crate::error::EncodeError::TooLong {
        what,
        field,
        value,
        max: u16::MAX.into(),
    })
}
