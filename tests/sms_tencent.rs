//! The Tencent Cloud SMS transport against the local emulator (which checks the real TC3
//! signature and answers in Tencent's format): what each answer becomes for each delivery, that
//! a call whose fate is unknown is settled by the status query and never sent twice, and that no
//! credential ever reaches an outcome. The last test runs the whole engine with a ledger.

mod common;
#[path = "emulators/tencent.rs"]
mod tencent_emulator;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::engine;
use common::sms::{batch, job, later, number};
use common::transport::{self, Expect, delivered, failed};
use disclose::channels::tencent::TencentConfig;
use disclose::channels::{Channel, ChannelConfig, Outcome, Transport};
use disclose::job::ChannelKind;
use tencent_emulator::{Emulator, Mode, Receipt, SECRET_ID, SECRET_KEY, SMS_SDK_APP_ID};

const ID_VAR: &str = "DISCLOSE_TEST_TENCENT_SECRET_ID";
const KEY_VAR: &str = "DISCLOSE_TEST_TENCENT_SECRET_KEY";
const WRONG_KEY_VAR: &str = "DISCLOSE_TEST_TENCENT_WRONG_KEY";
const WRONG_ID_VAR: &str = "DISCLOSE_TEST_TENCENT_WRONG_ID";
const WRONG_KEY: &str = "this-is-not-the-key-0123456789ab";

/// The credentials, set once before any test of this binary builds a channel (every test calls
/// this first, so no other thread reads the environment meanwhile).
fn env() {
    transport::set_env_once(&[
        (ID_VAR, SECRET_ID),
        (KEY_VAR, SECRET_KEY),
        (WRONG_KEY_VAR, WRONG_KEY),
        (WRONG_ID_VAR, "AKIDnobodyknowsthisone000000000000"),
    ]);
}

fn config(emu: &Emulator) -> TencentConfig {
    TencentConfig {
        endpoint: emu.url.clone(),
        region: "ap-guangzhou".into(),
        sms_sdk_app_id: SMS_SDK_APP_ID.into(),
        sign_name: None,
        secret_id_env: ID_VAR.into(),
        secret_key_env: KEY_VAR.into(),
        timeout_ms: 2_000,
        resolve_lookback_secs: 86_400,
        resolve_after_secs: 600,
        status_queries_per_second: 20,
    }
}

fn channel_config(t: TencentConfig) -> ChannelConfig {
    engine::channel_config(ChannelKind::Sms, Transport::TencentSms(t), 200, None)
}

/// The channel as `serve` builds it: from the channel file's transport, credentials from the
/// environment.
fn channel(t: TencentConfig) -> Arc<dyn Channel> {
    env();
    let cfg = channel_config(t);
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    cfg.build(&std::env::temp_dir()).unwrap()
}

/// No credential, signature or Authorization header in anything the channel reports.
fn assert_clean(outcomes: &[Outcome]) {
    transport::assert_none_of(
        &[
            SECRET_ID,
            SECRET_KEY,
            WRONG_KEY,
            "TC3-HMAC-SHA256",
            "Signature=",
        ],
        outcomes,
    );
}

fn serials(emu: &Emulator) -> HashMap<String, String> {
    emu.sent()
        .into_iter()
        .map(|s| (s.number, s.serial_no))
        .collect()
}

/// Each outcome is `delivered` with the SerialNo the emulator gave its own [`number`] (the
/// `i`th outcome, the `i`th number); `why` names the case in the failure.
fn assert_own_serials(emu: &Emulator, outcomes: &[Outcome], why: &str) {
    let serials = serials(emu);
    for (i, o) in outcomes.iter().enumerate() {
        assert_eq!(
            delivered(o),
            Some(serials[&number(i)].as_str()),
            "delivery {i} must carry its own number's SerialNo ({why}): {o:?}"
        );
    }
}

