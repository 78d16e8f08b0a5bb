//! The hostile-input corpus (`tests/corpus/`, see `tests/hostile.rs`) through RabbitMQ: every
//! bad job is dead-lettered once with its code in `x-refusal-code` and its message in
//! `x-refusal-reason`, the original body kept; the service keeps consuming, and the good jobs
//! published after them all are recorded. Needs the local broker (`.ci/run` starts it).

mod amqp_common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use amqp_common::{BIN, Setup, drain_until, repo, wait_empty, wait_until};

/// Inside the example release's publicity period (as in `tests/hostile.rs`).
const CLOCK: &str = "2026-11-26T10:00:00+08:00";

#[tokio::test(flavor = "multi_thread")]
async fn every_corpus_job_is_dead_lettered_with_its_code_and_the_service_keeps_consuming() {
    // The service is started by the shared helper, which sets no clock: it inherits this one.
    // SAFETY: the only test of this binary, set before any thread of ours reads the environment.
    unsafe { std::env::set_var("DISCLOSE_CLOCK", CLOCK) };
    let s = Setup::new("hostile");
    // The corpus is signed with the example key: trust it beside the helper's own.
    std::fs::copy(
        repo().join("keys/example-2026.pub"),
        s.path("keys/example-2026.pub"),
    )
    .unwrap();
    for (group, kind, file) in [
        ("subscribers", "public", "subscribers.csv"),
        ("press", "public", "press.csv"),
        ("unit:czj", "unit", "unit-czj.csv"),
        ("leadership", "leadership", "leadership.csv"),
    ] {
        let out = Command::new(BIN)
            .current_dir(repo())
            .args(["directory", "import", "--group", group, "--kind", kind])
            .arg(format!("examples/directory/{file}"))
            .env("DISCLOSE_LEDGER_URL", s.ledger())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    let text = std::fs::read_to_string(repo().join("tests/corpus/EXPECTED.tsv")).unwrap();
    let mut expected: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut bodies = Vec::new();
    let mut accepted = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let body = std::fs::read(repo().join("tests/corpus/jobs").join(f[0])).unwrap();
        bodies.push((f[0].to_string(), body));
        if f[1] == "accepted" {
            accepted += 1;
        } else {
            expected.insert(f[0].to_string(), (f[1].to_string(), f[2].to_string()));
        }
    }
    // Good jobs after all the bad ones.
    for i in 0..3 {
        let id = format!("hostile-good-{i}");
        bodies.push((id.clone(), s.job(&id)));
        accepted += 1;
    }

    let mut serve = s.serve();
    s.publish(bodies).await;
    wait_until("the accepted jobs in the ledger", 120, || {
        s.jobs() >= accepted
    })
    .await;
    wait_empty(&s.jobs_queue, 60).await;
    serve.assert_running();
    assert_eq!(s.jobs(), accepted);

    let n = expected.len();
    let dead = drain_until(&s.dlq, Duration::from_secs(2), |got| got.len() >= n).await;
    let mut wrong = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for m in &dead {
        let id = m
            .message_id
            .clone()
            .expect("the original properties are kept");
        *seen.entry(id.clone()).or_default() += 1;
        let Some((code, fragment)) = expected.get(&id) else {
            wrong.push(format!("{id}: dead-lettered but expected to be accepted"));
            continue;
        };
        let codes = &m.headers["x-refusal-code"];
        let reason = &m.headers["x-refusal-reason"];
        if !codes.split(',').any(|c| c == code) || !reason.contains(fragment.as_str()) {
            wrong.push(format!(
                "{id}: expected {code} «{fragment}», got {codes}: {reason}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "dead-lettered more than once: {twice:?}");
    let missing: Vec<_> = expected.keys().filter(|k| !seen.contains_key(*k)).collect();
    assert!(missing.is_empty(), "not dead-lettered: {missing:?}");
    assert!(!serve.log().contains("panicked"), "{}", serve.log());
    assert_eq!(serve.stop().code(), Some(0), "{}", serve.log());
}
