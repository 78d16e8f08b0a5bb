//! Untrusted bytes → `disclose::directory::import_csv` (the `directory import` of an HR export),
//! which must never panic whatever the file holds (SPEC §5), and every cell → the phone
//! normaliser, whose answer must be E.164 (`+` and 7–15 digits) and a fixed point: normalising
//! a normalised number gives it back unchanged, so a re-import never changes a stored number.
#![no_main]

use std::sync::OnceLock;

use disclose::ledger::sqlite::SqliteLedger;
use libfuzzer_sys::fuzz_target;

/// One ledger for the whole run, in the temporary directory (the import replaces the group).
fn ledger() -> &'static SqliteLedger {
    static LEDGER: OnceLock<SqliteLedger> = OnceLock::new();
    LEDGER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("disclose-fuzz-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        SqliteLedger::open(&dir.join("ledger.db")).expect("a ledger in the temporary directory")
    })
}

fuzz_target!(|data: &[u8]| {
    let now = disclose::clock::now();
    // With a header of the required columns in front, the rows themselves get exercised too.
    let mut with_header =
        b"id,name,phone,email,wechat_openid,wecom_userid,postcode,address,opted_out\n".to_vec();
    with_header.extend_from_slice(data);
    for input in [data, &with_header[..]] {
        if let Ok(report) = disclose::directory::import_csv(
            ledger(),
            "fuzz",
            disclose::policy::GroupKind::Public,
            input,
            now,
        ) {
            assert!(report.problems.len() as u64 <= report.problem_count);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for cell in text.split([',', '\n']) {
        if let Ok(e164) = disclose::phone::normalize(cell) {
            let digits = e164
                .strip_prefix('+')
                .unwrap_or_else(|| panic!("{cell:?} → {e164:?}: no +"));
            assert!(
                (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
                "{cell:?} → {e164:?} is not E.164"
            );
            assert_eq!(
                disclose::phone::normalize(&e164).ok().as_deref(),
                Some(e164.as_str()),
                "normalising {cell:?} twice changes it"
            );
        }
    }
});
