//! The `wechat_template` transport against the local WeChat emulator: tokens (one fetch for many
//! concurrent sends, one refresh on a token error and no loop), per-openid results, quotas,
//! HTTP failures, and the status query that never delivers a notice twice.

mod common;
#[path = "emulators/wechat.rs"]
mod wechat_emulator;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::engine::{Setup, channel_config, release};
use common::transport::{self, at, delivered};
use disclose::channels::wechat::{WechatConfig, WechatTemplate, client_msg_id};
use disclose::channels::{Batch, Channel, Item, Outcome, Transport};
use disclose::job::{ChannelKind, Job};
use disclose::ledger::{Ledger, Member};
use disclose::policy::GroupKind;
use disclose::render::Rendered;
use wechat_emulator::{APPID, Emulator, Mode, SECRET};

const SECRET_ENV: &str = "DISCLOSE_TEST_WECHAT_APPSECRET";
const WRONG_SECRET_ENV: &str = "DISCLOSE_TEST_WECHAT_WRONG_APPSECRET";
const WRONG_SECRET: &str = "not-the-appsecret-5d1c0e";
const TEMPLATE_ID: &str = "TPL-gk-0001";

fn env() {
    transport::set_env_once(&[(SECRET_ENV, SECRET), (WRONG_SECRET_ENV, WRONG_SECRET)]);
}

fn config(emu: &Emulator) -> WechatConfig {
    WechatConfig {
        endpoint: emu.url.clone(),
        appid: APPID.into(),
        secret_env: SECRET_ENV.into(),
        timeout_ms: 400,
        parallel_calls: 8,
    }
}

fn channel(emu: &Emulator) -> WechatTemplate {
    env();
    WechatTemplate::new(&config(emu)).unwrap()
}

const NOW: &str = "2026-12-01T14:30:00+08:00";

fn job(id: &str) -> Arc<Job> {
    let job = serde_json::json!({
        "id": id, "kind": "release", "category": "6.3", "scope": "public", "classification": "none",
        "title": "关于张三同志任职前公示的公告", "template": "general", "data": {"body": "正文"},
        "approval": {"approver": "李四", "reference": "组干审〔2026〕12号", "approved_at": "2026-11-28T16:00:00+08:00", "key_id": "k"}
    });
    Arc::new(
        disclose::job::parse(job.to_string().as_bytes())
            .unwrap()
            .job,
    )
}

fn content() -> Arc<Rendered> {
    Arc::new(Rendered::Wechat {
        template_id: TEMPLATE_ID.into(),
        url: Some("https://zzb.example.gov.cn/gk/zzb-2026-0142.html".into()),
        data: vec![
            ("keyword1".into(), "关于张三同志任职前公示的公告".into()),
            ("keyword2".into(), "县委组织部".into()),
            ("keyword3".into(), "2026年12月1日".into()),
        ],
    })
}

/// One item per openid (`None`: a recipient without one); recipient ids are `r-<openid>`.
fn batch(job_id: &str, openids: &[Option<&str>], now: &str) -> Batch {
    let content = content();
    Batch {
        job: job(job_id),
        channel: ChannelKind::Wechat,
        items: openids
            .iter()
            .enumerate()
            .map(|(i, o)| Item {
                delivery_id: i as i64 + 1,
                recipient: format!("r-{}", o.unwrap_or("none")),
                name: format!("订阅者{i}"),
                role: "member".into(),
                address: o.map(str::to_string),
                attempt: 1,
                content: content.clone(),
            })
            .collect(),
        now: at(now),
    }
}

fn openids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("oFollower{i:04}xYz")).collect()
}

fn some(v: &[String]) -> Vec<Option<&str>> {
    v.iter().map(|s| Some(s.as_str())).collect()
}

