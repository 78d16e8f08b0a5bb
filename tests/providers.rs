//! `disclose dispatch` of the examples through the provider emulators: with the channel files
//! pointing at them (as an operator points them at the real APIs), the release goes out as
//! signed Tencent SendSms calls and WeChat template messages, the unit notice as WeCom
//! application messages, each to exactly the recipients the outbox dry run lists, once; a
//! correction of the release reaches exactly those it reached. Then the same SMS through
//! Alibaba, and through Alibaba as the failover when Tencent is down.

mod common;

#[path = "emulators/aliyun.rs"]
mod aliyun_emulator;
#[path = "emulators/tencent.rs"]
mod tencent_emulator;
#[path = "emulators/wechat.rs"]
mod wechat_emulator;
#[path = "emulators/wecom.rs"]
mod wecom_emulator;

use std::collections::HashMap;

use common::{Scratch, stdout, write};

/// The four subscribers with a valid number who did not opt out (examples/directory).
const NUMBERS: [&str; 4] = [
    "+8613700137002",
    "+8613800138000",
    "+8613900139001",
    "+8618600186004",
];

fn tencent_transport(url: &str) -> String {
    format!(
        "[transport]\ntype = \"tencent_sms\"\nendpoint = \"{url}\"\nsms_sdk_app_id = \"{}\"\n\
         secret_id_env = \"TEST_TENCENT_ID\"\nsecret_key_env = \"TEST_TENCENT_KEY\"\ntimeout_ms = 3000\n",
        tencent_emulator::SMS_SDK_APP_ID
    )
}

fn aliyun_transport(url: &str, table: &str) -> String {
    format!(
        "[{table}]\ntype = \"aliyun_sms\"\nendpoint = \"{url}\"\n\
         access_key_id_env = \"TEST_ALIYUN_ID\"\naccess_key_secret_env = \"TEST_ALIYUN_SECRET\"\ntimeout_ms = 3000\n"
    )
}

/// The shipped channel files with sms, wechat and wecom pointed at emulators.
fn provider_channels(s: &Scratch, sms: &str, wechat: &str, wecom: &str) -> String {
    let dir = common::daytime_channels(s);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = match name.as_str() {
            "sms.toml" => format!("channel = \"sms\"\nbatch_size = 200\n{sms}"),
            "wechat.toml" => format!(
                "channel = \"wechat\"\n[transport]\ntype = \"wechat_template\"\nendpoint = \"{}\"\n\
                 appid = \"{}\"\nsecret_env = \"TEST_WECHAT_SECRET\"\ntimeout_ms = 3000\n",
                wechat.trim_end_matches('/'),
                wechat_emulator::APPID
            ),
            "wecom.toml" => format!(
                "channel = \"wecom\"\nbatch_size = 1000\n[transport]\ntype = \"wecom_app\"\nendpoint = \"{}\"\n\
                 corpid = \"{}\"\nagentid = {}\nsecret_env = \"TEST_WECOM_SECRET\"\ntimeout_ms = 3000\n",
                wecom.trim_end_matches('/'),
                wecom_emulator::CORPID,
                wecom_emulator::AGENTID
            ),
            _ => std::fs::read_to_string(&path).unwrap(),
        };
        write(&s.path(&format!("providers/{name}")), &text);
    }
    s.path("providers").display().to_string()
}

/// Run `disclose ARGS` with the channels and the emulators' credentials, on `clock`.
async fn disclose(s: &Scratch, channels: &str, clock: &str, args: &[&str]) -> (bool, String) {
    let mut cmd = s.command(args);
    cmd.env("DISCLOSE_PATHS_CHANNELS_DIR", channels)
        .env("DISCLOSE_CLOCK", clock)
        .env("TEST_TENCENT_ID", tencent_emulator::SECRET_ID)
        .env("TEST_TENCENT_KEY", tencent_emulator::SECRET_KEY)
        .env("TEST_ALIYUN_ID", aliyun_emulator::ACCESS_KEY_ID)
        .env("TEST_ALIYUN_SECRET", aliyun_emulator::ACCESS_KEY_SECRET)
        .env("TEST_WECHAT_SECRET", wechat_emulator::SECRET)
        .env("TEST_WECOM_SECRET", wecom_emulator::SECRET);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = format!("{}\n{}", stdout(&out), common::stderr(&out));
    (out.status.success(), text)
}

