//! Phone numbers: normalisation to E.164 and masking for logs.
//!
//! Numbers arrive as people type them (`138 1234 5678`, `+86-138-1234-5678`, `0086 …`). They are
//! normalised once, at the edge, to E.164 (`+8613812345678`), which is what SMS gateways take and
//! what the ledger stores; anything that is not clearly a reachable mobile or international number
//! is refused with the reason, so a typo is fixed by the sender rather than lost at delivery.
//!
//! Mainland numbers must be mobile numbers: a landline cannot receive the SMS the phone is for.
//! Error messages and logs show numbers only through [`mask`].

use std::fmt;

/// Why a phone number was refused. Every variant that carries a number carries it masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error(
        "phone number {masked} contains {found}: only digits, a leading +, spaces, hyphens, dots and parentheses are allowed"
    )]
    InvalidCharacter { masked: String, found: Found },
    #[error(
        "phone number {masked} has {digits} digits after the country code 86: a mainland mobile number has 11"
    )]
    MainlandLength { masked: String, digits: usize },
    #[error(
        "phone number {masked} has {digits} digits: a mainland mobile number has 11 (1 followed by 10 digits)"
    )]
    MobileLength { masked: String, digits: usize },
    #[error(
        "phone number {masked} is not a mainland mobile number: those start with 13 to 19 (landlines cannot receive SMS)"
    )]
    MobilePrefix { masked: String },
    #[error(
        "phone number {masked} has {digits} digits with its country code: an international number has 8 to 15"
    )]
    InternationalLength { masked: String, digits: usize },
    #[error("phone number {masked} has no valid country code: a country code never starts with 0")]
    CountryCode { masked: String },
    #[error(
        "phone number {masked} has no country code and is not a mainland mobile number: write other numbers with + or 00 and the country code"
    )]
    NoCountryCode { masked: String },
}

/// The offending character of [`PhoneError::InvalidCharacter`], shown without echoing digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A `+` anywhere but at the start.
    MisplacedPlus,
    /// Any other character that is not a digit or separator.
    Char(char),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::MisplacedPlus => f.write_str("a + that is not at the start"),
            Found::Char(c) => write!(f, "{c:?}"),
        }
    }
}

/// Characters people put between digits; they carry no meaning and are dropped.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '.' | '(' | ')' | '（' | '）')
}

/// Normalise a phone number to E.164 (`+8613800000000`).
pub fn normalize(s: &str) -> Result<String, PhoneError> {
    let compact: String = s.chars().filter(|c| !is_separator(*c)).collect();
    let masked = || mask(&compact);
    if compact.is_empty() {
        return Err(PhoneError::Empty);
    }
    let (plus, digits) = match compact.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, compact.as_str()),
    };
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
        let found = if c == '+' {
            Found::MisplacedPlus
        } else {
            Found::Char(c)
        };
        return Err(PhoneError::InvalidCharacter {
            masked: masked(),
            found,
        });
    }
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }

    // With an international prefix: the digits are country code and national number.
    let international = if plus {
        Some(digits)
    } else {
        digits.strip_prefix("00")
    };
    if let Some(full) = international {
        return match full.strip_prefix("86") {
            Some(national) => mainland_with_country_code(national, masked),
            None => other_international(full, masked),
        };
    }

    // Without a prefix: a bare mainland mobile number, or one with 86 but no + (a mainland
    // number never starts with 8, so the 86 can only be the country code).
    if let Some(national) = digits.strip_prefix("86") {
        return mainland_with_country_code(national, masked);
    }
    if digits.starts_with('1') {
        if digits.len() != 11 {
            return Err(PhoneError::MobileLength {
                masked: masked(),
                digits: digits.len(),
            });
        }
        return mobile(digits, masked);
    }
    // A landline with its 0 area code, a local number, or a foreign number without its prefix.
    Err(PhoneError::NoCountryCode { masked: masked() })
}

