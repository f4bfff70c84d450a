//! The `Campaign` aggregate: defined once, then DRAFT → ACTIVE ⇄ PAUSED → COMPLETED.
//!
//! A campaign's definition (budget, terms, model, window, threshold) is fixed at creation: the
//! sagas already running were decided under it, and a change would be a new campaign.

use alpes_aggregate::{Aggregate, DomainEvent};
use alpes_contracts::Money;
use alpes_contracts::events::attribution::AttributionModel;
use alpes_contracts::events::commission::{CommissionKind, CommissionTerms};
use alpes_contracts::limits;
use serde::{Deserialize, Serialize};

/// What a campaign is, as created. Stored in `CampaignCreated` in marketing's own shape: what
/// the integration contract announces is made from it in one place ([`Terms`] and [`Model`]
/// convert), so a change of `schema/v1` cannot change what replay reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignDefinition {
    pub name: String,
    pub budget: Money,
    pub terms: Terms,
    pub attribution_model: Model,
    pub attribution_window_days: i32,
    pub fraud_threshold: i32,
}

/// How partners' commissions are computed, as the campaign was defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub kind: RateKind,
    /// For a percentage: basis points of the sale.
    pub percentage_bps: Option<i32>,
    /// For a fixed commission: minor units per sale.
    pub fixed_minor: Option<i64>,
    pub minimum_minor: i64,
    pub maximum_minor: Option<i64>,
}

/// Whether a commission is a share of the sale or a fixed amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RateKind {
    Percentage,
    Fixed,
}

/// How attribution credits a sale to the touchpoints before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Model {
    LastTouch,
    FirstTouch,
    Linear,
    PositionBased,
    TimeDecay,
}

impl From<&Terms> for CommissionTerms {
    fn from(terms: &Terms) -> Self {
        Self {
            kind: match terms.kind {
                RateKind::Percentage => CommissionKind::Percentage,
                RateKind::Fixed => CommissionKind::Fixed,
            },
            percentage_bps: terms.percentage_bps,
            fixed_minor: terms.fixed_minor,
            minimum_minor: terms.minimum_minor,
            maximum_minor: terms.maximum_minor,
        }
    }
}

impl From<Model> for AttributionModel {
    fn from(model: Model) -> Self {
        match model {
            Model::LastTouch => Self::LastTouch,
            Model::FirstTouch => Self::FirstTouch,
            Model::Linear => Self::Linear,
            Model::PositionBased => Self::PositionBased,
            Model::TimeDecay => Self::TimeDecay,
        }
    }
}

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignStatus {
    Draft,
    Active,
    Paused,
    Completed,
}

/// A lifecycle step a user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Activate,
    Pause,
    Complete,
}

/// The facts of a campaign's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CampaignEvent {
    Created {
        definition: Box<CampaignDefinition>,
    },
    StatusChanged {
        status: CampaignStatus,
        reason: Option<String>,
    },
}

/// A campaign as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub definition: CampaignDefinition,
    pub status: CampaignStatus,
}

impl DomainEvent for CampaignEvent {
    fn kind(&self) -> &'static str {
        match self {
            Self::Created { .. } => "CampaignCreated",
            Self::StatusChanged { .. } => "CampaignStatusChanged",
        }
    }
}

/// What can be asked of a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignCommand {
    /// Create it from its definition, once checked.
    Create(Box<CampaignDefinition>),
    /// Move it through its lifecycle; asking for the status it has changes nothing.
    Transition {
        transition: Transition,
        reason: Option<String>,
    },
}

/// A campaign's state: `None` until created.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CampaignState(pub Option<Campaign>);

impl Aggregate for CampaignState {
    type Command = CampaignCommand;
    type Event = CampaignEvent;
    type Error = DomainError;

    fn decide(&self, command: CampaignCommand) -> Result<Vec<CampaignEvent>, DomainError> {
        match command {
            CampaignCommand::Create(definition) => self.create(*definition),
            CampaignCommand::Transition { transition, reason } => {
                self.transition(transition, reason)
            }
        }
    }

    fn apply(&mut self, event: &CampaignEvent) {
        match event {
            CampaignEvent::Created { definition } => {
                self.0 = Some(Campaign {
                    definition: CampaignDefinition::clone(definition),
                    status: CampaignStatus::Draft,
                });
            }
            CampaignEvent::StatusChanged { status, .. } => {
                if let Some(campaign) = &mut self.0 {
                    campaign.status = *status;
                }
            }
        }
    }
}

/// A command that cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("a {from:?} campaign cannot {transition:?}")]
    Transition {
        from: CampaignStatus,
        transition: Transition,
    },
    #[error("no such campaign")]
    Unknown,
    #[error("the campaign already exists")]
    Exists,
}

