//! `disclose`: the dispatcher that discloses cadre-work information to exactly the audience the
//! measures allow, through exactly the channels they allow, on time, with proof afterwards.

pub mod approval;
pub mod calendar;
pub mod jcs;
pub mod job;
pub mod phone;
