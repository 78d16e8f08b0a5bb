//! `disclose directory import`: columns by header name, phone numbers normalised to E.164 with
//! bad ones reported by line, re-import replacing the group, and clear errors for bad files.

mod common;

use common::{Scratch, stderr, stdout, write};

fn members(s: &Scratch, group: &str) -> Vec<(String, Option<String>, bool)> {
    let conn = rusqlite::Connection::open(s.path("ledger.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, phone, opted_out FROM members WHERE grp = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map([group], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn columns_are_found_by_name_and_phones_normalised() {
    let s = Scratch::new("dir-import");
    let csv = s.path("subs.csv");
    // Columns in an odd order, a BOM, an extra column, every accepted phone shape.
    write(
        &csv,
        "\u{feff}phone,remark,NAME,id,opted_out\n\
         138 0013 8000,,王一,a1,\n\
         +86 139-0013-9001,,王二,a2,0\n\
         8613700137002,,王三,a3,是\n\
         0086 186 0018 6004,,王四,a4,\n\
         12345,,王五,a5,\n\
         ,,王六,a6,maybe\n\
         ,,,a7,\n",
    );
    let out = s.disclose(&[
        "directory",
        "import",
        "--group",
        "subscribers",
        "--kind",
        "public",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("6 members imported"), "{text}");
    // Problems name their line: the bad number (masked), the unclear consent, the row without a name.
    assert!(
        text.contains("subs.csv:6: phone dropped") && !text.contains("12345"),
        "{text}"
    );
    assert!(text.contains("subs.csv:7: opted_out \"maybe\""), "{text}");
    assert!(text.contains("subs.csv:8: row left out"), "{text}");
    let m = members(&s, "subscribers");
    assert_eq!(
        m,
        [
            ("a1".into(), Some("+8613800138000".into()), false),
            ("a2".into(), Some("+8613900139001".into()), false),
            ("a3".into(), Some("+8613700137002".into()), true),
            ("a4".into(), Some("+8618600186004".into()), false),
            ("a5".into(), None, false),
            // Unclear consent counts as opted out: never send to someone who may have said no.
            ("a6".into(), None, true),
        ]
    );

    // Re-import replaces the group.
    write(&csv, "id,name\nb1,李一\n");
    let out = s.disclose(&[
        "directory",
        "import",
        "--group",
        "subscribers",
        "--kind",
        "public",
        csv.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(members(&s, "subscribers").len(), 1);
    let list = stdout(&s.disclose(&["directory", "list"]));
    assert!(
        list.contains("subscribers") && list.contains("public") && list.contains(" 1 members"),
        "{list}"
    );
}

#[test]
fn bad_files_get_clear_errors_and_leave_the_group_as_it_was() {
    let s = Scratch::new("dir-bad");
    let good = s.path("good.csv");
    write(&good, "id,name\nx1,甲\nx2,乙\n");
    assert!(
        s.disclose(&[
            "directory",
            "import",
            "--group",
            "unit:czj",
            good.to_str().unwrap()
        ])
        .status
        .success()
    );

    let no_id = s.path("no-id.csv");
    write(&no_id, "name,phone\n甲,13800138000\n");
    let out = s.disclose(&[
        "directory",
        "import",
        "--group",
        "unit:czj",
        no_id.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no \"id\" column"),
        "{}",
        stderr(&out)
    );

    // A GBK export (not UTF-8) breaking off part-way: refused, and the group keeps its members.
    let gbk = s.path("gbk.csv");
    std::fs::write(&gbk, b"id,name\ny1,ok\ny2,\xd5\xc5\xc8\xfd\n").unwrap();
    let out = s.disclose(&[
        "directory",
        "import",
        "--group",
        "unit:czj",
        gbk.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("UTF-8") && stderr(&out).contains("line 3"),
        "{}",
        stderr(&out)
    );
    assert_eq!(members(&s, "unit:czj").len(), 2);

    let out = s.disclose(&[
        "directory",
        "import",
        "--group",
        "unit:czj",
        "--kind",
        "public",
        good.to_str().unwrap(),
    ]);
    assert!(stderr(&out).contains("is a unit group"), "{}", stderr(&out));
    let out = s.disclose(&[
        "directory",
        "import",
        "--group",
        "press",
        good.to_str().unwrap(),
    ]);
    assert!(
        stderr(&out).contains("--kind is required"),
        "{}",
        stderr(&out)
    );
    let out = s.disclose(&[
        "directory",
        "import",
        "--group",
        "press",
        "--kind",
        "vip",
        good.to_str().unwrap(),
    ]);
    assert!(stderr(&out).contains("must be one of"), "{}", stderr(&out));
}
