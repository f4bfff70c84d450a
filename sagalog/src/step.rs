//! A step: one saga event as the log records it, and what it says about the sale.

use alpes_contracts::events::attribution::{
    AttributionReverted, ConversionAttributed, ConversionRejected,
};
use alpes_contracts::events::commission::{
    CommissionConfirmed, CommissionRejected, CommissionReserved, CommissionReverted,
};
use alpes_contracts::events::marketing::{FraudDetected, SagaTimedOut};
use alpes_contracts::events::tracking::{
    InteractionKind, InteractionTracked, InteractionsDiscarded,
};
use alpes_contracts::{Event, Money, Timestamp};
use serde::{Deserialize, Serialize};

use crate::campaign::{Count, Counted};

/// Which way a step moves its saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// On the forward path, which goes on after it.
    Forward,
    /// Ends the forward path: the commission reserved or the sale rejected.
    Terminal,
    /// Asks for compensation, or reports a part of it done.
    Compensation,
}

impl Direction {
    /// The lowercase name stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::Terminal => "terminal",
            Self::Compensation => "compensation",
        }
    }

    /// The direction named `name` (as stored).
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Forward, Self::Terminal, Self::Compensation]
            .into_iter()
            .find(|d| d.as_str() == name)
    }
}

/// What a step says about the sale its saga is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub campaign_id: Option<String>,
    pub partner_id: Option<String>,
    pub amount: Option<Money>,
}

/// One event of a saga, ready to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The event's id: a step is recorded once however often it is delivered.
    pub event_id: String,
    pub saga_id: String,
    /// The event type's name, e.g. `CommissionReserved`.
    pub event_type: String,
    /// The service that announced it.
    pub service: String,
    pub direction: Direction,
    /// The whole event as JSON.
    pub payload: serde_json::Value,
    pub occurred_at: Timestamp,
    pub facts: Facts,
}

/// An event that belongs to the saga named in its metadata.
pub trait SagaEvent: Event + Serialize {
    /// The step's direction.
    const DIRECTION: Direction;

    /// What the event says about the sale.
    fn facts(&self) -> Facts;

    /// Whether it is a step of its saga at all (every saga event is, except interactions that
    /// are not purchases).
    fn is_step(&self) -> bool {
        true
    }

    /// When it happened for its saga: its `occurred_at`, except for a timeout, which happened
    /// at its deadline (however late it was announced; see `status`).
    fn happened_at(&self) -> Timestamp {
        self.metadata().occurred_at
    }

    /// The campaign it counts for in the statistics, and what it adds, if it adds anything.
    fn count(&self) -> Option<(String, Count)> {
        None
    }
}

/// What the log keeps of one event: its step, if it is one, and its count in its campaign's
/// statistics, if it counts. Both are written in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub step: Option<Step>,
    pub counted: Option<Counted>,
}

impl Observation {
    /// What the log keeps of `event`.
    pub fn of<E: SagaEvent>(event: &E) -> Self {
        Self {
            step: Step::of(event),
            counted: event.count().map(|(campaign_id, count)| Counted {
                event_id: event.metadata().event_id.clone(),
                campaign_id,
                count,
            }),
        }
    }

    /// Whether there is nothing to keep.
    pub fn is_empty(&self) -> bool {
        self.step.is_none() && self.counted.is_none()
    }
}

impl From<Step> for Observation {
    fn from(step: Step) -> Self {
        Self {
            step: Some(step),
            counted: None,
        }
    }
}

impl Step {
    /// The step `event` is, if it is one: it must be a step and name its saga.
    pub fn of<E: SagaEvent>(event: &E) -> Option<Self> {
        let metadata = event.metadata();
        let saga_id = metadata
            .saga_id
            .as_deref()
            .filter(|s| !s.trim().is_empty())?;
        if !event.is_step() {
            return None;
        }
        let event_type = E::event_type();
        Some(Self {
            event_id: metadata.event_id.clone(),
            saga_id: saga_id.to_owned(),
            event_type: event_type.name.to_owned(),
            service: event_type.service.to_owned(),
            direction: E::DIRECTION,
            payload: serde_json::to_value(event).unwrap_or(serde_json::Value::Null),
            occurred_at: event.happened_at(),
            facts: event.facts(),
        })
    }
}

