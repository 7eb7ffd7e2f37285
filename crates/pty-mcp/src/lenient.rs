//! Lenient argument decoding, as the Go pty-mcp accepts: `"5000"` for an integer and `"true"`
//! for a boolean. Agents quote numbers more often than one would think.

use serde::{Deserialize, Deserializer, de::Error};
use serde_json::Value;

/// An optional integer given as a number or a numeric string.
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected an integer, got {n}"))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| D::Error::custom(format!("expected an integer, got {s:?}")))
        }
        Some(other) => Err(D::Error::custom(format!("expected an integer, got {other}"))),
    }
}

/// An optional boolean given as a boolean, `"true"`/`"false"`, `"1"`/`"0"` or `"yes"`/`"no"`.
pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
        Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" | "" => Ok(Some(false)),
            _ => Err(D::Error::custom(format!("expected a boolean, got {s:?}"))),
        },
        Some(other) => Err(D::Error::custom(format!("expected a boolean, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct P {
        #[serde(default, deserialize_with = "super::int")]
        n: Option<i64>,
        #[serde(default, deserialize_with = "super::boolean")]
        b: Option<bool>,
    }

    fn parse(json: &str) -> Result<P, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn numbers_and_booleans_as_strings() {
        let p = parse(r#"{"n": "5000", "b": "true"}"#).unwrap();
        assert_eq!((p.n, p.b), (Some(5000), Some(true)));
        let p = parse(r#"{"n": 7.0, "b": false}"#).unwrap();
        assert_eq!((p.n, p.b), (Some(7), Some(false)));
        let p = parse("{}").unwrap();
        assert_eq!((p.n, p.b), (None, None));
        assert!(parse(r#"{"n": "soon"}"#).is_err());
        assert!(parse(r#"{"b": "maybe"}"#).is_err());
        assert!(parse(r#"{"n": 1.5}"#).is_err());
    }
}