/// No secret and no token in any detail or code.
fn assert_clean(outcomes: &[Outcome], emu: &Emulator) {
    let tokens = emu.issued_tokens();
    let mut secrets = vec![SECRET, WRONG_SECRET];
    secrets.extend(tokens.iter().map(String::as_str));
    transport::assert_none_of(&secrets, outcomes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_sends_share_one_token_and_each_openid_gets_one_message() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    let ids = openids(40);
    let b = batch("zzb-2026-0142", &some(&ids), NOW);
    let outcomes = ch.deliver(&b).await;
    assert_eq!(outcomes.len(), 40);
    let msgids: Vec<&str> = outcomes
        .iter()
        .map(|o| delivered(o).unwrap_or_else(|| panic!("{o:?}")))
        .collect();
    assert_eq!(emu.token_fetches(), 1, "one central fetch for 40 sends");
    assert_eq!(emu.send_calls(), 40, "one call per openid");
    let received = emu.received();
    for id in &ids {
        assert_eq!(received[id], 1, "{id}");
    }
    // Each outcome carries the msgid WeChat gave that openid's message.
    let by_openid: HashMap<String, String> = emu
        .messages()
        .into_iter()
        .map(|m| (m.openid.clone(), m.msgid.to_string()))
        .collect();
    for (id, msgid) in ids.iter().zip(&msgids) {
        assert_eq!(by_openid[id], *msgid);
    }
    for m in emu.messages() {
        assert_eq!(m.template_id, TEMPLATE_ID);
        assert_eq!(
            m.url.as_deref(),
            Some("https://zzb.example.gov.cn/gk/zzb-2026-0142.html")
        );
        assert_eq!(m.data["keyword2"]["value"], "县委组织部");
        assert_eq!(
            m.client_msg_id.as_deref(),
            Some(client_msg_id("zzb-2026-0142", &format!("r-{}", m.openid)).as_str())
        );
    }
    // A second batch reuses the cached token.
    ch.deliver(&batch("zzb-2026-0143", &some(&ids[..3]), NOW))
        .await;
    assert_eq!(emu.token_fetches(), 1);
    assert_clean(&outcomes, &emu);
    // The client_msg_id above names the recipient: the engine must claim WeChat's deliveries
    // with their recipients (claimed by address, every message of a job would carry the same id
    // and WeChat would keep only the first).
    assert!(!ch.sends_by_address());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_invalid_token_is_refreshed_once_and_the_sends_succeed() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    let ids = openids(12);
    let first = ch.deliver(&batch("j-1", &some(&ids[..2]), NOW)).await;
    assert!(first.iter().all(|o| delivered(o).is_some()), "{first:?}");
    assert_eq!(emu.token_fetches(), 1);

    // Mid-run the platform expires the token: the concurrent sends that hit 42001 share one
    // refresh, and every one of them is then delivered, once.
    emu.invalidate_token(42001);
    let second = ch.deliver(&batch("j-1", &some(&ids[2..8]), NOW)).await;
    assert!(second.iter().all(|o| delivered(o).is_some()), "{second:?}");
    assert_eq!(emu.token_fetches(), 2, "one refresh, not one per send");

    // The same for a token that is "invalid or not latest" (40001).
    emu.invalidate_token(40001);
    let third = ch.deliver(&batch("j-1", &some(&ids[8..]), NOW)).await;
    assert!(third.iter().all(|o| delivered(o).is_some()), "{third:?}");
    assert_eq!(emu.token_fetches(), 3);

    let received = emu.received();
    assert!(ids.iter().all(|id| received[id] == 1), "{received:?}");
    assert_clean(&[first, second, third].concat(), &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_again_after_the_refresh_fails_the_send_without_looping() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    emu.reject_all_tokens(Some(40001));
    let outcomes = ch.deliver(&batch("j-2", &[Some("oAlice")], NOW)).await;
    match &outcomes[0] {
        Outcome::Failed {
            code,
            permanent: false,
            detail,
        } => {
            assert_eq!(code, "40001");
            assert!(detail.contains("refused twice"), "{detail}");
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(emu.token_fetches(), 2, "the first fetch and one refresh");
    assert_eq!(emu.send_calls(), 2, "the send and one retry");
    assert!(emu.received().is_empty());
    assert_clean(&outcomes, &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_followers_and_bad_openids_fail_permanently_while_the_others_are_delivered() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    emu.script("oStranger", Mode::Errcode(43004));
    emu.script("oUnknownId", Mode::Errcode(40003));
    emu.script("oRefused", Mode::Errcode(43101));
    let b = batch(
        "j-3",
        &[
            Some("oAlice"),
            Some("oStranger"),
            None,
            Some("oUnknownId"),
            Some("oBob"),
            Some("oRefused"),
        ],
        NOW,
    );
    let outcomes = ch.deliver(&b).await;
    let codes: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Delivered { .. } => "delivered".to_string(),
            Outcome::Failed {
                code,
                permanent: true,
                ..
            } => code.clone(),
            Outcome::Skipped { reason } => format!("skipped:{reason}"),
            o => panic!("{o:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        [
            "delivered",
            "43004",
            "skipped:no_address",
            "40003",
            "delivered",
            "43101"
        ]
    );
    let received = emu.received();
    assert_eq!(received.len(), 2);
    assert_eq!((received["oAlice"], received["oBob"]), (1, 1));
    assert_clean(&outcomes, &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_quota_waits_until_midnight_china_time_and_stops_calling_until_then() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    emu.set_mode(Mode::Errcode(45009));
    let ids = openids(3);
    // 14:30 UTC+8: the quota's day starts again in 9 h 30 min.
    let outcomes = ch.deliver(&batch("j-4", &some(&ids), NOW)).await;
    let until_midnight = Duration::from_secs(9 * 3600 + 30 * 60);
    for o in &outcomes {
        assert_eq!(
            *o,
            Outcome::RetryAfter {
                after: until_midnight,
                code: "45009".into()
            }
        );
    }
    // An hour later the channel does not even try: the quota is the account's.
    let calls = emu.send_calls();
    emu.set_mode(Mode::Normal);
    let later = ch
        .deliver(&batch("j-4", &some(&ids), "2026-12-01T15:30:00+08:00"))
        .await;
    assert!(
        later.iter().all(|o| *o
            == Outcome::RetryAfter {
                after: until_midnight - Duration::from_secs(3600),
                code: "45009".into()
            }),
        "{later:?}"
    );
    assert_eq!(emu.send_calls(), calls, "no calls while the quota is spent");
    // After midnight they go out.
    let next_day = ch
        .deliver(&batch("j-4", &some(&ids), "2026-12-02T00:00:01+08:00"))
        .await;
    assert!(
        next_day.iter().all(|o| delivered(o).is_some()),
        "{next_day:?}"
    );
    assert!(ids.iter().all(|id| emu.received()[id] == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_busy_and_configuration_errors_map_to_their_outcomes() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    let one = |id: &'static str| batch("j-5", &[Some(id)], NOW);

    emu.set_mode(Mode::Errcode(45011));
    match &ch.deliver(&one("oA")).await[0] {
        Outcome::RetryAfter { after, code } => {
            assert!(*after >= Duration::from_secs(60), "{after:?}");
            assert_eq!(code, "45011");
        }
        o => panic!("{o:?}"),
    }

    // The per-minute block lifts after the minute.
    let t = "2026-12-01T14:31:01+08:00";
    emu.set_mode(Mode::TooMany(7));
    assert_eq!(
        ch.deliver(&batch("j-5", &[Some("oA")], t)).await[0],
        Outcome::RetryAfter {
            after: Duration::from_secs(7),
            code: "http_429".into()
        }
    );
    let t = "2026-12-01T14:31:10+08:00";
    emu.set_mode(Mode::Errcode(-1));
    assert!(matches!(
        &ch.deliver(&batch("j-5", &[Some("oA")], t)).await[0],
        Outcome::Failed { code, permanent: false, .. } if code == "-1"
    ));
    emu.set_mode(Mode::Status(503));
    assert!(matches!(
        &ch.deliver(&batch("j-5", &[Some("oA")], t)).await[0],
        Outcome::Failed { code, permanent: false, .. } if code == "http_503"
    ));
    let mut all = Vec::new();
    for code in [40164, 48001] {
        emu.set_mode(Mode::Errcode(code));
        let o = ch.deliver(&batch("j-5", &[Some("oA")], t)).await;
        assert!(
            matches!(&o[0], Outcome::Failed { code: c, permanent: true, .. } if *c == code.to_string()),
            "{o:?}"
        );
        all.extend(o);
    }
    emu.set_mode(Mode::Normal);
    emu.set_template_ids(&["TPL-other"]);
    let o = ch.deliver(&batch("j-5", &[Some("oA")], t)).await;
    assert!(
        matches!(&o[0], Outcome::Failed { code, permanent: true, .. } if code == "40037"),
        "{o:?}"
    );
    assert!(emu.received().is_empty(), "nothing above was taken");
    all.extend(o);
    assert_clean(&all, &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_fails_sends_nothing_and_is_retried_later() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    emu.fail_token_fetch(Some(500));
    let outcomes = ch.deliver(&batch("j-6", &some(&openids(5)), NOW)).await;
    for o in &outcomes {
        assert!(
            matches!(o, Outcome::Failed { code, permanent: false, .. } if code == "token_unavailable"),
            "{o:?}"
        );
    }
    assert_eq!(emu.send_calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_appsecret_is_a_configuration_failure_that_never_shows_the_secret() {
    env();
    let emu = Emulator::start().await;
    let mut cfg = config(&emu);
    cfg.secret_env = WRONG_SECRET_ENV.into();
    let ch = WechatTemplate::new(&cfg).unwrap();
    let outcomes = ch.deliver(&batch("j-7", &[Some("oA")], NOW)).await;
    assert!(
        matches!(&outcomes[0], Outcome::Failed { code, permanent: true, .. } if code == "40125"),
        "{outcomes:?}"
    );
    assert_clean(&outcomes, &emu);
    // A missing variable is named, and start-up fails.
    cfg.secret_env = "DISCLOSE_TEST_WECHAT_NOT_SET".into();
    let e = WechatTemplate::new(&cfg).err().unwrap();
    assert!(e.contains("DISCLOSE_TEST_WECHAT_NOT_SET is not set"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_send_is_unknown_and_the_status_query_settles_it_without_a_second_message() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    emu.script("oSlow", Mode::Hang(Duration::from_secs(3)));
    let b = batch("j-8", &[Some("oFast"), Some("oSlow")], NOW);
    let outcomes = ch.deliver(&b).await;
    assert!(delivered(&outcomes[0]).is_some());
    assert!(
        matches!(&outcomes[1], Outcome::Unknown { detail } if detail.contains("timed out")),
        "{outcomes:?}"
    );
    assert_eq!(
        emu.received()["oSlow"],
        1,
        "WeChat took it before the timeout"
    );
    let original = emu
        .messages()
        .into_iter()
        .find(|m| m.openid == "oSlow")
        .unwrap();

    // Five minutes later (the engine's recheck) the status query resends with the same
    // client_msg_id: WeChat dedups it and answers with the original msgid.
    emu.script("oSlow", Mode::Normal);
    let mut later = batch("j-8", &[Some("oSlow")], "2026-12-01T14:35:00+08:00");
    later.items[0].delivery_id = 2;
    let resolved = ch.resolve(&later).await;
    assert_eq!(
        resolved,
        [Outcome::Delivered {
            reference: Some(original.msgid.to_string())
        }]
    );
    assert_eq!(emu.received()["oSlow"], 1, "no second message");
    assert_eq!(emu.deduplicated(), 1);
    assert_clean(&[outcomes, resolved].concat(), &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_that_never_reached_wechat_is_sent_by_the_status_query_once() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    // A gateway 500: maybe passed on, maybe not — here it was not.
    emu.set_mode(Mode::Status(500));
    let outcomes = ch.deliver(&batch("j-9", &[Some("oA")], NOW)).await;
    assert!(
        matches!(&outcomes[0], Outcome::Unknown { .. }),
        "{outcomes:?}"
    );
    assert!(emu.received().is_empty());
    emu.set_mode(Mode::Normal);
    let resolved = ch
        .resolve(&batch("j-9", &[Some("oA")], "2026-12-01T14:36:00+08:00"))
        .await;
    assert!(delivered(&resolved[0]).is_some(), "{resolved:?}");
    assert_eq!(emu.received()["oA"], 1);
    // Asked again (say the outcome was lost): still one message.
    let again = ch
        .resolve(&batch("j-9", &[Some("oA")], "2026-12-01T14:37:00+08:00"))
        .await;
    assert_eq!(again, resolved);
    assert_eq!(emu.received()["oA"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_answer_is_unknown_and_resolved_to_the_message_that_went_out() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    emu.set_mode(Mode::Malformed);
    let outcomes = ch.deliver(&batch("j-10", &[Some("oA")], NOW)).await;
    assert!(
        matches!(&outcomes[0], Outcome::Unknown { detail } if detail.contains("not JSON")),
        "{outcomes:?}"
    );
    emu.set_mode(Mode::Normal);
    let resolved = ch
        .resolve(&batch("j-10", &[Some("oA")], "2026-12-01T14:35:00+08:00"))
        .await;
    assert_eq!(
        delivered(&resolved[0]),
        Some(emu.messages()[0].msgid.to_string().as_str())
    );
    assert_eq!(emu.received()["oA"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_dedup_window_or_after_a_restart_an_unknown_stays_unknown() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    emu.set_mode(Mode::Hang(Duration::from_secs(3)));
    let outcomes = ch.deliver(&batch("j-11", &[Some("oA")], NOW)).await;
    assert!(matches!(&outcomes[0], Outcome::Unknown { .. }));
    emu.set_mode(Mode::Normal);
    let calls = emu.send_calls();

    // Eleven minutes on: a resend could be a second message, so none is made.
    let late = ch
        .resolve(&batch("j-11", &[Some("oA")], "2026-12-01T14:41:00+08:00"))
        .await;
    assert!(
        matches!(&late[0], Outcome::Unknown { detail } if detail.contains("outside the 10-minute")),
        "{late:?}"
    );
    // Even 9 minutes on is too late: a minute and the call's timeout are kept in reserve.
    let edge = ch
        .resolve(&batch("j-11", &[Some("oA")], "2026-12-01T14:39:00+08:00"))
        .await;
    assert!(matches!(&edge[0], Outcome::Unknown { .. }), "{edge:?}");

    // A new process (no record of the first attempt) cannot vouch for the window either.
    let restarted = channel(&emu);
    let fresh = restarted
        .resolve(&batch("j-11", &[Some("oA")], "2026-12-01T14:32:00+08:00"))
        .await;
    assert!(
        matches!(&fresh[0], Outcome::Unknown { detail } if detail.contains("no record")),
        "{fresh:?}"
    );
    assert_eq!(emu.send_calls(), calls, "the status query sent nothing");
    assert_eq!(emu.received()["oA"], 1);
}

/// Through the real engine and a SQLite ledger: outcomes land in the ledger as the contract
/// says, and the engine's status query settles a timed-out send without a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_engine_every_recipient_gets_one_message_and_the_ledger_says_so() {
    env();
    let emu = Emulator::start().await;
    emu.script("oStranger", Mode::Errcode(43004));
    emu.script("oSlow", Mode::Hang(Duration::from_secs(2)));
    let setup = Setup::new("wechat-engine");
    let people: [(&str, Option<&str>); 6] = [
        ("m1", Some("oFollower1")),
        ("m2", Some("oFollower2")),
        ("m3", Some("oFollower3")),
        ("m4", Some("oStranger")),
        ("m5", None),
        ("m6", Some("oSlow")),
    ];
    let members: Vec<Member> = people
        .iter()
        .map(|(id, openid)| Member {
            id: id.to_string(),
            name: id.to_string(),
            wechat_openid: openid.map(str::to_string),
            ..Member::default()
        })
        .collect();
    let body = release("wechat-engine-1", "6.1", "public");
    let job = disclose::job::parse(body.as_bytes()).unwrap().job;
    setup.accept(
        ("subscribers", GroupKind::Public),
        members,
        &job,
        &body,
        ChannelKind::Wechat,
    );
    let cfg = channel_config(
        ChannelKind::Wechat,
        Transport::WechatTemplate(config(&emu)),
        100,
        Some(50),
    );
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let channel = cfg.build(&setup.dir).unwrap();
    let ledger = setup.ledger.clone();
    let engine = setup.engine(&cfg, channel.clone());
    engine.drain().await.unwrap();
    let rows = |ledger: &Arc<dyn Ledger>| -> HashMap<String, (String, Option<String>)> {
        ledger
            .deliveries("wechat-engine-1", 100)
            .unwrap()
            .into_iter()
            .map(|d| (d.recipient, (d.state, d.code)))
            .collect()
    };
    let r = rows(&ledger);
    let msgid = |openid: &str| {
        emu.messages()
            .into_iter()
            .find(|m| m.openid == openid)
            .map(|m| m.msgid.to_string())
    };
    for (m, o) in [
        ("m1", "oFollower1"),
        ("m2", "oFollower2"),
        ("m3", "oFollower3"),
    ] {
        assert_eq!(r[m], ("delivered".into(), msgid(o)), "{m}");
    }
    assert_eq!(r["m4"], ("failed".into(), Some("43004".into())));
    assert_eq!(r["m5"], ("skipped".into(), Some("no_address".into())));
    assert_eq!(r["m6"].0, "unknown", "{r:?}");

    // The engine's next pass asks the status query (the recheck is made due at once here).
    emu.script("oSlow", Mode::Normal);
    setup.recheck_unknown_now();
    let engine = setup.engine(&cfg, channel);
    engine.drain().await.unwrap();
    let r = rows(&ledger);
    assert_eq!(r["m6"], ("delivered".into(), msgid("oSlow")));
    let received = emu.received();
    assert_eq!(received.len(), 4);
    assert!(received.values().all(|n| *n == 1), "{received:?}");
    assert_eq!(emu.deduplicated(), 1);
}
