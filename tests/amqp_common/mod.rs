//! Shared by the RabbitMQ tests: per-test topology names (deleted afterwards), signed jobs made
//! in-process, the real `disclose serve` as a child, and counts read from its ledger.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_disclose");
pub const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The queue names of one test, and a scratch directory; all removed on drop.
pub struct Setup {
    pub name: String,
    pub dir: PathBuf,
    pub jobs_exchange: String,
    pub jobs_queue: String,
    pub dlx: String,
    pub dlq: String,
    pub events_exchange: String,
    /// Queues the test declared itself (bound to the events exchange).
    pub extra_queues: std::sync::Mutex<Vec<String>>,
    pub key_id: String,
    pub key: ed25519_dalek::SigningKey,
    pub delivery_limit: u32,
    pub ledger_path: PathBuf,
}

impl Setup {
    pub fn new(test: &str) -> Setup {
        let name = format!("t-{test}-{}-{}", std::process::id(), fastrand::u32(..));
        let dir = std::env::temp_dir().join(format!("disclose-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key_id = "amqp-test".to_string();
        let (secret, _) = disclose::approval::generate_key(&key_id, &dir.join("keys")).unwrap();
        let (key_id, key) = disclose::approval::load_signing_key(&secret).unwrap();
        Setup {
            jobs_exchange: format!("{name}.jobs"),
            jobs_queue: format!("{name}.jobs"),
            dlx: format!("{name}.dlx"),
            dlq: format!("{name}.dead"),
            events_exchange: format!("{name}.events"),
            extra_queues: Default::default(),
            name,
            key_id,
            key,
            delivery_limit: 5,
            ledger_path: dir.join("ledger.db"),
            dir,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn ledger(&self) -> PathBuf {
        self.ledger_path.clone()
    }

    /// `disclose serve` with this test's queues, ledger, outputs and keys.
    pub fn serve(&self) -> Serve {
        self.serve_with(&[])
    }

    /// [`Setup::serve`] with more environment (e.g. a channels directory of the test's own).
    pub fn serve_with(&self, env: &[(&str, &str)]) -> Serve {
        let log = self.path(&format!("serve-{}.log", fastrand::u32(..)));
        let mut c = Command::new(BIN);
        c.current_dir(repo())
            .arg("serve")
            .env("DISCLOSE_LEDGER_URL", self.ledger())
            .env("DISCLOSE_PATHS_OUTPUT_DIR", self.path("out"))
            .env("DISCLOSE_APPROVAL_KEYS_DIR", self.path("keys"))
            .envs(self.queue_section().env())
            .env("DISCLOSE_SERVE_GRACE_SECS", "5")
            .env("DISCLOSE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        c.envs(env.iter().copied());
        let child = c.spawn().unwrap();
        Serve { child, log }
    }

    /// The `disclose.toml`-free queue section these names describe (for `amqp::publish`).
    pub fn queue_section(&self) -> disclose::config::QueueSection {
        disclose::config::QueueSection {
            amqp_url: Some(URL.into()),
            jobs_exchange: self.jobs_exchange.clone(),
            jobs_queue: self.jobs_queue.clone(),
            dead_letter_exchange: self.dlx.clone(),
            dead_letter_queue: self.dlq.clone(),
            events_exchange: self.events_exchange.clone(),
            delivery_limit: self.delivery_limit,
            ..Default::default()
        }
    }

    /// A public website notice (cheap to deliver: one page), signed with this test's key.
    pub fn job(&self, id: &str) -> Vec<u8> {
        let mut raw = self.job_value(id);
        disclose::approval::sign(&mut raw, &self.key_id, &self.key).unwrap();
        serde_json::to_vec(&raw).unwrap()
    }

    pub fn job_value(&self, id: &str) -> Value {
        let text = std::fs::read_to_string(
            repo().join("examples/jobs/src/01-pre-appointment-release.json"),
        )
        .unwrap();
        let mut raw: Value = serde_json::from_str(&text).unwrap();
        let now =
            chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap());
        raw["id"] = id.into();
        raw["channels"] = serde_json::json!(["website"]);
        raw["audience"] = serde_json::json!({"groups": [], "recipients": []});
        raw["schedule"] = serde_json::json!({
            "publish_at": (now - chrono::Duration::hours(1)).to_rfc3339(),
            "expires_at": (now + chrono::Duration::days(7)).to_rfc3339(),
        });
        raw["approval"]["approved_at"] = (now - chrono::Duration::hours(2)).to_rfc3339().into();
        raw
    }

    /// Signed, then changed: the signature no longer matches.
    pub fn tampered_job(&self, id: &str) -> Vec<u8> {
        let mut raw = self.job_value(id);
        disclose::approval::sign(&mut raw, &self.key_id, &self.key).unwrap();
        raw["title"] = "篡改后的标题".into();
        serde_json::to_vec(&raw).unwrap()
    }

    pub fn unknown_template_job(&self, id: &str) -> Vec<u8> {
        let mut raw = self.job_value(id);
        raw["template"] = "no_such_template".into();
        disclose::approval::sign(&mut raw, &self.key_id, &self.key).unwrap();
        serde_json::to_vec(&raw).unwrap()
    }

    /// Publish bodies to the jobs exchange the way `disclose submit` does.
    pub async fn publish(&self, bodies: Vec<(String, Vec<u8>)>) {
        disclose::intake::amqp::publish(&self.queue_section(), bodies)
            .await
            .unwrap();
    }

    /// Declare a durable queue bound to the events exchange (`#`); deleted on drop.
    pub async fn bind_events(&self) -> String {
        let q = format!("{}.events-tap", self.name);
        let conn = connect().await;
        let ch = conn.create_channel().await.unwrap();
        ch.exchange_declare(
            self.events_exchange.as_str().into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_bind(
            q.as_str().into(),
            self.events_exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        self.extra_queues.lock().unwrap().push(q.clone());
        let _ = conn.close(200, "OK".into()).await;
        q
    }

    /// Jobs recorded in the ledger (the ledger may not exist yet: 0).
    pub fn count(&self, sql: &str) -> i64 {
        let Ok(db) = rusqlite::Connection::open_with_flags(
            self.ledger(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        ) else {
            return 0;
        };
        db.busy_timeout(Duration::from_secs(5)).unwrap();
        db.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
    }

    pub fn jobs(&self) -> i64 {
        self.count("SELECT count(*) FROM jobs")
    }

    /// Start `serve`, take the ledger's write lock once it consumes, then publish `bodies` and
    /// wait until intake has taken some: it cannot commit them, so it surely has jobs in hand,
    /// unacknowledged, when the test then breaks the broker. (Publishing first and holding the
    /// ledger once the first job was committed raced the intake, which on a fast machine
    /// committed all 1,500 jobs in between.) Drop the returned connection to let intake commit.
    pub async fn serve_with_jobs_in_hand(
        &self,
        bodies: Vec<(String, Vec<u8>)>,
    ) -> (Serve, rusqlite::Connection) {
        let total = bodies.len() as u32;
        let serve = self.serve();
        wait_until("the service to consume", 60, || {
            serve.log().contains("consuming jobs from RabbitMQ")
        })
        .await;
        let hold = self.hold_ledger();
        self.publish(bodies).await;
        self.wait_taken(total).await;
        (serve, hold)
    }

    /// Wait until intake has taken some of the `published` messages (fewer are ready).
    pub async fn wait_taken(&self, published: u32) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while ready(&self.jobs_queue).await >= published {
            assert!(Instant::now() < deadline, "intake took no message in 60 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Take the ledger's write lock (readers go on): intake cannot commit until the returned
    /// connection is dropped, so a test can break the broker while jobs are surely in flight
    /// instead of racing the intake.
    pub fn hold_ledger(&self) -> rusqlite::Connection {
        let db = rusqlite::Connection::open(self.ledger()).unwrap();
        db.busy_timeout(Duration::from_secs(30)).unwrap();
        db.execute_batch("BEGIN IMMEDIATE").unwrap();
        db
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let queues: Vec<String> = [self.jobs_queue.clone(), self.dlq.clone()]
            .into_iter()
            .chain(self.extra_queues.lock().unwrap().iter().cloned())
            .collect();
        let exchanges = [
            self.jobs_exchange.clone(),
            self.dlx.clone(),
            self.events_exchange.clone(),
        ];
        // Drop may run inside a runtime: clean up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let Ok(conn) = Connection::connect(URL, ConnectionProperties::default()).await
                else {
                    return;
                };
                let Ok(ch) = conn.create_channel().await else {
                    return;
                };
                for q in queues {
                    let _ = ch
                        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                        .await;
                }
                for e in exchanges {
                    let _ = ch
                        .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
                        .await;
                }
                let _ = conn.close(200, "OK".into()).await;
            })
        })
        .join();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The real service as a child process, killed on drop.
pub struct Serve {
    pub child: Child,
    pub log: PathBuf,
}

impl Serve {
    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "serve exited:\n{}",
            self.log()
        );
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn connect() -> Connection {
    Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap()
}

/// Poll `f` until it is true; panic with `what` past the deadline.
pub async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Poll until `queue` holds no ready message.
pub async fn wait_empty(queue: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while ready(queue).await > 0 {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {queue} to empty"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Messages ready in a queue (passive declare).
pub async fn ready(queue: &str) -> u32 {
    let conn = connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = conn.close(200, "OK".into()).await;
    q.message_count()
}

/// A message read back from a queue.
#[derive(Debug, Clone)]
pub struct Got {
    pub body: Vec<u8>,
    pub routing_key: String,
    pub message_id: Option<String>,
    pub headers: BTreeMap<String, String>,
}

/// Read (auto-acked) every message of `queue` until it has been quiet for `quiet`.
pub async fn drain(queue: &str, quiet: Duration) -> Vec<Got> {
    drain_until(queue, quiet, |_| false).await
}

/// Read (auto-acked) messages of `queue` until `enough` says so or it has been quiet for `quiet`.
pub async fn drain_until(
    queue: &str,
    quiet: Duration,
    enough: impl Fn(&[Got]) -> bool,
) -> Vec<Got> {
    let conn = connect().await;
    let ch = conn.create_channel().await.unwrap();
    ch.basic_qos(500, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Ok(Some(d)) = tokio::time::timeout(quiet, consumer.next()).await {
        let d = d.unwrap();
        let headers = d
            .properties
            .headers()
            .as_ref()
            .map(|h| {
                h.inner()
                    .iter()
                    .map(|(k, v)| (k.to_string(), value_text(v)))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Got {
            body: d.data.clone(),
            routing_key: d.routing_key.to_string(),
            message_id: d.properties.message_id().as_ref().map(|m| m.to_string()),
            headers,
        });
        if enough(&out) {
            break;
        }
    }
    let _ = conn.close(200, "OK".into()).await;
    out
}

fn value_text(v: &AMQPValue) -> String {
    match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

pub fn props() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

pub fn rabbitmqctl(args: &[&str]) -> bool {
    Command::new("rabbitmqctl")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A TCP proxy in front of the broker that a test can make go silent, as a hung broker or a
/// network partition does: the connections it holds stop passing bytes either way (a close
/// included) but stay open; and while it holds new connections, it accepts them and never
/// answers.
pub struct Proxy {
    pub port: u16,
    /// A flag per connection passed to the broker: set, it goes silent.
    silent: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    holding_new: Arc<AtomicBool>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let holding_new = Arc::new(AtomicBool::new(false));
        let (flags, holding) = (silent.clone(), holding_new.clone());
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if holding.load(Ordering::SeqCst) {
                    held.push(client);
                    continue;
                }
                let Ok(upstream) = tokio::net::TcpStream::connect("127.0.0.1:5672").await else {
                    continue;
                };
                let flag = Arc::new(AtomicBool::new(false));
                flags.lock().unwrap().push(flag.clone());
                let (client_read, client_write) = client.into_split();
                let (upstream_read, upstream_write) = upstream.into_split();
                tokio::spawn(pump(client_read, upstream_write, flag.clone()));
                tokio::spawn(pump(upstream_read, client_write, flag));
            }
        });
        Proxy {
            port,
            silent,
            holding_new,
        }
    }

    /// The broker's URL through this proxy, with `query` (e.g. `heartbeat=2`) if not empty.
    pub fn url(&self, query: &str) -> String {
        let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port);
        if query.is_empty() {
            url
        } else {
            format!("{url}?{query}")
        }
    }

    /// Every connection the proxy holds now goes silent for good.
    pub fn silence(&self) {
        for flag in self.silent.lock().unwrap().iter() {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// New connections are accepted and never answered (`true`), or passed to the broker.
    pub fn hold_new(&self, hold: bool) {
        self.holding_new.store(hold, Ordering::SeqCst);
    }
}

/// Copy `from` to `to` until either ends; once `silent`, pass nothing more (not even the end).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silent: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = from.read(&mut buf).await;
        if silent.load(Ordering::SeqCst) {
            // Hold both halves open and answer nothing.
            std::future::pending::<()>().await;
        }
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}
