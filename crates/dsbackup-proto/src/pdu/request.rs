//! [C706 §12.6.4.9] request.
//!
//! ```text
//!  16                  20          22          24                         (40)
//! +-------------------+-----------+-----------+--------------------------+------------------
//! |    alloc_hint     | p_cont_id |   opnum   | object (PFC_OBJECT_UUID) | stub ...
//! +-------------------+-----------+-----------+--------------------------+------------------
//! ```
//!
//! [C706 §12.6.4.9]: https://pubs.opengroup.org/onlinepubs/9629399/chap12.htm

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{PutDrep, Reader};
use crate::drep::DataRep;
use crate::error::DecodeError;
use crate::uuid::Uuid;

/// A request: one fragment of a call's input stub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `alloc_hint`: the whole stub's length as the sender expects it (a hint, never trusted
    /// for allocation).
    pub alloc_hint: u32,
    /// `p_cont_id`: the presentation context of the call.
    pub p_cont_id: u16,
    /// `opnum`.
    pub opnum: u16,
    /// `object`: present exactly when `PFC_OBJECT_UUID` is set; the encoder sets the flag
    /// from this field.
    pub object: Option<Uuid>,
    /// The stub fragment (without auth padding), a slice of the received frame.
    pub stub: Bytes,
}

impl Request {
    /// Fixed part: 4 /* alloc_hint */ + 2 /* p_cont_id */ + 2 /* opnum */.
    pub const FIXED_LEN: usize = 4 + 2 + 2;

    /// Bytes before the stub: the fixed part and the object UUID if any.
    pub fn stub_offset_in_body(&self) -> usize {
        Self::body_len_before_stub(self.object.is_some())
    }

    /// Bytes of the body before the stub, with or without an object UUID.
    pub(crate) const fn body_len_before_stub(has_object: bool) -> usize {
        if has_object {
            Self::FIXED_LEN + Uuid::LEN
        } else {
            Self::FIXED_LEN
        }
    }

    /// Exact number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        self.stub_offset_in_body() + self.stub.len()
    }

    /// Appends the body (without auth padding).
    pub fn encode(&self, drep: DataRep, dst: &mut BytesMut) {
        self.encode_fixed(drep, dst);
        dst.put_slice(&self.stub);
    }

    /// Appends the body up to the stub.
    pub fn encode_fixed(&self, drep: DataRep, dst: &mut BytesMut) {
        dst.put_u32_drep(drep, self.alloc_hint);
        dst.put_u16_drep(drep, self.p_cont_id);
        dst.put_u16_drep(drep, self.opnum);
        if let Some(object) = self.object {
            dst.put_uuid_drep(drep, object);
        }
    }

    pub(crate) fn decode(reader: &mut Reader, has_object: bool) -> Result<Self, DecodeError> {
        let alloc_hint = reader.u32()?;
        let p_cont_id = reader.u16()?;
        let opnum = reader.u16()?;
        let object = if has_object {
            Some(reader.uuid()?)
        } else {
            None
        };
        Ok(Self {
            alloc_hint,
            p_cont_id,
            opnum,
            object,
            stub: reader.rest(),
        })
    }
}
