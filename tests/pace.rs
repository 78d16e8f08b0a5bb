//! Quiet hours and per-recipient limits through `disclose dispatch`, on a clock set by
//! `DISCLOSE_CLOCK` (no test waits for the night): what falls in quiet hours or over a
//! recipient's limit is deferred, never dropped, and goes out once its window opens.

mod common;

use common::{Scratch, example, sign, stdout, write};
use serde_json::{Value, json};

/// The shipped channels with the given lines added to `sms.toml`.
fn channels(s: &Scratch, sms_extra: &str) -> String {
    let dir = common::daytime_channels(s);
    let sms = std::fs::read_to_string(dir.join("sms.toml")).unwrap();
    write(
        &s.path("pace-channels/sms.toml"),
        &sms.replacen(
            "batch_size = 200\n",
            &format!("batch_size = 200\n{sms_extra}\n"),
            1,
        ),
    );
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        if name != "sms.toml" {
            std::fs::copy(&path, s.path(&format!("pace-channels/{name}"))).unwrap();
        }
    }
    s.path("pace-channels").display().to_string()
}

/// A public SMS notice (the pre-appointment release) whose publicity period runs from `start`.
fn notice(id: &str, start: &str, end: &str) -> Value {
    let mut job = example("01-pre-appointment-release.json");
    job["id"] = json!(id);
    job["channels"] = json!(["sms"]);
    job["audience"]["groups"] = json!(["subscribers"]);
    job["schedule"] = json!({ "publish_at": start, "expires_at": end });
    job["approval"]["approved_at"] = json!("2026-11-30T16:00:00+08:00");
    job
}

fn dispatch(s: &Scratch, channels: &str, clock: &str, jobs: &[&str]) -> (String, String) {
    dispatch_env(s, channels, clock, jobs, &[])
}

fn dispatch_env(
    s: &Scratch,
    channels: &str,
    clock: &str,
    jobs: &[&str],
    env: &[(&str, &str)],
) -> (String, String) {
    let mut args = vec!["dispatch", "--directory", "examples/directory"];
    args.extend_from_slice(jobs);
    let out = s
        .command(&args)
        .env("DISCLOSE_PATHS_CHANNELS_DIR", channels)
        .env("DISCLOSE_CLOCK", clock)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let (o, e) = (stdout(&out), common::stderr(&out));
    assert!(out.status.success(), "{o}\n{e}");
    (o, e)
}

fn sms_sent(s: &Scratch) -> Vec<String> {
    let mut to: Vec<String> = s
        .lines("out/outbox/sms.jsonl")
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["job_id"].as_str().unwrap_or("?"),
                l["address"].as_str().unwrap()
            )
        })
        .collect();
    to.sort();
    to
}

fn sms_states(s: &Scratch, job: &str, channels: &str) -> Vec<(String, String)> {
    sms_states_env(s, job, channels, &[])
}

