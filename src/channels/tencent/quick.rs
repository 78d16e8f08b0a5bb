//! Reading an answer to `SendSms` in the shape Tencent gives it, without `serde_json`.
//!
//! An answer lists 200 statuses of seven fields each (34 KB); read through `serde_json` it was a
//! tenth of `disclose`'s CPU of sending SMS. This reads `{"Response": {"SendStatusSet": […],
//! "RequestId": "…"}}` (keys in either order, any whitespace) in one pass, borrowing every string,
//! and gives up — `None`, for `serde_json` to read as before — at anything else: an `Error`, any
//! other key of `Response`, a string with an escape, a nested value where a status has a plain
//! one, a field given twice, text that is not JSON. What it does read it reads as `serde_json`
//! would (the tests compare the two on answers of every shape).

use std::borrow::Cow;

use super::SendStatus;

/// `Response.SendStatusSet` of an answer of the plain shape; `None` for anything else.
pub(super) fn statuses(text: &str) -> Option<Vec<SendStatus<'_>>> {
    let mut r = Reader { text, at: 0 };
    r.open(b'{')?;
    r.key_is("Response")?;
    r.open(b'{')?;
    let (mut set, mut request_id) = (None, false);
    loop {
        match r.key()? {
            "SendStatusSet" if set.is_none() => set = Some(r.statuses()?),
            "RequestId" if !request_id => {
                r.string()?;
                request_id = true;
            }
            _ => return None,
        }
        if !r.more(b'}')? {
            break;
        }
    }
    if !r.more(b'}')? && r.at_end() {
        set
    } else {
        None
    }
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.at == self.text.len()
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes().get(self.at).copied()
    }

    /// The byte `b` (after whitespace).
    fn open(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// After a member: `,` (another follows: true) or `close` (the end: false).
    fn more(&mut self, close: u8) -> Option<bool> {
        let b = self.peek()?;
        self.at += 1;
        match b {
            b',' => Some(true),
            _ if b == close => Some(false),
            _ => None,
        }
    }

    /// A string without escapes or control characters, borrowed.
    fn string(&mut self) -> Option<&'a str> {
        self.open(b'"')?;
        let (bytes, start) = (self.bytes(), self.at);
        let mut at = start;
        // Eight bytes at a time to the first that is a quote, a backslash or a control
        // character (a string of the answer is mostly 10–20 bytes of digits and letters).
        while let Some(&chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
            let special = special_bytes(u64::from_le_bytes(chunk));
            if special != 0 {
                at += special.trailing_zeros() as usize / 8;
                break;
            }
            at += 8;
        }
        while let Some(&b) = bytes.get(at) {
            match b {
                b'"' => {
                    self.at = at + 1;
                    return self.text.get(start..at);
                }
                b'\\' | 0..=0x1f => return None,
                _ => at += 1,
            }
        }
        None
    }

    /// A key and its colon.
    fn key(&mut self) -> Option<&'a str> {
        let key = self.string()?;
        self.open(b':')?;
        Some(key)
    }

    fn key_is(&mut self, name: &str) -> Option<()> {
        (self.key()? == name).then_some(())
    }

    /// A number, `true`, `false` or `null`, checked as JSON has them and passed over.
    fn scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.at + word.len();
        (self.text.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let bytes = self.bytes();
        let digits = |at: &mut usize| {
            let start = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at > start
        };
        let mut at = self.at;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        match bytes.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => {
                digits(&mut at);
            }
            _ => return None,
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            digits(&mut at).then_some(())?;
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            digits(&mut at).then_some(())?;
        }
        self.at = at;
        Some(())
    }

    fn statuses(&mut self) -> Option<Vec<SendStatus<'a>>> {
        self.open(b'[')?;
        let mut set = Vec::with_capacity(super::MAX_NUMBERS);
        if self.peek()? == b']' {
            self.at += 1;
            return Some(set);
        }
        loop {
            set.push(self.status()?);
            if !self.more(b']')? {
                return Some(set);
            }
        }
    }

    /// A status's key and its colon, as the slot of [`Reader::status`] it fills (`None`: a field
    /// passed over). Tencent's seven keys are matched where they stand — the byte after the quote
    /// picks the one it can be, whose whole text and closing quote must follow — instead of being
    /// read as strings and compared: 14% less to read an answer of 200 statuses (BENCHMARKS.md,
    /// session 14). Any other key, or one written another way (with an escape, say), is read as
    /// a string as before.
    fn status_key(&mut self) -> Option<Option<usize>> {
        const KEYS: [(&[u8], Option<usize>); 7] = [
            (b"\"SerialNo\"", Some(0)),
            (b"\"SessionContext\"", None),
            (b"\"PhoneNumber\"", Some(1)),
            (b"\"Code\"", Some(2)),
            (b"\"Message\"", Some(3)),
            (b"\"Fee\"", None),
            (b"\"IsoCode\"", None),
        ];
        self.skip_ws();
        let rest = self.bytes().get(self.at..)?;
        let candidates: &[(&[u8], Option<usize>)] = match rest.get(1) {
            Some(b'S') => &KEYS[0..2],
            Some(b'P') => &KEYS[2..3],
            Some(b'C') => &KEYS[3..4],
            Some(b'M') => &KEYS[4..5],
            Some(b'F') => &KEYS[5..6],
            Some(b'I') => &KEYS[6..7],
            _ => &[],
        };
        for &(key, slot) in candidates {
            if rest.starts_with(key) {
                self.at += key.len();
                self.open(b':')?;
                return Some(slot);
            }
        }
        // Read as a string: its text, between the quotes, looked up among the same keys.
        let key = self.key()?.as_bytes();
        Some(
            KEYS.iter()
                .find(|(text, _)| &text[1..text.len() - 1] == key)
                .and_then(|&(_, slot)| slot),
        )
    }

    /// One status: its four fields borrowed, the others passed over.
    fn status(&mut self) -> Option<SendStatus<'a>> {
        self.open(b'{')?;
        let mut fields: [Option<&'a str>; 4] = [None; 4];
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            loop {
                let slot = self.status_key()?;
                match slot {
                    // A field given twice is an error to serde_json: left to it.
                    Some(i) if fields[i].is_some() => return None,
                    Some(i) => fields[i] = Some(self.string()?),
                    None => self.scalar()?,
                }
                if !self.more(b'}')? {
                    break;
                }
            }
        }
        let [serial_no, phone_number, code, message] =
            fields.map(|f| Cow::Borrowed(f.unwrap_or_default()));
        Some(SendStatus {
            serial_no,
            phone_number,
            code,
            message,
        })
    }
}

