//! The saga log: every step of every saga, kept in Postgres by the marketing service.
//!
//! - [`Step::of`] turns a saga event into a step (what happened, who said so, which way it
//!   moves the saga, and what it says about the sale).
//! - [`SagaLog::record`] writes steps idempotently by event id and re-derives each saga they
//!   touch from *all* its steps with [`derive`], so arrival order and duplicates never change
//!   a saga's status. [`Recorder`] batches concurrent writers into one transaction.
//! - Each event's [`Count`] in its campaign's statistics is written in the same transaction
//!   ([`SagaLog::observe`]); [`SagaLog::campaign_stats`] reads the totals (see `campaign`).
//! - [`SagaLog::saga`], [`SagaLog::list`] and [`SagaLog::stats`] answer the inspection
//!   endpoint; [`SagaLog::due`] and [`SagaLog::timeout_published`] drive deadlines, which live
//!   in the `sagas` table and so survive restarts.
//!
//! The schema is in `migrations/`, applied by [`SagaLog::connect`].

mod campaign;
mod error;
mod recorder;
mod saga;
mod status;
mod step;
mod store;

pub use campaign::{CampaignStats, Count, Counted};
pub use error::LogError;
pub use recorder::Recorder;
pub use saga::{
    CampaignTally, Cursor, Durations, ListQuery, Page, RecordedStep, Saga, SagaSummary, Stats,
    Tally,
};
pub use status::{Derived, Status, derive, derive_seen};
pub use step::{Direction, Facts, Observation, SagaEvent, Step};
pub use store::{Due, SagaLog, ensure_database};