fn sorted(m: HashMap<String, usize>) -> Vec<(String, usize)> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn the_examples_go_out_through_the_provider_apis_once_each() {
    let s = Scratch::new("providers");
    let tencent = tencent_emulator::Emulator::start().await;
    let wechat = wechat_emulator::Emulator::start().await;
    let wecom = wecom_emulator::Emulator::start().await;
    let ch = provider_channels(
        &s,
        &tencent_transport(&tencent.url),
        &wechat.url,
        &wecom.url,
    );
    let args = [
        "dispatch",
        "--directory",
        "examples/directory",
        "examples/jobs",
    ];

    // The release's publicity period is running; the unit notice is scheduled for 7 December.
    let (ok, out) = disclose(&s, &ch, "2026-11-26T10:00:00+08:00", &args).await;
    assert!(ok, "{out}");
    assert_eq!(
        sorted(tencent.received()),
        NUMBERS
            .iter()
            .map(|n| (n.to_string(), 1))
            .collect::<Vec<_>>(),
        "{out}"
    );
    // Every message carried our reference and the template the notice names.
    for sent in tencent.sent() {
        assert!(
            sent.session_context.contains("zzb-2026-0142"),
            "{}",
            sent.session_context
        );
        assert_eq!(&*sent.template_id, "1234568");
    }
    assert_eq!(
        sorted(wechat.received()),
        [
            "oWx_example_0001",
            "oWx_example_0002",
            "oWx_example_0006",
            "oWx_example_0007"
        ]
        .iter()
        .map(|o| (o.to_string(), 1))
        .collect::<Vec<_>>(),
        "{out}"
    );
    assert!(
        wecom.received().is_empty(),
        "the unit notice is not due yet"
    );

    // A correction of the release (Art 17) reaches exactly those the release reached, through
    // the same providers, with its own template.
    let (ok, out) = disclose(
        &s,
        &ch,
        "2026-11-26T11:00:00+08:00",
        &["dispatch", "examples/lifecycle/04-correction.json"],
    )
    .await;
    assert!(ok, "{out}");
    let corrected: Vec<String> = {
        let mut v: Vec<String> = tencent
            .sent()
            .iter()
            .filter(|m| m.session_context.contains("zzb-2026-0142-gz"))
            .map(|m| {
                assert_eq!(&*m.template_id, "1234569");
                m.number.clone()
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(corrected, NUMBERS, "{out}");
    assert!(tencent.received().values().all(|&n| n == 2));
    assert!(
        wechat.received().values().all(|&n| n == 2),
        "{:?}",
        wechat.received()
    );
    assert_eq!(wechat.received().len(), 4);

    // 7 December: the unit notice goes out to the unit's WeCom users; nothing else again.
    let (ok, out) = disclose(&s, &ch, "2026-12-07T09:30:00+08:00", &args).await;
    assert!(ok, "{out}");
    assert_eq!(
        sorted(wecom.received()),
        [
            ("wufang".to_string(), 1),
            ("zhengqiang".into(), 1),
            ("zhouming".into(), 1)
        ],
        "{out}"
    );
    assert_eq!(tencent.received().values().sum::<usize>(), 8);
    assert_eq!(wechat.received().values().sum::<usize>(), 8);

    // The ledger shows the providers' references.
    let (ok, status) = disclose(
        &s,
        &ch,
        "2026-12-07T09:31:00+08:00",
        &["status", "zzb-2026-0142", "--json"],
    )
    .await;
    assert!(ok, "{status}");
    let v: serde_json::Value = serde_json::from_str(status.lines().next().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {status}"));
    let delivered_sms = v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "sms" && d["state"] == "delivered")
        .count();
    assert_eq!(delivered_sms, 4, "{v:#}");
    // No credential reached any output.
    for secret in [
        tencent_emulator::SECRET_KEY,
        wechat_emulator::SECRET,
        wecom_emulator::SECRET,
    ] {
        assert!(!out.contains(secret) && !status.contains(secret));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn alibaba_carries_the_sms_alone_and_as_the_failover_when_tencent_is_down() {
    // Alibaba alone.
    let s = Scratch::new("providers-aliyun");
    let aliyun = aliyun_emulator::Emulator::start().await;
    let wechat = wechat_emulator::Emulator::start().await;
    let wecom = wecom_emulator::Emulator::start().await;
    let ch = provider_channels(
        &s,
        &aliyun_transport(&aliyun.url, "transport"),
        &wechat.url,
        &wecom.url,
    );
    let job = "examples/jobs/01-pre-appointment-release.json";
    let args = ["dispatch", "--directory", "examples/directory", job];
    let (ok, out) = disclose(&s, &ch, "2026-11-26T10:00:00+08:00", &args).await;
    assert!(ok, "{out}");
    assert_eq!(
        sorted(aliyun.received()),
        NUMBERS
            .iter()
            .map(|n| (n.to_string(), 1))
            .collect::<Vec<_>>(),
        "{out}"
    );

    // Tencent answers 500 to everything: after two failed calls Alibaba takes over, and the
    // ledger records which provider carried each message.
    let s = Scratch::new("providers-failover");
    let tencent = tencent_emulator::Emulator::start().await;
    tencent.set_mode(tencent_emulator::Mode::ServerError);
    let aliyun = aliyun_emulator::Emulator::start().await;
    let sms = format!(
        "{}[failover]\nafter_failed_calls = 1\ncool_down_secs = 600\n{}",
        tencent_transport(&tencent.url),
        aliyun_transport(&aliyun.url, "failover.transport")
    );
    let ch = provider_channels(&s, &sms, &wechat.url, &wecom.url);
    let (ok, out) = disclose(&s, &ch, "2026-11-26T10:00:00+08:00", &args).await;
    assert!(ok, "{out}");
    assert_eq!(tencent.received().len(), 0);
    assert_eq!(
        sorted(aliyun.received()),
        NUMBERS
            .iter()
            .map(|n| (n.to_string(), 1))
            .collect::<Vec<_>>(),
        "{out}"
    );
    let db = rusqlite::Connection::open(s.path("ledger.db")).unwrap();
    let refs: Vec<String> = db
        .prepare("SELECT code FROM deliveries WHERE channel = 'sms' AND state = 'delivered'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(refs.len(), 4);
    assert!(
        refs.iter().all(|r| r.starts_with("aliyun_sms:")),
        "{refs:?}"
    );
}
