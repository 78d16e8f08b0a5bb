//! RFC 8785 JSON Canonicalization Scheme (JCS) and strict JSON parsing.
//!
//! The approval signature (SPEC §3) covers the canonical form of the job, so the approval system
//! and `disclose` must agree on it byte for byte, whatever language the approval side is written
//! in. That is why this module follows RFC 8785 to the letter rather than "serde_json's compact
//! output, sorted": names are ordered by UTF-16 code units, strings are escaped minimally, and
//! every number is written the way ECMAScript's `Number.prototype.toString` writes the IEEE double
//! it denotes.
//!
//! Parsing is strict in the I-JSON sense (RFC 7493), which RFC 8785 presumes: a member name may
//! appear only once per object (otherwise two readers could see two different jobs behind one
//! signature), numbers must fit an IEEE double, and nesting is bounded (serde_json's recursion limit: at most
//! 127 nested arrays/objects).

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JcsError(pub String);

/// Parse JSON text, refusing duplicate member names (I-JSON, RFC 7493) and excessive nesting.
///
/// Errors keep serde_json's wording and position ("... at line L column C"); trailing characters
/// after the value are refused.
pub fn parse_strict(text: &str) -> Result<Value, JcsError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = StrictValue
        .deserialize(&mut de)
        .map_err(|e| JcsError(e.to_string()))?;
    de.end().map_err(|e| JcsError(e.to_string()))?;
    Ok(value)
}

/// Builds a `Value` like serde_json's own, but refuses an object that repeats a member name.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // serde_json already refuses literals beyond the double range; this guards the invariant.
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        // Names are compared after unescaping: "a" and "\u0061" are the same name.
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(de::Error::custom(format_args!(
                    "duplicate member name {name:?}"
                )));
            }
            let value = map.next_value_seed(StrictValue)?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

/// The RFC 8785 canonical form of a value.
pub fn canonicalize(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            // RFC 8785 §3.2.3: order by the UTF-16 code units of the names. This differs from
            // UTF-8 byte order (and from `str`'s order) once names mix characters above U+FFFF
            // (surrogates D800–DFFF) with characters in U+E000–U+FFFF.
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| utf16_order(a.0, b.0));
            out.push('{');
            for (i, (name, value)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, name);
                out.push(':');
                write_value(out, value);
            }
            out.push('}');
        }
    }
}

fn utf16_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// RFC 8785 §3.2.2.2: escape only `"`, `\` and the C0 controls; short forms where JSON has them.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// RFC 8785 §3.2.2.3: every JSON number is the IEEE double it denotes (integers included, so
/// 2^53 + 1 is written as 9007199254740992), serialized as ECMAScript `Number::toString`.
fn write_number(out: &mut String, n: &Number) {
    // Without serde_json's `arbitrary_precision` every Number has an f64 view; u64/i64 are
    // converted with round-to-nearest-even, as ECMAScript would read them.
    let f = n.as_f64().unwrap_or(f64::NAN);
    out.push_str(&es_number_to_string(f));
}

