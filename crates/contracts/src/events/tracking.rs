//! Events the tracking service produces: interactions, and their discarding on compensation.

use serde::{Deserialize, Serialize};

use crate::event::{impl_event, saga_key};
use crate::limits::{At, DETAIL, ID, Invalid, LABEL, URL, USER_AGENT, Validate};
use crate::{EventMetadata, Money, Timestamp};

/// What a visitor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InteractionKind {
    /// The visitor saw a page or an ad.
    View,
    /// The visitor clicked a link or an element.
    Click,
    /// The visitor bought something; starts a saga.
    Purchase,
}

/// Who interacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visitor {
    /// The known user, when logged in.
    pub user_id: Option<String>,
    /// Cookie or device id; the message key of their interactions.
    pub anonymous_id: String,
    /// The visitor's IP address.
    pub ip: Option<String>,
    /// The visitor's `User-Agent`.
    pub user_agent: Option<String>,
}

/// Tracking parameters of the link the visitor came through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingParams {
    /// Where the traffic comes from, e.g. a partner's site.
    pub source: Option<String>,
    /// The kind of traffic, e.g. `email`, `cpc`.
    pub medium: Option<String>,
    /// The campaign the link belongs to.
    pub campaign_id: Option<String>,
    /// The partner who published the link.
    pub partner_id: Option<String>,
    /// Which variant of the content was used.
    pub content: Option<String>,
    /// The search term, for paid search.
    pub term: Option<String>,
}

/// What was interacted with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The URL of the target.
    pub url: String,
    /// The element on the page, e.g. a button id.
    pub element: Option<String>,
}

/// Where the interaction happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageContext {
    /// The page the visitor was on.
    pub page: Option<String>,
    /// The page's referrer.
    pub referrer: Option<String>,
    /// The visitor's device, e.g. `mobile`.
    pub device: Option<String>,
}

/// The order of a PURCHASE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    /// The shop's order id.
    pub order_id: String,
    /// The order's total.
    pub amount: Money,
}

/// A visitor viewed, clicked or purchased; a PURCHASE starts a saga.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionTracked {
    pub metadata: EventMetadata,
    /// Id of the interaction.
    pub interaction_id: String,
    /// What the visitor did.
    pub kind: InteractionKind,
    /// When the visitor did it.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub interacted_at: Timestamp,
    /// Who did it.
    pub visitor: Visitor,
    /// The tracking parameters of the link they came through.
    pub tracking: TrackingParams,
    /// What they interacted with.
    pub target: Target,
    /// Where it happened.
    pub context: PageContext,
    /// The order, present exactly when `kind` is PURCHASE.
    pub purchase: Option<Purchase>,
}
impl_event!(InteractionTracked, "tracking", |e| &e.visitor.anonymous_id);

/// A compensated saga's interactions were discarded: they no longer count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionsDiscarded {
    pub metadata: EventMetadata,
    /// The visitor's anonymous id.
    pub visitor_id: String,
    /// The discarded interactions.
    pub interaction_ids: Vec<String>,
    /// Why they were discarded.
    pub reason: String,
}
impl_event!(InteractionsDiscarded, "tracking", |e| saga_key(&e.metadata));

impl Validate for Visitor {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.check_opt("user_id", ID, &self.user_id)?;
        at.check("anonymous_id", ID, &self.anonymous_id)?;
        at.check_opt("ip", LABEL, &self.ip)?;
        at.check_opt("user_agent", USER_AGENT, &self.user_agent)
    }
}

impl Validate for TrackingParams {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.check_opt("source", LABEL, &self.source)?;
        at.check_opt("medium", LABEL, &self.medium)?;
        at.check_opt("campaign_id", ID, &self.campaign_id)?;
        at.check_opt("partner_id", ID, &self.partner_id)?;
        at.check_opt("content", LABEL, &self.content)?;
        at.check_opt("term", LABEL, &self.term)
    }
}

impl Validate for Target {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.check("url", URL, &self.url)?;
        at.check_opt("element", LABEL, &self.element)
    }
}

impl Validate for PageContext {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.check_opt("page", URL, &self.page)?;
        at.check_opt("referrer", URL, &self.referrer)?;
        at.check_opt("device", LABEL, &self.device)
    }
}

impl Validate for Purchase {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.check("order_id", ID, &self.order_id)?;
        at.nested("amount", &self.amount)
    }
}

impl Validate for InteractionTracked {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("metadata", &self.metadata)?;
        at.check("interaction_id", ID, &self.interaction_id)?;
        at.nested("visitor", &self.visitor)?;
        at.nested("tracking", &self.tracking)?;
        at.nested("target", &self.target)?;
        at.nested("context", &self.context)?;
        at.nested_opt("purchase", &self.purchase)
    }
}

impl Validate for InteractionsDiscarded {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.nested("metadata", &self.metadata)?;
        at.check("visitor_id", ID, &self.visitor_id)?;
        at.check_each("interaction_ids", ID, &self.interaction_ids)?;
        at.check("reason", DETAIL, &self.reason)
    }
}
