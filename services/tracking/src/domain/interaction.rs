//! The `Interaction` aggregate: a view, click or purchase, registered once and discarded at
//! most once (when its sale's saga is compensated).

use alpes_aggregate::{Aggregate, DomainEvent};
use alpes_contracts::Timestamp;

use super::parts::{InteractionKind, PageContext, Purchase, Target, TrackingParams, Visitor};
use serde::{Deserialize, Serialize};

/// What was tracked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub interaction_id: String,
    pub kind: InteractionKind,
    pub interacted_at: Timestamp,
    pub visitor: Visitor,
    pub tracking: TrackingParams,
    pub target: Target,
    pub context: PageContext,
    pub purchase: Option<Purchase>,
    /// The sale's saga, for a purchase.
    pub saga_id: Option<String>,
}

/// Whether an interaction still counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Registered,
    Discarded,
}

/// The facts of an interaction's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum InteractionEvent {
    Registered { interaction: Box<Interaction> },
    Discarded { reason: String },
}

impl DomainEvent for InteractionEvent {
    fn kind(&self) -> &'static str {
        match self {
            Self::Registered { .. } => "Registered",
            Self::Discarded { .. } => "Discarded",
        }
    }
}

/// What can be asked of an interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InteractionCommand {
    /// Registers it, as of `now`; registering an interaction that exists changes nothing.
    Register {
        interaction: Box<Interaction>,
        now: Timestamp,
    },
    /// Discards it; discarding twice, or something never registered, changes nothing.
    Discard { reason: String },
}

/// An interaction's current state: `None` until registered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InteractionState {
    pub interaction: Option<Interaction>,
    pub status: Option<Status>,
}

impl Aggregate for InteractionState {
    type Command = InteractionCommand;
    type Event = InteractionEvent;
    type Error = DomainError;

    fn decide(&self, command: InteractionCommand) -> Result<Vec<InteractionEvent>, DomainError> {
        match command {
            InteractionCommand::Register { interaction, now } => {
                if self.interaction.is_some() {
                    return Ok(Vec::new());
                }
                validate(&interaction, now)?;
                Ok(vec![InteractionEvent::Registered { interaction }])
            }
            InteractionCommand::Discard { reason } => Ok(match self.status {
                Some(Status::Registered) => vec![InteractionEvent::Discarded { reason }],
                Some(Status::Discarded) | None => Vec::new(),
            }),
        }
    }

    fn apply(&mut self, event: &InteractionEvent) {
        match event {
            InteractionEvent::Registered { interaction } => {
                self.interaction = Some(Interaction::clone(interaction));
                self.status = Some(Status::Registered);
            }
            InteractionEvent::Discarded { .. } => self.status = Some(Status::Discarded),
        }
    }
}

/// A command that cannot be carried out, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DomainError {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> DomainError {
    DomainError {
        field,
        message: message.into(),
    }
}