fn invalid(field: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field,
        message: message.into(),
    }
}

impl CampaignState {
    /// Creates the campaign, after checking its definition.
    fn create(&self, definition: CampaignDefinition) -> Result<Vec<CampaignEvent>, DomainError> {
        if self.0.is_some() {
            return Err(DomainError::Exists);
        }
        validate(&definition)?;
        Ok(vec![CampaignEvent::Created {
            definition: Box::new(definition),
        }])
    }

    /// Moves the campaign through its lifecycle; asking for the status it has changes nothing.
    fn transition(
        &self,
        transition: Transition,
        reason: Option<String>,
    ) -> Result<Vec<CampaignEvent>, DomainError> {
        let campaign = self.0.as_ref().ok_or(DomainError::Unknown)?;
        use CampaignStatus::*;
        let to = match (campaign.status, transition) {
            (Active, Transition::Activate)
            | (Paused, Transition::Pause)
            | (Completed, Transition::Complete) => {
                return Ok(Vec::new());
            }
            (Draft | Paused, Transition::Activate) => Active,
            (Active, Transition::Pause) => Paused,
            (Draft | Active | Paused, Transition::Complete) => Completed,
            (from, transition) => return Err(DomainError::Transition { from, transition }),
        };
        Ok(vec![CampaignEvent::StatusChanged { status: to, reason }])
    }
}

