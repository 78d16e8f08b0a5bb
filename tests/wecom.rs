//! The `wecom_app` transport against the local WeCom emulator: the token (one fetch, one refresh,
//! no loop), `invaliduser` per recipient, calls of at most 1,000 users, failure modes, and the
//! status query that repeats a request byte for byte so WeCom's duplicate check keeps it to one
//! message.

mod common;
#[path = "emulators/wecom.rs"]
mod wecom_emulator;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::engine::{Setup, channel_config, release};
use common::transport::{self, at, delivered};
use disclose::channels::wecom::{WecomApp, WecomConfig, WecomMsgType};
use disclose::channels::{Batch, Channel, Item, Outcome, Transport};
use disclose::job::{ChannelKind, Job};
use disclose::ledger::{Ledger, Member};
use disclose::policy::GroupKind;
use disclose::render::Rendered;
use serde_json::Value;
use wecom_emulator::{AGENTID, CORPID, Emulator, Mode, SECRET};

const SECRET_ENV: &str = "DISCLOSE_TEST_WECOM_SECRET";
const WRONG_SECRET_ENV: &str = "DISCLOSE_TEST_WECOM_WRONG_SECRET";
const WRONG_SECRET: &str = "not-the-wecom-secret-77aa01";
const MARKDOWN: &str = "**关于李四同志职务调整的通知**\n\n经研究，决定：李四同志任县财政局副局长。\n\n> 县委组织部　2026年12月1日";

fn env() {
    transport::set_env_once(&[(SECRET_ENV, SECRET), (WRONG_SECRET_ENV, WRONG_SECRET)]);
}

fn config(emu: &Emulator) -> WecomConfig {
    WecomConfig {
        endpoint: emu.url.clone(),
        corpid: CORPID.into(),
        agentid: AGENTID,
        secret_env: SECRET_ENV.into(),
        msgtype: WecomMsgType::Markdown,
        card_url: None,
        duplicate_check_interval: 1800,
        timeout_ms: 400,
    }
}

fn channel(emu: &Emulator) -> WecomApp {
    env();
    WecomApp::new(&config(emu)).unwrap()
}

const NOW: &str = "2026-12-01T10:00:00+08:00";

fn job(id: &str, data: Value) -> Arc<Job> {
    let job = serde_json::json!({
        "id": id, "kind": "release", "category": "7.1", "scope": "unit", "classification": "none",
        "title": "关于李四同志职务调整的通知", "template": "general", "data": data,
        "approval": {"approver": "王五", "reference": "组干审〔2026〕20号", "approved_at": "2026-11-28T16:00:00+08:00", "key_id": "k"}
    });
    Arc::new(
        disclose::job::parse(job.to_string().as_bytes())
            .unwrap()
            .job,
    )
}

/// Items `(delivery id, userid)`; recipient ids are `r-<delivery id>`.
fn batch_of(job: Arc<Job>, items: &[(i64, Option<&str>)], markdown: &str, now: &str) -> Batch {
    let content = Arc::new(Rendered::Wecom {
        markdown: markdown.into(),
    });
    Batch {
        job,
        channel: ChannelKind::Wecom,
        items: items
            .iter()
            .map(|(id, user)| Item {
                delivery_id: *id,
                recipient: format!("r-{id}"),
                name: format!("干部{id}"),
                role: "member".into(),
                address: user.map(str::to_string),
                attempt: 1,
                content: content.clone(),
            })
            .collect(),
        now: at(now),
    }
}

fn batch(users: &[&str], now: &str) -> Batch {
    let items: Vec<(i64, Option<&str>)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (i as i64 + 1, Some(*u)))
        .collect();
    batch_of(
        job("wecom-1", serde_json::json!({"body": "正文"})),
        &items,
        MARKDOWN,
        now,
    )
}

/// No secret and no token in any outcome.
fn assert_clean(outcomes: &[Outcome], emu: &Emulator) {
    let tokens = emu.issued_tokens();
    let mut secrets = vec![SECRET, WRONG_SECRET];
    secrets.extend(tokens.iter().map(String::as_str));
    transport::assert_none_of(&secrets, outcomes);
}