fn mainland_with_country_code(
    national: &str,
    masked: impl Fn() -> String,
) -> Result<String, PhoneError> {
    if national.len() != 11 {
        // `+86 010 …` and `+86 0…` are landlines whatever their length: say so.
        if !national.is_empty() && !national.starts_with('1') {
            return Err(PhoneError::MobilePrefix { masked: masked() });
        }
        return Err(PhoneError::MainlandLength {
            masked: masked(),
            digits: national.len(),
        });
    }
    mobile(national, masked)
}

/// `national` has 11 digits; it is a mobile number if it starts with 13 to 19.
fn mobile(national: &str, masked: impl Fn() -> String) -> Result<String, PhoneError> {
    match national.as_bytes() {
        [b'1', b'3'..=b'9', ..] => Ok(format!("+86{national}")),
        _ => Err(PhoneError::MobilePrefix { masked: masked() }),
    }
}

fn other_international(full: &str, masked: impl Fn() -> String) -> Result<String, PhoneError> {
    if full.starts_with('0') {
        return Err(PhoneError::CountryCode { masked: masked() });
    }
    if !(8..=15).contains(&full.len()) {
        return Err(PhoneError::InternationalLength {
            masked: masked(),
            digits: full.len(),
        });
    }
    Ok(format!("+{full}"))
}

