//! Where jobs come in, and the one path every job takes from bytes to a recorded decision,
//! whatever brought it (a file on the command line, the spool directory, RabbitMQ):
//!
//! bytes → [`crate::job::parse`] → duplicate? → [`crate::approval::verify`] →
//! [`crate::policy::decide`] → [`crate::render::Templates::check`] → [`Ledger::accept`] or
//! [`Ledger::refuse`].
//!
//! Every independent violation is reported together (a refused job lists all its reasons), and
//! nothing here panics on input: a job that cannot even be parsed is still answered and recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

pub mod amqp;
pub mod spool;

use crate::approval::KeyStore;
use crate::calendar::WorkCalendar;
use crate::job::{self, ChannelKind, Job, Kind};
use crate::ledger::{Acceptance, Accepted, Committed, Decision, Ledger, LedgerError};
use crate::policy::{self, Code, Context, Plan, PolicyConfig, Refusal};
use crate::render::Templates;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Accepted,
    Refused,
    Duplicate,
}

/// What became of one job.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub id: Option<String>,
    pub decision: DecisionKind,
    pub refusals: Vec<Refusal>,
    pub job: Option<Job>,
    pub plan: Option<Plan>,
    /// Deliveries planned per channel (after `admit`).
    pub planned: BTreeMap<ChannelKind, u64>,
}

impl Verdict {
    /// Accepted with deliveries due now: the delivery workers should be woken. A job scheduled
    /// for later wakes nobody; the workers find it when it falls due.
    pub fn due_now(&self, now: DateTime<FixedOffset>) -> bool {
        self.decision == DecisionKind::Accepted
            && self
                .plan
                .as_ref()
                .is_some_and(|p| p.publish_at.is_none_or(|t| t <= now))
    }

    fn refused(id: Option<String>, refusals: Vec<Refusal>, job: Option<Job>) -> Verdict {
        Verdict {
            id,
            decision: DecisionKind::Refused,
            refusals,
            job,
            plan: None,
            planned: BTreeMap::new(),
        }
    }
}

/// Jobs per thread below which a batch is decided on one thread.
const PARALLEL_MIN: usize = 8;

pub struct Intake {
    pub ledger: Arc<dyn Ledger>,
    pub keys: KeyStore,
    pub policy: PolicyConfig,
    pub templates: Arc<Templates>,
    pub calendar: WorkCalendar,
    pub configured: BTreeSet<ChannelKind>,
}

