//! What an interaction is made of, in tracking's own shape — the shape its stored events keep —
//! and the one place where it meets the integration contract's: requests come in as the
//! contract's types and are converted here, and `InteractionTracked` is made here. A change of
//! `schema/v1` therefore cannot change what replay reads.

use alpes_contracts::events::tracking as contract;
use alpes_contracts::{EventMetadata, Money};
use serde::{Deserialize, Serialize};

use super::Interaction;

/// What the visitor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InteractionKind {
    View,
    Click,
    Purchase,
}

/// Who interacted: the known user, the cookie or device id (the key of their interactions),
/// their IP address and `User-Agent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visitor {
    pub user_id: Option<String>,
    pub anonymous_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The link the visitor came through: source, medium, campaign, partner, content, term.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingParams {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign_id: Option<String>,
    pub partner_id: Option<String>,
    pub content: Option<String>,
    pub term: Option<String>,
}

/// What was interacted with: a URL and the element on its page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub url: String,
    pub element: Option<String>,
}

/// Where it happened: the page, its referrer, the device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageContext {
    pub page: Option<String>,
    pub referrer: Option<String>,
    pub device: Option<String>,
}

/// The order of a purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    pub order_id: String,
    pub amount: Money,
}

impl Interaction {
    /// The interaction as the contract announces it.
    pub fn announced(&self, metadata: EventMetadata) -> contract::InteractionTracked {
        contract::InteractionTracked {
            metadata,
            interaction_id: self.interaction_id.clone(),
            kind: match self.kind {
                InteractionKind::View => contract::InteractionKind::View,
                InteractionKind::Click => contract::InteractionKind::Click,
                InteractionKind::Purchase => contract::InteractionKind::Purchase,
            },
            interacted_at: self.interacted_at,
            visitor: contract::Visitor {
                user_id: self.visitor.user_id.clone(),
                anonymous_id: self.visitor.anonymous_id.clone(),
                ip: self.visitor.ip.clone(),
                user_agent: self.visitor.user_agent.clone(),
            },
            tracking: contract::TrackingParams {
                source: self.tracking.source.clone(),
                medium: self.tracking.medium.clone(),
                campaign_id: self.tracking.campaign_id.clone(),
                partner_id: self.tracking.partner_id.clone(),
                content: self.tracking.content.clone(),
                term: self.tracking.term.clone(),
            },
            target: contract::Target {
                url: self.target.url.clone(),
                element: self.target.element.clone(),
            },
            context: contract::PageContext {
                page: self.context.page.clone(),
                referrer: self.context.referrer.clone(),
                device: self.context.device.clone(),
            },
            purchase: self.purchase.as_ref().map(|p| contract::Purchase {
                order_id: p.order_id.clone(),
                amount: p.amount.clone(),
            }),
        }
    }
}

impl From<contract::InteractionKind> for InteractionKind {
    fn from(kind: contract::InteractionKind) -> Self {
        match kind {
            contract::InteractionKind::View => Self::View,
            contract::InteractionKind::Click => Self::Click,
            contract::InteractionKind::Purchase => Self::Purchase,
        }
    }
}

impl From<contract::Visitor> for Visitor {
    fn from(v: contract::Visitor) -> Self {
        let contract::Visitor {
            user_id,
            anonymous_id,
            ip,
            user_agent,
        } = v;
        Self {
            user_id,
            anonymous_id,
            ip,
            user_agent,
        }
    }
}

impl From<contract::TrackingParams> for TrackingParams {
    fn from(t: contract::TrackingParams) -> Self {
        let contract::TrackingParams {
            source,
            medium,
            campaign_id,
            partner_id,
            content,
            term,
        } = t;
        Self {
            source,
            medium,
            campaign_id,
            partner_id,
            content,
            term,
        }
    }
}

impl From<contract::Target> for Target {
    fn from(t: contract::Target) -> Self {
        let contract::Target { url, element } = t;
        Self { url, element }
    }
}

impl From<contract::PageContext> for PageContext {
    fn from(c: contract::PageContext) -> Self {
        let contract::PageContext {
            page,
            referrer,
            device,
        } = c;
        Self {
            page,
            referrer,
            device,
        }
    }
}

impl From<contract::Purchase> for Purchase {
    fn from(p: contract::Purchase) -> Self {
        let contract::Purchase { order_id, amount } = p;
        Self { order_id, amount }
    }
}