/// `+8613812345678` → `138****5678`, for logs.
///
/// Mainland numbers lose their `+86`; other international numbers keep their `+` and country
/// code, which identifies no one. The first 3 and last 4 digits stay visible when at least 4
/// remain hidden (11 or more digits); a shorter number shows only its last 2. Works on any
/// string, so a refused input can be masked as well.
pub fn mask(e164: &str) -> String {
    let (prefix, number) = match e164.strip_prefix("+86") {
        Some(national) if !national.is_empty() => ("", national),
        _ => match e164.strip_prefix('+') {
            Some(rest) => ("+", rest),
            None => ("", e164),
        },
    };
    let chars: Vec<char> = number.chars().collect();
    let n = chars.len();
    let (head, tail) = if n >= 11 { (3, 4) } else { (0, n.min(2)) };
    let mut out = String::from(prefix);
    out.extend(&chars[..head]);
    out.extend(std::iter::repeat_n('*', n - head - tail));
    out.extend(&chars[n - tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every accepted shape: what people type, and the E.164 it becomes.
    const ACCEPTED: &[(&str, &str)] = &[
        // Bare mainland mobile numbers, each allowed second digit.
        ("13812345678", "+8613812345678"),
        ("14512345678", "+8614512345678"),
        ("15012345678", "+8615012345678"),
        ("16612345678", "+8616612345678"),
        ("17712345678", "+8617712345678"),
        ("18812345678", "+8618812345678"),
        ("19912345678", "+8619912345678"),
        // Mainland mobile with each country-code prefix.
        ("+8613812345678", "+8613812345678"),
        ("8613812345678", "+8613812345678"),
        ("008613812345678", "+8613812345678"),
        // Separators people type.
        ("138 1234 5678", "+8613812345678"),
        ("138-1234-5678", "+8613812345678"),
        ("138.1234.5678", "+8613812345678"),
        ("+86 (138) 1234-5678", "+8613812345678"),
        ("(+86)13812345678", "+8613812345678"),
        ("+86-138-1234-5678", "+8613812345678"),
        ("0086 138 1234 5678", "+8613812345678"),
        (" 13812345678\t", "+8613812345678"),
        ("138\u{3000}1234\u{3000}5678", "+8613812345678"),
        ("（+86）13812345678", "+8613812345678"),
        // Other international numbers, with + or 00.
        ("+85291234567", "+85291234567"),
        ("00852 9123 4567", "+85291234567"),
        ("+886 912 345 678", "+886912345678"),
        ("+1 (202) 555-0123", "+12025550123"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+49 151 12345678", "+4915112345678"),
        ("0049 151 12345678", "+4915112345678"),
        // The length limits: 8 and 15 digits including the country code.
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
    ];

    #[test]
    fn accepted_shapes_normalise_to_e164() {
        for (input, expected) in ACCEPTED {
            assert_eq!(normalize(input).as_deref(), Ok(*expected), "{input:?}");
            // Normalising is idempotent: the stored form is accepted as is.
            assert_eq!(
                normalize(expected).as_deref(),
                Ok(*expected),
                "{expected:?}"
            );
        }
    }

    fn masked(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn refused_shapes_say_what_is_wrong() {
        use PhoneError::*;
        let cases: Vec<(&str, PhoneError)> = vec![
            ("", Empty),
            ("   ", Empty),
            ("-().", Empty),
            ("+", Empty),
            (
                "1381234567a",
                InvalidCharacter {
                    masked: masked("138****567a"),
                    found: Found::Char('a'),
                },
            ),
            (
                "tel:13812345678",
                InvalidCharacter {
                    masked: masked("tel********5678"),
                    found: Found::Char('t'),
                },
            ),
            (
                "138/1234/5678",
                InvalidCharacter {
                    masked: masked("138******5678"),
                    found: Found::Char('/'),
                },
            ),
            (
                "１３８12345678",
                InvalidCharacter {
                    masked: masked("１３８****5678"),
                    found: Found::Char('１'),
                },
            ),
            (
                "138+12345678",
                InvalidCharacter {
                    masked: masked("138*****5678"),
                    found: Found::MisplacedPlus,
                },
            ),
            (
                "++8613812345678",
                InvalidCharacter {
                    masked: masked("++86*******5678"),
                    found: Found::MisplacedPlus,
                },
            ),
            // Mainland mobile numbers of the wrong length, with and without country code.
            (
                "1381234567",
                MobileLength {
                    masked: masked("********67"),
                    digits: 10,
                },
            ),
            (
                "138123456789",
                MobileLength {
                    masked: masked("138*****6789"),
                    digits: 12,
                },
            ),
            (
                "12380",
                MobileLength {
                    masked: masked("***80"),
                    digits: 5,
                },
            ),
            (
                "+861381234567",
                MainlandLength {
                    masked: masked("********67"),
                    digits: 10,
                },
            ),
            (
                "86138123456789",
                MainlandLength {
                    masked: masked("861*******6789"),
                    digits: 12,
                },
            ),
            (
                "0086138123456",
                MainlandLength {
                    masked: masked("008******3456"),
                    digits: 9,
                },
            ),
            (
                "+86",
                MainlandLength {
                    masked: masked("+86"),
                    digits: 0,
                },
            ),
            // Mainland numbers that are not mobile numbers.
            (
                "12812345678",
                MobilePrefix {
                    masked: masked("128****5678"),
                },
            ),
            (
                "10012345678",
                MobilePrefix {
                    masked: masked("100****5678"),
                },
            ),
            (
                "+8612812345678",
                MobilePrefix {
                    masked: masked("128****5678"),
                },
            ),
            // A Beijing landline without its 0 looks like a short mobile number.
            (
                "+86 10 6512 3456",
                MainlandLength {
                    masked: masked("********56"),
                    digits: 10,
                },
            ),
            (
                "+86 010 6512 3456",
                MobilePrefix {
                    masked: masked("010****3456"),
                },
            ),
            (
                "+86 013812345678",
                MobilePrefix {
                    masked: masked("013*****5678"),
                },
            ),
            (
                "8610 6512 3456",
                MainlandLength {
                    masked: masked("861*****3456"),
                    digits: 10,
                },
            ),
            // Without a country code: landlines, local numbers, foreign numbers.
            (
                "010-6512-3456",
                NoCountryCode {
                    masked: masked("010****3456"),
                },
            ),
            (
                "0571 8888 8888",
                NoCountryCode {
                    masked: masked("057*****8888"),
                },
            ),
            (
                "0000-12380",
                CountryCode {
                    masked: masked("*******80"),
                },
            ),
            (
                "6512 3456",
                NoCountryCode {
                    masked: masked("******56"),
                },
            ),
            (
                "2079460958",
                NoCountryCode {
                    masked: masked("********58"),
                },
            ),
            (
                "9123 4567",
                NoCountryCode {
                    masked: masked("******67"),
                },
            ),
            // International numbers with a zero country code or the wrong length.
            (
                "+0123456789",
                CountryCode {
                    masked: masked("+********89"),
                },
            ),
            (
                "000123456789",
                CountryCode {
                    masked: masked("000*****6789"),
                },
            ),
            (
                "+1234567",
                InternationalLength {
                    masked: masked("+*****67"),
                    digits: 7,
                },
            ),
            (
                "00852 1234",
                InternationalLength {
                    masked: masked("*******34"),
                    digits: 7,
                },
            ),
            (
                "+1234567890123456",
                InternationalLength {
                    masked: masked("+123*********3456"),
                    digits: 16,
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn error_messages_name_the_problem_and_never_show_the_full_number() {
        let cases = [
            ("", "empty"),
            ("1381234567a", "'a'"),
            ("138123456789", "11"),
            ("+861381234567", "after the country code 86"),
            ("12812345678", "13 to 19"),
            ("010-6512-3456", "+ or 00 and the country code"),
            ("+0123456789", "never starts with 0"),
            ("+1234567890123456", "8 to 15"),
            ("138+12345678", "not at the start"),
        ];
        for (input, needle) in cases {
            let msg = normalize(input).unwrap_err().to_string();
            assert!(msg.contains(needle), "{input:?}: {msg}");
            let digits: String = input.chars().filter(char::is_ascii_digit).collect();
            if digits.len() > 4 {
                assert!(!msg.contains(&digits), "{input:?} leaks in {msg}");
            }
        }
    }

    #[test]
    fn mask_keeps_three_and_four_of_long_numbers_and_two_of_short_ones() {
        let cases = [
            ("+8613812345678", "138****5678"),
            ("13812345678", "138****5678"),
            ("+4915112345678", "+491******5678"),
            ("+12025550123", "+120****0123"),
            ("+85291234567", "+852****4567"),
            ("+886912345678", "+886*****5678"),
            // Ten digits or fewer: only the last two show.
            ("+8612345", "***45"),
            ("+12345678", "+******78"),
            ("0105123456", "********56"),
            ("12380", "***80"),
            ("12", "12"),
            ("1", "1"),
            ("", ""),
            ("+", "+"),
            ("+86", "+86"),
        ];
        for (input, expected) in cases {
            assert_eq!(mask(input), expected, "{input:?}");
        }
    }

    #[test]
    fn every_short_and_long_digit_string_is_refused_or_normalised_consistently() {
        // Exhaustive over lengths and leading digits: whatever is accepted is valid E.164,
        // re-normalises to itself, and masks without revealing more than 7 digits.
        for len in 0..=17 {
            for lead in ["", "+", "00", "86", "+86", "0086"] {
                for first in '0'..='9' {
                    let input = format!("{lead}{first}{}", "5".repeat(len));
                    match normalize(&input) {
                        Ok(e164) => {
                            let digits = &e164[1..];
                            assert!(e164.starts_with('+'), "{input}");
                            assert!((8..=15).contains(&digits.len()), "{input} → {e164}");
                            assert!(!digits.starts_with('0'), "{input} → {e164}");
                            if digits.starts_with("86") {
                                assert_eq!(digits.len(), 13, "{input} → {e164}");
                                assert!(matches!(digits.as_bytes()[3], b'3'..=b'9'), "{e164}");
                            }
                            assert_eq!(normalize(&e164).as_ref(), Ok(&e164), "{input}");
                            let shown = mask(&e164).chars().filter(char::is_ascii_digit).count();
                            let national = e164.strip_prefix("+86").map_or(digits.len(), str::len);
                            assert!(shown <= 7 && shown < national, "{e164} → {}", mask(&e164));
                        }
                        Err(e) => assert!(!e.to_string().contains(&input[lead.len()..]) || len < 3),
                    }
                }
            }
        }
    }
}