fn sms_states_env(
    s: &Scratch,
    job: &str,
    channels: &str,
    env: &[(&str, &str)],
) -> Vec<(String, String)> {
    let out = s
        .command(&["status", job, "--json"])
        .env("DISCLOSE_PATHS_CHANNELS_DIR", channels)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut rows: Vec<(String, String)> = v["deliveries"]
        .as_array()
        .unwrap_or_else(|| panic!("{v:#}"))
        .iter()
        .filter(|d| d["channel"] == "sms")
        .map(|d| {
            (
                d["state"].as_str().unwrap().to_string(),
                d["code"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    rows.sort();
    rows.dedup();
    rows
}

/// The four subscribers with a valid number who did not opt out (see examples/directory).
const REACHABLE: usize = 4;

#[test]
fn sms_in_quiet_hours_waits_for_the_morning_and_then_goes_out() {
    let s = Scratch::new("quiet");
    let ch = channels(&s, "quiet_hours = { from = \"21:00\", to = \"08:00\" }");
    let job = sign(
        &s,
        &notice(
            "quiet-1",
            "2026-12-01T20:00:00+08:00",
            "2026-12-09T18:00:00+08:00",
        ),
        "quiet-1",
    );

    // 22:00: accepted and planned, nothing sent; the summary says when it goes.
    let (out, _) = dispatch(&s, &ch, "2026-12-01T22:00:00+08:00", &[&job]);
    assert!(sms_sent(&s).is_empty(), "{:?}", sms_sent(&s));
    assert!(
        out.contains("sms: quiet hours; the pending deliveries go out after 2026-12-02 08:00"),
        "{out}"
    );
    let states = sms_states(&s, "quiet-1", &ch);
    assert!(states.iter().any(|(st, _)| st == "pending"), "{states:?}");
    assert!(
        !states.iter().any(|(st, _)| st == "delivered"),
        "{states:?}"
    );

    // 07:59 the next morning: still quiet.
    dispatch(&s, &ch, "2026-12-02T07:59:00+08:00", &[&job]);
    assert!(sms_sent(&s).is_empty());

    // 08:00: out they go, each once.
    let (out, _) = dispatch(&s, &ch, "2026-12-02T08:00:05+08:00", &[&job]);
    assert_eq!(sms_sent(&s).len(), REACHABLE, "{out}");
    assert!(!out.contains("quiet hours"), "{out}");
    assert!(
        !sms_states(&s, "quiet-1", &ch)
            .iter()
            .any(|(st, _)| st == "pending"),
    );
    // Outside quiet hours a second run sends nothing again.
    dispatch(&s, &ch, "2026-12-02T09:00:00+08:00", &[&job]);
    assert_eq!(sms_sent(&s).len(), REACHABLE);
}

#[test]
fn a_number_over_its_daily_limit_is_deferred_to_the_next_day_not_dropped() {
    let s = Scratch::new("limits");
    let ch = channels(&s, "recipient_limits = { per_day = 1 }");
    let first = sign(
        &s,
        &notice(
            "limit-1",
            "2026-12-01T09:00:00+08:00",
            "2026-12-09T18:00:00+08:00",
        ),
        "limit-1",
    );
    let second = sign(
        &s,
        &notice(
            "limit-2",
            "2026-12-01T09:00:00+08:00",
            "2026-12-09T18:00:00+08:00",
        ),
        "limit-2",
    );

    // Both notices the same day: the second reaches no one today. (A later run is a new
    // process: the count of the day lives in memory, so both go in one run here.)
    dispatch(&s, &ch, "2026-12-01T10:00:00+08:00", &[&first, &second]);
    let sent = sms_sent(&s);
    assert_eq!(sent.len(), REACHABLE, "{sent:?}");
    assert!(sent.iter().all(|l| l.starts_with("limit-1 ")), "{sent:?}");
    let states = sms_states(&s, "limit-2", &ch);
    assert!(
        states.contains(&("pending".into(), "recipient_limit".into())),
        "{states:?}"
    );

    // The next day it goes out, and waiting used up none of its attempts.
    dispatch(&s, &ch, "2026-12-02T00:00:30+08:00", &[&second]);
    let sent = sms_sent(&s);
    assert_eq!(sent.len(), 2 * REACHABLE, "{sent:?}");
    let db = rusqlite::Connection::open(s.path("ledger.db")).unwrap();
    let attempts: i64 = db
        .query_row(
            "SELECT max(attempts) FROM deliveries WHERE job_id = 'limit-2' AND channel = 'sms' AND state = 'delivered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(attempts, 1, "the deferral is not an attempt");
}

use common::pg::PgSchema;

/// On a PostgreSQL ledger the day's count lives in the ledger, not in one process: two runs
/// (as two replicas) on the same day send each number one notice, not one each; the second
/// goes out the next day.
#[test]
fn on_postgres_a_daily_limit_holds_across_processes() {
    let s = Scratch::new("limits-pg");
    let schema = PgSchema::new("pace_limits");
    let url = schema.url();
    let env = [("DISCLOSE_LEDGER_URL", url.as_str())];
    let ch = channels(&s, "recipient_limits = { per_day = 1 }");
    let jobs: Vec<String> = ["limit-pg-1", "limit-pg-2"]
        .into_iter()
        .map(|id| {
            let job = notice(id, "2026-12-01T09:00:00+08:00", "2026-12-09T18:00:00+08:00");
            sign(&s, &job, id)
        })
        .collect();

    dispatch_env(&s, &ch, "2026-12-01T10:00:00+08:00", &[&jobs[0]], &env);
    dispatch_env(&s, &ch, "2026-12-01T10:05:00+08:00", &[&jobs[1]], &env);
    let sent = sms_sent(&s);
    assert_eq!(sent.len(), REACHABLE, "{sent:?}");
    assert!(
        sent.iter().all(|l| l.starts_with("limit-pg-1 ")),
        "{sent:?}"
    );
    let states = sms_states_env(&s, "limit-pg-2", &ch, &env);
    assert!(
        states.contains(&("pending".into(), "recipient_limit".into())),
        "{states:?}"
    );

    dispatch_env(&s, &ch, "2026-12-02T00:00:30+08:00", &[&jobs[1]], &env);
    let sent = sms_sent(&s);
    assert_eq!(sent.len(), 2 * REACHABLE, "{sent:?}");
}
