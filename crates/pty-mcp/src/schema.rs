//! Lean tool schemas: what a client puts into the model's context on every turn, so every
//! character costs. The schemas schemars generates carry noise a model does not need
//! (`$schema`, titles, `format`, `default: null`, `["integer", "null"]` unions, `$ref`s); this
//! strips it and keeps every parameter, its plain type and its description.

use serde_json::{Map, Value};

/// Keys dropped wherever they appear.
const NOISE: [&str; 4] = ["$schema", "title", "format", "$comment"];

/// The schema without the noise, with `$ref`s to `$defs` inlined.
pub fn lean(schema: &Map<String, Value>) -> Map<String, Value> {
    let defs = schema.get("$defs").or_else(|| schema.get("definitions")).cloned().unwrap_or(Value::Null);
    let mut out = clean(&Value::Object(schema.clone()), &defs, 0);
    if let Value::Object(map) = &mut out {
        map.remove("$defs");
        map.remove("definitions");
        // The parameter struct's own doc comment: the tool's description says it.
        map.remove("description");
        // Optional fields are simply absent from `required`; an empty list says nothing.
        if map.get("required").and_then(Value::as_array).is_some_and(|r| r.is_empty()) {
            map.remove("required");
        }
        return std::mem::take(map);
    }
    Map::new()
}

fn clean(value: &Value, defs: &Value, depth: usize) -> Value {
    const MAX_DEPTH: usize = 16;
    let Value::Object(map) = value else {
        return match value {
            Value::Array(items) => Value::Array(items.iter().map(|v| clean(v, defs, depth + 1)).collect()),
            other => other.clone(),
        };
    };
    if depth < MAX_DEPTH
        && let Some(target) = map.get("$ref").and_then(Value::as_str).and_then(|r| resolve(r, defs))
    {
        let mut merged = target.as_object().cloned().unwrap_or_default();
        // A description next to the reference is the field's own: it wins.
        for (k, v) in map.iter().filter(|(k, _)| *k != "$ref") {
            merged.insert(k.clone(), v.clone());
        }
        return clean(&Value::Object(merged), defs, depth + 1);
    }
    let mut out = Map::new();
    for (key, v) in map {
        match key.as_str() {
            k if NOISE.contains(&k) => {}
            "default" if v.is_null() => {}
            // Unsigned integers need not say they are not negative.
            "minimum" if v.as_f64() == Some(0.0) => {}
            "type" => {
                out.insert(key.clone(), plain_type(v));
            }
            "anyOf" | "oneOf" => match without_null(v) {
                Some(single) => {
                    for (k, v) in clean(&single, defs, depth + 1).as_object().cloned().unwrap_or_default() {
                        out.entry(k).or_insert(v);
                    }
                }
                None => {
                    out.insert(key.clone(), clean(v, defs, depth + 1));
                }
            },
            "properties" => {
                let props = v.as_object().map(|p| {
                    p.iter().map(|(name, prop)| (name.clone(), clean(prop, defs, depth + 1))).collect::<Map<_, _>>()
                });
                out.insert(key.clone(), props.map(Value::Object).unwrap_or_else(|| v.clone()));
            }
            _ => {
                out.insert(key.clone(), clean(v, defs, depth + 1));
            }
        }
    }
    Value::Object(out)
}

/// `["integer", "null"]` becomes `"integer"`.
fn plain_type(v: &Value) -> Value {
    match v.as_array() {
        Some(types) => {
            let kept: Vec<Value> = types.iter().filter(|t| t.as_str() != Some("null")).cloned().collect();
            match kept.as_slice() {
                [one] => one.clone(),
                _ => Value::Array(kept),
            }
        }
        None => v.clone(),
    }
}

/// The one alternative of an `anyOf` that is not `null`, if that is all it says.
fn without_null(v: &Value) -> Option<Value> {
    let alternatives = v.as_array()?;
    let kept: Vec<&Value> =
        alternatives.iter().filter(|a| a.get("type").and_then(Value::as_str) != Some("null")).collect();
    (kept.len() == 1 && alternatives.len() == 2).then(|| kept[0].clone())
}

fn resolve<'a>(reference: &str, defs: &'a Value) -> Option<&'a Value> {
    let name = reference.strip_prefix("#/$defs/").or_else(|| reference.strip_prefix("#/definitions/"))?;
    defs.get(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn noise_goes_and_every_parameter_stays() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "SendInputParams",
            "type": "object",
            "properties": {
                "session_id": {"type": "string", "description": "The session."},
                "timeout_ms": {"type": ["integer", "null"], "format": "int64", "default": null, "description": "Wait."},
                "key": {"$ref": "#/$defs/Keys", "description": "Keys to press."},
                "rows": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}
            },
            "required": ["session_id"],
            "$defs": {"Keys": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}}
        });
        let lean = Value::Object(lean(schema.as_object().unwrap()));
        assert_eq!(
            lean,
            json!({
                "type": "object",
                "properties": {
                    "session_id": {"type": "string", "description": "The session."},
                    "timeout_ms": {"type": "integer", "description": "Wait."},
                    "key": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}], "description": "Keys to press."},
                    "rows": {"type": "integer"}
                },
                "required": ["session_id"]
            })
        );
    }
}