/// The bytes of `x` that are `"`, `\\` or below 0x20, as their high bit: the lowest set bit marks
/// the first of them (a borrow may mark bytes after it, never one before).
fn special_bytes(x: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    below_space | zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\')))
}

#[cfg(test)]
mod tests {
    use super::super::{Envelope, SendReply};
    use super::*;

    fn by_serde(text: &str) -> Option<Vec<SendStatus<'_>>> {
        match serde_json::from_str::<Envelope<SendReply>>(text) {
            Ok(Envelope {
                response:
                    SendReply {
                        error: None,
                        send_status_set,
                        ..
                    },
            }) => send_status_set,
            _ => None,
        }
    }

    /// Wherever the quick reader reads an answer, it reads what serde_json reads.
    fn agrees(text: &str) -> bool {
        let quick = statuses(text);
        if let Some(q) = &quick {
            assert_eq!(Some(q), by_serde(text).as_ref(), "{text}");
        }
        quick.is_some()
    }

    fn status(i: usize, order: &[usize], extra: &str) -> String {
        let fields = [
            format!("\"SerialNo\":\"2433:{i}\""),
            format!("\"PhoneNumber\":\"+86139{i:08}\""),
            "\"Fee\":1".to_string(),
            "\"SessionContext\":\"job-1:7-9\"".to_string(),
            "\"Code\":\"Ok\"".to_string(),
            "\"Message\":\"send success\"".to_string(),
            "\"IsoCode\":\"CN\"".to_string(),
        ];
        let mut out: Vec<String> = order.iter().map(|&k| fields[k].clone()).collect();
        if !extra.is_empty() {
            out.push(extra.to_string());
        }
        format!("{{{}}}", out.join(","))
    }

    #[test]
    fn special_bytes_finds_the_first_quote_backslash_or_control_character() {
        let mut rng = fastrand::Rng::with_seed(3);
        let pool = [
            0x00, 0x1f, 0x20, b'"', b'\\', b'!', b'#', b'[', b']', b'a', 0x7f, 0x80, 0xa2, 0xdc,
            0xff,
        ];
        for _ in 0..100_000 {
            let bytes: [u8; 8] = std::array::from_fn(|_| {
                if rng.u8(0..4) == 0 {
                    pool[rng.usize(0..pool.len())]
                } else {
                    rng.u8(0x20..0x7f)
                }
            });
            let first = bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let found = special_bytes(u64::from_le_bytes(bytes));
            let found = (found != 0).then(|| found.trailing_zeros() as usize / 8);
            assert_eq!(found, first, "{bytes:02x?}");
        }
    }

    #[test]
    fn reads_tencents_answer_and_the_emulators() {
        let set: Vec<String> = (0..200)
            .map(|i| status(i, &[0, 1, 2, 3, 4, 5, 6], ""))
            .collect();
        let tencent = format!(
            "{{\"Response\":{{\"SendStatusSet\":[{}],\"RequestId\":\"a0aabda6-cf91-4f3e-a81f-9198114a2279\"}}}}",
            set.join(",")
        );
        let read = statuses(&tencent).expect("read");
        assert_eq!(read.len(), 200);
        assert_eq!(read[7].serial_no, "2433:7");
        assert_eq!(read[7].phone_number, "+8613900000007");
        assert_eq!((&*read[7].code, &*read[7].message), ("Ok", "send success"));
        assert!(agrees(&tencent));
        // The emulator's: keys sorted, RequestId first, pretty-printed.
        let value: serde_json::Value = serde_json::from_str(&tencent).unwrap();
        for text in [
            value.to_string(),
            serde_json::to_string_pretty(&value).unwrap(),
        ] {
            assert_eq!(statuses(&text).expect("read").len(), 200);
            assert!(agrees(&text));
        }
        // A status without some fields: empty, as serde's defaults.
        let text = r#"{"Response":{"SendStatusSet":[{"Code":"LimitExceeded.PhoneNumberDailyLimit"},{}],"RequestId":"r"}}"#;
        let read = statuses(text).expect("read");
        assert_eq!((&*read[0].serial_no, &*read[1].code), ("", ""));
        assert!(agrees(text));
    }

    #[test]
    fn leaves_every_other_shape_to_serde_json() {
        for text in [
            // An error, for the whole call.
            r#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"x"},"RequestId":"r"}}"#,
            // Both, or another key of Response.
            r#"{"Response":{"SendStatusSet":[],"Error":{"Code":"X","Message":"y"},"RequestId":"r"}}"#,
            r#"{"Response":{"SendStatusSet":[],"Other":1,"RequestId":"r"}}"#,
            // An escape in a string, read or passed over.
            r#"{"Response":{"SendStatusSet":[{"Code":"Ok","Message":"send \"success\""}],"RequestId":"r"}}"#,
            r#"{"Response":{"SendStatusSet":[{"Code":"Ok","SessionContext":"a\u0041"}],"RequestId":"r"}}"#,
            // A field twice (serde_json: an error), a nested value, a status that is not an object.
            r#"{"Response":{"SendStatusSet":[{"Code":"Ok","Code":"Ok"}],"RequestId":"r"}}"#,
            r#"{"Response":{"SendStatusSet":[{"Code":"Ok","Fee":{"n":1}}],"RequestId":"r"}}"#,
            r#"{"Response":{"SendStatusSet":["Ok"],"RequestId":"r"}}"#,
            r#"{"Response":{"SendStatusSet":[{"Code":1}],"RequestId":"r"}}"#,
            // Not JSON: trailing text, a comma too many, a bad number, a control character, cut short.
            r#"{"Response":{"SendStatusSet":[],"RequestId":"r"}} x"#,
            r#"{"Response":{"SendStatusSet":[{"Code":"Ok"},],"RequestId":"r"}}"#,
            r#"{"Response":{"SendStatusSet":[{"Code":"Ok","Fee":01}],"RequestId":"r"}}"#,
            r#"{"Response":{"SendStatusSet":[{"Code":"Ok","Fee":1.}],"RequestId":"r"}}"#,
            "{\"Response\":{\"SendStatusSet\":[{\"Code\":\"O\tk\"}],\"RequestId\":\"r\"}}",
            r#"{"Response":{"SendStatusSet":[{"Code":"Ok"}],"RequestId":"r"}"#,
            r#"{"Response":{"SendStatusSet":[{"Code":"Ok"#,
            "",
        ] {
            assert!(statuses(text).is_none(), "{text}");
        }
    }

    /// Answers of random shapes: key orders, whitespace, extra fields of every scalar kind,
    /// escapes, fields left out, text cut short or changed a byte. Wherever the quick reader
    /// reads one, serde_json reads the same statuses.
    #[test]
    fn agrees_with_serde_json_on_answers_of_random_shapes() {
        let mut rng = fastrand::Rng::with_seed(7);
        let extras = [
            "",
            "\"Fee\":-0.5e+3",
            "\"Fee\":true",
            "\"Fee\":null",
            "\"Fee\":false",
            "\"Fee\":\"1\"",
            "\"Fee\":[1]",
            "\"Note\":\"a\\\\b\"",
            "\"Code\":\"Ok\"",
        ];
        let spaces = ["", " ", "\n  ", "\t", "\r\n"];
        let (mut read, mut left) = (0, 0);
        for _ in 0..3000 {
            let n = rng.usize(0..4);
            let set: Vec<String> = (0..n)
                .map(|i| {
                    let mut order: Vec<usize> = (0..7).filter(|_| rng.u8(0..10) > 0).collect();
                    rng.shuffle(&mut order);
                    status(i, &order, extras[rng.usize(0..extras.len())])
                })
                .collect();
            let sp = spaces[rng.usize(0..spaces.len())];
            let members = [
                format!(
                    "\"SendStatusSet\"{sp}:{sp}[{sp}{}{sp}]",
                    set.join(&format!("{sp},{sp}"))
                ),
                "\"RequestId\":\"r-1\"".to_string(),
            ];
            let (a, b) = if rng.bool() { (0, 1) } else { (1, 0) };
            let mut text = format!(
                "{sp}{{{sp}\"Response\"{sp}:{sp}{{{sp}{}{sp},{sp}{}{sp}}}{sp}}}{sp}",
                members[a], members[b]
            );
            match rng.u8(0..10) {
                0 => text.truncate(rng.usize(0..text.len())),
                1 => {
                    let at = rng.usize(0..text.len());
                    let b = [b'"', b',', b'}', b']', b':', b'x', b'\\', b'1'][rng.usize(0..8)];
                    text = String::from_utf8_lossy(&{
                        let mut v = text.into_bytes();
                        v[at] = b;
                        v
                    })
                    .into_owned();
                }
                _ => {}
            }
            if agrees(&text) {
                read += 1;
            } else {
                left += 1;
            }
        }
        // Both kinds were tried: most answers read, some left to serde_json.
        assert!(read > 1000 && left > 500, "read {read}, left {left}");
    }
}
