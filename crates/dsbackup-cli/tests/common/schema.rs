//! A JSON Schema checker for the subset `docs/schema/*.json` uses (draft 2020-12): `type`,
//! `properties`, `required`, `additionalProperties` (boolean), `items`, `prefixItems`,
//! `minItems`, `maxItems`, `enum`, `const`, `minimum`, `maximum`, `pattern` (anchored
//! character classes only: `^[0-9a-f]*$`, `^[0-9a-f]{64}$`, `^0x[0-9a-f]{8}$`), `oneOf`,
//! `anyOf`, and `$ref` to `#/$defs/NAME` or to a sibling file. A keyword it does not know
//! fails the check, so a schema cannot silently ask for more than is checked.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The directory of the schemas.
pub(crate) fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema")
}

/// Loads `docs/schema/NAME.json`.
pub(crate) fn load(name: &str) -> Value {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks `value` against the schema file `name`; every violation, by JSON pointer.
pub(crate) fn check(name: &str, value: &Value) -> Vec<String> {
    let root = load(name);
    let mut errors = Vec::new();
    walk(&root, &root, value, "", &mut errors);
    errors
}

/// Panics with the violations when `value` does not match `name`.
pub(crate) fn assert_valid(name: &str, value: &Value) {
    let errors = check(name, value);
    assert!(errors.is_empty(), "{name}: {errors:#?}\nin {value:#}");
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown type {other}"),
    }
}

/// `^PREFIX[CLASS]{N}$` or `^PREFIX[CLASS]*$` with CLASS ranges like `0-9a-f`.
fn pattern_matches(pattern: &str, text: &str) -> bool {
    let inner = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .unwrap_or_else(|| panic!("unanchored pattern {pattern}"));
    let (prefix, rest) = inner
        .split_once('[')
        .unwrap_or_else(|| panic!("pattern {pattern}"));
    let (class, count) = rest
        .split_once(']')
        .unwrap_or_else(|| panic!("pattern {pattern}"));
    let Some(body) = text.strip_prefix(prefix) else {
        return false;
    };
    let ranges: Vec<(char, char)> = class
        .as_bytes()
        .chunks(3)
        .map(|r| (char::from(r[0]), char::from(r[2])))
        .collect();
    let in_class = |c: char| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c));
    let len_ok = match count {
        "*" => true,
        n => {
            let n: usize = n
                .trim_start_matches('{')
                .trim_end_matches('}')
                .parse()
                .unwrap_or_else(|_| panic!("pattern {pattern}"));
            body.chars().count() == n
        }
    };
    len_ok && body.chars().all(in_class)
}

fn resolve<'a>(root: &'a Value, reference: &str) -> (Value, Option<&'a Value>) {
    if let Some(name) = reference.strip_prefix("#/$defs/") {
        let target = root["$defs"]
            .get(name)
            .unwrap_or_else(|| panic!("no $defs/{name}"));
        return (Value::Null, Some(target));
    }
    (load(reference), None)
}

fn walk(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema: &Map<String, Value> = match schema {
        Value::Bool(true) => return,
        Value::Object(map) => map,
        other => panic!("schema at {at} is {other}"),
    };
    for (keyword, rule) in schema {
        match keyword.as_str() {
            "$schema" | "$id" | "title" | "description" | "$defs" => {}
            "$ref" => {
                let reference = rule.as_str().unwrap();
                match resolve(root, reference) {
                    (_, Some(target)) => walk(root, target, value, at, errors),
                    (other_root, None) => walk(&other_root, &other_root, value, at, errors),
                }
            }
            "type" => {
                let names: Vec<&str> = match rule {
                    Value::String(name) => vec![name.as_str()],
                    Value::Array(names) => names.iter().map(|n| n.as_str().unwrap()).collect(),
                    other => panic!("type {other}"),
                };
                if !names.iter().any(|name| type_matches(name, value)) {
                    errors.push(format!("{at}: {value} is not of type {rule}"));
                }
            }
            "enum" => {
                if !rule.as_array().unwrap().contains(value) {
                    errors.push(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "const" => {
                if rule != value {
                    errors.push(format!("{at}: {value} is not {rule}"));
                }
            }
            "minimum" | "maximum" => {
                if let Some(number) = value.as_f64() {
                    let bound = rule.as_f64().unwrap();
                    let ok = if keyword == "minimum" {
                        number >= bound
                    } else {
                        number <= bound
                    };
                    if !ok {
                        errors.push(format!("{at}: {value} breaks {keyword} {rule}"));
                    }
                }
            }
            "pattern" => {
                if let Some(text) = value.as_str()
                    && !pattern_matches(rule.as_str().unwrap(), text)
                {
                    errors.push(format!("{at}: {text:?} does not match {rule}"));
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in rule.as_array().unwrap() {
                        let name = name.as_str().unwrap();
                        if !object.contains_key(name) {
                            errors.push(format!("{at}: no {name:?}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (name, sub) in rule.as_object().unwrap() {
                        if let Some(field) = object.get(name) {
                            walk(root, sub, field, &format!("{at}/{name}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                let allowed = schema.get("properties").and_then(Value::as_object);
                if rule == &Value::Bool(false)
                    && let Some(object) = value.as_object()
                {
                    for name in object.keys() {
                        if !allowed.is_some_and(|allowed| allowed.contains_key(name)) {
                            errors.push(format!("{at}: {name:?} is not in the schema"));
                        }
                    }
                } else {
                    assert_eq!(rule, &Value::Bool(false), "additionalProperties at {at}");
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    let skip = schema
                        .get("prefixItems")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    for (index, item) in items.iter().enumerate().skip(skip) {
                        walk(root, rule, item, &format!("{at}/{index}"), errors);
                    }
                }
            }
            "prefixItems" => {
                if let Some(items) = value.as_array() {
                    for (index, (sub, item)) in
                        rule.as_array().unwrap().iter().zip(items).enumerate()
                    {
                        walk(root, sub, item, &format!("{at}/{index}"), errors);
                    }
                }
            }
            "minItems" | "maxItems" => {
                if let Some(items) = value.as_array() {
                    let bound = usize::try_from(rule.as_u64().unwrap()).unwrap();
                    let ok = if keyword == "minItems" {
                        items.len() >= bound
                    } else {
                        items.len() <= bound
                    };
                    if !ok {
                        errors.push(format!(
                            "{at}: {} items breaks {keyword} {bound}",
                            items.len()
                        ));
                    }
                }
            }
            "oneOf" | "anyOf" => {
                let matching = rule
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|sub| {
                        let mut inner = Vec::new();
                        walk(root, sub, value, at, &mut inner);
                        inner.is_empty()
                    })
                    .count();
                let ok = if keyword == "oneOf" {
                    matching == 1
                } else {
                    matching >= 1
                };
                if !ok {
                    errors.push(format!(
                        "{at}: {matching} of the {keyword} branches match {value}"
                    ));
                }
            }
            other => panic!("schema keyword {other} at {at} is not checked by this walker"),
        }
    }
}
