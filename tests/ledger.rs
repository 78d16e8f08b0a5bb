//! The ledger's contract, as one suite every implementation must pass: each `suite_*` function
//! runs against SQLite (`sqlite_*`) and against PostgreSQL (`pg_*`, a schema of its own per test
//! in database `test` on 127.0.0.1:5432), plus what only PostgreSQL has to show: two ledgers
//! (as two replicas) sharing one schema.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use disclose::job::{ChannelKind, Job};
use disclose::ledger::{
    Acceptance, Accepted, ChainStatus, Ledger, Member, PgLedger, Record, SqliteLedger, State,
};
use disclose::policy::{GroupKind, Plan, Refusal};

fn t(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

fn now() -> DateTime<FixedOffset> {
    t("2026-12-01T09:00:00+08:00")
}

struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new(name: &str) -> TempDb {
        let dir =
            std::env::temp_dir().join(format!("disclose-ledger-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDb(dir)
    }
    fn path(&self) -> std::path::PathBuf {
        self.0.join("ledger.db")
    }
    fn open(&self) -> SqliteLedger {
        SqliteLedger::open(&self.path()).unwrap()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn member(id: &str, phone: Option<&str>, opted_out: bool) -> Member {
    Member {
        id: id.into(),
        name: format!("name-{id}"),
        phone: phone.map(str::to_string),
        email: Some(format!("{id}@example.cn")),
        opted_out,
        ..Member::default()
    }
}

fn import(l: &dyn Ledger, group: &str, kind: GroupKind, members: Vec<Member>) -> u64 {
    l.replace_group(group, kind, &mut members.into_iter().map(Ok), now())
        .unwrap()
}

fn job(id: &str, extra: serde_json::Value) -> Job {
    let mut v = serde_json::json!({
        "id": id, "kind": "release", "category": "6.1", "scope": "public", "classification": "none",
        "title": "标题", "template": "general", "data": {"body": "正文"},
        "approval": {"approver": "李四", "reference": "组干审〔2026〕1号", "approved_at": "2026-11-28T16:00:00+08:00", "key_id": "k"}
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    disclose::job::parse(v.to_string().as_bytes()).unwrap().job
}

fn plan(
    channels: &[ChannelKind],
    groups: &[&str],
    publish_at: Option<DateTime<FixedOffset>>,
) -> Plan {
    Plan {
        channels: channels.to_vec(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        recipients: vec![],
        publish_at,
        expires_at: None,
    }
}

fn accept(l: &dyn Ledger, job: &Job, plan: &Plan) -> Accepted {
    l.accept(&Acceptance {
        job,
        body: b"{}",
        plan,
        now: now(),
    })
    .unwrap()
}

/// The outcome `delivered` for a claimed delivery, recorded under its claim (as the engine does).
fn delivered(c: &disclose::ledger::Claimed) -> Record {
    Record {
        id: c.id,
        state: State::Delivered,
        code: None,
        detail: None,
        retry_at: None,
        deferred: false,
        lease_until: Some(c.lease_until),
    }
}

fn deliver_all(l: &dyn Ledger, channel: ChannelKind, at: DateTime<FixedOffset>) -> usize {
    let claimed = l
        .claim(channel, at.timestamp_millis(), 60_000, 10_000)
        .unwrap();
    let records: Vec<Record> = claimed.iter().map(delivered).collect();
    l.record(&records, at).unwrap();
    claimed.len()
}

/// Ten subscribers and a notice to them by SMS, in `l`.
fn ten_to_send(l: &dyn Ledger, job_id: &str) {
    import(
        l,
        "subscribers",
        GroupKind::Public,
        (0..10)
            .map(|i| member(&format!("m{i}"), Some(&format!("+861380000{i:04}")), false))
            .collect(),
    );
    accept(
        l,
        &job(job_id, serde_json::json!({})),
        &plan(&[ChannelKind::Sms], &["subscribers"], None),
    );
}

fn suite_plans_each_group_member_once_and_skips_opt_outs(l: &dyn Ledger) {
    import(
        l,
        "subscribers",
        GroupKind::Public,
        vec![
            member("a", Some("+8613800000001"), false),
            member("b", Some("+8613800000002"), true),
            member("c", None, false),
        ],
    );
    // "a" is in both groups: one delivery per (job, channel, recipient).
    import(
        l,
        "press",
        GroupKind::Public,
        vec![
            member("a", Some("+8613800000001"), false),
            member("d", Some("+8613800000004"), false),
        ],
    );
    let j = job("j1", serde_json::json!({}));
    let p = plan(
        &[ChannelKind::Website, ChannelKind::Sms],
        &["subscribers", "press"],
        None,
    );
    let Accepted::New { planned } = accept(l, &j, &p) else {
        panic!("not new")
    };
    assert_eq!(
        planned,
        BTreeMap::from([(ChannelKind::Website, 1), (ChannelKind::Sms, 4)])
    );
    let counts = l.counts(&["j1".into()]).unwrap();
    assert_eq!(counts.get(&State::Pending), Some(&3)); // page, a, d
    assert_eq!(counts.get(&State::Skipped), Some(&2)); // b opted out, c has no phone
    let rows = l.deliveries("j1", 100).unwrap();
    let b = rows.iter().find(|r| r.recipient == "b").unwrap();
    assert_eq!(
        (b.state.as_str(), b.code.as_deref()),
        ("skipped", Some("opted_out"))
    );
    let c = rows.iter().find(|r| r.recipient == "c").unwrap();
    assert_eq!(c.code.as_deref(), Some("no_address"));
    // The same id again plans nothing.
    assert_eq!(accept(l, &j, &p), Accepted::Duplicate);
    assert_eq!(l.counts(&["j1".into()]).unwrap().values().sum::<u64>(), 5);
}

/// `open_counts` (from the open states' partial indexes) agrees with the full count, and j2's
/// ten deliveries are all in `state`.
fn assert_open_counts_agree(l: &dyn Ledger, state: State) {
    let mut all = l.counts(&[]).unwrap();
    all.retain(|s, _| !s.is_final());
    let open = l.open_counts().unwrap();
    assert_eq!(open, all);
    assert!(open.get(&state).copied().unwrap_or(0) >= 10, "{open:?}");
}

fn suite_claims_are_exclusive_and_leases_expire_to_unknown(l: &dyn Ledger) {
    ten_to_send(l, "j2");
    let ms = now().timestamp_millis();
    let first = l.claim(ChannelKind::Sms, ms, 1_000, 6).unwrap();
    let second = l.claim(ChannelKind::Sms, ms, 1_000, 6).unwrap();
    assert_eq!((first.len(), second.len()), (6, 4));
    assert!(first.iter().all(|c| !second.iter().any(|d| d.id == c.id)));
    assert!(first.iter().all(|c| c.attempt == 1 && c.address.is_some()));
    assert!(l.claim(ChannelKind::Sms, ms, 1_000, 6).unwrap().is_empty());
    assert_open_counts_agree(l, State::Sending);
    // Nobody recorded the first batch (the process died): after the lease they are unknown,
    // never pending again, so they are not resent blindly.
    // (A ledger may give a claim a millisecond more than asked, to keep each claim's lease its
    // own: the SQLite claim journal does.)
    let lease = first[0].lease_until.max(second[0].lease_until);
    assert!(lease - ms < 1_010);
    assert_eq!(l.expire_leases(ms + 500).unwrap(), 0);
    assert_eq!(l.expire_leases(lease + 1).unwrap(), 10);
    assert_open_counts_agree(l, State::Unknown);
    // Unknown deliveries are due for the status query: the workers wake for them too.
    assert_eq!(l.next_due(ChannelKind::Sms).unwrap(), Some(ms));
    assert!(
        l.claim(ChannelKind::Sms, ms + 2_000, 1_000, 100)
            .unwrap()
            .is_empty()
    );
    let unknown = l
        .claim_unknown(ChannelKind::Sms, ms + 2_000, 1_000, 100)
        .unwrap();
    assert_eq!(unknown.len(), 10);
    assert!(
        unknown.iter().all(|c| c.attempt == 1),
        "a status query is not an attempt"
    );

    // The first worker was not dead, only slow: its late outcome ("not sent, try again") must
    // not overwrite what the worker that holds the delivery now will record, or the delivery
    // would go out twice. Outcomes of the current claim are recorded.
    let stale = |c: &disclose::ledger::Claimed| Record {
        id: c.id,
        state: State::Pending,
        code: Some("connect".into()),
        detail: None,
        retry_at: Some(ms),
        deferred: false,
        lease_until: Some(first[0].lease_until),
    };
    let late: Vec<Record> = first.iter().map(stale).collect();
    l.record(&late, now()).unwrap();
    let current: Vec<Record> = unknown
        .iter()
        .map(|c| Record {
            state: State::Delivered,
            code: Some("SERIAL".into()),
            retry_at: None,
            lease_until: Some(c.lease_until),
            ..stale(c)
        })
        .collect();
    l.record(&current, now()).unwrap();
    let states = l.counts(&["j2".into()]).unwrap();
    assert_eq!(states.get(&State::Delivered), Some(&10), "{states:?}");
    assert_eq!(states.get(&State::Pending), None, "{states:?}");
}

fn suite_retries_wait_until_due_and_finals_stick(l: &dyn Ledger) {
    import(
        l,
        "subscribers",
        GroupKind::Public,
        vec![member("a", Some("+8613800000001"), false)],
    );
    accept(
        l,
        &job("j3", serde_json::json!({})),
        &plan(&[ChannelKind::Sms], &["subscribers"], None),
    );
    let ms = now().timestamp_millis();
    let c = l.claim(ChannelKind::Sms, ms, 60_000, 10).unwrap();
    l.record(
        &[Record {
            id: c[0].id,
            state: State::Pending,
            code: Some("E503".into()),
            detail: None,
            retry_at: Some(ms + 5_000),
            deferred: false,
            lease_until: Some(c[0].lease_until),
        }],
        now(),
    )
    .unwrap();
    assert_eq!(l.next_retry(ChannelKind::Sms).unwrap(), Some(ms + 5_000));
    assert!(
        l.claim(ChannelKind::Sms, ms + 4_999, 60_000, 10)
            .unwrap()
            .is_empty()
    );
    let again = l.claim(ChannelKind::Sms, ms + 5_000, 60_000, 10).unwrap();
    assert_eq!(again[0].attempt, 2);
    l.record(&[delivered(&again[0])], now()).unwrap();
    // A late record for a delivery no longer in flight changes nothing.
    l.record(
        &[Record {
            id: again[0].id,
            state: State::Failed,
            code: Some("late".into()),
            detail: None,
            retry_at: None,
            deferred: false,
            lease_until: None,
        }],
        now(),
    )
    .unwrap();
    assert_eq!(l.deliveries("j3", 10).unwrap()[0].state, "delivered");
    assert_eq!(l.next_retry(ChannelKind::Sms).unwrap(), None);
}

fn suite_publish_at_defers_every_delivery(l: &dyn Ledger) {
    import(
        l,
        "subscribers",
        GroupKind::Public,
        vec![member("a", Some("+8613800000001"), false)],
    );
    let at = t("2026-12-03T09:00:00+08:00");
    accept(
        l,
        &job("j4", serde_json::json!({})),
        &plan(
            &[ChannelKind::Website, ChannelKind::Sms],
            &["subscribers"],
            Some(at),
        ),
    );
    assert_eq!(deliver_all(l, ChannelKind::Sms, now()), 0);
    assert_eq!(deliver_all(l, ChannelKind::Website, now()), 0);
    assert_eq!(l.job_summary("j4").unwrap().unwrap().status, "scheduled");
    // The workers sleep until the next due delivery, pending or unknown.
    assert_eq!(
        l.next_due(ChannelKind::Sms).unwrap(),
        Some(at.timestamp_millis())
    );
    assert_eq!(l.next_due(ChannelKind::Email).unwrap(), None);
    assert_eq!(deliver_all(l, ChannelKind::Sms, at), 1);
    assert_eq!(l.next_due(ChannelKind::Sms).unwrap(), None);
    assert_eq!(deliver_all(l, ChannelKind::Website, at), 1);
    assert_eq!(l.job_summary("j4").unwrap().unwrap().status, "completed");
}

fn suite_corrections_reach_exactly_the_original_recipients(l: &dyn Ledger) {
    import(
        l,
        "subscribers",
        GroupKind::Public,
        (0..5)
            .map(|i| member(&format!("m{i}"), Some(&format!("+861380000{i:04}")), i == 4))
            .collect(),
    );
    accept(
        l,
        &job("orig", serde_json::json!({})),
        &plan(&[ChannelKind::Sms], &["subscribers"], None),
    );
    // m0..m2 reached, m3 failed for good, m4 opted out.
    let c = l
        .claim(ChannelKind::Sms, now().timestamp_millis(), 60_000, 100)
        .unwrap();
    let records: Vec<Record> = c
        .iter()
        .map(|c| Record {
            id: c.id,
            state: if c.recipient == "m3" {
                State::Failed
            } else {
                State::Delivered
            },
            code: None,
            detail: None,
            retry_at: None,
            deferred: false,
            lease_until: Some(c.lease_until),
        })
        .collect();
    l.record(&records, now()).unwrap();
    // Someone joins the group after the original went out: the correction must not reach them.
    import(
        l,
        "subscribers",
        GroupKind::Public,
        (0..7)
            .map(|i| member(&format!("m{i}"), Some(&format!("+861380000{i:04}")), false))
            .collect(),
    );
    let target = l.target("orig").unwrap().unwrap();
    assert!(target.reached);
    let corr = job(
        "corr",
        serde_json::json!({"kind": "correction", "corrects": "orig"}),
    );
    accept(l, &corr, &plan(&[ChannelKind::Sms], &["subscribers"], None));
    let mut got: Vec<String> = l
        .deliveries("corr", 100)
        .unwrap()
        .into_iter()
        .map(|d| d.recipient)
        .collect();
    got.sort();
    assert_eq!(got, ["m0", "m1", "m2"]);
}

fn suite_retractions_cancel_what_has_not_gone_out(l: &dyn Ledger) {
    import(
        l,
        "subscribers",
        GroupKind::Public,
        (0..3)
            .map(|i| member(&format!("m{i}"), Some(&format!("+861380000{i:04}")), false))
            .collect(),
    );
    accept(
        l,
        &job("orig2", serde_json::json!({})),
        &plan(&[ChannelKind::Sms], &["subscribers"], None),
    );
    let c = l
        .claim(ChannelKind::Sms, now().timestamp_millis(), 60_000, 1)
        .unwrap();
    l.record(&[delivered(&c[0])], now()).unwrap();
    let retr = job(
        "retr",
        serde_json::json!({"kind": "retraction", "corrects": "orig2"}),
    );
    accept(l, &retr, &plan(&[ChannelKind::Sms], &[], None));
    let counts = l.counts(&["orig2".into()]).unwrap();
    assert_eq!(
        (counts.get(&State::Delivered), counts.get(&State::Cancelled)),
        (Some(&1), Some(&2))
    );
    // The retraction notice goes only to the one who got the original.
    assert_eq!(l.deliveries("retr", 10).unwrap().len(), 1);
}

fn suite_refusals_are_recorded_but_do_not_take_the_id(l: &dyn Ledger) {
    let r = vec![Refusal::new(
        disclose::policy::Code::Unapproved,
        "bad signature",
    )];
    l.refuse(Some("j5"), b"forged", &r, now()).unwrap();
    assert!(!l.has_job("j5").unwrap());
    let listed = l.refusals(10).unwrap();
    assert_eq!(listed[0].job_id.as_deref(), Some("j5"));
    assert_eq!(listed[0].refusals, r);
    let Accepted::New { .. } = accept(
        l,
        &job("j5", serde_json::json!({})),
        &plan(&[ChannelKind::Website], &[], None),
    ) else {
        panic!("the real job must still be accepted")
    };
    // A batch at intake asks for all its ids at once: only the recorded job is known.
    let ids = ["j5", "j6", "nope"].map(String::from);
    assert_eq!(
        l.known_jobs(&ids).unwrap(),
        std::collections::HashSet::from(["j5".to_string()])
    );
}

fn suite_directory_import_replaces_atomically(l: &dyn Ledger) {
    import(
        l,
        "g",
        GroupKind::Committee,
        vec![member("a", None, false), member("b", None, false)],
    );
    let mut failing = vec![
        Ok(member("c", None, false)),
        Err("line 3: broken".to_string()),
    ]
    .into_iter();
    let e = l
        .replace_group("g", GroupKind::Committee, &mut failing, now())
        .unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    let ids: Vec<String> = l
        .members("g", None, 10)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(
        ids,
        ["a", "b"],
        "a failed import leaves the group as it was"
    );
    import(l, "g", GroupKind::Committee, vec![member("c", None, false)]);
    assert_eq!(l.groups().unwrap()[0].members, 1);
    assert_eq!(
        l.group_kinds(&["g".into(), "nope".into()]).unwrap().len(),
        1
    );
    import(
        l,
        "roster",
        GroupKind::Leadership,
        vec![member("l1", None, false)],
    );
    assert_eq!(
        l.on_roster(&["l1".into(), "c".into()])
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        ["l1"]
    );
}

fn suite_events_are_written_with_the_changes_they_report(l: &dyn Ledger) {
    import(
        l,
        "subscribers",
        GroupKind::Public,
        vec![
            member("a", Some("+8613800000001"), false),
            member("b", Some("+8613800000002"), false),
        ],
    );
    accept(
        l,
        &job("ev1", serde_json::json!({})),
        &plan(&[ChannelKind::Sms], &["subscribers"], None),
    );
    l.refuse(
        Some("ev2"),
        b"x",
        &[Refusal::new(disclose::policy::Code::Malformed, "bad")],
        now(),
    )
    .unwrap();
    let c = l
        .claim(ChannelKind::Sms, now().timestamp_millis(), 60_000, 10)
        .unwrap();
    let outcome = |c: &disclose::ledger::Claimed| Record {
        id: c.id,
        state: if c.recipient == "a" {
            State::Delivered
        } else {
            State::Failed
        },
        code: (c.recipient == "b").then(|| "E1".to_string()),
        detail: None,
        retry_at: None,
        deferred: false,
        lease_until: Some(c.lease_until),
    };
    l.record(&c.iter().map(outcome).collect::<Vec<_>>(), now())
        .unwrap();
    let events = l.pending_events(100).unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "job.accepted",
            "job.refused",
            "delivery.delivered",
            "delivery.failed",
            "job.completed"
        ]
    );
    let done: serde_json::Value = serde_json::from_str(&events[4].payload).unwrap();
    assert_eq!(done["job_id"], "ev1");
    assert_eq!(
        done["outcomes"]["sms"],
        serde_json::json!({"delivered": 1, "failed": 1})
    );
    let failed: serde_json::Value = serde_json::from_str(&events[3].payload).unwrap();
    assert_eq!(failed["deliveries"][0]["recipient"], "b");
    assert_eq!(failed["deliveries"][0]["code"], "E1");
    assert_eq!(failed["deliveries"][0]["delivery"], c[1].id);
    assert_eq!(failed["channel"], "sms");
    assert_eq!(failed["event"], "delivery.failed");
    assert_eq!(failed["seq"], events[3].seq);
    // Every payload is compact JSON with its keys in order, however it was written.
    for e in &events {
        let v: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(v.to_string(), e.payload, "{}", e.name);
    }
    // The audit entry of the recorded outcomes lists each delivery with its outcome.
    let day = chrono::Duration::days(1);
    let recorded = l
        .audit_entries("deliveries.recorded", now() - day, now() + day)
        .unwrap()
        .pop()
        .expect("the outcomes are in the audit trail");
    let body = recorded.body;
    assert_eq!(
        body["deliveries"],
        serde_json::json!([
            [c[0].id, "delivered", null, null],
            [c[1].id, "failed", "E1", null]
        ])
    );
    assert_eq!(body["jobs"], serde_json::json!(["ev1"]));
    l.mark_published(&[events[0].seq, events[1].seq], now())
        .unwrap();
    assert_eq!(l.pending_events(100).unwrap().len(), 3);
}

/// One recorded batch of two jobs on two channels in four outcomes: each `delivery.<state>`
/// event lists exactly its own job's, channel's and state's deliveries, each with its code and
/// recipient, and keeps them when a delivery's state changes later.
fn suite_each_outcome_event_lists_its_own_deliveries(l: &dyn Ledger) {
    import(
        l,
        "subscribers",
        GroupKind::Public,
        ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, id)| member(id, Some(&format!("+86138000000{i:02}")), false))
            .collect(),
    );
    accept(
        l,
        &job("mx1", serde_json::json!({})),
        &plan(
            &[ChannelKind::Sms, ChannelKind::Email],
            &["subscribers"],
            None,
        ),
    );
    accept(
        l,
        &job("mx2", serde_json::json!({})),
        &plan(&[ChannelKind::Sms], &["subscribers"], None),
    );
    let at = now().timestamp_millis();
    let mut claimed = l.claim(ChannelKind::Sms, at, 60_000, 100).unwrap();
    claimed.extend(l.claim(ChannelKind::Email, at, 60_000, 100).unwrap());
    assert_eq!(claimed.len(), 9);
    let outcome = |c: &disclose::ledger::Claimed| {
        let (state, code, retry_at) = match (&*c.job_id, c.channel, c.recipient.as_str()) {
            ("mx1", ChannelKind::Sms, "b") => (State::Failed, Some("E1"), None),
            ("mx1", ChannelKind::Sms, "c") => (State::Unknown, Some("timeout"), None),
            ("mx1", ChannelKind::Email, "b") => (State::Pending, Some("busy"), Some(at + 60_000)),
            _ => (State::Delivered, None, None),
        };
        Record {
            id: c.id,
            state,
            code: code.map(str::to_string),
            detail: Some(format!("ref-{}", c.id)),
            retry_at,
            deferred: false,
            lease_until: Some(c.lease_until),
        }
    };
    l.record(&claimed.iter().map(outcome).collect::<Vec<_>>(), now())
        .unwrap();
    let id_of = |job: &str, channel: ChannelKind, recipient: &str| {
        claimed
            .iter()
            .find(|c| &*c.job_id == job && c.channel == channel && c.recipient == recipient)
            .unwrap()
            .id
    };
    // The unknown one turns out delivered.
    let unknown = id_of("mx1", ChannelKind::Sms, "c");
    l.record(
        &[Record {
            id: unknown,
            state: State::Delivered,
            code: None,
            detail: None,
            retry_at: None,
            deferred: false,
            lease_until: None,
        }],
        now(),
    )
    .unwrap();
    // (job, event, channel) → [(delivery, code, recipient)], in the order listed.
    type Listed = Vec<(i64, Option<String>, String)>;
    let mut events: BTreeMap<(String, String, String), Vec<Listed>> = BTreeMap::new();
    for e in l.pending_events(100).unwrap() {
        if !e.name.starts_with("delivery.") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(v.to_string(), e.payload, "compact, keys in order");
        assert_eq!(v["seq"], e.seq);
        assert_eq!(v["event"], e.name.as_str());
        assert_eq!(v["job_id"], e.job_id.as_deref().unwrap());
        let mut listed: Listed = v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["delivery"].as_i64().unwrap(),
                    d["code"].as_str().map(str::to_string),
                    d["recipient"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        listed.sort();
        events
            .entry((
                e.job_id.unwrap(),
                e.name,
                v["channel"].as_str().unwrap().to_string(),
            ))
            .or_default()
            .push(listed);
    }
    let key = |job: &str, name: &str, channel: &str| (job.into(), name.into(), channel.into());
    let one = |job: &str, channel: ChannelKind, recipient: &str, code: Option<&str>| {
        (
            id_of(job, channel, recipient),
            code.map(str::to_string),
            recipient.to_string(),
        )
    };
    let sorted = |mut v: Listed| {
        v.sort();
        v
    };
    let want: BTreeMap<(String, String, String), Vec<Listed>> = [
        (
            key("mx1", "delivery.delivered", "sms"),
            vec![
                vec![one("mx1", ChannelKind::Sms, "a", None)],
                vec![one("mx1", ChannelKind::Sms, "c", None)],
            ],
        ),
        (
            key("mx1", "delivery.failed", "sms"),
            vec![vec![one("mx1", ChannelKind::Sms, "b", Some("E1"))]],
        ),
        (
            key("mx1", "delivery.unknown", "sms"),
            vec![vec![one("mx1", ChannelKind::Sms, "c", Some("timeout"))]],
        ),
        (
            key("mx1", "delivery.delivered", "email"),
            vec![sorted(vec![
                one("mx1", ChannelKind::Email, "a", None),
                one("mx1", ChannelKind::Email, "c", None),
            ])],
        ),
        (
            key("mx2", "delivery.delivered", "sms"),
            vec![sorted(vec![
                one("mx2", ChannelKind::Sms, "a", None),
                one("mx2", ChannelKind::Sms, "b", None),
                one("mx2", ChannelKind::Sms, "c", None),
            ])],
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(events, want);
    // The audit entry of the batch lists every outcome with its code and detail (the provider's
    // reference), the retry included; the later one the unknown delivery's answer.
    let day = chrono::Duration::days(1);
    let recorded = l
        .audit_entries("deliveries.recorded", now() - day, now() + day)
        .unwrap();
    let [batch, later] = &recorded[..] else {
        panic!("two recorded batches: {recorded:?}");
    };
    let mut listed: Vec<serde_json::Value> = claimed
        .iter()
        .map(|c| {
            let r = outcome(c);
            serde_json::json!([r.id, r.state.as_str(), r.code, r.detail])
        })
        .collect();
    listed.sort_by_key(|v| v[0].as_i64());
    assert_eq!(batch.body["deliveries"], serde_json::Value::Array(listed));
    assert_eq!(
        later.body["deliveries"],
        serde_json::json!([[unknown, "delivered", null, null]])
    );
}

/// A claim for a channel that sends by address takes the same deliveries as any claim, with
/// their addresses and attempts, exclusively, and their outcomes record as any others.
fn suite_claims_by_address_take_the_same_deliveries(l: &dyn Ledger) {
    ten_to_send(l, "ba");
    let ms = now().timestamp_millis();
    let first = l.claim_addresses(ChannelKind::Sms, ms, 60_000, 4).unwrap();
    let rest = l.claim(ChannelKind::Sms, ms, 60_000, 100).unwrap();
    assert_eq!((first.len(), rest.len()), (4, 6));
    let mut numbers: Vec<&str> = first
        .iter()
        .chain(&rest)
        .map(|c| c.address.as_deref().unwrap())
        .collect();
    numbers.sort_unstable();
    let want: Vec<String> = (0..10).map(|i| format!("+861380000{i:04}")).collect();
    assert_eq!(numbers, want, "each number once, with its address");
    for c in &first {
        assert_eq!(
            (&*c.job_id, c.channel, c.attempt),
            ("ba", ChannelKind::Sms, 1)
        );
    }
    l.record(&first.iter().map(delivered).collect::<Vec<_>>(), now())
        .unwrap();
    let rows = l.deliveries("ba", 100).unwrap();
    for c in &first {
        let row = rows.iter().find(|d| d.id == c.id).unwrap();
        assert_eq!(row.state, "delivered");
    }
}

/// Claims by address until none is left, each recorded with `outcome`: every delivery claimed,
/// by its number, with its job and attempt.
fn claim_by_address_until_empty(
    l: &dyn Ledger,
    at_ms: i64,
    limit: usize,
    outcome: impl Fn(&disclose::ledger::Claimed) -> Record,
) -> Vec<(String, String, u32)> {
    let mut got = Vec::new();
    loop {
        let claimed = l
            .claim_addresses(ChannelKind::Sms, at_ms, 60_000, limit)
            .unwrap();
        if claimed.is_empty() {
            return got;
        }
        let records: Vec<Record> = claimed.iter().map(&outcome).collect();
        l.record(&records, now()).unwrap();
        got.extend(claimed.into_iter().map(|c| {
            assert_eq!(c.channel, ChannelKind::Sms);
            (c.address.unwrap(), c.job_id.to_string(), c.attempt)
        }));
    }
}

/// What a claim by address gives is what the deliveries' rows say at the time of the claim,
/// whatever happened to them since they were planned (the SQLite ledger keeps them as planned,
/// in memory, for their first claim): retried deliveries come back with their next attempt,
/// cancelled ones never, opted-out and addressless ones were never pending.
fn suite_claims_by_address_follow_every_change_since_planning(l: &dyn Ledger) {
    let number = |i: usize| format!("+86138111{i:05}");
    import(
        l,
        "subscribers",
        GroupKind::Public,
        (0..12)
            .map(|i| match i {
                3 => member(&format!("m{i:02}"), Some(&number(i)), true),
                7 => member(&format!("m{i:02}"), None, false),
                _ => member(&format!("m{i:02}"), Some(&number(i)), false),
            })
            .collect(),
    );
    let sms = |id: &str| {
        accept(
            l,
            &job(id, serde_json::json!({})),
            &plan(&[ChannelKind::Sms], &["subscribers"], None),
        )
    };
    sms("kp");
    sms("kq");
    let ms = now().timestamp_millis();
    // The first three of kp: the first is to be tried again at once (its due time unchanged),
    // the second later, the third went.
    let first = l.claim_addresses(ChannelKind::Sms, ms, 60_000, 3).unwrap();
    let again = |c: &disclose::ledger::Claimed, retry_at| Record {
        id: c.id,
        state: State::Pending,
        code: Some("E503".into()),
        detail: None,
        retry_at: Some(retry_at),
        deferred: false,
        lease_until: Some(c.lease_until),
    };
    let got: Vec<(&str, &str, u32)> = first
        .iter()
        .map(|c| (c.address.as_deref().unwrap(), &*c.job_id, c.attempt))
        .collect();
    assert_eq!(
        got,
        [
            (&*number(0), "kp", 1),
            (&*number(1), "kp", 1),
            (&*number(2), "kp", 1)
        ]
    );
    l.record(
        &[
            again(&first[0], ms),
            again(&first[1], ms + 5_000),
            delivered(&first[2]),
        ],
        now(),
    )
    .unwrap();
    // kq is cancelled before any of it went.
    let cancelled = l.cancel("kq", "withdrawn", now()).unwrap().unwrap();
    assert_eq!(cancelled.cancelled_total(), 10);

    let mut got = claim_by_address_until_empty(l, ms, 4, delivered);
    got.sort();
    let mut want: Vec<(String, String, u32)> = [0, 4, 5, 6, 8, 9, 10, 11]
        .into_iter()
        .map(|i| (number(i), "kp".to_string(), u32::from(i == 0) + 1))
        .collect();
    want.sort();
    assert_eq!(got, want, "the rest of kp, m0 on its second attempt");
    let later = claim_by_address_until_empty(l, ms + 5_000, 4, delivered);
    assert_eq!(later, [(number(1), "kp".to_string(), 2)]);
    let counts = l.counts(&["kp".into(), "kq".into()]).unwrap();
    assert_eq!(
        (
            counts.get(&State::Delivered),
            counts.get(&State::Cancelled),
            counts.get(&State::Skipped)
        ),
        (Some(&10), Some(&10), Some(&4)),
        "{counts:?}"
    );
}

fn suite_group_commit_records_many_decisions_at_once(l: &dyn Ledger) {
    use disclose::ledger::{Committed, Decision};
    let (a, b) = (
        job("g1", serde_json::json!({})),
        job("g2", serde_json::json!({})),
    );
    let p = plan(&[ChannelKind::Website], &[], None);
    let refusals = vec![Refusal::new(disclose::policy::Code::Malformed, "not JSON")];
    let acc = |j| {
        Decision::Accept(Acceptance {
            job: j,
            body: b"{}",
            plan: &p,
            now: now(),
        })
    };
    let out = l
        .commit(&[
            acc(&a),
            Decision::Refuse {
                job_id: None,
                body: b"x",
                refusals: &refusals,
                now: now(),
            },
            acc(&b),
            acc(&a),
        ])
        .unwrap();
    assert!(matches!(out[0], Committed::Accepted(Accepted::New { .. })));
    assert!(matches!(out[1], Committed::Refused(_)));
    assert!(matches!(out[2], Committed::Accepted(Accepted::New { .. })));
    // The same id twice in one batch: the second is a duplicate, planned nothing.
    assert_eq!(out[3], Committed::Accepted(Accepted::Duplicate));
    assert_eq!(
        l.counts(&["g1".into(), "g2".into()])
            .unwrap()
            .get(&State::Pending),
        Some(&2)
    );
    assert_eq!(l.refusals(10).unwrap().len(), 1);
}

fn run_all(name: &str, suite: fn(&dyn Ledger)) {
    let db = TempDb::new(name);
    let l = db.open();
    suite(&l);
    assert_eq!(
        l.verify_audit().unwrap(),
        ChainStatus::Intact {
            entries: audit_len(&db)
        }
    );
}

fn audit_len(db: &TempDb) -> u64 {
    rusqlite::Connection::open(db.path())
        .unwrap()
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn sqlite_plans_each_group_member_once_and_skips_opt_outs() {
    run_all(
        "plans",
        suite_plans_each_group_member_once_and_skips_opt_outs,
    );
}

#[test]
fn sqlite_claims_are_exclusive_and_leases_expire_to_unknown() {
    run_all(
        "claims",
        suite_claims_are_exclusive_and_leases_expire_to_unknown,
    );
}

#[test]
fn sqlite_retries_wait_until_due_and_finals_stick() {
    run_all("retries", suite_retries_wait_until_due_and_finals_stick);
}

#[test]
fn sqlite_publish_at_defers_every_delivery() {
    run_all("schedule", suite_publish_at_defers_every_delivery);
}

#[test]
fn sqlite_corrections_reach_exactly_the_original_recipients() {
    run_all(
        "corrections",
        suite_corrections_reach_exactly_the_original_recipients,
    );
}

#[test]
fn sqlite_retractions_cancel_what_has_not_gone_out() {
    run_all(
        "retractions",
        suite_retractions_cancel_what_has_not_gone_out,
    );
}

#[test]
fn sqlite_refusals_are_recorded_but_do_not_take_the_id() {
    run_all(
        "refusals",
        suite_refusals_are_recorded_but_do_not_take_the_id,
    );
}

#[test]
fn sqlite_directory_import_replaces_atomically() {
    run_all("directory", suite_directory_import_replaces_atomically);
}

#[test]
fn sqlite_events_are_written_with_the_changes_they_report() {
    run_all(
        "events",
        suite_events_are_written_with_the_changes_they_report,
    );
}

#[test]
fn sqlite_each_outcome_event_lists_its_own_deliveries() {
    run_all(
        "outcomes",
        suite_each_outcome_event_lists_its_own_deliveries,
    );
}

#[test]
fn sqlite_claims_by_address_take_the_same_deliveries() {
    run_all(
        "by-address",
        suite_claims_by_address_take_the_same_deliveries,
    );
}

#[test]
fn sqlite_claims_by_address_follow_every_change_since_planning() {
    run_all(
        "by-address-changes",
        suite_claims_by_address_follow_every_change_since_planning,
    );
}

#[test]
fn sqlite_group_commit_records_many_decisions_at_once() {
    run_all("group", suite_group_commit_records_many_decisions_at_once);
}

/// Two processes on one SQLite file: the one that planned a notice keeps its deliveries in memory
/// for their first claim, and what the other did to them since (claimed them, to try again)
/// is what its claims by address see.
#[test]
fn sqlite_a_claim_by_address_sees_what_another_connection_changed() {
    let db = TempDb::new("by-address-two");
    let (planner, other) = (db.open(), db.open());
    ten_to_send(&planner, "two");
    let ms = now().timestamp_millis();
    let taken = other
        .claim_addresses(ChannelKind::Sms, ms, 60_000, 3)
        .unwrap();
    let retry: Vec<Record> = taken
        .iter()
        .map(|c| Record {
            id: c.id,
            state: State::Pending,
            code: Some("E503".into()),
            detail: None,
            retry_at: Some(ms),
            deferred: false,
            lease_until: Some(c.lease_until),
        })
        .collect();
    other.record(&retry, now()).unwrap();
    // Read there, the claim journal is folded: the next claim starts from the first pending
    // delivery again, the other's three.
    let rows = other.deliveries("two", 100).unwrap();
    assert_eq!(rows.iter().filter(|d| d.state == "pending").count(), 10);
    let got = claim_by_address_until_empty(&planner, ms, 4, delivered);
    let attempts = |n: u32| {
        let mut v: Vec<&str> = got
            .iter()
            .filter(|g| g.2 == n)
            .map(|g| g.0.as_str())
            .collect();
        v.sort_unstable();
        v
    };
    let mut again: Vec<&str> = taken
        .iter()
        .map(|c| c.address.as_deref().unwrap())
        .collect();
    again.sort_unstable();
    assert_eq!(
        attempts(2),
        again,
        "the other's three, on their second attempt"
    );
    assert_eq!(attempts(1).len(), 7);
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|g| g.1 == "two"));
}

/// The summary of a job right after its completion takes the counts its `job.completed` made;
/// once anything has changed the deliveries since, it counts them again.
#[test]
fn sqlite_a_completed_jobs_summary_counts_what_changed_since() {
    let db = TempDb::new("completed-summary");
    let l = db.open();
    ten_to_send(&l, "j1");
    assert_eq!(deliver_all(&l, ChannelKind::Sms, now()), 10);
    let sms = |l: &SqliteLedger| l.job_summary("j1").unwrap().unwrap().outcomes["sms"].clone();
    assert_eq!(sms(&l), BTreeMap::from([("delivered".to_string(), 10)]));
    // Another connection to the same file (another `disclose` process, an operator's sqlite3).
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    conn.execute(
        "UPDATE deliveries SET state = 'failed' WHERE id = (SELECT min(id) FROM deliveries WHERE job_id = 'j1')",
        [],
    )
    .unwrap();
    let counted = BTreeMap::from([("delivered".to_string(), 9), ("failed".to_string(), 1)]);
    assert_eq!(sms(&l), counted);
    // A change through this ledger: another job's deliveries, then j1's through the other
    // connection again.
    ten_to_send(&l, "j2");
    assert_eq!(deliver_all(&l, ChannelKind::Sms, now()), 10);
    assert_eq!(sms(&l), counted);
    conn.execute(
        "UPDATE deliveries SET state = 'delivered' WHERE job_id = 'j1'",
        [],
    )
    .unwrap();
    assert_eq!(sms(&l), BTreeMap::from([("delivered".to_string(), 10)]));
}

/// Tampering with any entry, or removing one, is found and the first broken entry named.
#[test]
fn sqlite_audit_chain_detects_tampering() {
    let db = TempDb::new("tamper");
    let l = db.open();
    suite_plans_each_group_member_once_and_skips_opt_outs(&l);
    let n = audit_len(&db);
    assert!(n >= 3);
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    conn.execute(
        "UPDATE audit SET body = replace(body, 'j1', 'jX') WHERE seq = 3",
        [],
    )
    .unwrap();
    match l.verify_audit().unwrap() {
        ChainStatus::Broken { seq, reason } => assert_eq!(seq, 3, "{reason}"),
        other => panic!("tampering not found: {other:?}"),
    }
    // Recomputing the tampered entry's hash does not help: the next entry's link breaks.
    let (at, kind, job, body, prev): (String, String, Option<String>, String, String) = conn
        .query_row(
            "SELECT at, kind, job_id, body, prev FROM audit WHERE seq = 3",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    let forged = disclose::ledger::audit::entry_hash(3, &at, &kind, job.as_deref(), &body, &prev);
    conn.execute("UPDATE audit SET hash = ?1 WHERE seq = 3", [forged])
        .unwrap();
    if n > 3 {
        assert!(matches!(
            l.verify_audit().unwrap(),
            ChainStatus::Broken { seq: 4, .. }
        ));
    }
    let db2 = TempDb::new("tamper-delete");
    let l2 = db2.open();
    suite_plans_each_group_member_once_and_skips_opt_outs(&l2);
    rusqlite::Connection::open(db2.path())
        .unwrap()
        .execute("DELETE FROM audit WHERE seq = 2", [])
        .unwrap();
    assert!(matches!(
        l2.verify_audit().unwrap(),
        ChainStatus::Broken { seq: 2, .. }
    ));
}

// ---- PostgreSQL ----

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of its own in database `test`, selected through the URL alone (as a `serve` replica
/// would be configured), and dropped afterwards even when the test fails.
struct PgSchema {
    name: String,
}

impl PgSchema {
    fn new(tag: &str) -> PgSchema {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("ledger_{tag}_{}_{nanos}", std::process::id());
        PgSchema { name }
    }
    fn url(&self) -> String {
        format!("{PG_URL}?options=-c search_path={}", self.name)
    }
    fn open(&self) -> PgLedger {
        PgLedger::open(&self.url()).unwrap()
    }
    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).unwrap()
    }
    fn audit_len(&self) -> u64 {
        let n: i64 = self
            .client()
            .query_one("SELECT count(*) FROM audit", &[])
            .unwrap()
            .get(0);
        n as u64
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // On a thread of its own: the blocking client cannot run inside an async test's runtime.
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(PG_URL, postgres::NoTls) {
                let _ = c.batch_execute(&sql);
            }
        })
        .join();
    }
}

fn run_pg(name: &str, suite: fn(&dyn Ledger)) {
    let schema = PgSchema::new(name);
    let l = schema.open();
    suite(&l);
    assert_eq!(
        l.verify_audit().unwrap(),
        ChainStatus::Intact {
            entries: schema.audit_len()
        }
    );
}

#[test]
fn pg_plans_each_group_member_once_and_skips_opt_outs() {
    run_pg(
        "plans",
        suite_plans_each_group_member_once_and_skips_opt_outs,
    );
}

#[test]
fn pg_claims_are_exclusive_and_leases_expire_to_unknown() {
    run_pg(
        "claims",
        suite_claims_are_exclusive_and_leases_expire_to_unknown,
    );
}

#[test]
fn pg_retries_wait_until_due_and_finals_stick() {
    run_pg("retries", suite_retries_wait_until_due_and_finals_stick);
}

#[test]
fn pg_publish_at_defers_every_delivery() {
    run_pg("schedule", suite_publish_at_defers_every_delivery);
}

#[test]
fn pg_corrections_reach_exactly_the_original_recipients() {
    run_pg(
        "corrections",
        suite_corrections_reach_exactly_the_original_recipients,
    );
}

#[test]
fn pg_retractions_cancel_what_has_not_gone_out() {
    run_pg(
        "retractions",
        suite_retractions_cancel_what_has_not_gone_out,
    );
}

#[test]
fn pg_refusals_are_recorded_but_do_not_take_the_id() {
    run_pg(
        "refusals",
        suite_refusals_are_recorded_but_do_not_take_the_id,
    );
}

#[test]
fn pg_directory_import_replaces_atomically() {
    run_pg("directory", suite_directory_import_replaces_atomically);
}

#[test]
fn pg_events_are_written_with_the_changes_they_report() {
    run_pg(
        "events",
        suite_events_are_written_with_the_changes_they_report,
    );
}

#[test]
fn pg_each_outcome_event_lists_its_own_deliveries() {
    run_pg(
        "outcomes",
        suite_each_outcome_event_lists_its_own_deliveries,
    );
}

#[test]
fn pg_claims_by_address_take_the_same_deliveries() {
    run_pg(
        "by-address",
        suite_claims_by_address_take_the_same_deliveries,
    );
}

#[test]
fn pg_claims_by_address_follow_every_change_since_planning() {
    run_pg(
        "by_address_changes",
        suite_claims_by_address_follow_every_change_since_planning,
    );
}

#[test]
fn pg_group_commit_records_many_decisions_at_once() {
    run_pg("group", suite_group_commit_records_many_decisions_at_once);
}

/// As on SQLite: changing an entry by hand, or removing one, is found and named.
#[test]
fn pg_audit_chain_detects_tampering() {
    let schema = PgSchema::new("tamper");
    let l = schema.open();
    suite_plans_each_group_member_once_and_skips_opt_outs(&l);
    let n = schema.audit_len();
    assert!(n >= 3);
    let mut c = schema.client();
    c.execute(
        "UPDATE audit SET body = replace(body, 'j1', 'jX') WHERE seq = 3",
        &[],
    )
    .unwrap();
    match l.verify_audit().unwrap() {
        ChainStatus::Broken { seq, reason } => assert_eq!(seq, 3, "{reason}"),
        other => panic!("tampering not found: {other:?}"),
    }
    // Recomputing the tampered entry's hash does not help: the next entry's link breaks.
    let row = c
        .query_one(
            "SELECT at, kind, job_id, body, prev FROM audit WHERE seq = 3",
            &[],
        )
        .unwrap();
    let (at, kind, job, body, prev): (String, String, Option<String>, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let forged = disclose::ledger::audit::entry_hash(3, &at, &kind, job.as_deref(), &body, &prev);
    c.execute("UPDATE audit SET hash = $1 WHERE seq = 3", &[&forged])
        .unwrap();
    if n > 3 {
        assert!(matches!(
            l.verify_audit().unwrap(),
            ChainStatus::Broken { seq: 4, .. }
        ));
    }
    let schema2 = PgSchema::new("tamper_delete");
    let l2 = schema2.open();
    suite_plans_each_group_member_once_and_skips_opt_outs(&l2);
    schema2
        .client()
        .execute("DELETE FROM audit WHERE seq = 2", &[])
        .unwrap();
    assert!(matches!(
        l2.verify_audit().unwrap(),
        ChainStatus::Broken { seq: 2, .. }
    ));
}

/// Two replicas (two ledgers, each with its own pool) on one schema, each looping claim → record
/// on the same channel: every delivery is claimed exactly once, all are delivered, both did
/// some of the work, and their audit appends form one intact chain.
#[test]
fn pg_two_replicas_share_the_work_without_claiming_twice() {
    const N: usize = 20_000;
    let schema = PgSchema::new("replicas");
    let a = std::sync::Arc::new(schema.open());
    let b = std::sync::Arc::new(schema.open());
    import(
        a.as_ref(),
        "subscribers",
        GroupKind::Public,
        (0..N)
            .map(|i| member(&format!("m{i:05}"), Some(&format!("+86138{i:08}")), false))
            .collect(),
    );
    let Accepted::New { planned } = accept(
        a.as_ref(),
        &job("big", serde_json::json!({})),
        &plan(&[ChannelKind::Sms], &["subscribers"], None),
    ) else {
        panic!("not new")
    };
    assert_eq!(planned[&ChannelKind::Sms], N as u64);
    let ms = now().timestamp_millis();
    let worker = |l: std::sync::Arc<PgLedger>| {
        std::thread::spawn(move || {
            let mut mine = Vec::new();
            loop {
                let claimed = l.claim(ChannelKind::Sms, ms, 600_000, 50).unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                let records: Vec<Record> = claimed
                    .iter()
                    .map(|c| Record {
                        id: c.id,
                        state: State::Delivered,
                        code: Some(format!("ref-{}", c.id)),
                        detail: None,
                        retry_at: None,
                        deferred: false,
                        lease_until: Some(c.lease_until),
                    })
                    .collect();
                l.record(&records, now()).unwrap();
                mine.extend(claimed.iter().map(|c| c.id));
            }
        })
    };
    let (ta, tb) = (worker(a.clone()), worker(b.clone()));
    let (ids_a, ids_b) = (ta.join().unwrap(), tb.join().unwrap());
    assert!(
        !ids_a.is_empty() && !ids_b.is_empty(),
        "both replicas must have claimed some: {} and {}",
        ids_a.len(),
        ids_b.len()
    );
    let mut claims: std::collections::HashMap<i64, u32> = Default::default();
    for id in ids_a.iter().chain(&ids_b) {
        *claims.entry(*id).or_default() += 1;
    }
    let twice: Vec<_> = claims.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "claimed more than once: {twice:?}");
    assert_eq!(claims.len(), N);
    let counts = a.counts(&["big".into()]).unwrap();
    assert_eq!(counts, BTreeMap::from([(State::Delivered, N as u64)]));
    assert_eq!(
        b.verify_audit().unwrap(),
        ChainStatus::Intact {
            entries: schema.audit_len()
        }
    );
    // One job.completed, though both replicas recorded outcomes of the job.
    let completed: i64 = schema
        .client()
        .query_one(
            "SELECT count(*) FROM events WHERE name = 'job.completed'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(completed, 1);
}

/// The blocking client runs on the ledger's own threads: calling the ledger straight from async
/// code must work, not panic with "Cannot start a runtime from within a runtime".
#[tokio::test(flavor = "current_thread")]
async fn pg_ledger_can_be_called_from_async_code() {
    let schema = PgSchema::new("async");
    let l = schema.open();
    assert!(!l.has_job("nope").unwrap());
    suite_refusals_are_recorded_but_do_not_take_the_id(&l);
    assert!(l.has_job("j5").unwrap());
    drop(l);
}

/// Two ledgers opened on a fresh schema at the same moment (replicas starting together): the
/// migrations run once each without a conflict, and the schema version is recorded once.
#[test]
fn pg_replicas_starting_together_migrate_without_racing() {
    let schema = PgSchema::new("migrate");
    let url = schema.url();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgLedger::open(&url).map(|_| ()))
        })
        .collect();
    for o in opens {
        o.join().unwrap().unwrap();
    }
    let versions: i64 = schema
        .client()
        .query_one("SELECT count(*) FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);
}

/// A notice to 100,000 subscribers: imported, planned in one statement, claimed and recorded
/// 1,000 at a time, each with its own provider reference; all delivered, the chain intact.
/// Prints the time of each step (`--nocapture`) as a yardstick, not a limit: this machine is
/// shared.
#[test]
fn pg_a_hundred_thousand_deliveries_in_batches() {
    const N: usize = 100_000;
    let schema = PgSchema::new("hundred");
    let l = schema.open();
    let start = std::time::Instant::now();
    let imported = import(
        &l,
        "subscribers",
        GroupKind::Public,
        (0..N)
            .map(|i| member(&format!("m{i:06}"), Some(&format!("+86138{i:08}")), false))
            .collect(),
    );
    assert_eq!(imported, N as u64);
    let import_time = start.elapsed();
    let Accepted::New { planned } = accept(
        &l,
        &job("big", serde_json::json!({})),
        &plan(&[ChannelKind::Sms], &["subscribers"], None),
    ) else {
        panic!("not new")
    };
    assert_eq!(planned[&ChannelKind::Sms], N as u64);
    let plan_time = start.elapsed() - import_time;
    let ms = now().timestamp_millis();
    let mut claimed = 0;
    loop {
        let c = l.claim(ChannelKind::Sms, ms, 600_000, 1_000).unwrap();
        if c.is_empty() {
            break;
        }
        assert!(c.len() <= 1_000);
        claimed += c.len();
        let records: Vec<Record> = c
            .iter()
            .map(|c| Record {
                id: c.id,
                state: State::Delivered,
                code: Some(format!("ref-{}", c.id)),
                detail: None,
                retry_at: None,
                deferred: false,
                lease_until: Some(c.lease_until),
            })
            .collect();
        l.record(&records, now()).unwrap();
    }
    let deliver_time = start.elapsed() - import_time - plan_time;
    assert_eq!(claimed, N);
    assert_eq!(
        l.counts(&[]).unwrap(),
        BTreeMap::from([(State::Delivered, N as u64)])
    );
    assert_eq!(
        l.verify_audit().unwrap(),
        ChainStatus::Intact {
            entries: schema.audit_len()
        }
    );
    eprintln!(
        "{N} deliveries: import {import_time:?}, plan {plan_time:?}, claim+record {deliver_time:?}"
    );
}

/// A connection the server dropped (a restart, a failover, an idle timeout) is replaced: at most
/// the call that finds it broken fails, with the server's reason, and the next one works.
#[test]
fn pg_a_dropped_connection_is_replaced() {
    let schema = PgSchema::new("reconnect");
    let app = format!("reconnect_{}", std::process::id());
    let l = PgLedger::open(&format!(
        "{}&application_name={app}&pool_size=1",
        schema.url()
    ))
    .unwrap();
    assert!(!l.has_job("x").unwrap());
    let killed: i64 = schema
        .client()
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t",
            &[&app],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1, "the pool's one connection");
    match l.has_job("x") {
        Ok(false) => {}
        Err(e) => {
            assert!(e.to_string().contains("PostgreSQL"), "{e}");
            assert!(!l.has_job("x").unwrap(), "the next call reconnects");
        }
        Ok(true) => panic!("no such job"),
    }
    suite_refusals_are_recorded_but_do_not_take_the_id(&l);
}

/// The same job arriving at two replicas at once (a redelivered message): one accepts it, the
/// other answers `Duplicate`, neither fails, and it is planned once.
#[test]
fn pg_the_same_job_at_two_replicas_at_once_is_accepted_once() {
    let schema = PgSchema::new("samejob");
    let ledgers = [
        std::sync::Arc::new(schema.open()),
        std::sync::Arc::new(schema.open()),
    ];
    import(
        ledgers[0].as_ref(),
        "subscribers",
        GroupKind::Public,
        (0..50)
            .map(|i| member(&format!("m{i}"), Some(&format!("+861380000{i:04}")), false))
            .collect(),
    );
    for round in 0..20 {
        let id = format!("dup{round}");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = ledgers
            .iter()
            .map(|l| {
                let (l, barrier, id) = (l.clone(), barrier.clone(), id.clone());
                std::thread::spawn(move || {
                    let j = job(&id, serde_json::json!({}));
                    let p = plan(&[ChannelKind::Sms], &["subscribers"], None);
                    barrier.wait();
                    accept(l.as_ref(), &j, &p)
                })
            })
            .collect();
        let answers: Vec<Accepted> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let new = answers
            .iter()
            .filter(|a| matches!(a, Accepted::New { .. }))
            .count();
        assert_eq!(new, 1, "round {round}: {answers:?}");
        assert!(answers.contains(&Accepted::Duplicate), "{answers:?}");
        assert_eq!(
            ledgers[1].counts(&[id]).unwrap().get(&State::Pending),
            Some(&50)
        );
    }
    assert_eq!(
        ledgers[0].verify_audit().unwrap(),
        ChainStatus::Intact {
            entries: schema.audit_len()
        }
    );
}

/// An import streamed in several batches that fails after some of them were written (line
/// 11,001 of 12,000) leaves the group as it was: the batches were in one transaction.
#[test]
fn pg_an_import_failing_after_several_batches_changes_nothing() {
    let schema = PgSchema::new("bigimport");
    let l = schema.open();
    import(&l, "g", GroupKind::Public, vec![member("old", None, false)]);
    let mut members = (0..12_000).map(|i| {
        if i == 11_000 {
            Err(format!("line {}: broken", i + 1))
        } else {
            Ok(member(&format!("m{i:05}"), None, false))
        }
    });
    let e = l
        .replace_group("g", GroupKind::Public, &mut members, now())
        .unwrap_err();
    assert!(e.to_string().contains("line 11001"), "{e}");
    let ids: Vec<String> = l
        .members("g", None, 10)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["old"]);
    assert_eq!(l.groups().unwrap()[0].members, 1);
    // The whole file, repeated ids included (the last row of an id wins, as on SQLite).
    let mut members =
        (0..12_000).map(|i| Ok(member(&format!("m{:05}", i % 11_000), None, i >= 11_000)));
    assert_eq!(
        l.replace_group("g", GroupKind::Public, &mut members, now())
            .unwrap(),
        12_000
    );
    let first = l.members("g", None, 1).unwrap();
    assert_eq!((first[0].id.as_str(), first[0].opted_out), ("m00000", true));
    // Repeated within one batch too.
    import(
        &l,
        "g",
        GroupKind::Public,
        vec![member("a", None, false), member("a", None, true)],
    );
    let a = l.members("g", None, 10).unwrap();
    assert_eq!((a.len(), a[0].opted_out), (1, true));
}