impl Intake {
    /// Decide about a job without recording anything (`disclose check`).
    pub fn evaluate(
        &self,
        bytes: &[u8],
        now: DateTime<FixedOffset>,
    ) -> Result<Verdict, LedgerError> {
        let parsed = match job::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                return Ok(Verdict::refused(
                    job::sniff_id(bytes),
                    vec![Refusal::new(Code::Malformed, e.to_string())],
                    None,
                ));
            }
        };
        let job = parsed.job;
        if self.ledger.has_job(&job.id)? {
            return Ok(Verdict {
                id: Some(job.id.clone()),
                decision: DecisionKind::Duplicate,
                refusals: vec![],
                job: Some(job),
                plan: None,
                planned: BTreeMap::new(),
            });
        }
        let mut refusals = Vec::new();
        if let Err(e) = crate::approval::verify(&parsed.raw, &self.keys) {
            refusals.push(Refusal::new(
                Code::Unapproved,
                format!("only approved jobs are dispatched: {e}"),
            ));
        }
        let groups = self.ledger.group_kinds(&job.audience.groups)?;
        let ids: Vec<String> = job
            .audience
            .recipients
            .iter()
            .map(|r| r.id.clone())
            .collect();
        let roster = self.ledger.on_roster(&ids)?;
        let target = match (&job.kind, &job.corrects) {
            (Kind::Correction | Kind::Retraction, Some(t)) => self.ledger.target(t)?,
            _ => None,
        };
        let cx = Context {
            config: &self.policy,
            groups: &groups,
            roster: &roster,
            configured: &self.configured,
            calendar: &self.calendar,
            now,
            target: target.as_ref(),
        };
        let plan = match policy::decide(&job, &cx) {
            Ok(plan) => Some(plan),
            Err(mut r) => {
                refusals.append(&mut r);
                None
            }
        };
        // Art 3 (accuracy): the notice must render on every channel it will go out on.
        let channels: Vec<ChannelKind> = match &plan {
            Some(p) => p.channels.clone(),
            None => job.channels.clone().unwrap_or_default(),
        };
        let channels: Vec<ChannelKind> = channels
            .into_iter()
            .filter(|c| needs_template(&job, *c))
            .collect();
        for message in self.templates.check(&job, &channels) {
            refusals.push(Refusal::new(Code::TemplateError, message));
        }
        if !refusals.is_empty() {
            return Ok(Verdict::refused(Some(job.id.clone()), refusals, Some(job)));
        }
        Ok(Verdict {
            id: Some(job.id.clone()),
            decision: DecisionKind::Accepted,
            refusals,
            job: Some(job),
            plan,
            planned: BTreeMap::new(),
        })
    }

    /// Decide about a job and record the decision durably: accepted with every planned delivery
    /// in one transaction, or refused with its reasons. Only when this returns `Ok` may the
    /// message that brought the job be acknowledged.
    pub fn admit(&self, bytes: &[u8], now: DateTime<FixedOffset>) -> Result<Verdict, LedgerError> {
        let mut v = self.admit_many(&[bytes], now)?;
        v.pop()
            .ok_or_else(|| LedgerError::Corrupt("no verdict for the job".into()))
    }

    /// [`Intake::admit`] for many jobs at once with one ledger commit (group commit), for when a
    /// broker hands over many messages together. All are recorded or none is; verdicts in order.
    /// Decide a batch, on every core when it is large enough to pay for the threads: parsing,
    /// the approval signature and the policy are independent per job (the ledger's lookups are
    /// reads), and a burst from the broker otherwise waits on one core while the other idles.
    /// Verdicts come back in the order of `bodies`.
    fn evaluate_all(
        &self,
        bodies: &[&[u8]],
        now: DateTime<FixedOffset>,
    ) -> Result<Vec<Verdict>, LedgerError> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(bodies.len() / PARALLEL_MIN.max(1));
        if threads < 2 {
            return bodies.iter().map(|b| self.evaluate(b, now)).collect();
        }
        let chunk = bodies.len().div_ceil(threads);
        std::thread::scope(|s| {
            let parts: Vec<_> = bodies
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|b| self.evaluate(b, now))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            let mut verdicts = Vec::with_capacity(bodies.len());
            for part in parts {
                match part.join() {
                    Ok(v) => verdicts.extend(v?),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            Ok(verdicts)
        })
    }

    pub fn admit_many(
        &self,
        bodies: &[&[u8]],
        now: DateTime<FixedOffset>,
    ) -> Result<Vec<Verdict>, LedgerError> {
        let mut verdicts = self.evaluate_all(bodies, now)?;
        let committed = {
            let mut decisions = Vec::with_capacity(verdicts.len());
            for (v, body) in verdicts.iter().zip(bodies) {
                match v.decision {
                    DecisionKind::Duplicate => {}
                    DecisionKind::Refused => decisions.push(Decision::Refuse {
                        job_id: v.id.as_deref(),
                        body,
                        refusals: &v.refusals,
                        now,
                    }),
                    DecisionKind::Accepted => {
                        let (Some(job), Some(plan)) = (&v.job, &v.plan) else {
                            return Err(LedgerError::Corrupt(
                                "an accepted verdict without its plan".into(),
                            ));
                        };
                        decisions.push(Decision::Accept(Acceptance {
                            job,
                            body,
                            plan,
                            now,
                        }));
                    }
                }
            }
            self.ledger.commit(&decisions)?
        };
        let mut committed = committed.into_iter();
        for v in &mut verdicts {
            match v.decision {
                DecisionKind::Duplicate => {}
                DecisionKind::Refused => {
                    committed.next();
                    tracing::warn!(job = v.id.as_deref().unwrap_or("?"), codes = %codes(&v.refusals), "job refused");
                }
                DecisionKind::Accepted => match committed.next() {
                    Some(Committed::Accepted(Accepted::New { planned })) => {
                        tracing::info!(
                            job = v.id.as_deref().unwrap_or("?"),
                            deliveries = planned.values().sum::<u64>(),
                            "job accepted"
                        );
                        v.planned = planned;
                    }
                    // The same id earlier in this batch, or recorded by another intake meanwhile.
                    Some(Committed::Accepted(Accepted::Duplicate)) => {
                        v.decision = DecisionKind::Duplicate
                    }
                    _ => {
                        return Err(LedgerError::Corrupt(
                            "the ledger's answers do not match the decisions".into(),
                        ));
                    }
                },
            }
        }
        crate::metrics::decided(&verdicts);
        Ok(verdicts)
    }
}

/// A retraction withdraws pages without a template; everything else needs one.
fn needs_template(job: &Job, channel: ChannelKind) -> bool {
    !(job.kind == Kind::Retraction && channel.is_publication())
}

pub fn codes(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(|r| r.code.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
