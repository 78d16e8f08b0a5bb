//! Where jobs come in, and the one path every job takes from bytes to a recorded decision,
//! whatever brought it (a file on the command line, the spool directory, RabbitMQ):
//!
//! bytes → [`crate::job::parse`] → duplicate? → [`crate::approval::verify`] →
//! [`crate::policy::decide`] → [`crate::render::Templates::check`] → [`Ledger::accept`] or
//! [`Ledger::refuse`].
//!
//! Every independent violation is reported together (a refused job lists all its reasons), and
//! nothing here panics on input: a job that cannot even be parsed is still answered and recorded.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

pub mod amqp;
pub mod spool;

use crate::approval::KeyStore;
use crate::calendar::WorkCalendar;
use crate::job::{self, ChannelKind, Job, Kind};
use crate::ledger::{Acceptance, Accepted, Committed, Decision, Ledger, LedgerError};
use crate::policy::{self, Code, Context, GroupKind, Plan, PolicyConfig, Refusal};
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

/// What the decisions of a batch need from the ledger, asked once for the whole batch. Asked
/// per job, the deciding threads took turns at the ledger (three times a job), each time
/// waiting behind the commit of the batch before.
struct Known {
    jobs: HashSet<String>,
    groups: HashMap<String, GroupKind>,
    roster: HashSet<String>,
}

/// A job read and its approval checked: the part of a decision that needs nothing from the
/// ledger.
enum Read {
    Unreadable(Verdict),
    Parsed {
        parsed: job::ParsedJob,
        /// Why the approval does not hold: only approved jobs are dispatched.
        unapproved: Option<String>,
    },
}

impl Intake {
    /// Decide about a job without recording anything (`disclose check`).
    pub fn evaluate(
        &self,
        bytes: &[u8],
        now: DateTime<FixedOffset>,
    ) -> Result<Verdict, LedgerError> {
        only(self.evaluate_all(&[bytes], now)?)
    }

    fn read(&self, bytes: &[u8]) -> Read {
        match job::parse(bytes) {
            Ok(parsed) => {
                let unapproved = crate::approval::verify(&parsed.raw, &self.keys)
                    .err()
                    .map(|e| format!("only approved jobs are dispatched: {e}"));
                Read::Parsed { parsed, unapproved }
            }
            Err(e) => Read::Unreadable(Verdict::refused(
                job::sniff_id(bytes),
                vec![Refusal::new(Code::Malformed, e.to_string())],
                None,
            )),
        }
    }

    fn known(&self, reads: &[Read]) -> Result<Known, LedgerError> {
        let mut ids = Vec::with_capacity(reads.len());
        let mut groups = BTreeSet::new();
        let mut recipients = BTreeSet::new();
        for read in reads {
            if let Read::Parsed { parsed, .. } = read {
                let job = &parsed.job;
                ids.push(job.id.clone());
                groups.extend(job.audience.groups.iter().cloned());
                recipients.extend(job.audience.recipients.iter().map(|r| r.id.clone()));
            }
        }
        let mut known = Known {
            jobs: HashSet::new(),
            groups: HashMap::new(),
            roster: HashSet::new(),
        };
        if !ids.is_empty() {
            known.jobs = self.ledger.known_jobs(&ids)?;
        }
        if !groups.is_empty() {
            known.groups = self
                .ledger
                .group_kinds(&groups.into_iter().collect::<Vec<_>>())?;
        }
        if !recipients.is_empty() {
            known.roster = self
                .ledger
                .on_roster(&recipients.into_iter().collect::<Vec<_>>())?;
        }
        Ok(known)
    }

    fn decide(
        &self,
        read: Read,
        known: &Known,
        now: DateTime<FixedOffset>,
    ) -> Result<Verdict, LedgerError> {
        let (parsed, unapproved) = match read {
            Read::Unreadable(verdict) => return Ok(verdict),
            Read::Parsed { parsed, unapproved } => (parsed, unapproved),
        };
        let job = parsed.job;
        if known.jobs.contains(&job.id) {
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
        if let Some(message) = unapproved {
            refusals.push(Refusal::new(Code::Unapproved, message));
        }
        // What this job names only: the policy sees the job's own groups and recipients.
        let groups: HashMap<String, GroupKind> = job
            .audience
            .groups
            .iter()
            .filter_map(|g| known.groups.get(g).map(|k| (g.clone(), *k)))
            .collect();
        let roster: HashSet<String> = job
            .audience
            .recipients
            .iter()
            .filter(|r| known.roster.contains(&r.id))
            .map(|r| r.id.clone())
            .collect();
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

    pub fn admit(&self, bytes: &[u8], now: DateTime<FixedOffset>) -> Result<Verdict, LedgerError> {
        only(self.admit_many(&[bytes], now)?)
    }

    /// Decide a batch: read the jobs and check their approvals on every core, ask the ledger
    /// once for what the batch needs, then apply the policy and check the templates on every
    /// core again.
    fn evaluate_all(
        &self,
        bodies: &[&[u8]],
        now: DateTime<FixedOffset>,
    ) -> Result<Vec<Verdict>, LedgerError> {
        let reads = par_map(bodies.to_vec(), |b| self.read(b));
        let known = self.known(&reads)?;
        par_map(reads, |r| self.decide(r, &known, now))
            .into_iter()
            .collect()
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
            let committed = self.ledger.commit(&decisions)?;
            crate::events::written();
            committed
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

/// The verdict of a batch of one job.
fn only(mut verdicts: Vec<Verdict>) -> Result<Verdict, LedgerError> {
    verdicts
        .pop()
        .ok_or_else(|| LedgerError::Corrupt("no verdict for the job".into()))
}

/// `f` over the items, in order, on every core when there are enough of them.
fn par_map<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len() / PARALLEL_MIN.max(1));
    if threads < 2 {
        return items.into_iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut parts = Vec::with_capacity(threads);
    let mut rest = items;
    while rest.len() > chunk {
        let tail = rest.split_off(chunk);
        parts.push(std::mem::replace(&mut rest, tail));
    }
    parts.push(rest);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| s.spawn(move || part.into_iter().map(f).collect::<Vec<U>>()))
            .collect();
        let mut out = Vec::new();
        for h in handles {
            match h.join() {
                Ok(v) => out.extend(v),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
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