/// Per-recipient limits on PostgreSQL are one count per recipient for all replicas (issue 4:
/// "so that no citizen is flooded"): two ledgers on one schema, as two `serve` replicas, each
/// taking again and again for the same 50 recipients with a limit of 3 a day, grant each
/// recipient 3 in total, not 3 each; the rest wait until the next natural day (00:00 UTC+8).
/// A call on the next day is granted again.
#[test]
fn pg_recipient_limits_are_shared_by_replicas() {
    let schema = PgSchema::new("quota");
    let (a, b) = (
        std::sync::Arc::new(schema.open()),
        std::sync::Arc::new(schema.open()),
    );
    let addresses: Vec<String> = (0..50).map(|i| format!("+86138{i:08}")).collect();
    let now_ms = now().timestamp_millis();
    let midnight = t("2026-12-02T00:00:00+08:00").timestamp_millis();
    let windows = [(86_400u32, 3u32)];
    let takers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|l| {
            let addresses = addresses.clone();
            std::thread::spawn(move || {
                let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
                let mut granted = vec![0u32; refs.len()];
                let mut waits = Vec::new();
                for _ in 0..5 {
                    let out = l
                        .take_recipient_quota(ChannelKind::Sms, &refs, &windows, now_ms)
                        .unwrap()
                        .expect("PostgreSQL keeps shared counts");
                    assert_eq!(out.len(), refs.len());
                    for (i, w) in out.into_iter().enumerate() {
                        match w {
                            None => granted[i] += 1,
                            Some(ms) => waits.push(ms),
                        }
                    }
                }
                (granted, waits)
            })
        })
        .collect();
    let mut granted = vec![0u32; addresses.len()];
    let mut waits = Vec::new();
    for taker in takers {
        let (g, w) = taker.join().unwrap();
        granted.iter_mut().zip(g).for_each(|(t, g)| *t += g);
        waits.extend(w);
    }
    assert!(
        granted.iter().all(|&g| g == 3),
        "granted per recipient: {granted:?}"
    );
    // 2 replicas × 5 calls × 50 recipients, 150 granted.
    assert_eq!(waits.len(), 350);
    assert!(waits.iter().all(|&ms| ms > 0 && now_ms + ms == midnight));

    // Only digests are stored, never the numbers themselves.
    let stored: Vec<String> = schema
        .client()
        .query("SELECT address_hash FROM recipient_counts", &[])
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 50);
    assert!(
        stored
            .iter()
            .all(|h| h.len() == 64 && !addresses.contains(h))
    );

    // A recipient counted yesterday and not since: its row is swept by the first call that
    // finds a day rolled over (a past window counts as zero; rows must not pile up).
    a.take_recipient_quota(ChannelKind::Sms, &["+8613900000000"], &windows, now_ms)
        .unwrap();
    let rows = |schema: &PgSchema| -> i64 {
        schema
            .client()
            .query_one("SELECT count(*) FROM recipient_counts", &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(rows(&schema), 51);

    // The next natural day: granted again, up to the limit; one channel's counts are not another's.
    let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let next_day = midnight + 1_000;
    for _ in 0..3 {
        let out = a
            .take_recipient_quota(ChannelKind::Sms, &refs, &windows, next_day)
            .unwrap()
            .unwrap();
        assert!(out.iter().all(Option::is_none), "{out:?}");
    }
    let out = b
        .take_recipient_quota(ChannelKind::Sms, &refs, &windows, next_day)
        .unwrap()
        .unwrap();
    let next_midnight = t("2026-12-03T00:00:00+08:00").timestamp_millis();
    assert!(out.iter().all(|w| *w == Some(next_midnight - next_day)));
    let out = b
        .take_recipient_quota(ChannelKind::Email, &refs[..1], &windows, next_day)
        .unwrap()
        .unwrap();
    assert_eq!(out, vec![None]);
    assert_eq!(rows(&schema), 51, "50 numbers on SMS and one on e-mail");
}

/// Several windows at once and an address twice in one call, as the in-memory limiter counts:
/// 2 a minute and 3 a day; the same number three times in one call gets 2, the third waits for
/// the next minute; after that minute the day's third goes, and the fourth waits for the day.
#[test]
fn pg_recipient_limits_count_each_window_and_repeats() {
    let schema = PgSchema::new("quota_windows");
    let l = schema.open();
    let windows = [(60u32, 2u32), (86_400, 3)];
    let at = t("2026-12-01T09:00:30+08:00").timestamp_millis();
    let out = l
        .take_recipient_quota(ChannelKind::Sms, &["a", "a", "a"], &windows, at)
        .unwrap()
        .unwrap();
    assert_eq!(out, vec![None, None, Some(30_000)]);
    let later = at + 60_000;
    let out = l
        .take_recipient_quota(ChannelKind::Sms, &["a", "a"], &windows, later)
        .unwrap()
        .unwrap();
    let midnight = t("2026-12-02T00:00:00+08:00").timestamp_millis();
    assert_eq!(out, vec![None, Some(midnight - later)]);
}

/// SQLite is owned by one process: it keeps no shared counts and leaves them to the engine's
/// in-memory limiter.
#[test]
fn sqlite_keeps_no_shared_recipient_counts() {
    let db = TempDb::new("quota");
    let l = db.open();
    let out = l
        .take_recipient_quota(ChannelKind::Sms, &["+8613800000000"], &[(86_400, 3)], 0)
        .unwrap();
    assert_eq!(out, None);
}

/// A ledger written before open deliveries were counted per job (a partial index answered
/// instead): opened, it counts what is open, and the job completes when its last delivery does.
#[test]
fn sqlite_a_ledger_from_before_the_open_counts_is_counted_when_opened() {
    let db = TempDb::new("open-counts");
    {
        let l = db.open();
        import(
            &l,
            "subscribers",
            GroupKind::Public,
            vec![
                member("a", Some("+8613800000001"), false),
                member("b", Some("+8613800000002"), false),
                member("c", Some("+8613800000003"), true),
            ],
        );
        accept(
            &l,
            &job("old", serde_json::json!({})),
            &plan(&[ChannelKind::Sms], &["subscribers"], None),
        );
    }
    // As the earlier version left it: no counts, the index instead.
    rusqlite::Connection::open(db.path())
        .unwrap()
        .execute_batch(
            "DROP TABLE job_open;
             CREATE INDEX deliveries_open ON deliveries (job_id) WHERE state IN ('pending', 'sending', 'unknown');",
        )
        .unwrap();
    let l = db.open();
    let open: i64 = rusqlite::Connection::open(db.path())
        .unwrap()
        .query_row("SELECT open FROM job_open WHERE job_id = 'old'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        open, 2,
        "two to send; the opted-out one is skipped, not open"
    );
    let index_left: i64 = rusqlite::Connection::open(db.path())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'deliveries_open'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index_left, 0, "the index is gone");
    let completed = |l: &SqliteLedger| {
        l.pending_events(100)
            .unwrap()
            .iter()
            .filter(|e| e.name == "job.completed")
            .count()
    };
    let claimed = l
        .claim(ChannelKind::Sms, now().timestamp_millis(), 60_000, 10)
        .unwrap();
    assert_eq!(claimed.len(), 2);
    l.record(&[delivered(&claimed[0])], now()).unwrap();
    assert_eq!(completed(&l), 0, "one is still open");
    l.record(&[delivered(&claimed[1])], now()).unwrap();
    assert_eq!(completed(&l), 1);
}

