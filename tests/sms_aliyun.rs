//! The Alibaba Cloud SMS transport against the local emulator (which checks the real V3
//! ACS3-HMAC-SHA256 signature and answers in Alibaba's format): one answer per call and what it
//! means for each delivery, a number-specific refusal split into one call per number, a call whose
//! fate is unknown settled by `QuerySendDetails` and never sent twice, and no credential in any
//! outcome. The last test runs the whole engine with a ledger.

#[path = "emulators/aliyun.rs"]
mod aliyun_emulator;
mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aliyun_emulator::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, Emulator, Mode, Receipt};
use common::engine;
use common::sms::{batch, job, later, number};
use common::transport::{self, Expect, delivered, failed};
use disclose::channels::aliyun::AliyunConfig;
use disclose::channels::{Channel, ChannelConfig, Outcome, Transport};
use disclose::job::ChannelKind;

const ID_VAR: &str = "DISCLOSE_TEST_ALIYUN_ACCESS_KEY_ID";
const SECRET_VAR: &str = "DISCLOSE_TEST_ALIYUN_ACCESS_KEY_SECRET";
const WRONG_SECRET_VAR: &str = "DISCLOSE_TEST_ALIYUN_WRONG_SECRET";
const WRONG_ID_VAR: &str = "DISCLOSE_TEST_ALIYUN_WRONG_ID";
const WRONG_SECRET: &str = "this-is-not-the-secret-0123456789";

/// The credentials, set once before any test of this binary builds a channel (every test calls
/// this first, so no other thread reads the environment meanwhile).
fn env() {
    transport::set_env_once(&[
        (ID_VAR, ACCESS_KEY_ID),
        (SECRET_VAR, ACCESS_KEY_SECRET),
        (WRONG_SECRET_VAR, WRONG_SECRET),
        (WRONG_ID_VAR, "LTAI5tNobodyKnowsThisOne"),
    ]);
}

fn config(emu: &Emulator) -> AliyunConfig {
    AliyunConfig {
        endpoint: emu.url.clone(),
        access_key_id_env: ID_VAR.into(),
        access_key_secret_env: SECRET_VAR.into(),
        sign_name: None,
        timeout_ms: 2_000,
        numbers_per_call: 200,
        resolve_lookback_secs: 86_400,
        resolve_after_secs: 600,
        status_queries_per_second: 200,
    }
}

fn channel_config(t: AliyunConfig) -> ChannelConfig {
    engine::channel_config(ChannelKind::Sms, Transport::AliyunSms(t), 200, None)
}

/// The channel as `serve` builds it: from the channel file's transport, credentials from the
/// environment.
fn channel(t: AliyunConfig) -> Arc<dyn Channel> {
    env();
    let cfg = channel_config(t);
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    cfg.build(&std::env::temp_dir()).unwrap()
}

/// No credential, signature or Authorization header in anything the channel reports.
fn assert_clean(outcomes: &[Outcome]) {
    transport::assert_none_of(
        &[
            ACCESS_KEY_ID,
            ACCESS_KEY_SECRET,
            WRONG_SECRET,
            "ACS3-HMAC-SHA256",
            "Signature=",
        ],
        outcomes,
    );
}

#[tokio::test]
async fn one_call_delivers_every_number_with_the_calls_biz_id() {
    let emu = Emulator::start().await;
    let ch = channel(config(&emu));
    let b = batch("al-ok", 3);
    let out = ch.deliver(&b).await;
    assert_clean(&out);
    let sent = emu.sent();
    assert_eq!(sent.len(), 3);
    let biz = sent[0].biz_id.to_string();
    assert!(
        out.iter().all(|o| delivered(o) == Some(biz.as_str())),
        "{out:?}"
    );
    assert_eq!(emu.requests(), 1);
    assert!(emu.received().values().all(|&n| n == 1));
    for s in &sent {
        assert_eq!(&*s.template_code, "SMS_000000001");
        assert_eq!(&*s.sign_name, "某县组工");
        assert_eq!(&*s.out_id, "disclose:al-ok:1-3");
        let param: serde_json::Value = serde_json::from_str(&s.template_param).unwrap();
        assert_eq!(
            param,
            serde_json::json!({"title": "关于张三同志任职的通知"})
        );
    }
    // The channel's sign name wins over the template's.
    let mut t = config(&emu);
    t.sign_name = Some("某县委组织部".into());
    channel(t).deliver(&batch("al-sign", 1)).await;
    assert!(emu.sent().iter().any(|s| &*s.sign_name == "某县委组织部"));
}