impl SagaEvent for InteractionTracked {
    const DIRECTION: Direction = Direction::Forward;

    fn facts(&self) -> Facts {
        Facts {
            campaign_id: self.tracking.campaign_id.clone(),
            partner_id: self.tracking.partner_id.clone(),
            amount: self.purchase.as_ref().map(|p| p.amount.clone()),
        }
    }

    fn is_step(&self) -> bool {
        self.kind == InteractionKind::Purchase
    }

    fn count(&self) -> Option<(String, Count)> {
        let campaign = self.tracking.campaign_id.clone()?;
        Some((campaign, Count::Interaction { kind: self.kind }))
    }
}

impl SagaEvent for ConversionAttributed {
    const DIRECTION: Direction = Direction::Forward;

    fn facts(&self) -> Facts {
        Facts {
            campaign_id: Some(self.campaign_id.clone()),
            // The partner credited most (the first of equals).
            partner_id: self
                .credits
                .iter()
                .rev()
                .max_by_key(|c| c.weight_ppm)
                .map(|c| c.partner_id.clone()),
            amount: Some(self.amount.clone()),
        }
    }

    fn count(&self) -> Option<(String, Count)> {
        let count = Count::Conversion {
            amount_minor: self.amount.amount_minor,
        };
        Some((self.campaign_id.clone(), count))
    }
}

impl SagaEvent for ConversionRejected {
    const DIRECTION: Direction = Direction::Terminal;

    fn facts(&self) -> Facts {
        Facts {
            campaign_id: self.campaign_id.clone(),
            ..Facts::default()
        }
    }

    fn count(&self) -> Option<(String, Count)> {
        Some((self.campaign_id.clone()?, Count::ConversionRejected))
    }
}

impl SagaEvent for CommissionReserved {
    const DIRECTION: Direction = Direction::Terminal;

    fn facts(&self) -> Facts {
        Facts {
            campaign_id: Some(self.campaign_id.clone()),
            partner_id: Some(self.partner_id.clone()),
            amount: Some(self.sale_amount.clone()),
        }
    }

    fn count(&self) -> Option<(String, Count)> {
        let count = Count::CommissionReserved {
            amount_minor: self.commission.amount_minor,
        };
        Some((self.campaign_id.clone(), count))
    }
}

impl SagaEvent for CommissionRejected {
    const DIRECTION: Direction = Direction::Terminal;

    fn facts(&self) -> Facts {
        Facts {
            campaign_id: Some(self.campaign_id.clone()),
            partner_id: self.partner_id.clone(),
            amount: None,
        }
    }

    fn count(&self) -> Option<(String, Count)> {
        Some((self.campaign_id.clone(), Count::CommissionRejected))
    }
}

impl SagaEvent for CommissionConfirmed {
    const DIRECTION: Direction = Direction::Forward;

    fn facts(&self) -> Facts {
        Facts {
            campaign_id: Some(self.campaign_id.clone()),
            partner_id: Some(self.partner_id.clone()),
            amount: None,
        }
    }
}

impl SagaEvent for FraudDetected {
    const DIRECTION: Direction = Direction::Compensation;

    fn facts(&self) -> Facts {
        Facts::default()
    }
}

impl SagaEvent for SagaTimedOut {
    const DIRECTION: Direction = Direction::Compensation;

    fn facts(&self) -> Facts {
        Facts::default()
    }

    fn happened_at(&self) -> Timestamp {
        self.deadline
    }
}

impl SagaEvent for CommissionReverted {
    const DIRECTION: Direction = Direction::Compensation;

    fn facts(&self) -> Facts {
        Facts {
            campaign_id: self.campaign_id.clone(),
            ..Facts::default()
        }
    }

    fn count(&self) -> Option<(String, Count)> {
        let released_minor = self.released.as_ref().map_or(0, |m| m.amount_minor);
        Some((
            self.campaign_id.clone()?,
            Count::CommissionReverted { released_minor },
        ))
    }
}

impl SagaEvent for AttributionReverted {
    const DIRECTION: Direction = Direction::Compensation;

    fn facts(&self) -> Facts {
        Facts::default()
    }
}

impl SagaEvent for InteractionsDiscarded {
    const DIRECTION: Direction = Direction::Compensation;

    fn facts(&self) -> Facts {
        Facts::default()
    }
}