// The SQLite ledger's claim journal (src/ledger/sqlite/journal.rs): a claim is one row and the
// deliveries stay `pending` in their table until the journal is folded. What the journal must
// not change is what any reader, any other process on the same file, or a restart sees.

/// Records every claimed delivery `delivered`, under its claim.
fn record_delivered(l: &dyn Ledger, claimed: &[disclose::ledger::Claimed]) {
    l.record(&claimed.iter().map(delivered).collect::<Vec<_>>(), now())
        .unwrap();
}

fn states(l: &dyn Ledger, job_id: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for d in l.deliveries(job_id, 100).unwrap() {
        *out.entry(d.state).or_default() += 1;
    }
    out
}

#[test]
fn sqlite_journal_claims_outlive_the_process_and_are_never_claimed_again() {
    let db = TempDb::new("journal-crash");
    let ms = now().timestamp_millis();
    let (held, lease) = {
        let l = db.open();
        ten_to_send(&l, "jc");
        let held = l.claim(ChannelKind::Sms, ms, 1_000, 6).unwrap();
        assert_eq!(held.len(), 6);
        let lease = held[0].lease_until;
        // The process dies holding them: nothing recorded, nothing folded (a ledger dropped
        // folds its journal; a killed process does not).
        std::mem::forget(l);
        (held, lease)
    };
    let l = db.open();
    let rest = l.claim(ChannelKind::Sms, ms, 1_000, 100).unwrap();
    assert_eq!(rest.len(), 4, "only the four nobody holds");
    assert!(rest.iter().all(|c| held.iter().all(|h| h.id != c.id)));
    // Readers see the dead process's claim as what it is: in flight under its lease.
    assert_eq!(
        states(&l, "jc"),
        BTreeMap::from([("sending".to_string(), 10)])
    );
    assert!(
        l.claim(ChannelKind::Sms, ms, 1_000, 100)
            .unwrap()
            .is_empty()
    );
    // Its lease runs out: unknown, for the status query, never pending again.
    assert!(rest[0].lease_until > lease, "each claim its own lease");
    assert_eq!(l.expire_leases(lease - 1).unwrap(), 0);
    assert_eq!(
        l.expire_leases(lease + 1).unwrap(),
        6,
        "the dead process's claim"
    );
    assert_eq!(l.expire_leases(rest[0].lease_until + 1).unwrap(), 4);
    let unknown = l
        .claim_unknown(ChannelKind::Sms, ms + 2_000, 1_000, 100)
        .unwrap();
    assert_eq!(unknown.len(), 10);
    assert!(
        unknown.iter().all(|c| c.attempt == 1),
        "each was attempted once"
    );
}