#[tokio::test]
async fn calls_carry_at_most_numbers_per_call() {
    let emu = Emulator::start().await;
    let mut t = config(&emu);
    t.numbers_per_call = 100;
    t.timeout_ms = 10_000;
    let out = channel(t).deliver(&batch("al-many", 250)).await;
    assert!(out.iter().all(|o| delivered(o).is_some()));
    assert_eq!(emu.requests(), 3, "250 numbers: 100 + 100 + 50");
    assert_eq!(emu.received().len(), 250);
}

#[tokio::test]
async fn a_number_specific_refusal_is_split_into_one_call_per_number() {
    let emu = Emulator::start().await;
    let (n1, n3) = (number(1), number(3));
    emu.set_mode(Mode::partial([
        (n1.as_str(), "isv.MOBILE_NUMBER_ILLEGAL"),
        (n3.as_str(), "isv.BUSINESS_LIMIT_CONTROL"),
    ]));
    let ch = channel(config(&emu));
    let out = ch.deliver(&batch("al-partial", 5)).await;
    assert_clean(&out);
    assert!(delivered(&out[0]).is_some(), "{out:?}");
    assert_eq!(failed(&out[1]), Some(("isv.MOBILE_NUMBER_ILLEGAL", true)));
    assert!(delivered(&out[2]).is_some());
    // The emulator's message names the hourly window: "触发小时级流控Permits:5".
    assert_eq!(
        out[3],
        Outcome::RetryAfter {
            after: Duration::from_secs(3600),
            code: "isv.BUSINESS_LIMIT_CONTROL".into()
        }
    );
    assert!(delivered(&out[4]).is_some());
    assert_eq!(
        emu.requests(),
        1 + 5,
        "the refused call, then one per number"
    );
    let received = emu.received();
    assert_eq!(
        received.keys().cloned().collect::<HashSet<_>>(),
        [number(0), number(2), number(4)].into_iter().collect()
    );
    assert!(received.values().all(|&n| n == 1));
    // Each number has its own BizId now.
    let biz: HashSet<String> = emu.sent().iter().map(|s| s.biz_id.to_string()).collect();
    assert_eq!(biz.len(), 3);
}

#[tokio::test]
async fn whole_call_errors_apply_to_every_number() {
    let emu = Emulator::start().await;
    let ch = channel(config(&emu));
    let b = batch("al-whole", 3);
    let cases: Vec<(&str, Expect)> = vec![
        ("isv.SMS_TEMPLATE_ILLEGAL", |o| {
            failed(o) == Some(("isv.SMS_TEMPLATE_ILLEGAL", true))
        }),
        ("isv.SMS_SIGNATURE_ILLEGAL", |o| {
            failed(o) == Some(("isv.SMS_SIGNATURE_ILLEGAL", true))
        }),
        ("isv.AMOUNT_NOT_ENOUGH", |o| {
            failed(o) == Some(("isv.AMOUNT_NOT_ENOUGH", true))
        }),
        ("Forbidden.RAM", |o| {
            failed(o) == Some(("Forbidden.RAM", true))
        }),
        ("isp.SYSTEM_ERROR", |o| {
            failed(o) == Some(("isp.SYSTEM_ERROR", false))
        }),
        ("ServiceUnavailable", |o| {
            failed(o) == Some(("ServiceUnavailable", false))
        }),
        ("Throttling.User", |o| {
            *o == Outcome::RetryAfter {
                after: Duration::from_secs(1),
                code: "Throttling.User".into(),
            }
        }),
        (
            "isv.DAY_LIMIT_CONTROL",
            |o| matches!(o, Outcome::RetryAfter { after, .. } if *after > Duration::from_secs(60) && *after <= Duration::from_secs(86_460)),
        ),
    ];
    for (code, expect) in cases {
        emu.set_mode(Mode::CallError(code.into()));
        let out = ch.deliver(&b).await;
        assert_clean(&out);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(expect), "{code}: {out:?}");
    }
    assert!(emu.received().is_empty(), "a refused call sends nothing");
    assert_eq!(
        emu.requests(),
        8,
        "one call per case, none split or repeated"
    );
}

