//! RFC 8785 JSON Canonicalization Scheme (JCS) and strict JSON parsing. (stub: being written)

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JcsError(pub String);

/// Parse JSON text, refusing duplicate member names (I-JSON, RFC 7493) and excessive nesting.
pub fn parse_strict(text: &str) -> Result<Value, JcsError> {
    serde_json::from_str(text).map_err(|e| JcsError(e.to_string()))
}

/// The RFC 8785 canonical form of a value.
pub fn canonicalize(v: &Value) -> String {
    v.to_string()
}
