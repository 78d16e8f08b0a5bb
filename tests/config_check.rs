//! `disclose config check`: every problem of a configuration at once, each named; the shipped
//! configuration passes.

mod common;

use common::{Scratch, stdout, write};

#[test]
fn the_shipped_configuration_is_complete() {
    let s = Scratch::new("config-ok");
    let out = s.disclose(&["config", "check"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", common::stderr(&out));
    assert!(text.contains("the configuration is complete"), "{text}");
    assert!(text.contains("✓ channel sms      outbox"), "{text}");
    assert!(!text.contains('✗'), "{text}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let s = Scratch::new("config-bad");
    // The operator's provider set, with none of its credentials in the environment; no keys; a
    // broker nobody listens on.
    let channels = common::repo().join("examples/channels");
    std::fs::create_dir_all(s.path("keys")).unwrap();
    write(
        &s.path("templates/broken/sms.toml"),
        "text = \"unterminated\n",
    );
    let out = s
        .command(&["config", "check", "--json"])
        .env("DISCLOSE_PATHS_CHANNELS_DIR", &channels)
        .env("DISCLOSE_APPROVAL_KEYS_DIR", s.path("keys"))
        .env("DISCLOSE_PATHS_TEMPLATES_DIR", s.path("templates"))
        .env(
            "DISCLOSE_QUEUE_AMQP_URL",
            "amqp://guest:hunter2@127.0.0.1:1/%2f",
        )
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env_remove("WECHAT_APPSECRET")
        .env_remove("WECOM_APP_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let findings: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let problem = |area: &str, fragment: &str| {
        assert!(
            findings.iter().any(|f| f["area"] == area
                && f["ok"] == false
                && f["detail"].as_str().unwrap().contains(fragment)),
            "{area}: {fragment}\n{findings:#?}"
        )
    };
    problem("approval keys", "no <key_id>.pub files");
    problem("templates", "broken");
    problem("channel sms", "TENCENTCLOUD_SECRET_ID is not set");
    problem("channel wechat", "WECHAT_APPSECRET");
    problem("channel wecom", "WECOM_APP_SECRET");
    problem("queue", "RabbitMQ at amqp://guest:***@127.0.0.1:1/%2f");
    // What is fine is said to be fine; no password anywhere.
    assert!(
        findings
            .iter()
            .any(|f| f["area"] == "ledger" && f["ok"] == true)
    );
    assert!(!stdout(&out).contains("hunter2"));
}
