//! Fuzzing oracles for the call types (built on stable; the cargo-fuzz targets call them).
//!
//! Each takes the first byte as a selector: bits 0..=4 pick the opnum, bit 5 the direction
//! (set: response), bit 6 the byte order (set: big-endian). The rest is the stub. When it
//! decodes, it must encode again to the same bytes, and those must decode to the same value.

use bytes::Bytes;

use crate::chain::Chain;
use crate::drep::DataRep;
use crate::iface::ad_backup::{AdBackupResponse, HrRBackupReadResponse};
use crate::iface::{Direction, Interface, decode_stub};

/// Oracle over `ad_backup` stubs; a read response must also decode from fragments exactly
/// as from one buffer.
pub fn decode_ad_backup(data: &[u8]) {
    round_trip(Interface::AdBackup, data);
    if let Some((&selector, stub)) = data.split_first()
        && selector & 0x3f == 0x20 | 4
    {
        read_from_fragments(selector, stub);
    }
}

/// Decodes an `HrRBackupRead` response stub cut into pieces (of 1 to 13 bytes, by its length)
/// with [`HrRBackupReadResponse::decode_chain`], and as one buffer: the results must agree.
///
/// # Panics
/// When they do not.
#[expect(
    clippy::panic,
    reason = "a fuzzing oracle reports a disagreement by panicking"
)]
fn read_from_fragments(selector: u8, stub: &[u8]) {
    let drep = if selector & 0x40 == 0 {
        DataRep::LITTLE_ENDIAN
    } else {
        DataRep::BIG_ENDIAN
    };
    let whole = Bytes::copy_from_slice(stub);
    let piece = 1 + stub.len() % 13;
    let chain: Chain = stub.chunks(piece).map(Bytes::copy_from_slice).collect();
    let from_pieces =
        HrRBackupReadResponse::decode_chain(drep, chain).map(AdBackupResponse::HrRBackupRead);
    let from_whole = AdBackupResponse::decode_shared(4, drep, &whole);
    if from_pieces != from_whole {
        panic!("HrRBackupRead response: {from_pieces:?} from pieces, {from_whole:?} whole");
    }
}

/// Oracle over `ad_restore` stubs.
pub fn decode_ad_restore(data: &[u8]) {
    round_trip(Interface::AdRestore, data);
}

/// Oracle over `epm` stubs.
pub fn decode_epm(data: &[u8]) {
    round_trip(Interface::Epm, data);
}

/// Oracle over `mgmt` stubs.
pub fn decode_mgmt(data: &[u8]) {
    round_trip(Interface::Mgmt, data);
}

/// Decodes, and on success checks that encoding gives a stub that decodes to the same value.
///
/// The bytes may differ from the input only where NDR leaves them free: alignment padding and
/// referent ids (which the encoder renumbers).
///
/// # Panics
/// When a decoded value does not survive encoding and decoding again: that is the bug the
/// oracle looks for.
#[expect(
    clippy::panic,
    reason = "a fuzzing oracle reports a failed round trip by panicking"
)]
fn round_trip(iface: Interface, data: &[u8]) {
    let Some((&selector, stub)) = data.split_first() else {
        return;
    };
    let opnum = u16::from(selector & 0x1f);
    let direction = if selector & 0x20 == 0 {
        Direction::Request
    } else {
        Direction::Response
    };
    let drep = if selector & 0x40 == 0 {
        DataRep::LITTLE_ENDIAN
    } else {
        DataRep::BIG_ENDIAN
    };
    let Ok(value) = decode_stub(iface, opnum, direction, drep, stub) else {
        return;
    };
    let encoded = match value.encode(drep) {
        Ok(encoded) => encoded,
        Err(error) => panic!("{iface} opnum {opnum}: decoded value does not encode: {error}"),
    };
    match decode_stub(iface, opnum, direction, drep, &encoded) {
        Ok(again) if again == value => {}
        Ok(again) => panic!("{iface} opnum {opnum}: round trip changed {value:?} into {again:?}"),
        Err(error) => panic!("{iface} opnum {opnum}: re-encoded stub does not decode: {error}"),
    }
    if value.encode(drep).ok().as_ref() != Some(&encoded) {
        panic!("{iface} opnum {opnum}: encoding is not deterministic");
    }
}
