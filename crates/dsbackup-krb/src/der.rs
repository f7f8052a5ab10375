//! The subset of DER ([X.690]) that Kerberos messages use: single-byte tags (universal,
//! application and context classes), definite lengths, INTEGER, OCTET STRING, BIT STRING,
//! GeneralString, GeneralizedTime, SEQUENCE (OF).
//!
//! The reader borrows from the input and never allocates by a length it read: a length
//! longer than what is left is an error before anything is copied.
//!
//! [X.690]: https://www.itu.int/rec/T-REC-X.690

use crate::error::DecodeError;

pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;
pub(crate) const GENERAL_STRING: u8 = 0x1b;
pub(crate) const SEQUENCE: u8 = 0x30;

/// The tag of `[APPLICATION n]` (constructed).
pub(crate) const fn application(n: u8) -> u8 {
    0x60 | n
}

/// The tag of an explicit `[n]` (context class, constructed).
pub(crate) const fn context(n: u8) -> u8 {
    0xa0 | n
}

/// A cursor over DER bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError::new(self.what, reason)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// The next element: its tag and contents.
    pub(crate) fn tlv(&mut self) -> Result<(u8, &'a [u8]), DecodeError> {
        let (&tag, rest) = self
            .buf
            .split_first()
            .ok_or_else(|| self.err("truncated"))?;
        if tag & 0x1f == 0x1f {
            return Err(self.err("multi-byte tag"));
        }
        let (&first, mut rest) = rest
            .split_first()
            .ok_or_else(|| self.err("truncated length"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(self.err("unsupported length form"));
            }
            let (bytes, after) = rest
                .split_at_checked(n)
                .ok_or_else(|| self.err("truncated length"))?;
            rest = after;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let (contents, after) = rest
            .split_at_checked(len)
            .ok_or_else(|| self.err("length past the end"))?;
        self.buf = after;
        Ok((tag, contents))
    }

    /// The next element, which must carry `tag`.
    pub(crate) fn expect(&mut self, tag: u8) -> Result<&'a [u8], DecodeError> {
        let (got, contents) = self.tlv()?;
        if got == tag {
            Ok(contents)
        } else {
            Err(self.err("unexpected tag"))
        }
    }

    /// A reader over the contents of the next element, which must carry `tag`.
    pub(crate) fn nested(&mut self, tag: u8) -> Result<Self, DecodeError> {
        let contents = self.expect(tag)?;
        Ok(Self::new(contents, self.what))
    }

    /// The contents of `[n]` if it comes next.
    pub(crate) fn optional(&mut self, n: u8) -> Result<Option<Self>, DecodeError> {
        if self.peek_tag() == Some(context(n)) {
            self.nested(context(n)).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The contents of `[n]`, which must come next.
    pub(crate) fn field(&mut self, n: u8) -> Result<Self, DecodeError> {
        self.optional(n)?.ok_or_else(|| self.err("missing field"))
    }

    pub(crate) fn integer(&mut self) -> Result<i64, DecodeError> {
        let bytes = self.expect(INTEGER)?;
        if bytes.is_empty() || bytes.len() > 8 {
            return Err(self.err("integer out of range"));
        }
        let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
        let init: i64 = if negative { -1 } else { 0 };
        Ok(bytes.iter().fold(init, |acc, &b| (acc << 8) | i64::from(b)))
    }

    pub(crate) fn int32(&mut self) -> Result<i32, DecodeError> {
        let v = self.integer()?;
        i32::try_from(v).map_err(|_| self.err("integer out of range"))
    }

    /// A UInt32; some encoders write large values as negative Int32s, which are taken modulo 2^32.
    pub(crate) fn uint32(&mut self) -> Result<u32, DecodeError> {
        let v = self.integer()?;
        if let Ok(u) = u32::try_from(v) {
            Ok(u)
        } else {
            i32::try_from(v)
                .map(i32::cast_unsigned)
                .map_err(|_| self.err("integer out of range"))
        }
    }

    pub(crate) fn octets(&mut self) -> Result<&'a [u8], DecodeError> {
        self.expect(OCTET_STRING)
    }

    pub(crate) fn string(&mut self) -> Result<&'a str, DecodeError> {
        let bytes = self.expect(GENERAL_STRING)?;
        core::str::from_utf8(bytes).map_err(|_| self.err("string is not UTF-8"))
    }

    /// A BIT STRING of at most 32 bits, as the big-endian u32 Kerberos flags use.
    pub(crate) fn flags(&mut self) -> Result<u32, DecodeError> {
        let bytes = self.expect(BIT_STRING)?;
        let (_, bits) = bytes
            .split_first()
            .ok_or_else(|| self.err("empty bit string"))?;
        let mut word = [0u8; 4];
        for (w, b) in word.iter_mut().zip(bits) {
            *w = *b;
        }
        Ok(u32::from_be_bytes(word))
    }

    pub(crate) fn time(&mut self) -> Result<KerberosTime, DecodeError> {
        let bytes = self.expect(GENERALIZED_TIME)?;
        KerberosTime::parse(bytes).ok_or_else(|| self.err("bad GeneralizedTime"))
    }

    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

/// A KerberosTime: seconds since 1970-01-01T00:00:00Z (whole seconds; microseconds travel in
/// separate fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KerberosTime(pub i64);

