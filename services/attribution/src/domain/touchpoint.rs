//! A touchpoint: a view or a click that may earn a partner credit for a later purchase.

use alpes_contracts::Timestamp;
use alpes_contracts::events::tracking::{InteractionKind, InteractionTracked};
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

/// What kind of touch it was; purchases are not touchpoints, they convert the journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TouchpointKind {
    /// The visitor saw a page or an ad.
    View,
    /// The visitor clicked a link or an element.
    Click,
}

/// One view or click of a visitor, with the tracking parameters that say who brought it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touchpoint {
    /// Id of the tracked interaction.
    pub interaction_id: String,
    /// When it happened.
    pub at: Timestamp,
    /// The partner who published the link, if any.
    pub partner_id: Option<String>,
    /// The campaign of the link, if any.
    pub campaign_id: Option<String>,
    /// Where the traffic came from.
    pub source: Option<String>,
    /// The kind of traffic, e.g. `email`, `cpc`.
    pub medium: Option<String>,
    /// View or click.
    pub kind: TouchpointKind,
}

impl Touchpoint {
    /// The touchpoint of a tracked VIEW or CLICK; `None` for a PURCHASE.
    pub fn from_interaction(interaction: &InteractionTracked) -> Option<Self> {
        let kind = match interaction.kind {
            InteractionKind::View => TouchpointKind::View,
            InteractionKind::Click => TouchpointKind::Click,
            InteractionKind::Purchase => return None,
        };
        let tracking = &interaction.tracking;
        Some(Self {
            interaction_id: interaction.interaction_id.clone(),
            at: interaction.interacted_at,
            partner_id: tracking.partner_id.clone(),
            campaign_id: tracking.campaign_id.clone(),
            source: tracking.source.clone(),
            medium: tracking.medium.clone(),
            kind,
        })
    }

    /// The partner to credit, if the touchpoint names one (a blank id names nobody).
    pub fn partner(&self) -> Option<&str> {
        present(self.partner_id.as_deref())
    }

    /// The campaign of the touchpoint, if it names one.
    pub fn campaign(&self) -> Option<&str> {
        present(self.campaign_id.as_deref())
    }

    /// Whether the touchpoint can be credited for a purchase at `purchase_at` in a campaign
    /// whose window is `window_days`: it names a partner and happened in the window, bounds
    /// included.
    ///
    /// Views count as much as clicks: a partner's impression is a touch the campaign pays for,
    /// and the model decides how much it weighs; a campaign that wants clicks only would need a
    /// setting of its own.
    pub fn is_eligible(&self, purchase_at: Timestamp, window_days: u32) -> bool {
        let window = TimeDelta::try_days(i64::from(window_days)).unwrap_or(TimeDelta::MAX);
        let opens = purchase_at
            .checked_sub_signed(window)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        self.partner().is_some() && opens <= self.at && self.at <= purchase_at
    }
}

/// `value` unless it is absent or blank.
pub(crate) fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}
