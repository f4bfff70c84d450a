//! The attribution domain: journeys, the campaign settings they need, attribution models and
//! fraud scoring — pure functions of state and commands, with no I/O.
//!
//! Each aggregate is a [`Aggregate::decide`] (command → events or a [`DomainError`]) and an
//! [`Aggregate::apply`] (event → state). The application layer loads a stream, folds it, decides
//! and appends; the adapters translate Pulsar messages into commands and the outcome events into
//! integration events (`to_contract`). Nothing here knows about Pulsar, MongoDB or HTTP, so every
//! business rule is tested given events / when command / then events.
//!
//! - [`campaign`]: the settings attribution mirrors from marketing's campaign facts.
//! - [`journey`]: one visitor's touchpoints up to the purchase that converts them.
//! - [`models`]: how a conversion's credit and money are shared, exactly, among touchpoints.
//! - [`fraud`]: the fraud score of a purchase.

#![warn(missing_docs)]

pub mod campaign;
mod conversion;
mod error;
pub mod fraud;
pub mod journey;
pub mod models;
mod purchase;
mod touchpoint;

pub use alpes_aggregate::{Aggregate, DomainEvent};
pub use campaign::{Campaign, CampaignCommand, CampaignEvent, CampaignSettings, CampaignStatus};
pub use conversion::{Attribution, Credit, Rejection, RejectionReason, Reversal};
pub use error::DomainError;
pub use fraud::{FraudAssessment, FraudSignal};
pub use journey::{Journey, JourneyCommand, JourneyEvent, JourneyStatus};
pub use models::{Model, Weights};
pub use purchase::Purchase;
pub use touchpoint::{Touchpoint, TouchpointKind};