#[tokio::test]
async fn success_gives_each_number_its_serial_no() {
    let emu = Emulator::start().await;
    emu.set_answer_order_reversed(true);
    let ch = channel(config(&emu));
    let b = batch("tc-ok", 3);
    let out = ch.deliver(&b).await;
    assert_clean(&out);
    assert_own_serials(&emu, &out, "although the answer came in reverse order");
    assert_eq!(emu.received().len(), 3);
    assert!(emu.received().values().all(|&n| n == 1));
    assert_eq!(emu.requests(), 1, "three numbers, one call");
    let sent = emu.sent();
    assert!(sent.iter().all(|s| &*s.template_id == "1234567"));
    assert!(
        sent.iter()
            .all(|s| s.params[..] == ["关于张三同志任职的通知".to_string()])
    );
    assert!(
        sent.iter()
            .all(|s| &*s.session_context == "disclose:tc-ok:1-3"),
        "{:?}",
        sent[0].session_context
    );
}

#[tokio::test]
async fn answers_are_matched_to_numbers_whatever_their_order_repeats_or_gaps() {
    // Tencent's answer need not follow PhoneNumberSet: here it comes reversed, one number is
    // given twice and gets two statuses, and one number is sent but left out of the answer.
    let emu = Emulator::start().await;
    emu.set_answer_order_reversed(true);
    emu.leave_out_of_answers(&number(2));
    let ch = channel(config(&emu));
    let mut b = batch("tc-match", 4);
    b.items[3].address = Some(number(0));
    let out = ch.deliver(&b).await;
    let sent = emu.sent();
    let serials_of = |n: &str| -> Vec<&str> {
        sent.iter()
            .filter(|s| s.number == n)
            .map(|s| s.serial_no.as_str())
            .collect()
    };
    let twice = serials_of(&number(0));
    assert_eq!(twice.len(), 2, "the number given twice was sent twice");
    let (first, second) = (delivered(&out[0]), delivered(&out[3]));
    assert!(first.is_some_and(|r| twice.contains(&r)), "{out:?}");
    assert!(second.is_some_and(|r| twice.contains(&r)), "{out:?}");
    assert_ne!(first, second, "each of the two gets its own status");
    assert_eq!(delivered(&out[1]), Some(serials_of(&number(1))[0]));
    assert!(
        matches!(&out[2], Outcome::Unknown { detail } if detail.contains("no status for this number")),
        "a number the answer leaves out is unknown, not sent again: {:?}",
        out[2]
    );
}

/// Tencent echoes each number as E.164 (`+86…`), whatever form it was sent in: a number written
/// another way (the ledger stores E.164, but a provider may take and echo the national forms)
/// is still matched to its own status, in order or not.
#[tokio::test]
async fn numbers_written_another_way_get_their_own_status() {
    for reversed in [false, true] {
        let emu = Emulator::start().await;
        emu.set_answer_order_reversed(reversed);
        let ch = channel(config(&emu));
        let mut b = batch("tc-forms", 4);
        let national = |i: usize| number(i).trim_start_matches("+86").to_string();
        b.items[0].address = Some(national(0));
        b.items[1].address = Some(format!("86{}", national(1)));
        let out = ch.deliver(&b).await;
        assert_clean(&out);
        assert_own_serials(&emu, &out, &format!("answer reversed: {reversed}"));
    }
}

#[tokio::test]
async fn calls_carry_at_most_200_numbers() {
    let emu = Emulator::start().await;
    let mut t = config(&emu);
    t.timeout_ms = 10_000;
    let ch = Arc::new(
        disclose::channels::tencent::Tencent::new(
            t,
            disclose::channels::http::Secret::new(SECRET_ID),
            disclose::channels::http::Secret::new(SECRET_KEY),
        )
        .unwrap(),
    );
    let b = batch("tc-many", 450);
    let out = ch.deliver(&b).await;
    assert!(out.iter().all(|o| delivered(o).is_some()));
    assert_eq!(emu.requests(), 3, "450 numbers: 200 + 200 + 50");
    assert_eq!(emu.received().len(), 450);
}

