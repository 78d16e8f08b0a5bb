//! Phone numbers: normalisation to E.164 and masking for logs. (stub: being written)

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PhoneError(pub String);

/// Normalise a phone number to E.164 (`+8613800000000`).
pub fn normalize(s: &str) -> Result<String, PhoneError> {
    Ok(s.to_string())
}

/// `+8613812345678` → `138****5678`, for logs.
pub fn mask(e164: &str) -> String {
    e164.to_string()
}
