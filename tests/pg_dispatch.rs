//! `disclose dispatch` end to end on a PostgreSQL ledger, pointed at it through configuration
//! alone (`DISCLOSE_LEDGER_URL` with a schema of its own in database `test`): the same summary
//! and the same messages as on the embedded SQLite ledger, nothing planned twice on a second run,
//! the audit chain intact, and `status`, `audit verify` and `config check` reading it.

mod common;

use common::{Scratch, stderr, stdout};

use common::pg::PgSchema;

const DISPATCH: [&str; 4] = [
    "dispatch",
    "--directory",
    "examples/directory",
    "examples/jobs",
];

fn sorted_lines(s: &Scratch, rel: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines(rel)
        .into_iter()
        .map(|l| format!("{} {}", l["job_id"], l["address"]))
        .collect();
    v.sort();
    v
}

#[test]
fn dispatch_on_postgres_does_what_it_does_on_sqlite() {
    let sqlite = Scratch::new("pg-dispatch-sqlite");
    let on_sqlite = sqlite.disclose(&DISPATCH);
    assert!(on_sqlite.status.success(), "{}", stderr(&on_sqlite));

    let schema = PgSchema::new("dispatch_examples");
    let s = Scratch::new("pg-dispatch-pg");
    let run = |args: &[&str]| {
        s.command(args)
            .env("DISCLOSE_LEDGER_URL", schema.url())
            .output()
            .unwrap()
    };
    let on_pg = run(&DISPATCH);
    assert!(
        on_pg.status.success(),
        "{}\n{}",
        stdout(&on_pg),
        stderr(&on_pg)
    );
    // The same summary, but for where each scratch directory is.
    assert_eq!(
        stdout(&on_pg).replace(&s.0.display().to_string(), "SCRATCH"),
        stdout(&on_sqlite).replace(&sqlite.0.display().to_string(), "SCRATCH")
    );
    for outbox in [
        "out/outbox/sms.jsonl",
        "out/outbox/wechat.jsonl",
        "out/outbox/letter.jsonl",
    ] {
        let (pg, lite) = (sorted_lines(&s, outbox), sorted_lines(&sqlite, outbox));
        assert!(!pg.is_empty(), "{outbox}: nothing sent");
        assert_eq!(pg, lite, "{outbox}");
    }

    // The same jobs again: duplicates, nothing planned or sent twice.
    let sms_before = s.lines("out/outbox/sms.jsonl").len();
    let again = run(&DISPATCH);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(s.lines("out/outbox/sms.jsonl").len(), sms_before);

    let verify = run(&["audit", "verify"]);
    assert!(
        stdout(&verify).contains("audit chain intact"),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
    let status = run(&["status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(
        stdout(&status).contains("zzb-2026-0142"),
        "{}",
        stdout(&status)
    );
}

#[test]
fn an_unreachable_postgres_is_reported_without_its_password() {
    let s = Scratch::new("pg-dispatch-down");
    // Port 1 on loopback: nothing listens there.
    let out = s
        .command(&["config", "check"])
        .env(
            "DISCLOSE_LEDGER_URL",
            "postgres://app:s3cret-pw@127.0.0.1:1/test",
        )
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("ledger"), "{text}");
    assert!(text.contains("PostgreSQL"), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
}
