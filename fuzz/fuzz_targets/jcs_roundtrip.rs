//! Arbitrary UTF-8 text: whenever `parse_strict` accepts it, its RFC 8785 canonical form must be
//! accepted too and be a fixed point (canonicalize → parse_strict → canonicalize is stable).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(value) = disclose::jcs::parse_strict(text) else {
        return;
    };
    let canonical = disclose::jcs::canonicalize(&value);
    let reparsed = match disclose::jcs::parse_strict(&canonical) {
        Ok(v) => v,
        Err(e) => panic!("canonical form refused by parse_strict: {e}\ninput: {text:?}\ncanonical: {canonical:?}"),
    };
    let again = disclose::jcs::canonicalize(&reparsed);
    assert_eq!(canonical, again, "canonicalization is not idempotent for input {text:?}");
});
