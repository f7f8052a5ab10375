//! The `call` object of a decoded stub: interface, opnum, IDL name, direction and parameters.

use bytes::Bytes;
use dsbackup_proto::iface::Interface;
use dsbackup_proto::observe::{CallError, Decoded, Half, ObservedCall, decode_call};
use dsbackup_proto::{DataRep, SyntaxId};
use serde_json::{Map, Value, json};

/// The `call` object without parameters.
fn call_head(iface: Interface, opnum: u16, half: Half) -> Map<String, Value> {
    let mut call = Map::new();
    call.insert("interface".into(), json!(iface.id().name));
    call.insert("opnum".into(), json!(opnum));
    call.insert(
        "name".into(),
        json!(iface.id().call(opnum).map(|info| info.name)),
    );
    call.insert("direction".into(), json!(half.name()));
    call
}

/// The `call` object of an interface that is not decoded: its UUID and version in place of a
/// name.
fn unknown_call_head(syntax: &SyntaxId, opnum: u16, half: Half) -> Map<String, Value> {
    let mut call = Map::new();
    call.insert("interface".into(), Value::Null);
    call.insert("interface_uuid".into(), json!(syntax.uuid.to_string()));
    call.insert(
        "interface_version".into(),
        json!(format!("{}.{}", syntax.version, syntax.version_minor)),
    );
    call.insert("opnum".into(), json!(opnum));
    call.insert("name".into(), Value::Null);
    call.insert("direction".into(), json!(half.name()));
    call
}

/// The `call` object of a decoded stub: its head, `params` by IDL name, and `trailing` (hex of
/// the bytes past the last parameter) when there are any.
fn decoded_json(
    iface: Interface,
    opnum: u16,
    half: Half,
    decoded: &Decoded,
) -> Result<Value, String> {
    // The decoded stub serializes as `{"<call name>": {<params>}}`: keep the inner object.
    let value = serde_json::to_value(&decoded.stub).map_err(|error| error.to_string())?;
    let mut params = match value {
        Value::Object(map) => map.into_iter().next().map_or(Value::Null, |(_, v)| v),
        other => other,
    };
    if iface == Interface::Epm {
        super::tower::annotate(&mut params);
    }
    let mut call = call_head(iface, opnum, half);
    call.insert("params".into(), params);
    if !decoded.trailing.is_empty() {
        call.insert("trailing".into(), json!(hex::encode(&decoded.trailing)));
    }
    Ok(Value::Object(call))
}

/// Adds what the observer told of a call to a PDU's object: `call`, and `call_error` when its
/// parameters do not decode.
pub(crate) fn observed(call: &ObservedCall, out: &mut Map<String, Value>) {
    let Some(iface) = call.iface else {
        let head = unknown_call_head(&call.syntax, call.opnum, call.half);
        out.insert("call".into(), Value::Object(head));
        return;
    };
    let head = || Value::Object(call_head(iface, call.opnum, call.half));
    match &call.params {
        // Sealed without the password, or failing its check: the PDU's `sealed` or
        // `security_error` says so, and nothing more.
        Some(Err(CallError::Unreadable)) => {}
        None => {
            out.insert("call".into(), head());
        }
        Some(Ok(decoded)) => match decoded_json(iface, call.opnum, call.half, decoded) {
            Ok(value) => {
                out.insert("call".into(), value);
            }
            Err(error) => {
                out.insert("call".into(), head());
                out.insert("call_error".into(), json!(error));
            }
        },
        Some(Err(error)) => {
            out.insert("call".into(), head());
            out.insert("call_error".into(), json!(error.to_string()));
        }
    }
}

/// Decodes a bare `stub` as `half` of call `opnum` of `iface`: the `call` object, or the reason
/// the stub does not decode.
pub(crate) fn bare(
    iface: Interface,
    opnum: u16,
    half: Half,
    drep: DataRep,
    stub: Vec<u8>,
) -> Result<Value, String> {
    let Some(direction) = half.direction() else {
        return Ok(Value::Object(call_head(iface, opnum, half)));
    };
    let decoded = decode_call(iface, opnum, direction, drep, &Bytes::from(stub))
        .map_err(|error| error.to_string())?;
    decoded_json(iface, opnum, half, &decoded)
}