fn validate(i: &Interaction, now: Timestamp) -> Result<(), DomainError> {
    if i.visitor.anonymous_id.trim().is_empty() {
        return Err(invalid("visitor.anonymous_id", "must not be empty"));
    }
    if i.target.url.trim().is_empty() {
        return Err(invalid("target.url", "must not be empty"));
    }
    if i.interacted_at > now + chrono::Duration::minutes(5) {
        return Err(invalid("interacted_at", "must not be in the future"));
    }
    match (&i.kind, &i.purchase) {
        (InteractionKind::Purchase, None) => Err(invalid(
            "purchase",
            "a PURCHASE needs its order id and amount",
        )),
        (InteractionKind::Purchase, Some(p)) => {
            if p.order_id.trim().is_empty() {
                return Err(invalid("purchase.order_id", "must not be empty"));
            }
            if p.amount.amount_minor <= 0 {
                return Err(invalid("purchase.amount.amount_minor", "must be positive"));
            }
            let code = &p.amount.currency;
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(invalid(
                    "purchase.amount.currency",
                    "must be an ISO 4217 code such as EUR",
                ));
            }
            Ok(())
        }
        (_, Some(_)) => Err(invalid("purchase", "only a PURCHASE has a purchase")),
        (_, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use alpes_aggregate::given;
    use alpes_contracts::Money;
    use chrono::Utc;

    use super::*;

    fn click() -> Interaction {
        Interaction {
            interaction_id: "i-1".into(),
            kind: InteractionKind::Click,
            interacted_at: Utc::now(),
            visitor: Visitor {
                user_id: None,
                anonymous_id: "visitor-1".into(),
                ip: None,
                user_agent: Some("Firefox".into()),
            },
            tracking: TrackingParams {
                partner_id: Some("partner-1".into()),
                campaign_id: Some("campaign-1".into()),
                ..TrackingParams::default()
            },
            target: Target {
                url: "https://shop.example/p/1".into(),
                element: None,
            },
            context: PageContext::default(),
            purchase: None,
            saga_id: None,
        }
    }

    fn purchase(amount_minor: i64, currency: &str) -> Interaction {
        Interaction {
            kind: InteractionKind::Purchase,
            purchase: Some(Purchase {
                order_id: "order-1".into(),
                amount: Money::new(amount_minor, currency),
            }),
            saga_id: Some("saga-1".into()),
            ..click()
        }
    }

    fn register(interaction: Interaction, now: Timestamp) -> InteractionCommand {
        InteractionCommand::Register {
            interaction: Box::new(interaction),
            now,
        }
    }

    fn discard() -> InteractionCommand {
        InteractionCommand::Discard {
            reason: "fraud".into(),
        }
    }

    /// The field a registration from scratch is refused for.
    fn refused_field(interaction: Interaction, now: Timestamp) -> &'static str {
        InteractionState::default()
            .decide(register(interaction, now))
            .unwrap_err()
            .field
    }

    #[test]
    fn a_click_is_registered() {
        let click = click();
        let registered = InteractionEvent::Registered {
            interaction: Box::new(click.clone()),
        };
        let state = given::<InteractionState>([])
            .when(register(click.clone(), Utc::now()))
            .then([registered]);
        assert_eq!(state.interaction, Some(click));
        assert_eq!(state.status, Some(Status::Registered));
    }

    #[test]
    fn registering_again_changes_nothing() {
        let registered = InteractionEvent::Registered {
            interaction: Box::new(click()),
        };
        given::<InteractionState>([registered])
            .when(register(click(), Utc::now()))
            .then_nothing();
    }

    #[test]
    fn a_purchase_needs_a_positive_amount_in_an_iso_currency() {
        let now = Utc::now();
        given::<InteractionState>([])
            .when(register(purchase(12_000, "EUR"), now))
            .then_events();
        let field = |i| refused_field(i, now);
        assert_eq!(field(purchase(0, "EUR")), "purchase.amount.amount_minor");
        assert_eq!(field(purchase(100, "euro")), "purchase.amount.currency");
        assert_eq!(
            field(Interaction {
                purchase: None,
                ..purchase(1, "EUR")
            }),
            "purchase"
        );
        let click_with_purchase = Interaction {
            kind: InteractionKind::Click,
            ..purchase(1, "EUR")
        };
        assert_eq!(field(click_with_purchase), "purchase");
    }

    #[test]
    fn a_visitor_and_a_target_are_required_and_the_future_is_refused() {
        let now = Utc::now();
        let mut anonymous = click();
        anonymous.visitor.anonymous_id = " ".into();
        assert_eq!(refused_field(anonymous, now), "visitor.anonymous_id");
        let mut later = click();
        later.interacted_at = now + chrono::Duration::hours(1);
        assert_eq!(refused_field(later, now), "interacted_at");
    }

    #[test]
    fn discarding_happens_once_and_only_to_registered_interactions() {
        let registered = InteractionEvent::Registered {
            interaction: Box::new(click()),
        };
        let discarded = InteractionEvent::Discarded {
            reason: "fraud".into(),
        };
        let state = given::<InteractionState>([registered.clone()])
            .when(discard())
            .then([discarded.clone()]);
        assert_eq!(state.status, Some(Status::Discarded));
        given::<InteractionState>([registered, discarded])
            .when(discard())
            .then_nothing();
        given::<InteractionState>([]).when(discard()).then_nothing();
    }

    #[test]
    fn an_interaction_as_version_1_stored_it_reads_and_is_written_alike() {
        // Tracking's own types must keep reading what was stored while they were the
        // contract's, and write the same shape (no version 2 yet).
        let stored = serde_json::json!({
            "type": "Registered",
            "interaction": {
                "interaction_id": "i-1",
                "kind": "PURCHASE",
                "interacted_at": "2026-01-02T03:04:05.123456Z",
                "visitor": {
                    "user_id": null, "anonymous_id": "visitor-1",
                    "ip": "10.0.0.1", "user_agent": "Firefox"
                },
                "tracking": {
                    "source": "blog", "medium": "cpc", "campaign_id": "campaign-1",
                    "partner_id": "partner-1", "content": null, "term": null
                },
                "target": { "url": "https://shop.example/p/1", "element": "buy" },
                "context": { "page": "/p/1", "referrer": null, "device": "mobile" },
                "purchase": {
                    "order_id": "order-1",
                    "amount": { "amount_minor": 4200, "currency": "EUR" }
                },
                "saga_id": "saga-1"
            }
        });
        let event = alpes_aggregate::read::<InteractionEvent>("Registered", 1, &stored).unwrap();
        let InteractionEvent::Registered { interaction } = &event else {
            panic!("{event:?}");
        };
        assert_eq!(interaction.kind, InteractionKind::Purchase);
        assert_eq!(interaction.visitor.ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(
            interaction.tracking.partner_id.as_deref(),
            Some("partner-1")
        );
        let amount = &interaction.purchase.as_ref().unwrap().amount;
        assert_eq!(amount, &Money::new(4200, "EUR"));
        assert_eq!(serde_json::to_value(&event).unwrap(), stored);
    }
}
