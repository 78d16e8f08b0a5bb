//! The tamper-evident audit trail (SPEC §5, Art 17): every decision and every recorded delivery
//! outcome is an entry whose hash covers its own fields and the previous entry's hash, so changing,
//! removing or reordering any entry breaks every later link and `disclose audit verify` names the
//! first broken one.

use ring::digest::{Context, SHA256};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Audit entry kinds.
pub const JOB_ACCEPTED: &str = "job.accepted";
pub const JOB_REFUSED: &str = "job.refused";
pub const DELIVERIES_RECORDED: &str = "deliveries.recorded";
pub const DIRECTORY_IMPORTED: &str = "directory.imported";
/// Deliveries not yet handed to a channel were cancelled (`disclose cancel`), with the reason.
pub const JOB_CANCELLED: &str = "job.cancelled";
/// An operator recorded the change an obligation follows (`disclose obligations change`).
pub const OBLIGATION_CHANGE: &str = "obligation.change";

/// SHA-256 over the entry's fields, each length-prefixed so that no two different entries encode
/// alike, then the previous hash. Lower-case hex.
///
/// ring's SHA-256 ([`sha256_hex`] says why): a batch's `deliveries.recorded` entry lists every
/// outcome, and hashing it was 11% of `disclose`'s CPU sending SMS with the `sha2` crate.
pub fn entry_hash(
    seq: i64,
    at: &str,
    kind: &str,
    job_id: Option<&str>,
    body: &str,
    prev: &str,
) -> String {
    let mut h = Context::new(&SHA256);
    h.update(&seq.to_be_bytes());
    for field in [at, kind, job_id.unwrap_or("\u{0}"), body, prev] {
        h.update(&(field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex(h.finish().as_ref())
}

/// SHA-256 of `bytes`, as lower-case hex: the digests kept in the ledger and the providers'
/// payload hashes alike.
///
/// ring's SHA-256 rather than the `sha2` crate's, here, in [`entry_hash`] and in the providers'
/// HMACs: on a processor without the SHA extensions, `sha2` falls back to portable code, and
/// ring's assembly was 1.7 times as fast (207–218 MB/s against 124–129 on that machine); hashing
/// was 16% of `disclose`'s CPU sending SMS (BENCHMARKS.md, session 14).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_changes_the_hash() {
        let base = entry_hash(1, "t", "k", Some("j"), "{}", GENESIS);
        assert_ne!(base, entry_hash(2, "t", "k", Some("j"), "{}", GENESIS));
        assert_ne!(base, entry_hash(1, "u", "k", Some("j"), "{}", GENESIS));
        assert_ne!(base, entry_hash(1, "t", "x", Some("j"), "{}", GENESIS));
        assert_ne!(base, entry_hash(1, "t", "k", None, "{}", GENESIS));
        assert_ne!(base, entry_hash(1, "t", "k", Some("j"), "{ }", GENESIS));
        assert_ne!(base, entry_hash(1, "t", "k", Some("j"), "{}", &base));
        // Length prefixes: moving a character between fields changes the hash.
        assert_ne!(
            entry_hash(1, "ab", "c", None, "", GENESIS),
            entry_hash(1, "a", "bc", None, "", GENESIS)
        );
    }

    #[test]
    fn known_answer() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
