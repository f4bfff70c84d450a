//! Why a command is refused: the one error type of the attribution domain.
//!
//! A business outcome (a purchase that cannot be attributed) is not an error: it is a
//! `Rejected` event the saga needs. An error here means the command itself cannot be accepted,
//! so nothing happens and the application decides what to do with the message (open a new
//! journey, dead-letter it, report a bug).

use super::JourneyStatus;

/// A command the domain refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The journey is converted or reverted: the interaction belongs to a new journey.
    #[error("the journey is {status}: the interaction opens a new journey")]
    JourneyClosed {
        /// The closed journey's status.
        status: JourneyStatus,
    },
    /// Only a converted journey can be reverted; this one has had no purchase yet.
    #[error("the journey has no conversion to revert")]
    NothingToRevert,
    /// A sale cannot be worth less than nothing.
    #[error("a purchase amount cannot be negative, got {amount_minor} minor units")]
    NegativeAmount {
        /// The refused amount.
        amount_minor: i64,
    },
    /// The campaign settings given with a purchase are not those of the purchase's campaign.
    #[error("the purchase belongs to campaign {expected:?}, settings of {given} were given")]
    WrongCampaign {
        /// The campaign the journey determined, if any.
        expected: Option<String>,
        /// The campaign whose settings came with the command.
        given: String,
    },
    /// An attribution window must not be negative.
    #[error("an attribution window must be at least 0 days, got {0}")]
    InvalidAttributionWindow(i32),
    /// A fraud threshold is a score, 0..=100.
    #[error("a fraud threshold must be within 0..=100, got {0}")]
    InvalidFraudThreshold(i32),
}