fn request(emu: &Emulator, i: usize) -> Value {
    serde_json::from_str(&emu.requests()[i]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_serves_every_call_and_each_user_gets_one_markdown_message() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    let a = ch.deliver(&batch(&["zhangsan", "lisi"], NOW)).await;
    let b = ch.deliver(&batch(&["wangwu"], NOW)).await;
    for o in a.iter().chain(&b) {
        assert!(
            delivered(o).is_some_and(|m| m.starts_with("emu-msg-")),
            "{o:?}"
        );
    }
    assert_eq!(delivered(&a[0]), delivered(&a[1]), "one call, one msgid");
    assert_eq!(emu.token_fetches(), 1);
    assert_eq!(emu.send_calls(), 2);
    let r = request(&emu, 0);
    assert_eq!(
        r["touser"], "lisi|zhangsan",
        "sorted: a pure function of who"
    );
    assert_eq!(r["msgtype"], "markdown");
    assert_eq!(r["markdown"]["content"], MARKDOWN);
    assert_eq!(r["agentid"], AGENTID);
    assert_eq!(r["enable_duplicate_check"], 1);
    assert_eq!(r["duplicate_check_interval"], 1800);
    assert_eq!(
        emu.received(),
        HashMap::from([
            ("zhangsan".into(), 1),
            ("lisi".into(), 1),
            ("wangwu".into(), 1)
        ])
    );
    assert_clean(&[a, b].concat(), &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_invalid_token_is_fetched_again_once_and_the_call_repeated() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    assert!(delivered(&ch.deliver(&batch(&["u1"], NOW)).await[0]).is_some());
    emu.invalidate_token(42001);
    let o = ch.deliver(&batch(&["u2", "u3"], NOW)).await;
    assert!(o.iter().all(|o| delivered(o).is_some()), "{o:?}");
    assert_eq!(emu.token_fetches(), 2);
    emu.invalidate_token(40014);
    let o2 = ch.deliver(&batch(&["u4"], NOW)).await;
    assert!(delivered(&o2[0]).is_some(), "{o2:?}");
    assert_eq!(emu.token_fetches(), 3);
    assert_eq!(emu.send_calls(), 5, "1 + (refused, repeated) × 2");
    assert!(emu.received().values().all(|n| *n == 1));
    assert_clean(&[o, o2].concat(), &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_again_after_the_refresh_fails_without_looping() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    emu.reject_all_tokens(Some(40014));
    let o = ch.deliver(&batch(&["u1", "u2"], NOW)).await;
    for o in &o {
        assert!(
            matches!(o, Outcome::Failed { code, permanent: false, .. } if code == "40014"),
            "{o:?}"
        );
    }
    assert_eq!((emu.token_fetches(), emu.send_calls()), (2, 2));
    assert!(emu.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_wecom_lists_as_invalid_fail_permanently_and_the_others_are_delivered() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    emu.set_users(&["zhangsan", "lisi"]);
    // WeCom ids are case-insensitive and `invaliduser` comes back lower-cased.
    let b = batch_of(
        job("wecom-2", serde_json::json!({})),
        &[
            (1, Some("ZhangSan")),
            (2, Some("WangWu")),
            (3, None),
            (4, Some("lisi")),
        ],
        MARKDOWN,
        NOW,
    );
    let o = ch.deliver(&b).await;
    assert!(delivered(&o[0]).is_some(), "{o:?}");
    assert!(
        matches!(&o[1], Outcome::Failed { code, permanent: true, .. } if code == "invaliduser"),
        "{o:?}"
    );
    assert_eq!(
        o[2],
        Outcome::Skipped {
            reason: "no_address".into()
        }
    );
    assert!(delivered(&o[3]).is_some(), "{o:?}");
    assert_eq!(request(&emu, 0)["touser"], "lisi|WangWu|ZhangSan");
    assert_eq!(
        emu.received(),
        HashMap::from([("zhangsan".into(), 1), ("lisi".into(), 1)])
    );

    // Nobody valid: 81013, permanent for all.
    emu.set_users(&["someone-else"]);
    let o = ch.deliver(&batch(&["a", "b"], NOW)).await;
    for o in &o {
        assert!(
            matches!(o, Outcome::Failed { code, permanent: true, .. } if code == "81013"),
            "{o:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_a_thousand_users_go_in_calls_of_at_most_a_thousand() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    let users: Vec<String> = (0..2500).map(|i| format!("user{i:05}")).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let o = ch.deliver(&batch(&refs, NOW)).await;
    assert!(o.iter().all(|o| delivered(o).is_some()));
    assert_eq!(emu.send_calls(), 3);
    let mut seen = HashSet::new();
    for i in 0..3 {
        let r = request(&emu, i);
        let touser: Vec<String> = r["touser"]
            .as_str()
            .unwrap()
            .split('|')
            .map(str::to_string)
            .collect();
        assert!(touser.len() <= 1000);
        seen.extend(touser);
    }
    assert_eq!(seen.len(), 2500);
    let received = emu.received();
    assert_eq!(received.len(), 2500);
    assert!(received.values().all(|n| *n == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_timeout_the_status_query_repeats_the_request_byte_for_byte_and_nobody_gets_two() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    emu.set_users(&["zhangsan", "lisi", "wangwu"]);
    emu.set_mode(Mode::Hang(Duration::from_secs(3)));
    let users = ["zhangsan", "lisi", "wangwu", "ghost"];
    let o = ch.deliver(&batch(&users, NOW)).await;
    assert!(
        o.iter()
            .all(|o| matches!(o, Outcome::Unknown { detail } if detail.contains("timed out"))),
        "{o:?}"
    );
    assert_eq!(emu.received().len(), 3, "WeCom took it before the timeout");
    emu.set_mode(Mode::Normal);

    // Five minutes on, the engine asks about two of them: one byte-identical resend.
    let mut first_two = batch(&users, "2026-12-01T10:05:00+08:00");
    first_two.items.truncate(2);
    let r = ch.resolve(&first_two).await;
    assert!(r.iter().all(|o| delivered(o).is_some()), "{r:?}");
    assert_eq!(emu.send_calls(), 2);
    assert_eq!(
        emu.requests()[0],
        emu.requests()[1],
        "the resend is the same JSON"
    );
    assert_eq!(emu.deduplicated(), 1);

    // The other two are settled by the same answer, without another request.
    let mut rest = batch(&users, "2026-12-01T10:06:00+08:00");
    rest.items.drain(..2);
    let r2 = ch.resolve(&rest).await;
    assert!(delivered(&r2[0]).is_some(), "{r2:?}");
    assert!(
        matches!(&r2[1], Outcome::Failed { code, permanent: true, .. } if code == "invaliduser"),
        "{r2:?}"
    );
    assert_eq!(emu.send_calls(), 2);
    assert!(
        emu.received().values().all(|n| *n == 1),
        "{:?}",
        emu.received()
    );
    assert_clean(&[o, r, r2].concat(), &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_call_that_never_reached_wecom_is_sent_by_the_status_query_once() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    emu.set_mode(Mode::Status(502));
    let o = ch.deliver(&batch(&["u1", "u2"], NOW)).await;
    assert!(
        o.iter().all(|o| matches!(o, Outcome::Unknown { .. })),
        "{o:?}"
    );
    emu.set_mode(Mode::Normal);
    let r = ch
        .resolve(&batch(&["u1", "u2"], "2026-12-01T10:05:00+08:00"))
        .await;
    assert!(r.iter().all(|o| delivered(o).is_some()), "{r:?}");
    let again = ch
        .resolve(&batch(&["u1", "u2"], "2026-12-01T10:10:00+08:00"))
        .await;
    assert_eq!(again, r);
    assert_eq!(
        emu.received(),
        HashMap::from([("u1".into(), 1), ("u2".into(), 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_interval_or_after_a_restart_an_unknown_stays_unknown() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    emu.set_mode(Mode::Malformed);
    let o = ch.deliver(&batch(&["u1"], NOW)).await;
    assert!(
        matches!(&o[0], Outcome::Unknown { detail } if detail.contains("not JSON")),
        "{o:?}"
    );
    emu.set_mode(Mode::Normal);
    let late = ch
        .resolve(&batch(&["u1"], "2026-12-01T10:31:00+08:00"))
        .await;
    assert!(
        matches!(&late[0], Outcome::Unknown { detail } if detail.contains("outside the duplicate-check interval")),
        "{late:?}"
    );
    let restarted = channel(&emu);
    let fresh = restarted
        .resolve(&batch(&["u1"], "2026-12-01T10:05:00+08:00"))
        .await;
    assert!(
        matches!(&fresh[0], Outcome::Unknown { detail } if detail.contains("no copy")),
        "{fresh:?}"
    );
    assert_eq!(emu.send_calls(), 1, "the status query sent nothing");
    assert_eq!(emu.received()["u1"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_busy_and_configuration_errors_map_to_their_outcomes() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    let mut all = Vec::new();

    emu.set_mode(Mode::Errcode(45009));
    let o = ch.deliver(&batch(&["u1"], NOW)).await;
    assert_eq!(
        o[0],
        Outcome::RetryAfter {
            after: Duration::from_secs(60),
            code: "45009".into()
        }
    );
    // While blocked, no call is made.
    let calls = emu.send_calls();
    let o = ch
        .deliver(&batch(&["u1"], "2026-12-01T10:00:30+08:00"))
        .await;
    assert_eq!(
        o[0],
        Outcome::RetryAfter {
            after: Duration::from_secs(30),
            code: "45009".into()
        }
    );
    assert_eq!(emu.send_calls(), calls);

    let t = "2026-12-01T10:02:00+08:00";
    emu.set_mode(Mode::Errcode(45033));
    assert!(matches!(
        &ch.deliver(&batch(&["u1"], t)).await[0],
        Outcome::RetryAfter { code, .. } if code == "45033"
    ));
    let t = "2026-12-01T10:03:00+08:00";
    emu.set_mode(Mode::TooMany(9));
    assert_eq!(
        ch.deliver(&batch(&["u1"], t)).await[0],
        Outcome::RetryAfter {
            after: Duration::from_secs(9),
            code: "http_429".into()
        }
    );
    let t = "2026-12-01T10:04:00+08:00";
    emu.set_mode(Mode::Errcode(-1));
    let o = ch.deliver(&batch(&["u1"], t)).await;
    assert!(
        matches!(&o[0], Outcome::Failed { code, permanent: false, .. } if code == "-1"),
        "{o:?}"
    );
    all.extend(o);
    emu.set_mode(Mode::Status(503));
    let o = ch.deliver(&batch(&["u1"], t)).await;
    assert!(
        matches!(&o[0], Outcome::Failed { code, permanent: false, .. } if code == "http_503"),
        "{o:?}"
    );
    emu.set_mode(Mode::Errcode(60020));
    let o = ch.deliver(&batch(&["u1"], t)).await;
    assert!(
        matches!(&o[0], Outcome::Failed { code, permanent: true, .. } if code == "60020"),
        "{o:?}"
    );
    all.extend(o);
    // A wrong agentid is refused by WeCom as such.
    emu.set_mode(Mode::Normal);
    env();
    let mut cfg = config(&emu);
    cfg.agentid = 1000099;
    let o = WecomApp::new(&cfg)
        .unwrap()
        .deliver(&batch(&["u1"], t))
        .await;
    assert!(
        matches!(&o[0], Outcome::Failed { code, permanent: true, .. } if code == "40056"),
        "{o:?}"
    );
    all.extend(o);
    assert!(emu.received().is_empty());
    assert_clean(&all, &emu);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_a_configuration_failure_that_never_shows_the_secret() {
    env();
    let emu = Emulator::start().await;
    let mut cfg = config(&emu);
    cfg.secret_env = WRONG_SECRET_ENV.into();
    let o = WecomApp::new(&cfg)
        .unwrap()
        .deliver(&batch(&["u1"], NOW))
        .await;
    assert!(
        matches!(&o[0], Outcome::Failed { code, permanent: true, .. } if code == "40001"),
        "{o:?}"
    );
    assert_eq!(emu.send_calls(), 0);
    assert_clean(&o, &emu);
    cfg.secret_env = "DISCLOSE_TEST_WECOM_NOT_SET".into();
    let e = WecomApp::new(&cfg).err().unwrap();
    assert!(e.contains("DISCLOSE_TEST_WECOM_NOT_SET is not set"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_textcard_takes_title_summary_and_link_from_the_job() {
    env();
    let emu = Emulator::start().await;
    let mut cfg = config(&emu);
    cfg.msgtype = WecomMsgType::Textcard;
    cfg.card_url = Some("http://intranet.zzb.example/gk/".into());
    let ch = WecomApp::new(&cfg).unwrap();
    let o = ch.deliver(&batch(&["u1"], NOW)).await;
    assert!(delivered(&o[0]).is_some(), "{o:?}");
    let r = request(&emu, 0);
    assert_eq!(r["msgtype"], "textcard");
    assert_eq!(r["textcard"]["title"], "关于李四同志职务调整的通知");
    assert_eq!(
        r["textcard"]["description"],
        "关于李四同志职务调整的通知\n经研究，决定：李四同志任县财政局副局长。\n县委组织部　2026年12月1日"
    );
    assert_eq!(r["textcard"]["url"], "http://intranet.zzb.example/gk/");
    // The job's own link wins.
    let b = batch_of(
        job(
            "wecom-3",
            serde_json::json!({"url": "http://intranet.zzb.example/gk/wecom-3.html"}),
        ),
        &[(1, Some("u2"))],
        MARKDOWN,
        NOW,
    );
    assert!(delivered(&ch.deliver(&b).await[0]).is_some());
    assert_eq!(
        request(&emu, 1)["textcard"]["url"],
        "http://intranet.zzb.example/gk/wecom-3.html"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markdown_over_2048_bytes_is_refused_before_any_call() {
    let emu = Emulator::start().await;
    let ch = channel(&emu);
    let long = "正文".repeat(400); // 2,400 bytes
    let b = batch_of(
        job("wecom-4", serde_json::json!({})),
        &[(1, Some("u1"))],
        &long,
        NOW,
    );
    let o = ch.deliver(&b).await;
    assert!(
        matches!(&o[0], Outcome::Failed { code, permanent: true, .. } if code == "content_too_long"),
        "{o:?}"
    );
    assert_eq!(emu.send_calls(), 0);
}

/// Through the real engine and a SQLite ledger: a call that timed out is settled by the
/// engine's status query, and the ledger ends with each member's true outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_engine_a_timed_out_call_is_resolved_without_duplicates() {
    env();
    let emu = Emulator::start().await;
    emu.set_users(&["zhangsan", "lisi", "wangwu"]);
    emu.set_mode(Mode::Hang(Duration::from_secs(2)));
    let setup = Setup::new("wecom-engine");
    let people: [(&str, Option<&str>); 5] = [
        ("m1", Some("zhangsan")),
        ("m2", Some("LiSi")),
        ("m3", Some("wangwu")),
        ("m4", Some("departed")),
        ("m5", None),
    ];
    let members: Vec<Member> = people
        .iter()
        .map(|(id, userid)| Member {
            id: id.to_string(),
            name: id.to_string(),
            wecom_userid: userid.map(str::to_string),
            ..Member::default()
        })
        .collect();
    let body = release("wecom-engine-1", "7.1", "unit");
    let job = disclose::job::parse(body.as_bytes()).unwrap().job;
    setup.accept(
        ("unit:czj", GroupKind::Unit),
        members,
        &job,
        &body,
        ChannelKind::Wecom,
    );
    let cfg = channel_config(
        ChannelKind::Wecom,
        Transport::WecomApp(config(&emu)),
        100,
        None,
    );
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let channel = cfg.build(&setup.dir).unwrap();
    let ledger = setup.ledger.clone();
    let engine = setup.engine(&cfg, channel.clone());
    engine.drain().await.unwrap();
    let rows = |ledger: &Arc<dyn Ledger>| -> HashMap<String, (String, Option<String>)> {
        ledger
            .deliveries("wecom-engine-1", 100)
            .unwrap()
            .into_iter()
            .map(|d| (d.recipient, (d.state, d.code)))
            .collect()
    };
    let r = rows(&ledger);
    for m in ["m1", "m2", "m3", "m4"] {
        assert_eq!(r[m].0, "unknown", "{r:?}");
    }
    assert_eq!(r["m5"], ("skipped".into(), Some("no_address".into())));
    assert_eq!(emu.received().len(), 3, "WeCom took the call");

    emu.set_mode(Mode::Normal);
    setup.recheck_unknown_now();
    let engine = setup.engine(&cfg, channel);
    engine.drain().await.unwrap();
    let r = rows(&ledger);
    let msgid = Some("emu-msg-00000001".to_string());
    for m in ["m1", "m2", "m3"] {
        assert_eq!(r[m], ("delivered".into(), msgid.clone()), "{m}: {r:?}");
    }
    assert_eq!(r["m4"], ("failed".into(), Some("invaliduser".into())));
    assert_eq!(emu.deduplicated(), 1);
    assert_eq!(
        emu.received(),
        HashMap::from([
            ("zhangsan".into(), 1),
            ("lisi".into(), 1),
            ("wangwu".into(), 1)
        ])
    );
}