#[tokio::test]
async fn partial_failure_fails_only_the_refused_numbers() {
    let emu = Emulator::start().await;
    let (n1, n2, n3, n4, n5) = (number(1), number(2), number(3), number(4), number(5));
    emu.set_mode(Mode::partial([
        (n1.as_str(), "InvalidParameterValue.IncorrectPhoneNumber"),
        (n2.as_str(), "FailedOperation.PhoneNumberInBlacklist"),
        (n3.as_str(), "LimitExceeded.PhoneNumberThirtySecondLimit"),
        (n4.as_str(), "InternalError.OtherError"),
        (n5.as_str(), "InternalError.Timeout"),
    ]));
    let ch = channel(config(&emu));
    let b = batch("tc-partial", 7);
    let out = ch.deliver(&b).await;
    assert_clean(&out);
    assert!(delivered(&out[0]).is_some(), "{:?}", out[0]);
    assert_eq!(
        failed(&out[1]),
        Some(("InvalidParameterValue.IncorrectPhoneNumber", true))
    );
    assert_eq!(
        failed(&out[2]),
        Some(("FailedOperation.PhoneNumberInBlacklist", true))
    );
    assert_eq!(
        out[3],
        Outcome::RetryAfter {
            after: Duration::from_secs(30),
            code: "LimitExceeded.PhoneNumberThirtySecondLimit".into()
        }
    );
    assert_eq!(failed(&out[4]), Some(("InternalError.OtherError", false)));
    assert!(
        matches!(&out[5], Outcome::Unknown { detail } if detail.contains("InternalError.Timeout")),
        "Tencent's own hand-over timed out: the message may be out: {:?}",
        out[5]
    );
    assert!(delivered(&out[6]).is_some());
    let received = emu.received();
    assert_eq!(
        received.keys().cloned().collect::<HashSet<_>>(),
        [number(0), number(6)].into_iter().collect::<HashSet<_>>()
    );
}

#[tokio::test]
async fn whole_call_errors_apply_to_every_number() {
    let emu = Emulator::start().await;
    let ch = channel(config(&emu));
    let b = batch("tc-whole", 3);
    let cases: Vec<(&str, Expect)> = vec![
        ("FailedOperation.TemplateIncorrectOrUnapproved", |o| {
            failed(o) == Some(("FailedOperation.TemplateIncorrectOrUnapproved", true))
        }),
        ("FailedOperation.SignatureIncorrectOrUnapproved", |o| {
            failed(o) == Some(("FailedOperation.SignatureIncorrectOrUnapproved", true))
        }),
        ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", |o| {
            failed(o) == Some(("UnauthorizedOperation.SmsSdkAppIdVerifyFail", true))
        }),
        ("InternalError.OtherError", |o| {
            failed(o) == Some(("InternalError.OtherError", false))
        }),
        ("InternalError.SendAndRecvFail", |o| {
            matches!(o, Outcome::Unknown { .. })
        }),
        ("RequestLimitExceeded", |o| {
            *o == Outcome::RetryAfter {
                after: Duration::from_secs(1),
                code: "RequestLimitExceeded".into(),
            }
        }),
        (
            "LimitExceeded.AppDailyLimit",
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
    assert_eq!(emu.requests(), 7, "one call per case, none repeated");
}

#[tokio::test]
async fn a_number_specific_error_for_the_whole_call_is_retried_number_by_number() {
    let emu = Emulator::start().await;
    emu.set_mode(Mode::CallErrorFor(
        [(
            number(1),
            "InvalidParameterValue.IncorrectPhoneNumber".to_string(),
        )]
        .into(),
    ));
    let ch = channel(config(&emu));
    let b = batch("tc-split", 3);
    let out = ch.deliver(&b).await;
    assert!(delivered(&out[0]).is_some(), "{out:?}");
    assert_eq!(
        failed(&out[1]),
        Some(("InvalidParameterValue.IncorrectPhoneNumber", true))
    );
    assert!(delivered(&out[2]).is_some());
    assert_eq!(emu.requests(), 4, "the refused call, then one per number");
    assert_eq!(emu.received()[&number(0)], 1);
    assert_eq!(emu.received()[&number(2)], 1);
    assert!(!emu.received().contains_key(&number(1)));
}

