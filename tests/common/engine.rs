//! The set-up of the tests that run a transport through the real engine: a SQLite ledger in a
//! temp directory, a group of members, an accepted job, a `ChannelConfig` and `Engine`s over it.
//! Each of these tests builds the same state by the same steps; only the members, the job and
//! the transport differ.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use disclose::channels::{Channel, ChannelConfig, RetryPolicy, Transport};
use disclose::deliver::Engine;
use disclose::job::{ChannelKind, Job};
use disclose::ledger::{Acceptance, Ledger, Member, SqliteLedger};
use disclose::policy::{GroupKind, Plan};
use disclose::render::Templates;

/// The JSON of an approved `release` of the shipped `general` template, as a publisher posts it.
pub fn release(id: &str, category: &str, scope: &str) -> String {
    serde_json::json!({
        "id": id, "kind": "release", "category": category, "scope": scope, "classification": "none",
        "title": "标题", "template": "general", "data": {"body": "正文"},
        "approval": {"approver": "李四", "reference": "组干审〔2026〕1号", "approved_at": "2026-11-28T16:00:00+08:00", "key_id": "k"}
    })
    .to_string()
}

/// A channel's settings as the tests run it: at most three attempts, 20–100 ms apart, no quiet
/// hours, no per-recipient limits, no failover.
pub fn channel_config(
    channel: ChannelKind,
    transport: Transport,
    batch_size: usize,
    calls_per_second: Option<u32>,
) -> ChannelConfig {
    ChannelConfig {
        channel,
        transport,
        batch_size: Some(batch_size),
        calls_per_second,
        concurrency: None,
        retry: RetryPolicy {
            max_attempts: 3,
            base_ms: 20,
            max_ms: 100,
        },
        quiet_hours: None,
        recipient_limits: Default::default(),
        failover: None,
    }
}

/// The shipped templates (`templates/` of the repository).
pub fn templates() -> Templates {
    Templates::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates")).unwrap()
}

/// A ledger in its own temporary directory (removed when dropped) and the shipped templates.
pub struct Setup {
    pub dir: PathBuf,
    pub ledger: Arc<dyn Ledger>,
    pub templates: Arc<Templates>,
}

impl Setup {
    /// A fresh `ledger.db` in `$TMP/disclose-NAME-PID`.
    pub fn new(name: &str) -> Setup {
        let dir = std::env::temp_dir().join(format!("disclose-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ledger: Arc<dyn Ledger> = Arc::new(SqliteLedger::open(&dir.join("ledger.db")).unwrap());
        Setup {
            dir,
            ledger,
            templates: Arc::new(templates()),
        }
    }

    /// Make `n` subscribers with phone numbers (`s0`, `订阅者0`, [`super::sms::number`]`(0)`, …)
    /// the public group `subscribers` and accept `job` for SMS to them.
    pub fn accept_sms_subscribers(&self, job: &Job, n: usize) {
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                id: format!("s{i}"),
                name: format!("订阅者{i}"),
                phone: Some(super::sms::number(i)),
                ..Member::default()
            })
            .collect();
        let body = serde_json::to_string(job).unwrap();
        self.accept(
            ("subscribers", GroupKind::Public),
            members,
            job,
            &body,
            ChannelKind::Sms,
        );
    }

    /// Make `members` the group `name` and accept `job` (whose posted form is `body`) for
    /// `channel` to that group.
    pub fn accept(
        &self,
        group: (&str, GroupKind),
        members: Vec<Member>,
        job: &Job,
        body: &str,
        channel: ChannelKind,
    ) {
        let now = disclose::clock::now();
        self.ledger
            .replace_group(group.0, group.1, &mut members.into_iter().map(Ok), now)
            .unwrap();
        let plan = Plan {
            channels: vec![channel],
            groups: vec![group.0.into()],
            recipients: vec![],
            publish_at: None,
            expires_at: None,
        };
        self.ledger
            .accept(&Acceptance {
                job,
                body: body.as_bytes(),
                plan: &plan,
                now,
            })
            .unwrap();
    }

    /// An engine over this ledger with one channel (a fresh engine is a restart: nothing of the
    /// last one's memory carries over).
    pub fn engine(&self, cfg: &ChannelConfig, channel: Arc<dyn Channel>) -> Arc<Engine> {
        self.engine_with_lease(cfg, channel, Duration::from_secs(60))
    }

    /// [`Setup::engine`] with claims leased for `lease`.
    pub fn engine_with_lease(
        &self,
        cfg: &ChannelConfig,
        channel: Arc<dyn Channel>,
        lease: Duration,
    ) -> Arc<Engine> {
        Arc::new(Engine::new(
            self.ledger.clone(),
            self.templates.clone(),
            vec![(cfg.clone(), channel)],
            lease,
        ))
    }

    /// Make every unknown delivery due now rather than at its recheck time, so that the next
    /// pass asks the transport's status query at once.
    pub fn recheck_unknown_now(&self) {
        let conn = rusqlite::Connection::open(self.dir.join("ledger.db")).unwrap();
        conn.execute(
            "UPDATE deliveries SET due_at = 0 WHERE state = 'unknown'",
            [],
        )
        .unwrap();
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
