//! The HTTP API, `/metrics` and the console of a real `disclose serve` (spool mode, a scratch
//! ledger, a free port on 127.0.0.1): auth refused without a token, with a wrong one and when
//! none is configured; a signed job submitted over HTTP goes through the queue's intake, is
//! dispatched and shows its masked outcomes; cancel; a metrics scrape that parses; the OpenAPI
//! document's every route answering; and the console in headless Chromium.

mod common;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{FixedOffset, Utc};
use common::{Scratch, example, sign, stderr, stdout};
use serde_json::{Value, json};

const TOKEN: &str = "test-token-4f9c2a7e1b";

/// A running `disclose serve` with the HTTP API on a free port; killed when dropped.
struct Service {
    child: Child,
    log: PathBuf,
    base: String,
}

impl Service {
    fn start(s: &Scratch, token: Option<&str>) -> Service {
        let log = s.path("serve.log");
        let mut c = s.command(&["serve"]);
        c.env("DISCLOSE_QUEUE_SPOOL_DIR", s.path("spool"))
            .env_remove("DISCLOSE_QUEUE_AMQP_URL")
            .env("DISCLOSE_SERVE_HTTP_ADDR", "127.0.0.1:0")
            .env("DISCLOSE_SERVE_API_TOKEN_ENV", "DISCLOSE_TEST_API_TOKEN")
            .env("DISCLOSE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        match token {
            Some(t) => c.env("DISCLOSE_TEST_API_TOKEN", t),
            None => c.env_remove("DISCLOSE_TEST_API_TOKEN"),
        };
        let child = c.spawn().unwrap();
        let mut svc = Service {
            child,
            log,
            base: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::fs::read_to_string(&svc.log).unwrap_or_default();
            if let Some(addr) = log
                .lines()
                .find(|l| l.contains("HTTP API and console listening"))
                .and_then(|l| l.split("bound=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
            {
                svc.base = format!("http://{addr}");
                break;
            }
            assert!(
                svc.child.try_wait().unwrap().is_none(),
                "serve exited:\n{log}"
            );
            assert!(Instant::now() < deadline, "serve did not listen:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
        svc
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn import_directory(s: &Scratch) {
    for (group, file) in [
        ("subscribers", "examples/directory/subscribers.csv"),
        ("press", "examples/directory/press.csv"),
    ] {
        let out = s.disclose(&[
            "directory",
            "import",
            "--group",
            group,
            "--kind",
            "public",
            file,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

fn cst(t: chrono::DateTime<Utc>) -> String {
    t.with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// The example pre-appointment release as job `id`, approved an hour ago, published in
/// `publish_in_days` days (or a minute ago: due at once) for three weeks, signed with the
/// example key. (The notice's templates print `publish_at`, so it is always set.)
fn release(s: &Scratch, id: &str, publish_in_days: Option<i64>) -> Vec<u8> {
    std::fs::read(sign(s, &release_job(id, publish_in_days), id)).unwrap()
}

fn release_job(id: &str, publish_in_days: Option<i64>) -> Value {
    let now = Utc::now();
    let mut job = example("01-pre-appointment-release.json");
    job["id"] = json!(id);
    job["approval"]["approved_at"] = json!(cst(now - chrono::Duration::hours(1)));
    let publish = match publish_in_days {
        Some(days) => now + chrono::Duration::days(days),
        None => now - chrono::Duration::minutes(1),
    };
    let expires = cst(publish + chrono::Duration::days(21));
    job["schedule"] = json!({"publish_at": cst(publish), "expires_at": expires});
    job
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn get(svc: &Service, path: &str, token: Option<&str>) -> (u16, String) {
    let mut r = client().get(svc.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn post(svc: &Service, path: &str, body: Vec<u8>, token: Option<&str>) -> (u16, Value) {
    let mut r = client().post(svc.url(path)).body(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

async fn job(svc: &Service, id: &str) -> Value {
    let (status, text) = get(svc, &format!("/api/jobs/{id}"), Some(TOKEN)).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Poll the job until its status is `want` (at most 30 s).
async fn until_status(svc: &Service, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let j = job(svc, id).await;
        if j["summary"]["status"] == want {
            return j;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never became {want}: {j:#}\n{}",
            svc.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Submit a job over HTTP and expect it accepted and dispatched.
async fn dispatch(svc: &Service, s: &Scratch, id: &str) -> Value {
    let (status, v) = post(svc, "/api/jobs", release(s, id, None), Some(TOKEN)).await;
    assert_eq!(status, 201, "{v:#}");
    assert_eq!(v["decision"], "accepted", "{v:#}");
    until_status(svc, id, "completed").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_authenticates_submits_cancels_and_scrapes() {
    let s = Scratch::new("api-flow");
    import_directory(&s);
    let svc = Service::start(&s, Some(TOKEN));

    // Health needs nothing; everything else the token, compared exactly.
    assert_eq!(get(&svc, "/healthz", None).await.0, 200);
    let (status, body) = get(&svc, "/api/jobs", None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let (status, body) = get(&svc, "/api/jobs", Some("test-token-4f9c2a7e1c")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(get(&svc, "/metrics", Some("wrong")).await.0, 401);
    let (status, _) = post(&svc, "/api/jobs", release(&s, "api-unauth", None), None).await;
    assert_eq!(status, 401);
    assert_eq!(get(&svc, "/readyz", Some(TOKEN)).await.0, 200);
    assert_eq!(
        get(&svc, "/readyz", None).await.0,
        200,
        "probes hold no token"
    );

    // Submitted over HTTP: accepted, dispatched on every channel, outcomes shown masked.
    let j = dispatch(&svc, &s, "api-1").await;
    assert_eq!(j["decision"], "accepted");
    let outcomes = &j["summary"]["outcomes"];
    for ch in ["website", "wechat", "sms", "email"] {
        assert!(
            outcomes[ch]["delivered"].as_u64().unwrap_or(0) >= 1,
            "{ch}: {j:#}"
        );
    }
    let deliveries = j["deliveries"].as_array().unwrap();
    assert!(!deliveries.is_empty());
    let text = j.to_string();
    for name in ["王建国", "李秀英", "县融媒体中心"] {
        assert!(!text.contains(name), "{name} unmasked: {text}");
    }
    assert!(
        deliveries.iter().any(|d| d["name"] == "王**"),
        "{deliveries:#?}"
    );
    let kinds: Vec<&str> = j["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"job.accepted"), "{kinds:?}");
    assert!(kinds.contains(&"deliveries.recorded"), "{kinds:?}");

    // The queue's intake: a second time is a duplicate, bad input a refusal with its article.
    let (status, v) = post(&svc, "/api/jobs", release(&s, "api-1", None), Some(TOKEN)).await;
    assert_eq!(
        (status, v["decision"].as_str()),
        (200, Some("duplicate")),
        "{v}"
    );
    let (status, v) = post(&svc, "/api/jobs", b"{\"id\": 1".to_vec(), Some(TOKEN)).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["refusals"][0]["code"], "malformed", "{v}");
    assert!(!v["refusals"][0]["article"].as_str().unwrap().is_empty());
    let mut unsigned = example("01-pre-appointment-release.json");
    unsigned["id"] = json!("api-forged");
    let (status, v) = post(
        &svc,
        "/api/jobs",
        unsigned.to_string().into_bytes(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 422, "{v}");
    let forged = job(&svc, "api-forged").await;
    assert_eq!(forged["decision"], "refused", "{forged:#}");
    assert!(forged["summary"].is_null());

    // Filters and pages.
    let (status, body) = get(&svc, "/api/jobs?status=completed&category=6.3", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 1, "{page:#}");
    assert_eq!(page["jobs"][0]["id"], "api-1");
    let (_, body) = get(&svc, "/api/jobs?status=scheduled", Some(TOKEN)).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["total"], 0);
    let (status, body) = get(&svc, "/api/jobs?status=done", Some(TOKEN)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("done"), "{body}");
    let (status, _) = get(&svc, "/api/jobs?from=2000-01-01&to=2000-12-31", Some(TOKEN)).await;
    assert_eq!(status, 200);

    // Cancel: a schedule is cancelled with its reason; what went out only a retraction answers.
    let (status, v) = post(
        &svc,
        "/api/jobs",
        release(&s, "api-later", Some(7)),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 201, "{v:#}");
    until_status(&svc, "api-later", "scheduled").await;
    let reason = json!({"reason": "拟任人选情况发生变化，暂缓公示"}).to_string();
    let (status, v) = post(
        &svc,
        "/api/jobs/api-later/cancel",
        b"{}".to_vec(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = post(
        &svc,
        "/api/jobs/api-later/cancel",
        reason.clone().into_bytes(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["cancelled"]["sms"].as_u64().unwrap() >= 1, "{v}");
    let later = job(&svc, "api-later").await;
    assert_eq!(later["summary"]["status"], "cancelled", "{later:#}");
    assert!(
        later["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "job.cancelled" && a.to_string().contains("暂缓公示")),
        "{later:#}"
    );
    let (status, v) = post(
        &svc,
        "/api/jobs/api-1/cancel",
        reason.clone().into_bytes(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("retraction"), "{v}");
    let (status, _) = post(
        &svc,
        "/api/jobs/nobody/cancel",
        reason.into_bytes(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 404);

    // Metrics: every sample line parses, and the counters saw this run.
    let (status, metrics) = get(&svc, "/metrics", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let mut samples = std::collections::HashMap::new();
    for line in metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        assert!(
            name.chars().next().unwrap().is_ascii_alphabetic()
                && (!name.contains('{') || name.ends_with('}')),
            "{line}"
        );
        samples.insert(name.to_string(), value);
    }
    let sample = |k: &str| {
        samples
            .get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in\n{metrics}"))
    };
    assert_eq!(sample("disclose_jobs_total{decision=\"accepted\"}"), 2.0);
    assert_eq!(sample("disclose_jobs_total{decision=\"duplicate\"}"), 1.0);
    assert_eq!(sample("disclose_jobs_total{decision=\"refused\"}"), 2.0);
    assert!(sample("disclose_job_refusals_total{code=\"malformed\"}") >= 1.0);
    assert!(sample("disclose_job_refusals_total{code=\"unapproved\"}") >= 1.0);
    assert!(sample("disclose_deliveries_total{channel=\"sms\",outcome=\"delivered\"}") >= 1.0);
    assert!(sample("disclose_provider_call_duration_seconds_count{channel=\"sms\"}") >= 1.0);
    assert!(
        sample("disclose_provider_call_duration_seconds_bucket{channel=\"sms\",le=\"+Inf\"}")
            >= 1.0
    );
    assert!(sample("disclose_ledger_deliveries{state=\"cancelled\"}") >= 1.0);
    assert_eq!(sample("disclose_queue_lag_seconds{channel=\"sms\"}"), 0.0);
    assert!(metrics.contains("# TYPE disclose_rate_limit_waits_total counter"));
    assert!(metrics.contains("# TYPE disclose_delivery_retries_total counter"));

    // The OpenAPI document: every route it lists answers (never the router's bare 404/405), and
    // each route of the module's table is in it.
    let (status, doc) = get(&svc, "/api/openapi.json", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut listed: Vec<String> = Vec::new();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            listed.push(format!("{} {path}", method.to_uppercase()));
            let concrete = path.replace("{id}", "api-1");
            let resp = match method.as_str() {
                "get" => client().get(svc.url(&concrete)),
                "post" => client().post(svc.url(&concrete)).body("{}"),
                m => panic!("unexpected method {m}"),
            }
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            assert!(
                status != 405 && !(status == 404 && body.is_empty()),
                "{method} {path}: {status} {body}"
            );
        }
    }
    listed.sort();
    assert_eq!(
        listed,
        [
            "GET /api/jobs",
            "GET /api/jobs/{id}",
            "GET /api/openapi.json",
            "GET /healthz",
            "GET /metrics",
            "GET /readyz",
            "POST /api/jobs",
            "POST /api/jobs/{id}/cancel",
        ]
    );
    // Readiness: the spool gone, the service is not ready; the path only to the token's holder.
    std::fs::remove_dir_all(s.path("spool")).unwrap();
    let (status, body) = get(&svc, "/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(!body.contains("spool"), "{body}");
    let (status, body) = get(&svc, "/readyz", Some(TOKEN)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("spool directory"), "{body}");

    // No token in the log, ever.
    assert!(!svc.log().contains(TOKEN));
}

#[tokio::test]
async fn without_a_token_configured_only_health_answers() {
    let s = Scratch::new("api-no-token");
    let svc = Service::start(&s, None);
    assert_eq!(get(&svc, "/healthz", None).await.0, 200);
    assert_eq!(get(&svc, "/readyz", None).await.0, 200);
    for path in ["/api/jobs", "/metrics", "/api/openapi.json", "/"] {
        let (status, body) = get(&svc, path, Some("anything")).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert!(body.contains("DISCLOSE_TEST_API_TOKEN"), "{path}: {body}");
    }
    let (status, _) = post(&svc, "/api/jobs", b"{}".to_vec(), Some("")).await;
    assert_eq!(status, 503);
    assert!(svc.log().contains("no API token in the environment"));
}

fn chromium(profile: &std::path::Path, extra: &[&str], url: &str) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium (Debian's package; .ci/run installs it)");
    assert!(out.status.success(), "chromium: {}", stderr(&out));
    stdout(&out)
}

/// The console in a real browser: it logs in with the token, lists the dispatched job with its
/// status, and the job's page shows its channels and outcomes; a screenshot is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_a_dispatched_job_in_chromium() {
    let s = Scratch::new("api-console");
    import_directory(&s);
    let svc = Service::start(&s, Some(TOKEN));
    dispatch(&svc, &s, "console-1").await;
    // Job data is untrusted: a title that is markup stays text.
    let mut hostile = release_job("console-xss", Some(7));
    hostile["title"] = json!("<script>document.title='pwned'</script>公告");
    let body = std::fs::read(sign(&s, &hostile, "console-xss")).unwrap();
    let (status, v) = post(&svc, "/api/jobs", body, Some(TOKEN)).await;
    assert_eq!(status, 201, "{v}");
    let mut unsigned = example("01-pre-appointment-release.json");
    unsigned["id"] = json!("console-forged");
    let (status, _) = post(
        &svc,
        "/api/jobs",
        unsigned.to_string().into_bytes(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 422);

    // Without the token the browser gets the log-in form, not the jobs.
    let dom = chromium(&s.path("profile-0"), &["--dump-dom"], &svc.url("/"));
    assert!(
        dom.contains("name=\"token\"") && !dom.contains("console-1"),
        "{dom}"
    );

    let profile = s.path("profile");
    let login = svc.url(&format!("/login?token={TOKEN}"));
    let dom = chromium(&profile, &["--dump-dom"], &login);
    assert!(dom.contains("最近的发布任务"), "{dom}");
    assert!(dom.contains("href=\"/jobs/console-1\""), "{dom}");
    assert!(dom.contains("已完成"), "{dom}");
    assert!(dom.contains("关于张三同志任职前公示的公告"), "{dom}");

    assert!(
        dom.contains("最近拒绝的任务") && dom.contains("unapproved"),
        "{dom}"
    );
    assert!(dom.contains("&lt;script&gt;document.title"), "{dom}");
    assert!(
        !dom.contains("<script>") && !dom.contains("pwned</title>"),
        "{dom}"
    );

    // A refused job's page: its reasons with their articles.
    let forged = svc.url(&format!("/login?token={TOKEN}&next=/jobs/console-forged"));
    let dom = chromium(&profile, &["--dump-dom"], &forged);
    assert!(dom.contains("已拒绝") && dom.contains("拒绝原因"), "{dom}");
    assert!(
        dom.contains("unapproved") && dom.contains("依据条款"),
        "{dom}"
    );
    // A refusal with its article: the complainant of an investigation result must be signed.
    let anonymous =
        std::fs::read(common::repo().join("examples/refused/anonymous-complainant.json")).unwrap();
    let (status, v) = post(&svc, "/api/jobs", anonymous, Some(TOKEN)).await;
    assert_eq!(status, 422, "{v}");
    let refused = svc.url(&format!(
        "/login?token={TOKEN}&next=/jobs/{}",
        v["id"].as_str().unwrap()
    ));
    let dom = chromium(&profile, &["--dump-dom"], &refused);
    assert!(
        dom.contains("complainant_not_signed") && dom.contains("<td>Art "),
        "{dom}"
    );
    assert!(!dom.contains("<script>"), "{dom}");

    // Logging in straight to the job's page.
    let page = svc.url(&format!("/login?token={TOKEN}&next=/jobs/console-1"));
    let dom = chromium(&profile, &["--dump-dom"], &page);
    for want in [
        "各渠道结果",
        "投递明细",
        "审计记录",
        "已送达",
        "sms",
        "wechat",
        "job.accepted",
    ] {
        assert!(dom.contains(want), "{want} missing:\n{dom}");
    }
    assert!(!dom.contains("王建国"), "an unmasked name:\n{dom}");

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-job.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &profile,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600",
        ],
        &page,
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

/// `--log-format json`: every line the service logs is one JSON object, with the bound address
/// as a field and the token nowhere.
#[test]
fn the_service_logs_json_lines() {
    let s = Scratch::new("api-json-log");
    let log = s.path("serve.log");
    let mut child = s
        .command(&["--log-format", "json", "serve"])
        .env("DISCLOSE_QUEUE_SPOOL_DIR", s.path("spool"))
        .env_remove("DISCLOSE_QUEUE_AMQP_URL")
        .env("DISCLOSE_SERVE_HTTP_ADDR", "127.0.0.1:0")
        .env("DISCLOSE_API_TOKEN", TOKEN)
        .env("DISCLOSE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("HTTP API and console listening") && text.ends_with('\n') {
            break text;
        }
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let listening = lines
        .iter()
        .find(|l| l["message"] == "HTTP API and console listening")
        .unwrap();
    assert_eq!(listening["level"], "INFO");
    assert!(
        listening["bound"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{listening}"
    );
    assert!(!text.contains(TOKEN));
}

/// The console's log-in: a form post exchanges the token for a cookie that opens the console
/// but not the API; a wrong token gets the form again; `next` never leaves the server.
#[tokio::test]
async fn the_console_cookie_opens_the_console_only() {
    let s = Scratch::new("api-login");
    let svc = Service::start(&s, Some(TOKEN));
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_redirects
        .post(svc.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get("set-cookie").is_none());

    let resp = no_redirects
        .post(svc.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(TOKEN),
        "the cookie is not the token: {cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();

    let with_cookie = |path: &str| {
        no_redirects
            .get(svc.url(path))
            .header("cookie", pair.clone())
            .send()
    };
    let resp = with_cookie("/").await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("最近的发布任务"));
    assert_eq!(
        with_cookie("/api/jobs").await.unwrap().status().as_u16(),
        401
    );
    assert_eq!(
        with_cookie("/metrics").await.unwrap().status().as_u16(),
        401
    );

    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let resp = no_redirects
            .get(svc.url(&format!("/login?token={TOKEN}&next={next}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 303);
        assert_eq!(resp.headers()["location"], "/", "{next}");
    }
}

/// An HTTP address already in use stops the service at start-up, naming the key.
#[test]
fn an_address_in_use_stops_the_service_at_start() {
    let s = Scratch::new("api-in-use");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = s
        .command(&["serve"])
        .env("DISCLOSE_QUEUE_SPOOL_DIR", s.path("spool"))
        .env_remove("DISCLOSE_QUEUE_AMQP_URL")
        .env("DISCLOSE_SERVE_HTTP_ADDR", &addr)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("[serve] http_addr") && err.contains(&addr),
        "{err}"
    );
    drop(taken);
}
