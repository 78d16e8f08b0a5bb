//! `disclose`: the dispatcher that discloses cadre-work information — appointment notices,
//! assessment results, investigation results — to exactly the audience the county's measures
//! allow, through exactly the channels they allow, on time, with proof afterwards of what went
//! where (Art 17).
//!
//! # The path of a job
//!
//! ```text
//!  bytes ──▶ intake ──▶ job ──▶ approval ──▶ policy ──▶ render ──▶ ledger ──▶ deliver ──▶ channels
//!  (file,     one path   parse    Ed25519     the        strict     decision   claim,      website,
//!   spool,    for every  at the   over JCS    regulation handlebars + planned   rate-limit, intranet,
//!   AMQP)     source     edge                 as code    check      deliveries send,        outbox …
//!                                                                   + audit    record,
//!                                                                   (one tx)   retry
//! ```
//!
//! | step | module | owns |
//! |---|---|---|
//! | intake | [`intake`] | the one decision path for every source; record accepted or refused |
//! | job | [`job`], [`jcs`] | parsing untrusted bytes (size, UTF-8, duplicate keys, unknown fields, field paths) |
//! | approval | [`approval`] | Ed25519 signatures over the RFC 8785 canonical form; trusted keys |
//! | policy | [`policy`], [`calendar`] | scopes, categories, channel matrix, audience, schedules; refusal codes with articles |
//! | render | [`render`] | templates per notice and channel; HTML escaped where HTML, never in SMS/WeChat |
//! | ledger | [`ledger`] | jobs, deliveries, outcomes, the directory, the hash-chained audit trail |
//! | deliver | [`deliver`] | the engine: claims, leases, retries with backoff, outcomes |
//! | channels | [`channels`], [`site`] | one transport per medium behind one trait |
//!
//! Data flows one way along that path: nothing later calls back into an earlier step. The
//! ledger is the source of truth: a job is acknowledged only after its decision and every planned
//! delivery are committed, and the engine works only from what the ledger holds, so a crash at
//! any point loses nothing and sends nothing twice (SPEC §5).
//!
//! Afterwards (Art 17): [`obligations`] says which recurring duties were met, are due or are
//! overdue; [`report`] is the compliance report of a period, read from the ledger.
//!
//! Operating it: [`api`] serves the HTTP API, the console and `/metrics` (counters in
//! [`metrics`]) from `disclose serve`.
//!
//! [`app`] wires configuration ([`config`]) into these parts; [`directory`] imports the
//! recipient directory; [`phone`] normalises numbers; [`clock`] keeps China Standard Time.

pub mod api;
pub mod app;
pub mod approval;
pub mod calendar;
pub mod channels;
pub mod clock;
pub mod config;
pub mod config_check;
pub mod deliver;
pub mod directory;
pub mod events;
pub mod intake;
pub mod jcs;
pub mod job;
pub mod ledger;
pub mod letter;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod obligations;
pub mod pace;
pub mod phone;
pub mod policy;
pub mod render;
pub mod report;
pub mod serve;
pub mod shutdown;
pub mod site;