#[tokio::test]
async fn http_429_is_rate_limited_for_the_time_asked() {
    let emu = Emulator::start().await;
    emu.set_mode(Mode::TooMany {
        retry_after_secs: 7,
    });
    let out = channel(config(&emu)).deliver(&batch("al-429", 2)).await;
    assert_clean(&out);
    for o in &out {
        assert_eq!(
            *o,
            Outcome::RetryAfter {
                after: Duration::from_secs(7),
                code: "http_429".into()
            }
        );
    }
    assert!(emu.received().is_empty());
}

#[tokio::test]
async fn http_5xx_is_transient() {
    let emu = Emulator::start().await;
    emu.set_mode(Mode::ServerError);
    let out = channel(config(&emu)).deliver(&batch("al-500", 2)).await;
    assert_clean(&out);
    assert!(
        out.iter()
            .all(|o| failed(o) == Some(("InternalError", false))),
        "{out:?}"
    );
    assert!(emu.received().is_empty());
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_reported_as_a_configuration_failure() {
    let emu = Emulator::start().await;
    let mut wrong = config(&emu);
    wrong.access_key_secret_env = WRONG_SECRET_VAR.into();
    let out = channel(wrong).deliver(&batch("al-secret", 2)).await;
    assert_clean(&out);
    assert!(
        out.iter()
            .all(|o| failed(o) == Some(("SignatureDoesNotMatch", true))),
        "{out:?}"
    );
    let mut wrong = config(&emu);
    wrong.access_key_id_env = WRONG_ID_VAR.into();
    let out = channel(wrong).deliver(&batch("al-id", 2)).await;
    assert_clean(&out);
    assert!(
        out.iter()
            .all(|o| failed(o) == Some(("InvalidAccessKeyId.NotFound", true))),
        "{out:?}"
    );
    emu.set_mode(Mode::WrongSignature);
    let out = channel(config(&emu)).deliver(&batch("al-sig", 1)).await;
    assert_eq!(failed(&out[0]), Some(("SignatureDoesNotMatch", true)));
    assert!(emu.received().is_empty());
    emu.set_mode(Mode::Ok);
    let out = channel(config(&emu)).deliver(&batch("al-right", 1)).await;
    assert!(delivered(&out[0]).is_some(), "{out:?}");
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_unknown_and_the_status_query_finds_it_sent_once() {
    let emu = Emulator::start().await;
    emu.set_mode(Mode::Hang(Duration::from_secs(3)));
    let mut t = config(&emu);
    t.timeout_ms = 300;
    let ch = channel(t);
    let b = batch("al-hang", 4);
    let out = ch.deliver(&b).await;
    assert_clean(&out);
    assert!(
        out.iter().all(|o| matches!(o, Outcome::Unknown { .. })),
        "{out:?}"
    );
    assert_eq!(
        emu.received().len(),
        4,
        "it went out, unknown to the client"
    );
    emu.set_mode(Mode::Ok);
    let resolved = ch.resolve(&b).await;
    assert_clean(&resolved);
    assert!(
        resolved
            .iter()
            .all(|o| matches!(o, Outcome::Delivered { .. })),
        "{resolved:?}"
    );
    assert!(
        emu.received().values().all(|&n| n == 1),
        "{:?}",
        emu.received()
    );
    assert_eq!(emu.requests(), 1, "the status query sent nothing");
}

#[tokio::test]
async fn a_malformed_answer_is_unknown_and_resolved_without_resending() {
    let emu = Emulator::start().await;
    emu.set_mode(Mode::Malformed);
    let ch = channel(config(&emu));
    let b = batch("al-malformed", 2);
    let out = ch.deliver(&b).await;
    assert_clean(&out);
    assert!(
        out.iter().all(|o| matches!(o, Outcome::Unknown { .. })),
        "{out:?}"
    );
    let resolved = ch.resolve(&b).await;
    assert!(
        resolved
            .iter()
            .all(|o| matches!(o, Outcome::Delivered { .. })),
        "{resolved:?}"
    );
    assert!(emu.received().values().all(|&n| n == 1));
}

#[tokio::test]
async fn receipts_decide_failed_and_waiting_stays_unknown() {
    let emu = Emulator::start().await;
    let ch = channel(config(&emu));
    let b = batch("al-receipts", 3);
    assert!(ch.deliver(&b).await.iter().all(|o| delivered(o).is_some()));
    emu.set_receipt(&number(1), Receipt::Failed("MK:0001".into()));
    emu.set_receipt(&number(2), Receipt::Waiting);
    let resolved = ch.resolve(&b).await;
    assert_clean(&resolved);
    assert!(
        matches!(resolved[0], Outcome::Delivered { .. }),
        "{resolved:?}"
    );
    assert!(
        matches!(&resolved[1], Outcome::Failed { code, permanent: true, detail } if code == "report_fail" && detail.contains("MK:0001")),
        "{:?}",
        resolved[1]
    );
    assert!(
        matches!(&resolved[2], Outcome::Unknown { detail } if detail.contains("waiting")),
        "{:?}",
        resolved[2]
    );
}

#[tokio::test]
async fn a_send_that_never_arrived_is_transient_and_resolves_to_not_sent() {
    let emu = Emulator::start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut t = config(&emu);
    t.endpoint = format!("http://{closed}/");
    let out = channel(t).deliver(&batch("al-refused", 2)).await;
    assert_clean(&out);
    assert!(
        out.iter().all(|o| failed(o) == Some(("connect", false))),
        "{out:?}"
    );

    let ch = channel(config(&emu));
    let b = batch("al-never", 2);
    let first = ch.resolve(&b).await;
    assert!(
        first.iter().all(|o| matches!(o, Outcome::Unknown { .. })),
        "{first:?}"
    );
    let late = ch.resolve(&later(&b, 601)).await;
    assert!(
        late.iter().all(|o| failed(o) == Some(("not_sent", false))),
        "{late:?}"
    );
    // Another job's message to the same number is not this one's.
    let other = batch("al-other", 1);
    assert!(delivered(&ch.deliver(&other).await[0]).is_some());
    let mut eager = config(&emu);
    eager.resolve_after_secs = 0;
    let now = channel(eager).resolve(&batch("al-never-0", 1)).await;
    assert_eq!(failed(&now[0]), Some(("not_sent", false)), "{now:?}");
}

#[tokio::test]
async fn a_failing_status_query_leaves_the_delivery_unknown() {
    let emu = Emulator::start().await;
    let ch = channel(config(&emu));
    let b = batch("al-query-down", 1);
    for mode in [
        Mode::ServerError,
        Mode::Malformed,
        Mode::TooMany {
            retry_after_secs: 1,
        },
        Mode::CallError("isp.SYSTEM_ERROR".into()),
    ] {
        emu.set_query_mode(mode.clone());
        let out = ch.resolve(&later(&b, 86_400)).await;
        assert_clean(&out);
        assert!(
            matches!(out[0], Outcome::Unknown { .. }),
            "{mode:?}: {out:?}"
        );
    }
}

/// The whole path: a ledger, the engine, the channel built from its configuration. A call that
/// hangs past the timeout leaves its deliveries unknown; the next pass asks QuerySendDetails,
/// which finds them sent: delivered, each number messaged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_resolves_a_timed_out_call_by_the_status_query_without_resending() {
    let emu = Emulator::start().await;
    let setup = engine::Setup::new("sms-aliyun");
    let job = job("al-engine-1");
    setup.accept_sms_subscribers(&job, 5);
    let ledger = setup.ledger.clone();

    let mut t = config(&emu);
    t.timeout_ms = 300;
    let cfg = channel_config(t.clone());
    let ch = channel(t);
    let engine = |ch: Arc<dyn Channel>| setup.engine(&cfg, ch);
    emu.set_mode(Mode::Hang(Duration::from_secs(2)));
    engine(ch.clone()).drain().await.unwrap();
    let rows = ledger.deliveries("al-engine-1", 100).unwrap();
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter().all(|d| d.state == "unknown" && d.attempts == 1),
        "{rows:?}"
    );
    assert_eq!(emu.received().len(), 5);

    emu.set_mode(Mode::Ok);
    setup.recheck_unknown_now();
    engine(ch).drain().await.unwrap();
    let rows = ledger.deliveries("al-engine-1", 100).unwrap();
    assert!(rows.iter().all(|d| d.state == "delivered"), "{rows:?}");
    assert!(
        emu.received().values().all(|&n| n == 1),
        "{:?}",
        emu.received()
    );
    assert_eq!(emu.requests(), 1, "one SendSms call in all");
}
