//! The contract events tests publish, as the services that own them would.

use alpes_contracts::events::attribution::AttributionModel;
use alpes_contracts::events::commission::{CommissionKind, CommissionTerms};
use alpes_contracts::events::marketing::{CampaignActivated, CampaignCreated};
use alpes_contracts::events::tracking::{
    InteractionKind, InteractionTracked, PageContext, Purchase, Target, TrackingParams, Visitor,
};
use alpes_contracts::{EventMetadata, Money};
use chrono::{TimeDelta, Utc};

use crate::{TRACEPARENT, unique};

/// `bps` of each sale, at least `minimum_minor`, at most `maximum_minor`.
pub fn percentage(bps: i32, minimum_minor: i64, maximum_minor: Option<i64>) -> CommissionTerms {
    CommissionTerms {
        kind: CommissionKind::Percentage,
        percentage_bps: Some(bps),
        fixed_minor: None,
        minimum_minor,
        maximum_minor,
    }
}

/// A LAST_TOUCH campaign in EUR with a 30-day window and a fraud threshold of 70, created.
pub fn campaign_created(
    campaign_id: &str,
    budget_minor: i64,
    terms: CommissionTerms,
) -> CampaignCreated {
    CampaignCreated {
        metadata: EventMetadata::new::<CampaignCreated>(),
        campaign_id: campaign_id.to_owned(),
        name: "Spring sale".to_owned(),
        budget: Money::new(budget_minor, "EUR"),
        terms,
        attribution_model: AttributionModel::LastTouch,
        attribution_window_days: 30,
        fraud_threshold: 70,
    }
}

/// The campaign, activated.
pub fn campaign_activated(campaign_id: &str) -> CampaignActivated {
    CampaignActivated {
        metadata: EventMetadata::new::<CampaignActivated>(),
        campaign_id: campaign_id.to_owned(),
        reason: None,
    }
}

/// A `kind` interaction of `visitor`, five minutes ago, through `campaign`'s affiliate link
/// (of `partner`, if any).
pub fn interaction(
    visitor: &str,
    kind: InteractionKind,
    campaign: &str,
    partner: Option<&str>,
) -> InteractionTracked {
    InteractionTracked {
        metadata: EventMetadata::new::<InteractionTracked>(),
        interaction_id: uuid::Uuid::now_v7().to_string(),
        kind,
        interacted_at: Utc::now() - TimeDelta::minutes(5),
        visitor: Visitor {
            user_id: None,
            anonymous_id: visitor.to_owned(),
            ip: None,
            user_agent: Some("Mozilla/5.0 Firefox/128.0".to_owned()),
        },
        tracking: TrackingParams {
            campaign_id: Some(campaign.to_owned()),
            partner_id: partner.map(str::to_owned),
            medium: Some("affiliate".to_owned()),
            ..TrackingParams::default()
        },
        target: Target {
            url: "https://shop.example/".to_owned(),
            element: None,
        },
        context: PageContext::default(),
        purchase: None,
    }
}

/// `visitor`'s purchase of `amount_minor` EUR, now, opening saga `saga`, with [`TRACEPARENT`].
pub fn purchase(
    visitor: &str,
    campaign: &str,
    saga: &str,
    amount_minor: i64,
) -> InteractionTracked {
    let mut tracked = interaction(visitor, InteractionKind::Purchase, campaign, None);
    tracked.metadata = EventMetadata::new::<InteractionTracked>().in_saga(saga);
    tracked.metadata.traceparent = Some(TRACEPARENT.to_owned());
    tracked.interacted_at = Utc::now();
    tracked.purchase = Some(Purchase {
        order_id: unique("order"),
        amount: Money::new(amount_minor, "EUR"),
    });
    tracked
}