/// ECMA-262 `Number::toString(x)` (radix 10) for a finite double.
///
/// The shortest round-trip digits come from `ryu`; only their layout is ECMAScript's.
pub(crate) fn es_number_to_string(f: f64) -> String {
    if f == 0.0 {
        return "0".to_owned(); // both +0 and -0
    }
    if !f.is_finite() {
        // Not representable in JSON; serde_json's Number never holds one.
        return "null".to_owned();
    }
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(f);
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().expect("ryu writes a decimal exponent")),
        None => (text, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // value = 0.DIGITS × 10^n, with DIGITS having no leading or trailing zeros (ECMA-262's
    // s, k and n: k = DIGITS.len()).
    let mut digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let mut n = int_part.len() as i32 + exp;
    let leading = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..leading);
    n -= leading as i32;
    digits.truncate(digits.trim_end_matches('0').len());
    let k = digits.len() as i32;

    let mut s = String::with_capacity(32);
    if negative {
        s.push('-');
    }
    if k <= n && n <= 21 {
        // Integer below 1e21: all digits, then zeros.
        s.push_str(&digits);
        s.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        s.push_str(&digits[..n as usize]);
        s.push('.');
        s.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', (-n) as usize));
        s.push_str(&digits);
    } else {
        let e = n - 1;
        s.push_str(&digits[..1]);
        if k > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push('e');
        s.push(if e < 0 { '-' } else { '+' });
        s.push_str(&e.unsigned_abs().to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(dir: &str, name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/jcs/{dir}/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The published RFC 8785 test data (cyberphone/json-canonicalization `testdata/`), byte
    /// for byte: parse the input, canonicalize, compare with the expected output bytes.
    #[test]
    fn published_vectors() {
        for name in [
            "arrays",
            "french",
            "structures",
            "unicode",
            "values",
            "weird",
        ] {
            let input = String::from_utf8(fixture("input", name)).unwrap();
            let expected = fixture("output", name);
            let value = parse_strict(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
            let got = canonicalize(&value);
            assert_eq!(
                got.as_bytes(),
                &expected[..],
                "{name}: got {got}, expected {}",
                String::from_utf8_lossy(&expected)
            );
            // Canonical form is a fixed point.
            assert_eq!(canonicalize(&parse_strict(&got).unwrap()), got, "{name}");
        }
    }

    /// RFC 8785 Appendix B and the cyberphone `numgen` samples: IEEE bits → ECMAScript text.
    #[test]
    fn es6_number_vectors() {
        let vectors: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4340000000000001, "9007199254740994"),
            (0x4340000000000002, "9007199254740996"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for &(bits, expected) in vectors {
            let f = f64::from_bits(bits);
            assert_eq!(es_number_to_string(f), expected, "{bits:#018x}");
            // And through a Value, the way canonicalize sees it.
            let v = Value::Number(Number::from_f64(f).unwrap());
            assert_eq!(canonicalize(&v), expected, "{bits:#018x} via Value");
        }
    }

    /// 2000 doubles (random bit patterns, random magnitudes, short decimals) with the text V8's
    /// `String(x)` gives them (node 20), in the cyberphone `numgen` line format `hex-ieee,expected`.
    /// An independent engine, so ryu's digit choice and our layout are both checked.
    #[test]
    fn es6_numbers_agree_with_v8() {
        let path = format!(
            "{}/tests/fixtures/jcs/es6numbers-v8.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let mut count = 0;
        for line in text.lines() {
            let (hex, expected) = line.split_once(',').unwrap();
            let f = f64::from_bits(u64::from_str_radix(hex, 16).unwrap());
            assert_eq!(es_number_to_string(f), expected, "{hex}");
            count += 1;
        }
        assert_eq!(count, 2000);
    }

    /// Layout boundaries of ECMA-262 Number::toString: 1e21 switches to exponent form, 1e-7 too.
    #[test]
    fn number_layout_boundaries() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (100.0, "100"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e-6, "0.000001"),
            (1.5e-6, "0.0000015"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (0.001, "0.001"),
            (1e300, "1e+300"),
            (-0.0, "0"),
        ];
        for &(f, expected) in cases {
            assert_eq!(es_number_to_string(f), expected, "{f:e}");
        }
    }

    /// Integers are doubles too: JSON integers beyond 2^53 lose precision exactly as in ECMAScript.
    #[test]
    fn integers_are_converted_to_double() {
        let v = parse_strict("[9007199254740993, -9007199254740993, 18446744073709551615, 56.0, -0, 1E2, 100000000000000000000000]").unwrap();
        assert_eq!(
            canonicalize(&v),
            "[9007199254740992,-9007199254740992,18446744073709552000,56,0,100,1e+23]"
        );
    }

    /// The RFC 8785 §3.2.2.3 / Appendix example: these literals must come out exactly so.
    #[test]
    fn rfc_numbers_example() {
        let v = parse_strict(
            r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]}"#,
        )
        .unwrap();
        assert_eq!(
            canonicalize(&v),
            r#"{"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27]}"#
        );
    }

    /// RFC 8785 §3.2.3's sorting example, including the control-character names the newer
    /// `weird.json` carries: "\n" < "\r" < "1" < ... < U+0080 < ö < € < 😂 (D83D) < U+FB33.
    #[test]
    fn names_sorted_by_utf16_code_units() {
        let v = parse_strict(
            r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude02":"Smiley","\u0080":"Control\u007f","\u00f6":"Latin Small Letter O With Diaeresis","\n":"Newline","</script>":"Browser Challenge"}"#,
        )
        .unwrap();
        assert_eq!(
            canonicalize(&v),
            "{\"\\n\":\"Newline\",\"\\r\":\"Carriage Return\",\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u{80}\":\"Control\u{7f}\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f602}\":\"Smiley\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        // The case where UTF-8 order would be wrong: U+10000 is D800 DC00 in UTF-16, which sorts
        // before U+E000, while its UTF-8 bytes (F0 ...) sort after U+E000's (EE ...).
        let v = json!({"\u{e000}": 1, "\u{10000}": 2});
        assert_eq!(canonicalize(&v), "{\"\u{10000}\":2,\"\u{e000}\":1}");
        assert!("\u{e000}" < "\u{10000}", "str order is UTF-8 order");
    }

    #[test]
    fn strings_escaped_minimally() {
        let v = Value::String("\"\\/\u{8}\t\n\u{b}\u{c}\r\u{0}\u{1f}\u{7f}é中😂\u{2028}".into());
        assert_eq!(
            canonicalize(&v),
            "\"\\\"\\\\/\\b\\t\\n\\u000b\\f\\r\\u0000\\u001f\u{7f}é中😂\u{2028}\""
        );
    }

    #[test]
    fn duplicate_names_refused_at_any_depth() {
        let err = parse_strict(r#"{"id": "a", "id": "b"}"#).unwrap_err().0;
        assert!(err.contains("duplicate") && err.contains("\"id\""), "{err}");
        assert!(err.contains("line 1 column"), "position kept: {err}");

        let err = parse_strict(r#"{"a": [1, {"b": {"title": 1, "title": 2}}]}"#)
            .unwrap_err()
            .0;
        assert!(err.contains("duplicate") && err.contains("title"), "{err}");

        // The same name written two ways is still the same name.
        let err = parse_strict(r#"{"approval": 1, "appro\u0076al": 2}"#)
            .unwrap_err()
            .0;
        assert!(
            err.contains("duplicate") && err.contains("approval"),
            "{err}"
        );

        // Same name in sibling objects is fine.
        assert!(parse_strict(r#"[{"a": 1}, {"a": 2}, {"b": {"a": 3}}]"#).is_ok());
    }

    #[test]
    fn numbers_outside_double_range_refused() {
        for text in ["1e400", "-1e309", "[1, 2e999]", r#"{"x": 123456789e301}"#] {
            let err = parse_strict(text).unwrap_err().0;
            assert!(err.contains("out of range"), "{text}: {err}");
        }
        // Underflow is not overflow: it denotes zero (or a subnormal), as in ECMAScript.
        assert_eq!(canonicalize(&parse_strict("1e-400").unwrap()), "0");
        assert_eq!(canonicalize(&parse_strict("4.9e-324").unwrap()), "5e-324");
    }

    #[test]
    fn nesting_limited() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        // serde_json's limit: 127 levels parse, the 128th is refused.
        assert!(parse_strict(&nested(127)).is_ok());
        let err = parse_strict(&nested(128)).unwrap_err().0;
        assert!(err.contains("recursion limit"), "{err}");
        let deep_objects = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
        assert!(parse_strict(&deep_objects).is_err());
    }

    #[test]
    fn trailing_garbage_and_bad_json_refused() {
        for text in [
            "{} x",
            "{}{}",
            "[1,]",
            "{\"a\":1,}",
            "",
            "nul",
            "\"\\ud800\"",
            "01",
        ] {
            assert!(parse_strict(text).is_err(), "{text:?} accepted");
        }
        let err = parse_strict("{\"a\": 1}\n  ]").unwrap_err().0;
        assert!(
            err.contains("trailing characters at line 2 column 3"),
            "{err}"
        );
        // Whitespace around the value is fine.
        assert!(parse_strict(" \n{\"a\": 1}\n ").is_ok());
    }

    #[test]
    fn parse_keeps_values() {
        let v = parse_strict(
            r#"{"s":"中文","n":-3,"u":18446744073709551615,"f":0.5,"b":[true,false,null]}"#,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"s":"中文","n":-3,"u":18446744073709551615u64,"f":0.5,"b":[true,false,null]})
        );
    }
}
