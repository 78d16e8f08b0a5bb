//! `disclose`: the dispatcher that discloses cadre-work information to exactly the audience the
//! measures allow, through exactly the channels they allow, on time, with proof afterwards.
//! (The lib docs are completed below, once the whole path exists.)

pub mod app;
pub mod approval;
pub mod calendar;
pub mod channels;
pub mod clock;
pub mod config;
pub mod deliver;
pub mod directory;
pub mod intake;
pub mod jcs;
pub mod job;
pub mod ledger;
pub mod phone;
pub mod policy;
pub mod render;
pub mod site;
