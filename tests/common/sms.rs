//! What the SMS transport tests (`sms_tencent`, `sms_aliyun`) share: a job, numbers, batches
//! rendered by the shipped `general` template, and readings of outcomes. The providers differ
//! only in their emulator, configuration and credentials.

use std::sync::Arc;

use disclose::channels::{Batch, Item};
use disclose::job::{ChannelKind, Job};

use super::engine::templates;

/// An approved `release` whose title is the one SMS template parameter.
pub fn job(id: &str) -> Job {
    let job = serde_json::json!({
        "id": id, "kind": "release", "category": "6.1", "scope": "public", "classification": "none",
        "title": "关于张三同志任职的通知", "template": "general", "data": {"body": "正文"},
        "approval": {"approver": "李四", "reference": "组干审〔2026〕1号", "approved_at": "2026-11-28T16:00:00+08:00", "key_id": "k"}
    });
    disclose::job::parse(job.to_string().as_bytes())
        .unwrap()
        .job
}

/// The `i`th test number, a mainland mobile in E.164.
pub fn number(i: usize) -> String {
    format!("+86139{:08}", 10_000_000 + i)
}

/// A batch of `n` deliveries of a fresh job to [`number`]s 0…n-1, rendered by the shipped
/// `general` template (one parameter: the title; each provider's template id is in its
/// sms.toml).
pub fn batch(job_id: &str, n: usize) -> Batch {
    let job = Arc::new(job(job_id));
    let content = Arc::new(templates().render(&job, ChannelKind::Sms, None).unwrap());
    let items = (0..n)
        .map(|i| Item {
            delivery_id: 1 + i as i64,
            recipient: format!("r{i}"),
            name: format!("n{i}"),
            role: "member".into(),
            address: Some(number(i)),
            attempt: 1,
            content: content.clone(),
        })
        .collect();
    Batch {
        job,
        channel: ChannelKind::Sms,
        items,
        now: disclose::clock::now(),
    }
}

/// The same batch `secs` later (the engine's clock).
pub fn later(b: &Batch, secs: i64) -> Batch {
    Batch {
        now: b.now + chrono::Duration::seconds(secs),
        ..b.clone()
    }
}