impl KerberosTime {
    /// `YYYYMMDDHHMMSSZ`.
    fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 15 || bytes.last() != Some(&b'Z') {
            return None;
        }
        let num = |range: core::ops::Range<usize>| -> Option<i64> {
            let digits = bytes.get(range)?;
            digits.iter().try_fold(0i64, |acc, &d| {
                d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
            })
        };
        let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
        let (hour, minute, second) = (num(8..10)?, num(10..12)?, num(12..14)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
            return None;
        }
        if second > 60 {
            return None;
        }
        let days = days_from_civil(year, month, day);
        Some(Self(days * 86_400 + hour * 3600 + minute * 60 + second))
    }

    /// `YYYYMMDDHHMMSSZ`.
    pub(crate) fn encode(self) -> [u8; 15] {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let mut out = [b'0'; 15];
        let fields = [
            (0usize, 4usize, year.clamp(0, 9999)),
            (4, 2, month),
            (6, 2, day),
            (8, 2, secs / 3600),
            (10, 2, secs / 60 % 60),
            (12, 2, secs % 60),
        ];
        for (start, width, mut value) in fields {
            for i in (start..start + width).rev() {
                if let Some(slot) = out.get_mut(i) {
                    *slot = b'0' + u8::try_from(value % 10).unwrap_or(0);
                }
                value /= 10;
            }
        }
        if let Some(z) = out.last_mut() {
            *z = b'Z';
        }
        out
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the well-known era-based formula).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The mirror of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends one element: tag, definite length, contents.
pub(crate) fn tlv(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    push_len(out, contents.len());
    out.extend_from_slice(contents);
}

/// One element as a new vector.
pub(crate) fn element(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    tlv(&mut out, tag, contents);
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let used = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | u8::try_from(used.len()).unwrap_or(0));
        out.extend_from_slice(used);
    }
}

/// A builder of the contents of a SEQUENCE of explicitly tagged fields.
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<u8>);

impl Fields {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// `[n]` around an already encoded element.
    pub(crate) fn raw(mut self, n: u8, encoded: &[u8]) -> Self {
        tlv(&mut self.0, context(n), encoded);
        self
    }

    pub(crate) fn int(self, n: u8, value: i64) -> Self {
        self.raw(n, &integer(value))
    }

    pub(crate) fn octets(self, n: u8, value: &[u8]) -> Self {
        self.raw(n, &element(OCTET_STRING, value))
    }

    pub(crate) fn string(self, n: u8, value: &str) -> Self {
        self.raw(n, &element(GENERAL_STRING, value.as_bytes()))
    }

    pub(crate) fn time(self, n: u8, value: KerberosTime) -> Self {
        self.raw(n, &element(GENERALIZED_TIME, &value.encode()))
    }

    pub(crate) fn flags(self, n: u8, value: u32) -> Self {
        let mut contents = vec![0u8];
        contents.extend_from_slice(&value.to_be_bytes());
        self.raw(n, &element(BIT_STRING, &contents))
    }

    /// The SEQUENCE, wrapped in `[APPLICATION app]` when given.
    pub(crate) fn sequence(self, app: Option<u8>) -> Vec<u8> {
        let seq = element(SEQUENCE, &self.0);
        match app {
            Some(n) => element(application(n), &seq),
            None => seq,
        }
    }
}

/// An INTEGER in its shortest two's-complement form.
pub(crate) fn integer(value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (Some(&b), Some(&next)) = (bytes.get(start), bytes.get(start + 1)) else {
            break;
        };
        let redundant = (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    element(INTEGER, bytes.get(start..).unwrap_or_default())
}

/// A SEQUENCE OF already encoded elements.
pub(crate) fn sequence_of<I: IntoIterator<Item = Vec<u8>>>(items: I) -> Vec<u8> {
    let contents: Vec<u8> = items.into_iter().flatten().collect();
    element(SEQUENCE, &contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_in_shortest_form() {
        for (value, der) in [
            (0i64, &[2, 1, 0][..]),
            (127, &[2, 1, 0x7f]),
            (128, &[2, 2, 0, 0x80]),
            (-1, &[2, 1, 0xff]),
            (-129, &[2, 2, 0xff, 0x7f]),
            (0x1234_5678, &[2, 4, 0x12, 0x34, 0x56, 0x78]),
        ] {
            assert_eq!(integer(value), der, "{value}");
            assert_eq!(Reader::new(der, "t").integer().unwrap(), value);
        }
    }

    #[test]
    fn times_round_trip() {
        let t = KerberosTime::parse(b"20261202193500Z").unwrap();
        assert_eq!(t.0, 1_796_240_100);
        assert_eq!(&t.encode(), b"20261202193500Z");
        assert_eq!(&KerberosTime(0).encode(), b"19700101000000Z");
        assert!(KerberosTime::parse(b"20261302193500Z").is_none());
    }

    #[test]
    fn lengths_past_the_end_are_refused_before_reading() {
        // Claims 2^32-1 bytes of contents.
        let der = [0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0];
        assert!(Reader::new(&der, "t").octets().is_err());
        let long = element(OCTET_STRING, &[7; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(Reader::new(&long, "t").octets().unwrap(), &[7; 300][..]);
    }
}
