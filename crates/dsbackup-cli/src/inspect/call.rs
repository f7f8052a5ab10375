//! The `call` object of a decoded stub: interface, opnum, IDL name, direction and parameters.

use dsbackup_proto::iface::{Direction, Interface, decode_stub};
use dsbackup_proto::ndr::NdrError;
use dsbackup_proto::{DataRep, SyntaxId};
use serde_json::{Map, Value, json};

/// Which half of a call a PDU carries, faults included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Half {
    /// A request stub.
    Request,
    /// A response stub.
    Response,
    /// A fault in place of the response: no parameters.
    Fault,
}

impl Half {
    fn name(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
            Self::Fault => "fault",
        }
    }
}

/// The `call` object without parameters.
pub(crate) fn call_head(iface: Interface, opnum: u16, half: Half) -> Map<String, Value> {
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
pub(crate) fn unknown_call_head(syntax: &SyntaxId, opnum: u16, half: Half) -> Map<String, Value> {
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

/// Decodes `stub` as `half` of call `opnum` of `iface`: the `call` object with its `params`
/// (every parameter under its IDL name; bytes past the last parameter under `trailing`), or the
/// reason the stub does not decode.
pub(crate) fn decode_call(
    iface: Interface,
    opnum: u16,
    half: Half,
    drep: DataRep,
    stub: &[u8],
) -> Result<Value, String> {
    let direction = match half {
        Half::Request => Direction::Request,
        Half::Response => Direction::Response,
        Half::Fault => return Ok(Value::Object(call_head(iface, opnum, half))),
    };
    // Peers pad some stubs past their last parameter (rpcclient's sealed ept_map request
    // carries 60 such bytes; tshark shows them as extra stub data): decode what the
    // parameters take and show the rest as `trailing`.
    let (decoded, trailing) = match decode_stub(iface, opnum, direction, drep, stub) {
        Ok(decoded) => (decoded, None),
        Err(NdrError::TrailingBytes { count, .. }) => {
            let end = stub.len().saturating_sub(count);
            let (head, tail) = stub.split_at_checked(end).unwrap_or((stub, &[]));
            let decoded = decode_stub(iface, opnum, direction, drep, head)
                .map_err(|error| error.to_string())?;
            (decoded, Some(hex::encode(tail)))
        }
        Err(error) => return Err(error.to_string()),
    };
    // The decoded stub serializes as `{"<call name>": {<params>}}`: keep the inner object.
    let value = serde_json::to_value(&decoded).map_err(|error| error.to_string())?;
    let mut params = match value {
        Value::Object(map) => map.into_iter().next().map_or(Value::Null, |(_, v)| v),
        other => other,
    };
    if iface == Interface::Epm {
        super::tower::annotate(&mut params);
    }
    let mut call = call_head(iface, opnum, half);
    call.insert("params".into(), params);
    if let Some(trailing) = trailing {
        call.insert("trailing".into(), json!(trailing));
    }
    Ok(Value::Object(call))
}
