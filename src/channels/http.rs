//! What every HTTP provider client shares: credentials from the environment, one pooled
//! `reqwest` client, and the one rule that keeps a citizen from getting a message twice — a call
//! whose fate is not known is `unknown`, never "failed, try again".

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::Outcome;

/// The URL of a provider's `endpoint` and its `Host` header (the host, and the port when the
/// URL names one): signed requests sign the header as one string, so it is computed once here.
/// `transport` names the channel's transport in the error (`tencent_sms endpoint "…" has no
/// host`).
pub fn endpoint(transport: &str, endpoint: &str) -> Result<(reqwest::Url, String), String> {
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| format!("{transport} endpoint {endpoint:?}: {e}"))?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(format!("{transport} endpoint {endpoint:?} has no host")),
    };
    Ok((url, host))
}

/// At most `n` calls a second (0 counts as 1), one at a time: a provider's limit on a kind of
/// call, kept without bursts so that a pass of status queries never overshoots it.
pub fn per_second(n: u32) -> DefaultDirectRateLimiter {
    let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_second(n).allow_burst(NonZeroU32::MIN))
}

/// A credential read from the environment. `Debug` and `Display` never show it, so it cannot
/// reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Read the variable named in a channel file (`secret_id_env = "TENCENTCLOUD_SECRET_ID"`).
    /// The error names the variable and the channel, never a value.
    pub fn from_env(var: &str, what: &str) -> Result<Secret, String> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
            Ok(_) => Err(format!("{what}: environment variable {var} is empty")),
            Err(std::env::VarError::NotPresent) => {
                Err(format!("{what}: environment variable {var} is not set"))
            }
            Err(std::env::VarError::NotUnicode(_)) => Err(format!(
                "{what}: environment variable {var} is not valid UTF-8"
            )),
        }
    }

    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for signing. Never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One pooled client per provider: connection reuse matters at 5,000 calls per notice.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// What a failed HTTP call means for the deliveries in it. Only a call that surely never reached
/// the provider (no connection, or the request could not even be built) is a plain transient
/// failure; a timeout or a connection lost mid-call may have been sent, so it is `unknown` and
/// goes to the provider's status query (SPEC §5: never a blind resend).
pub fn call_failed(e: &reqwest::Error) -> Outcome {
    if e.is_connect() || e.is_builder() {
        Outcome::Failed {
            code: "connect".into(),
            permanent: false,
            detail: without_url(e),
        }
    } else {
        Outcome::Unknown {
            detail: if e.is_timeout() {
                "the call timed out; it may have been sent".into()
            } else {
                format!(
                    "the call broke off; it may have been sent: {}",
                    without_url(e)
                )
            },
        }
    }
}

/// reqwest's messages carry the URL, which for some providers carries credentials or numbers.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<provider>");
    }
    s
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these providers).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// HMAC-SHA256 of `msg` under `key` (the providers' signatures), with ring's SHA-256 as
/// [`crate::ledger::audit::sha256_hex`] (which says why).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> ring::hmac::Tag {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), msg)
}

/// Lower-case hex, for signatures.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let e = Secret::from_env("DISCLOSE_TEST_NO_SUCH_VARIABLE", "channel sms").unwrap_err();
        assert_eq!(
            e,
            "channel sms: environment variable DISCLOSE_TEST_NO_SUCH_VARIABLE is not set"
        );
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
