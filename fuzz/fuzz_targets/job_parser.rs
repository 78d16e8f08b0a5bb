//! Untrusted bytes → `disclose::job::parse`, which must never panic (SPEC §5: "bad input of
//! every kind"). When a job parses, the value the approval signature covers must have a stable
//! RFC 8785 canonical form: canonicalize → parse_strict → canonicalize gives the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = disclose::job::parse(data) else {
        return;
    };
    let canonical = disclose::jcs::canonicalize(&parsed.raw);
    let reparsed = match disclose::jcs::parse_strict(&canonical) {
        Ok(v) => v,
        Err(e) => panic!("canonical form of a parsed job is refused by parse_strict: {e}\ncanonical: {canonical}"),
    };
    let again = disclose::jcs::canonicalize(&reparsed);
    assert_eq!(canonical, again, "canonicalization is not idempotent");
    // The canonical form is itself a job: the same bytes the signature covers must parse.
    // (Canonical numbers can be longer than their literal, "1e20" → 21 digits, so a job near the
    // 1 MiB limit may legitimately grow past it; libFuzzer's inputs are far smaller anyway.)
    if canonical.len() > disclose::job::MAX_JOB_BYTES {
        return;
    }
    if let Err(e) = disclose::job::parse(canonical.as_bytes()) {
        panic!("canonical form of a parsed job no longer parses as a job: {e}\ncanonical: {canonical}");
    }
});