#[test]
fn sqlite_journal_two_processes_on_one_file_share_the_work_and_the_truth() {
    let db = TempDb::new("journal-two");
    let (a, b) = (db.open(), db.open());
    ten_to_send(&a, "jt");
    let ms = now().timestamp_millis();
    let mine = a.claim(ChannelKind::Sms, ms, 60_000, 4).unwrap();
    let theirs = b.claim(ChannelKind::Sms, ms, 60_000, 100).unwrap();
    assert_eq!((mine.len(), theirs.len()), (4, 6));
    assert!(mine.iter().all(|c| theirs.iter().all(|t| t.id != c.id)));
    record_delivered(&a, &mine);
    // B reads: A's outcomes and its own claims as they are, though neither is folded by A.
    assert_eq!(
        states(&b, "jt"),
        BTreeMap::from([("delivered".to_string(), 4), ("sending".to_string(), 6)])
    );
    assert_eq!(
        b.job_summary("jt").unwrap().unwrap().status,
        "in_progress",
        "six still in flight"
    );
    // B's claim was folded by its own read: its outcomes are recorded all the same.
    record_delivered(&b, &theirs);
    assert_eq!(
        states(&a, "jt"),
        BTreeMap::from([("delivered".to_string(), 10)])
    );
    let completed = a
        .pending_events(100)
        .unwrap()
        .iter()
        .filter(|e| e.name == "job.completed")
        .count();
    assert_eq!(completed, 1);
    assert!(matches!(
        a.verify_audit().unwrap(),
        ChainStatus::Intact { .. }
    ));
}