fn validate(d: &CampaignDefinition) -> Result<(), DomainError> {
    if d.name.trim().is_empty() {
        return Err(invalid("name", "must not be empty"));
    }
    if let Some(problem) = limits::NAME.problem(&d.name) {
        return Err(invalid("name", problem));
    }
    if d.budget.amount_minor <= 0 {
        return Err(invalid("budget.amount_minor", "must be positive"));
    }
    let code = &d.budget.currency;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid(
            "budget.currency",
            "must be an ISO 4217 code such as EUR",
        ));
    }
    let t = &d.terms;
    // Money is never negative in terms, whether or not their kind uses the amount.
    let amounts = [
        ("terms.fixed_minor", t.fixed_minor),
        ("terms.minimum_minor", Some(t.minimum_minor)),
        ("terms.maximum_minor", t.maximum_minor),
    ];
    for (field, amount) in amounts {
        if amount.is_some_and(|a| a < 0) {
            return Err(invalid(field, "must not be negative"));
        }
    }
    match t.kind {
        RateKind::Percentage => match t.percentage_bps {
            Some(bps) if (0..=10_000).contains(&bps) => {}
            _ => {
                return Err(invalid(
                    "terms.percentage_bps",
                    "a PERCENTAGE needs 0..=10000 basis points",
                ));
            }
        },
        RateKind::Fixed if t.fixed_minor.is_none() => {
            return Err(invalid(
                "terms.fixed_minor",
                "a FIXED commission needs a non-negative amount",
            ));
        }
        RateKind::Fixed => {}
    }
    if t.maximum_minor.is_some_and(|max| max < t.minimum_minor) {
        return Err(invalid(
            "terms.maximum_minor",
            "must not be below the minimum",
        ));
    }
    if !(1..=365).contains(&d.attribution_window_days) {
        return Err(invalid("attribution_window_days", "must be 1..=365"));
    }
    if !(0..=100).contains(&d.fraud_threshold) {
        return Err(invalid("fraud_threshold", "must be 0..=100"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition() -> CampaignDefinition {
        CampaignDefinition {
            name: "Black Friday".into(),
            budget: Money::new(100_000, "EUR"),
            terms: Terms {
                kind: RateKind::Percentage,
                percentage_bps: Some(1_000),
                fixed_minor: None,
                minimum_minor: 500,
                maximum_minor: Some(1_000),
            },
            attribution_model: Model::LastTouch,
            attribution_window_days: 30,
            fraud_threshold: 80,
        }
    }

    fn given(events: &[CampaignEvent]) -> CampaignState {
        let mut state = CampaignState::default();
        events.iter().for_each(|e| state.apply(e));
        state
    }

    fn created() -> CampaignEvent {
        CampaignEvent::Created {
            definition: Box::new(definition()),
        }
    }

    fn status(status: CampaignStatus) -> CampaignEvent {
        CampaignEvent::StatusChanged {
            status,
            reason: None,
        }
    }

    #[test]
    fn a_valid_campaign_is_created_as_a_draft() {
        let events = given(&[]).create(definition()).unwrap();
        assert_eq!(events, [created()]);
        assert_eq!(given(&events).0.unwrap().status, CampaignStatus::Draft);
        assert_eq!(
            given(&[created()]).create(definition()),
            Err(DomainError::Exists)
        );
    }

    #[test]
    fn an_invalid_definition_names_the_field() {
        let field = |d| match given(&[]).create(d) {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(CampaignDefinition {
                name: " ".into(),
                ..definition()
            }),
            "name"
        );
        let mut d = definition();
        d.budget.amount_minor = 0;
        assert_eq!(field(d), "budget.amount_minor");
        let mut d = definition();
        d.terms.percentage_bps = Some(10_001);
        assert_eq!(field(d), "terms.percentage_bps");
        let mut d = definition();
        d.terms.maximum_minor = Some(100);
        assert_eq!(field(d), "terms.maximum_minor");
        let mut d = definition();
        d.name = "n".repeat(limits::NAME.max_bytes + 1);
        assert_eq!(field(d), "name");
        let mut d = definition();
        d.name = "Black\u{0}Friday".into();
        assert_eq!(field(d), "name");
        assert_eq!(
            field(CampaignDefinition {
                fraud_threshold: 101,
                ..definition()
            }),
            "fraud_threshold"
        );
    }

    #[test]
    fn negative_money_anywhere_in_the_terms_is_refused_whatever_the_kind() {
        let field = |d| match given(&[]).create(d) {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        // A PERCENTAGE does not use `fixed_minor`, but a negative one is still refused.
        let mut d = definition();
        d.terms.fixed_minor = Some(-1);
        assert_eq!(field(d), "terms.fixed_minor");
        let mut d = definition();
        d.terms.kind = RateKind::Fixed;
        d.terms.fixed_minor = Some(-1);
        assert_eq!(field(d), "terms.fixed_minor");
        let mut d = definition();
        d.terms.minimum_minor = -1;
        assert_eq!(field(d), "terms.minimum_minor");
        let mut d = definition();
        d.terms.minimum_minor = 0;
        d.terms.maximum_minor = Some(-1);
        assert_eq!(field(d), "terms.maximum_minor");
        let mut d = definition();
        d.terms.kind = RateKind::Fixed;
        d.terms.fixed_minor = Some(0);
        assert!(given(&[]).create(d).is_ok(), "zero is not negative");
    }

    #[test]
    fn the_lifecycle_moves_forward_and_repeats_are_no_ops() {
        use CampaignStatus::*;
        let draft = given(&[created()]);
        assert_eq!(
            draft.transition(Transition::Activate, None).unwrap(),
            [status(Active)]
        );
        let active = given(&[created(), status(Active)]);
        assert_eq!(active.transition(Transition::Activate, None).unwrap(), []);
        assert_eq!(
            active.transition(Transition::Pause, None).unwrap(),
            [status(Paused)]
        );
        let paused = given(&[created(), status(Active), status(Paused)]);
        assert_eq!(
            paused.transition(Transition::Activate, None).unwrap(),
            [status(Active)]
        );
        let completed = given(&[created(), status(Completed)]);
        assert_eq!(
            completed.transition(Transition::Complete, None).unwrap(),
            []
        );
        assert!(matches!(
            completed.transition(Transition::Activate, None),
            Err(DomainError::Transition {
                from: Completed,
                ..
            })
        ));
        assert!(matches!(
            draft.transition(Transition::Pause, None),
            Err(DomainError::Transition { from: Draft, .. })
        ));
        assert_eq!(
            given(&[]).transition(Transition::Activate, None),
            Err(DomainError::Unknown)
        );
    }

    #[test]
    fn a_campaign_as_version_1_stored_it_reads_and_is_written_alike() {
        // Marketing's own terms and model must keep reading what was stored while they were
        // the contract's, and write the same shape (no version 2 yet).
        let stored = serde_json::json!({
            "type": "Created",
            "definition": {
                "name": "Black Friday",
                "budget": { "amount_minor": 100_000, "currency": "EUR" },
                "terms": {
                    "kind": "FIXED", "percentage_bps": null, "fixed_minor": 700,
                    "minimum_minor": 0, "maximum_minor": null
                },
                "attribution_model": "POSITION_BASED",
                "attribution_window_days": 30,
                "fraud_threshold": 80
            }
        });
        let event = alpes_aggregate::read::<CampaignEvent>("CampaignCreated", 1, &stored).unwrap();
        let CampaignEvent::Created { definition } = &event else {
            panic!("{event:?}");
        };
        assert_eq!(definition.terms.kind, RateKind::Fixed);
        assert_eq!(definition.terms.fixed_minor, Some(700));
        assert_eq!(definition.attribution_model, Model::PositionBased);
        assert_eq!(serde_json::to_value(&event).unwrap(), stored);
        let announced = CommissionTerms::from(&definition.terms);
        assert_eq!(announced.kind, CommissionKind::Fixed);
        assert_eq!(
            AttributionModel::from(definition.attribution_model),
            AttributionModel::PositionBased
        );
    }
}