#[tokio::test]
async fn http_429_is_rate_limited_for_the_time_asked() {
    let emu = Emulator::start().await;
    emu.set_mode(Mode::TooMany {
        retry_after_secs: 7,
    });
    let ch = channel(config(&emu));
    let out = ch.deliver(&batch("tc-429", 2)).await;
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
    let ch = channel(config(&emu));
    let out = ch.deliver(&batch("tc-500", 2)).await;
    assert_clean(&out);
    assert!(
        out.iter().all(|o| failed(o) == Some(("http_500", false))),
        "{out:?}"
    );
    assert!(emu.received().is_empty());
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_reported_as_a_configuration_failure() {
    let emu = Emulator::start().await;
    let mut wrong_key = config(&emu);
    wrong_key.secret_key_env = WRONG_KEY_VAR.into();
    let out = channel(wrong_key).deliver(&batch("tc-key", 2)).await;
    assert_clean(&out);
    assert!(
        out.iter()
            .all(|o| failed(o) == Some(("AuthFailure.SignatureFailure", true))),
        "{out:?}"
    );
    let mut wrong_id = config(&emu);
    wrong_id.secret_id_env = WRONG_ID_VAR.into();
    let out = channel(wrong_id).deliver(&batch("tc-id", 2)).await;
    assert_clean(&out);
    assert!(
        out.iter()
            .all(|o| failed(o) == Some(("AuthFailure.SecretIdNotFound", true))),
        "{out:?}"
    );
    // The emulator can also refuse every signature, for demos of a rotated key.
    emu.set_mode(Mode::WrongSignature);
    let out = channel(config(&emu)).deliver(&batch("tc-sig", 1)).await;
    assert_eq!(
        failed(&out[0]),
        Some(("AuthFailure.SignatureFailure", true))
    );
    assert!(emu.received().is_empty());
    // And the right credentials are accepted: the check is not refusing everything.
    emu.set_mode(Mode::Ok);
    let out = channel(config(&emu)).deliver(&batch("tc-right", 1)).await;
    assert!(delivered(&out[0]).is_some(), "{out:?}");
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_unknown_and_the_status_query_finds_it_sent_once() {
    let emu = Emulator::start().await;
    emu.set_mode(Mode::Hang(Duration::from_secs(3)));
    let mut t = config(&emu);
    t.timeout_ms = 300;
    let ch = channel(t);
    let b = batch("tc-hang", 4);
    let started = std::time::Instant::now();
    let out = ch.deliver(&b).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the client's timeout ended the call"
    );
    assert_clean(&out);
    assert!(
        out.iter().all(|o| matches!(o, Outcome::Unknown { .. })),
        "{out:?}"
    );
    // It went out, although the client could not know.
    assert_eq!(emu.received().len(), 4);
    emu.set_mode(Mode::Ok);
    let resolved = ch.resolve(&b).await;
    assert_clean(&resolved);
    assert_own_serials(&emu, &resolved, "found by the status query");
    assert!(
        emu.received().values().all(|&n| n == 1),
        "each number got the message exactly once: {:?}",
        emu.received()
    );
    assert_eq!(emu.requests(), 1, "the status query sent nothing");
}

#[tokio::test]
async fn a_malformed_answer_is_unknown_and_resolved_without_resending() {
    let emu = Emulator::start().await;
    emu.set_mode(Mode::Malformed);
    let ch = channel(config(&emu));
    let b = batch("tc-malformed", 2);
    let out = ch.deliver(&b).await;
    assert_clean(&out);
    assert!(
        out.iter().all(|o| matches!(o, Outcome::Unknown { .. })),
        "{out:?}"
    );
    let resolved = ch.resolve(&b).await;
    assert!(
        resolved.iter().all(|o| delivered(o).is_some()),
        "{resolved:?}"
    );
    assert!(emu.received().values().all(|&n| n == 1));
}

#[tokio::test]
async fn receipts_decide_failed_and_pending_stays_unknown() {
    let emu = Emulator::start().await;
    let ch = channel(config(&emu));
    let b = batch("tc-receipts", 3);
    let out = ch.deliver(&b).await;
    assert!(out.iter().all(|o| delivered(o).is_some()));
    emu.set_receipt(&number(1), Receipt::Fail("用户关机".into()));
    emu.set_receipt(&number(2), Receipt::Pending);
    let resolved = ch.resolve(&b).await;
    assert_clean(&resolved);
    assert!(delivered(&resolved[0]).is_some());
    assert!(
        matches!(&resolved[1], Outcome::Failed { code, permanent: true, detail } if code == "report_fail" && detail.contains("用户关机")),
        "{:?}",
        resolved[1]
    );
    // Tencent lists a message only once its receipt is in: no record yet is not "not sent".
    assert!(
        matches!(resolved[2], Outcome::Unknown { .. }),
        "{:?}",
        resolved[2]
    );
}

#[tokio::test]
async fn receipts_without_session_context_cannot_be_attributed_and_stay_unknown() {
    let emu = Emulator::start().await;
    emu.set_session_context_in_receipts(false);
    let ch = channel(config(&emu));
    let b = batch("tc-nosession", 1);
    assert!(delivered(&ch.deliver(&b).await[0]).is_some());
    // However long it waits, a receipt it cannot attribute never becomes "not sent".
    let resolved = ch.resolve(&later(&b, 86_400)).await;
    assert!(
        matches!(&resolved[0], Outcome::Unknown { detail } if detail.contains("SessionContext")),
        "{resolved:?}"
    );
}

#[tokio::test]
async fn a_send_that_never_arrived_is_transient_and_resolves_to_not_sent() {
    let emu = Emulator::start().await;
    // A port nobody listens on: the connection is refused, the call surely never arrived.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut t = config(&emu);
    t.endpoint = format!("http://{closed}/");
    let out = channel(t).deliver(&batch("tc-refused", 2)).await;
    assert_clean(&out);
    assert!(
        out.iter().all(|o| failed(o) == Some(("connect", false))),
        "{out:?}"
    );

    // The status query of deliveries the provider never saw: unknown at first (a receipt can
    // lag), not sent once the provider has gone on showing nothing for resolve_after_secs.
    let ch = channel(config(&emu));
    let b = batch("tc-never", 2);
    let first = ch.resolve(&b).await;
    assert!(
        first.iter().all(|o| matches!(o, Outcome::Unknown { .. })),
        "{first:?}"
    );
    let early = ch.resolve(&later(&b, 300)).await;
    assert!(early.iter().all(|o| matches!(o, Outcome::Unknown { .. })));
    let late = ch.resolve(&later(&b, 601)).await;
    assert!(
        late.iter().all(|o| failed(o) == Some(("not_sent", false))),
        "{late:?}"
    );
    // Configured to trust the first empty answer, it says so at once.
    let mut eager = config(&emu);
    eager.resolve_after_secs = 0;
    let now = channel(eager).resolve(&batch("tc-never-0", 1)).await;
    assert_eq!(failed(&now[0]), Some(("not_sent", false)), "{now:?}");
    assert!(emu.received().is_empty());
}

#[tokio::test]
async fn a_failing_status_query_leaves_the_delivery_unknown() {
    let emu = Emulator::start().await;
    let ch = channel(config(&emu));
    let b = batch("tc-query-down", 1);
    for mode in [
        Mode::ServerError,
        Mode::Malformed,
        Mode::TooMany {
            retry_after_secs: 1,
        },
        Mode::CallError("InternalError.OtherError".into()),
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

#[tokio::test]
async fn deliveries_without_a_number_are_skipped_and_a_template_without_a_tencent_id_fails() {
    let emu = Emulator::start().await;
    let ch = channel(config(&emu));
    let mut b = batch("tc-skip", 2);
    b.items[0].address = None;
    let out = ch.deliver(&b).await;
    assert_eq!(
        out[0],
        Outcome::Skipped {
            reason: "no_address".into()
        }
    );
    assert!(delivered(&out[1]).is_some());
    let mut content = (*b.items[1].content).clone();
    if let disclose::render::Rendered::Sms { template_ids, .. } = &mut content {
        template_ids.remove("tencent");
    }
    b.items[1].content = Arc::new(content);
    let out = ch.deliver(&b).await;
    assert_eq!(
        failed(&out[1]),
        Some(("template_id_missing", true)),
        "{out:?}"
    );
    assert_eq!(emu.requests(), 1);
}

/// The whole path: a ledger, the engine, the channel built from its configuration. A call that
/// hangs past the timeout leaves its deliveries unknown; the next pass asks the status query,
/// which finds them sent: delivered, each number messaged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_resolves_a_timed_out_call_by_the_status_query_without_resending() {
    let emu = Emulator::start().await;
    let setup = engine::Setup::new("sms-tencent");
    let job = job("tc-engine-1");
    setup.accept_sms_subscribers(&job, 5);
    let ledger = setup.ledger.clone();

    let mut t = config(&emu);
    t.timeout_ms = 300;
    let cfg = channel_config(t);
    let ch = channel(match &cfg.transport {
        Transport::TencentSms(t) => t.clone(),
        _ => unreachable!(),
    });
    let engine = |ch: Arc<dyn Channel>| setup.engine(&cfg, ch);
    emu.set_mode(Mode::Hang(Duration::from_secs(2)));
    engine(ch.clone()).drain().await.unwrap();
    let rows = ledger.deliveries("tc-engine-1", 100).unwrap();
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter().all(|d| d.state == "unknown" && d.attempts == 1),
        "{rows:?}"
    );
    assert_eq!(emu.received().len(), 5);

    // The next pass (made due now rather than in 5 minutes) asks Tencent instead of resending.
    emu.set_mode(Mode::Ok);
    setup.recheck_unknown_now();
    engine(ch).drain().await.unwrap();
    let serials = serials(&emu);
    let rows = ledger.deliveries("tc-engine-1", 100).unwrap();
    for d in &rows {
        assert_eq!(d.state, "delivered", "{d:?}");
        assert!(
            serials.values().any(|s| Some(s) == d.code.as_ref()),
            "the ledger keeps Tencent's SerialNo: {d:?}"
        );
    }
    assert!(
        emu.received().values().all(|&n| n == 1),
        "{:?}",
        emu.received()
    );
    assert_eq!(emu.requests(), 1, "one SendSms call in all");
}

/// A status query asks one number at a time under a rate limit (20 a second). With a 1 s lease and
/// four workers, a worker must claim no more unknowns than the lane can settle before the lease
/// runs out: a claim of 100 outlived its lease, went back to `unknown` (as `serve`'s housekeeping
/// does, here every 100 ms), and was claimed and asked about again by the next worker, over and
/// over. Each of the 100 deliveries is asked about once (a few more at most), and all settle. (Without
/// the cap, one run: 400 queries and 20 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_queries_fit_the_lease_so_no_delivery_is_asked_about_over_and_over() {
    let emu = Emulator::start().await;
    let setup = engine::Setup::new("sms-tencent-lease");
    let n = 100;
    let job = job("tc-lease-1");
    setup.accept_sms_subscribers(&job, n);
    let ledger = setup.ledger.clone();
    let mut t = config(&emu);
    t.timeout_ms = 300;
    // Asked about as soon as they are unknown (as in the chaos test), not ten minutes later.
    t.resolve_after_secs = 0;
    let mut cfg =
        engine::channel_config(ChannelKind::Sms, Transport::TencentSms(t.clone()), 20, None);
    cfg.concurrency = Some(4);
    let ch = channel(t);

    // Every call hangs past the timeout: 100 deliveries unknown, each number messaged once.
    emu.set_mode(Mode::Hang(Duration::from_secs(2)));
    setup.engine(&cfg, ch.clone()).drain().await.unwrap();
    let rows = ledger.deliveries("tc-lease-1", 1_000).unwrap();
    assert!(rows.iter().all(|d| d.state == "unknown"), "{rows:?}");
    assert_eq!(emu.received().len(), n);

    // The status query, with leases of 1 s expiring as serve's housekeeping expires them.
    emu.set_mode(Mode::Ok);
    setup.recheck_unknown_now();
    let expiring = {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let ledger = ledger.clone();
                let now = chrono::Utc::now().timestamp_millis();
                let _ = tokio::task::spawn_blocking(move || ledger.expire_leases(now)).await;
            }
        })
    };
    // The service's workers (which, unlike a one-shot drain, keep looking for unknowns).
    let engine = setup.engine_with_lease(&cfg, ch, Duration::from_secs(1));
    let (stop, shutdown) = disclose::shutdown::channel();
    let workers = tokio::spawn(engine.run(shutdown, Arc::new(tokio::sync::Notify::new())));
    let started = std::time::Instant::now();
    let settled = || {
        ledger
            .deliveries("tc-lease-1", 1_000)
            .unwrap()
            .iter()
            .all(|d| d.state == "delivered")
    };
    while !settled() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not settled in a minute; {} status queries so far",
            emu.status_queries()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.fire();
    workers.await.unwrap();
    expiring.abort();
    assert!(
        emu.received().values().all(|&c| c == 1),
        "no number messaged twice"
    );
    let queries = emu.status_queries();
    assert!(
        queries >= n as u64 && queries <= n as u64 + 10,
        "{queries} status queries for {n} unknown deliveries"
    );
}
