//! A purchase: the interaction that converts a journey and starts a saga.

use alpes_contracts::events::tracking::{InteractionKind, InteractionTracked};
use alpes_contracts::{Money, Timestamp};
use serde::{Deserialize, Serialize};

use super::touchpoint::present;

/// What attribution needs to know of a PURCHASE interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    /// Id of the purchase interaction; a conversion is identified by it.
    pub interaction_id: String,
    /// The shop's order id.
    pub order_id: String,
    /// The order's total, in minor units of its currency.
    pub amount: Money,
    /// When the visitor bought.
    pub at: Timestamp,
    /// The campaign the purchase was tracked with, if any.
    pub campaign_id: Option<String>,
    /// The medium the purchase was tracked with, if any.
    pub medium: Option<String>,
    /// The buyer's `User-Agent`, if tracking had one.
    pub user_agent: Option<String>,
}

impl Purchase {
    /// The purchase of a tracked PURCHASE with its order; `None` for anything else.
    pub fn from_interaction(interaction: &InteractionTracked) -> Option<Self> {
        if interaction.kind != InteractionKind::Purchase {
            return None;
        }
        let order = interaction.purchase.as_ref()?;
        Some(Self {
            interaction_id: interaction.interaction_id.clone(),
            order_id: order.order_id.clone(),
            amount: order.amount.clone(),
            at: interaction.interacted_at,
            campaign_id: interaction.tracking.campaign_id.clone(),
            medium: interaction.tracking.medium.clone(),
            user_agent: interaction.visitor.user_agent.clone(),
        })
    }

    /// The campaign the purchase names, if it names one (a blank id names none).
    pub fn campaign(&self) -> Option<&str> {
        present(self.campaign_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use alpes_contracts::EventMetadata;
    use alpes_contracts::events::tracking::{
        PageContext, Purchase as Order, Target, TrackingParams, Visitor,
    };
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::{Touchpoint, TouchpointKind};

    fn tracked(kind: InteractionKind, order: Option<Order>) -> InteractionTracked {
        InteractionTracked {
            metadata: EventMetadata::new::<InteractionTracked>(),
            interaction_id: "i-1".into(),
            kind,
            interacted_at: Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap(),
            visitor: Visitor {
                user_id: None,
                anonymous_id: "visitor".into(),
                ip: None,
                user_agent: Some("Firefox".into()),
            },
            tracking: TrackingParams {
                campaign_id: Some("spring".into()),
                partner_id: Some("ada".into()),
                medium: Some("email".into()),
                ..TrackingParams::default()
            },
            target: Target {
                url: "https://shop.example/".into(),
                element: None,
            },
            context: PageContext::default(),
            purchase: order,
        }
    }

    #[test]
    fn a_tracked_purchase_becomes_a_purchase_and_not_a_touchpoint() {
        let order = Order {
            order_id: "o-1".into(),
            amount: Money::new(1_250, "EUR"),
        };
        let interaction = tracked(InteractionKind::Purchase, Some(order));
        let purchase = Purchase::from_interaction(&interaction).unwrap();
        assert_eq!(purchase.order_id, "o-1");
        assert_eq!(purchase.amount, Money::new(1_250, "EUR"));
        assert_eq!(purchase.campaign(), Some("spring"));
        assert_eq!(purchase.user_agent.as_deref(), Some("Firefox"));
        assert_eq!(Touchpoint::from_interaction(&interaction), None);
    }

    #[test]
    fn a_tracked_click_becomes_a_touchpoint_and_not_a_purchase() {
        let interaction = tracked(InteractionKind::Click, None);
        let touchpoint = Touchpoint::from_interaction(&interaction).unwrap();
        assert_eq!(touchpoint.kind, TouchpointKind::Click);
        assert_eq!(touchpoint.partner(), Some("ada"));
        assert_eq!(Purchase::from_interaction(&interaction), None);
    }

    #[test]
    fn a_purchase_without_its_order_is_no_purchase() {
        let interaction = tracked(InteractionKind::Purchase, None);
        assert_eq!(Purchase::from_interaction(&interaction), None);
    }
}