#[test]
fn sqlite_journal_cancel_leaves_what_is_claimed_in_flight() {
    let db = TempDb::new("journal-cancel");
    let l = db.open();
    ten_to_send(&l, "jx");
    let ms = now().timestamp_millis();
    let held = l.claim(ChannelKind::Sms, ms, 60_000, 3).unwrap();
    let c = l.cancel("jx", "withdrawn", now()).unwrap().unwrap();
    assert_eq!(c.cancelled_total(), 7, "{c:?}");
    assert_eq!(c.untouched.get("sending"), Some(&3), "{c:?}");
    // What was handed to the channel is recorded as it went, not lost to the cancel.
    record_delivered(&l, &held);
    assert_eq!(
        states(&l, "jx"),
        BTreeMap::from([("cancelled".to_string(), 7), ("delivered".to_string(), 3)])
    );
    assert!(
        l.claim(ChannelKind::Sms, ms, 60_000, 100)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn sqlite_journal_a_delivery_due_before_the_cursor_goes_out_once_the_run_is_dry() {
    let db = TempDb::new("journal-cursor");
    let l = db.open();
    ten_to_send(&l, "jr");
    let ms = now().timestamp_millis();
    let first = l.claim(ChannelKind::Sms, ms, 60_000, 5).unwrap();
    assert_eq!(first.len(), 5);
    // A notice whose publication time has passed is planned due before the fan-out's claims.
    let earlier = now() - chrono::Duration::hours(1);
    accept(
        &l,
        &job("late", serde_json::json!({})),
        &plan(&[ChannelKind::Sms], &["subscribers"], Some(earlier)),
    );
    let second = l.claim(ChannelKind::Sms, ms, 60_000, 5).unwrap();
    assert!(
        second.iter().all(|c| &*c.job_id == "jr"),
        "the run goes on past its cursor first"
    );
    l.record(
        &first
            .iter()
            .chain(&second)
            .map(delivered)
            .collect::<Vec<_>>(),
        now(),
    )
    .unwrap();
    let third = l.claim(ChannelKind::Sms, ms, 60_000, 100).unwrap();
    assert_eq!(
        third.len(),
        10,
        "the run is dry: the waiting notice goes out whole"
    );
    assert!(third.iter().all(|c| &*c.job_id == "late" && c.attempt == 1));
    assert_eq!(
        states(&l, "jr"),
        BTreeMap::from([("delivered".to_string(), 10)])
    );
}

#[test]
fn sqlite_journal_the_last_short_claim_of_a_run_is_sent_before_the_fold() {
    // A fan-out that is not a multiple of the claim ends with a short one: it goes out as it is,
    // and the fold (with what waits behind the cursor) comes at the claim that finds nothing.
    let db = TempDb::new("journal-short");
    let l = db.open();
    ten_to_send(&l, "js");
    let ms = now().timestamp_millis();
    let first = l.claim(ChannelKind::Sms, ms, 60_000, 6).unwrap();
    assert_eq!(first.len(), 6);
    let earlier = now() - chrono::Duration::hours(1);
    accept(
        &l,
        &job("behind", serde_json::json!({})),
        &plan(&[ChannelKind::Sms], &["subscribers"], Some(earlier)),
    );
    let short = l.claim(ChannelKind::Sms, ms, 60_000, 100).unwrap();
    assert_eq!(
        short.iter().map(|c| &*c.job_id).collect::<Vec<_>>(),
        ["js"; 4],
        "the rest of the run, without folding first for what waits behind the cursor"
    );
    assert!(short.iter().all(|c| first.iter().all(|f| f.id != c.id)));
    record_delivered(&l, &first);
    record_delivered(&l, &short);
    let dry = l.claim(ChannelKind::Sms, ms, 60_000, 100).unwrap();
    assert_eq!(
        dry.len(),
        10,
        "the run is dry: the fold finds the notice behind it"
    );
    assert!(dry.iter().all(|c| &*c.job_id == "behind"));
    assert_eq!(
        states(&l, "js"),
        BTreeMap::from([("delivered".to_string(), 10)])
    );
}

#[test]
fn sqlite_journal_outcomes_keep_their_text_through_the_fold() {
    // The fold reads each recorded outcome back from the JSON of its audit entry: text with
    // escapes (quotes, backslashes, a line break) and beyond ASCII must come out as it went in.
    let db = TempDb::new("journal-text");
    let l = db.open();
    ten_to_send(&l, "jt");
    let ms = now().timestamp_millis();
    let claimed = l.claim(ChannelKind::Sms, ms, 60_000, 3).unwrap();
    let texts = [
        (State::Delivered, None, Some("SerialNo \"2019:1\" \\ a\nb")),
        (
            State::Failed,
            Some("LimitExceeded.短信"),
            Some("号码 \u{1F4F1} 已停机"),
        ),
        (State::Delivered, None, None),
    ];
    let records: Vec<Record> = claimed
        .iter()
        .zip(&texts)
        .map(|(c, (state, code, detail))| Record {
            state: *state,
            code: code.map(String::from),
            detail: detail.map(String::from),
            ..delivered(c)
        })
        .collect();
    l.record(&records, now()).unwrap();
    let rows = l.deliveries("jt", 100).unwrap();
    for (c, (state, code, detail)) in claimed.iter().zip(&texts) {
        let row = rows.iter().find(|d| d.id == c.id).unwrap();
        assert_eq!(row.state, state.as_str());
        assert_eq!(row.code.as_deref(), *code);
        assert_eq!(row.detail.as_deref(), *detail);
        assert_eq!(row.attempts, 1);
    }
}

/// A journal left by a version that kept the final outcomes in the journal itself (`final`,
/// before `audit_seq`): a newer ledger opening the file folds them from there.
#[test]
fn sqlite_journal_left_with_its_outcomes_inside_is_folded_from_them() {
    let db = TempDb::new("journal-old");
    drop({
        let l = db.open();
        ten_to_send(&l, "jo");
        l
    });
    let raw = rusqlite::Connection::open(db.path()).unwrap();
    let ids: Vec<i64> = raw
        .prepare("SELECT id FROM deliveries WHERE job_id = 'jo' ORDER BY id LIMIT 3")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let ms = now().timestamp_millis();
    let finals = serde_json::json!([
        [ids[0], "delivered", null, "old-ref"],
        [ids[1], "failed", "E9", "refused"],
        [ids[2], "delivered", null, null]
    ]);
    raw.execute(
        "INSERT INTO claim_outcomes (lease_until, ids, final, at) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![
            ms + 60_000,
            format!("[[{},{}]]", ids[0], ids[2]),
            finals.to_string(),
            ms
        ],
    )
    .unwrap();
    raw.execute(
        "INSERT INTO claim_cursor (channel, due_at, id) VALUES ('sms', ?1, ?2)",
        rusqlite::params![ms, ids[2]],
    )
    .unwrap();
    drop(raw);
    let l = db.open();
    let rows = l.deliveries("jo", 100).unwrap();
    let row = |id: i64| rows.iter().find(|d| d.id == id).unwrap();
    assert_eq!(
        (row(ids[0]).state.as_str(), row(ids[0]).detail.as_deref()),
        ("delivered", Some("old-ref"))
    );
    assert_eq!(
        (row(ids[1]).state.as_str(), row(ids[1]).code.as_deref()),
        ("failed", Some("E9"))
    );
    assert_eq!(row(ids[2]).state, "delivered");
    assert_eq!(row(ids[2]).attempts, 1);
    assert_eq!(
        rows.iter().filter(|d| d.state == "pending").count(),
        7,
        "the rest untouched"
    );
}

#[test]
fn sqlite_journal_a_closed_ledger_leaves_the_deliveries_as_they_are() {
    let db = TempDb::new("journal-close");
    let ms = now().timestamp_millis();
    {
        let l = db.open();
        ten_to_send(&l, "jd");
        let sent = l.claim(ChannelKind::Sms, ms, 60_000, 4).unwrap();
        record_delivered(&l, &sent);
        let held = l.claim(ChannelKind::Sms, ms, 60_000, 3).unwrap();
        assert_eq!(held.len(), 3);
    }
    // Read as any other program would read the file: the journal is folded into the deliveries.
    let raw = rusqlite::Connection::open(db.path()).unwrap();
    let count = |sql: &str| -> i64 { raw.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM deliveries WHERE state = 'delivered'"),
        4
    );
    assert_eq!(
        count("SELECT count(*) FROM deliveries WHERE state = 'sending'"),
        3
    );
    assert_eq!(
        count("SELECT count(*) FROM deliveries WHERE state = 'pending'"),
        3
    );
    assert_eq!(
        count(
            "SELECT (SELECT count(*) FROM claims) + (SELECT count(*) FROM claim_outcomes)
                  + (SELECT count(*) FROM claim_cursor)"
        ),
        0
    );
}

#[test]
fn sqlite_journal_a_ledger_that_cannot_be_written_is_still_read() {
    let db = TempDb::new("journal-unwritable");
    let l = db.open();
    ten_to_send(&l, "jw");
    let held = l
        .claim(ChannelKind::Sms, now().timestamp_millis(), 60_000, 4)
        .unwrap();
    assert_eq!(held.len(), 4);
    // Another program holds the write lock past the ledger's busy timeout (as a full disk or a
    // read-only copy would refuse the write): the journal cannot be folded; it is read as it
    // stands instead of failing the reader.
    let other = rusqlite::Connection::open(db.path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let counts = l.counts(&["jw".into()]).unwrap();
    assert_eq!(counts.get(&State::Pending), Some(&10), "{counts:?}");
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        states(&l, "jw"),
        BTreeMap::from([("pending".to_string(), 6), ("sending".to_string(), 4)])
    );
}

/// A ledger written before outcome events referred to their audit entry: it opens, the events
/// it holds read back as they were written, and what it records from then on refers.
#[test]
fn sqlite_events_written_out_in_full_before_still_read_as_written() {
    let db = TempDb::new("old-events");
    drop(db.open());
    let old = r#"{"at":"2026-12-01T09:00:00+08:00","channel":"sms","deliveries":[{"code":null,"delivery":7,"recipient":"x"}],"event":"delivery.delivered","job_id":"old","seq":1}"#;
    {
        let conn = rusqlite::Connection::open(db.path()).unwrap();
        conn.execute_batch(
            "ALTER TABLE events DROP COLUMN audit_seq; ALTER TABLE events DROP COLUMN channel;",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO events (seq, name, job_id, payload) VALUES (1, 'delivery.delivered', 'old', ?1)",
            [old],
        )
        .unwrap();
    }
    let l = db.open();
    ten_to_send(&l, "new");
    assert_eq!(deliver_all(&l, ChannelKind::Sms, now()), 10);
    let events = l.pending_events(100).unwrap();
    assert_eq!(events[0].payload, old);
    let delivered = events
        .iter()
        .find(|e| e.name == "delivery.delivered" && e.job_id.as_deref() == Some("new"))
        .expect("the new outcomes' event");
    let v: serde_json::Value = serde_json::from_str(&delivered.payload).unwrap();
    assert_eq!(v["deliveries"].as_array().unwrap().len(), 10);
    let referring: i64 = rusqlite::Connection::open(db.path())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM events WHERE audit_seq IS NOT NULL AND payload = ''",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(referring, 1);
}
