//! A fraud score for a purchase, from a few simple signals of its journey.
//!
//! The score is a sum of documented points per signal, capped at 100, so that a person reading
//! a rejection can recompute it. A purchase is rejected as FRAUD_SUSPECTED when its score is at
//! or above the campaign's threshold (the `CampaignCreated` contract's rule). One signal alone
//! stays below the usual thresholds (50 or more); two signals together reach 70 or more.
//!
//! | signal | points | why |
//! |---|---|---|
//! | no campaign on the purchase | 30 | real buyers arrive through tracked links; a bare purchase is often forged |
//! | bot-like medium on the purchase or a touchpoint | 50 | traffic that says it is a bot or crawler cannot buy |
//! | bot-like or blank user agent on the purchase | 40 | browsers always send one; headless clients and scripts do not |
//! | a burst: 10 or more interactions within 60 s | 40 | no person views or clicks that fast |
//!
//! A user agent that tracking did not record is no signal: server-side tracking often has none.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use super::{Purchase, Touchpoint};

/// The highest fraud score.
pub const MAX_FRAUD_SCORE: u8 = 100;

/// This many interactions (touchpoints and the purchase)…
pub const BURST_SIZE: usize = 10;

/// …within this span are a burst.
pub const BURST_SPAN: TimeDelta = TimeDelta::seconds(60);

/// Words that give a bot away in a medium or a user agent, matched case-insensitively.
const BOT_WORDS: [&str; 5] = ["bot", "crawler", "spider", "scraper", "headless"];

/// One suspicious sign of a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FraudSignal {
    /// The purchase names no campaign.
    NoCampaign,
    /// The purchase or a touchpoint came through a bot-like medium.
    BotLikeMedium,
    /// The purchase's user agent is blank or bot-like.
    BotLikeUserAgent,
    /// Interactions came in a burst no person could produce.
    Burst,
}

impl FraudSignal {
    /// The points the signal adds to the score.
    pub const fn points(self) -> u8 {
        match self {
            Self::NoCampaign => 30,
            Self::BotLikeMedium => 50,
            Self::BotLikeUserAgent => 40,
            Self::Burst => 40,
        }
    }

    /// A short human-readable description.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::NoCampaign => "no campaign on the purchase",
            Self::BotLikeMedium => "bot-like medium",
            Self::BotLikeUserAgent => "blank or bot-like user agent",
            Self::Burst => "burst of interactions",
        }
    }
}

/// The fraud score of a purchase and the signals it is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudAssessment {
    /// 0..=100.
    pub score: u8,
    /// The signals found, in the order of the table above.
    pub signals: Vec<FraudSignal>,
}

impl FraudAssessment {
    /// Scores `purchase` with the touchpoints of its journey.
    pub fn of(purchase: &Purchase, touchpoints: &[Touchpoint]) -> Self {
        let bot_medium = std::iter::once(&purchase.medium)
            .chain(touchpoints.iter().map(|t| &t.medium))
            .flatten()
            .any(|m| is_bot_like(m));
        let bot_agent = purchase
            .user_agent
            .as_deref()
            .is_some_and(|ua| ua.trim().is_empty() || is_bot_like(ua));
        let signals: Vec<FraudSignal> = [
            (purchase.campaign().is_none(), FraudSignal::NoCampaign),
            (bot_medium, FraudSignal::BotLikeMedium),
            (bot_agent, FraudSignal::BotLikeUserAgent),
            (has_burst(purchase, touchpoints), FraudSignal::Burst),
        ]
        .into_iter()
        .filter_map(|(found, signal)| found.then_some(signal))
        .collect();
        let points: u32 = signals.iter().map(|s| u32::from(s.points())).sum();
        Self {
            score: points.min(u32::from(MAX_FRAUD_SCORE)) as u8,
            signals,
        }
    }

    /// Whether the score reaches `threshold`: the purchase must be rejected.
    pub fn is_suspected(&self, threshold: u8) -> bool {
        self.score >= threshold
    }

    /// The score and its signals, for a rejection's detail.
    pub fn describe(&self) -> String {
        let signals: Vec<&str> = self.signals.iter().map(|s| s.describe()).collect();
        format!("fraud score {} ({})", self.score, signals.join(", "))
    }
}

fn is_bot_like(text: &str) -> bool {
    let text = text.to_lowercase();
    BOT_WORDS.iter().any(|w| text.contains(w))
}

/// Whether any [`BURST_SIZE`] consecutive interactions, by time, span at most [`BURST_SPAN`].
fn has_burst(purchase: &Purchase, touchpoints: &[Touchpoint]) -> bool {
    let mut times: Vec<_> = touchpoints.iter().map(|t| t.at).collect();
    times.push(purchase.at);
    times.sort_unstable();
    times
        .windows(BURST_SIZE)
        .any(|w| w[BURST_SIZE - 1] - w[0] <= BURST_SPAN)
}

#[cfg(test)]
mod tests {
    use alpes_contracts::{Money, Timestamp};
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;
    use crate::domain::TouchpointKind;

    fn at(second: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + TimeDelta::seconds(second)
    }

    fn purchase() -> Purchase {
        Purchase {
            interaction_id: "p".into(),
            order_id: "o".into(),
            amount: Money::new(1_000, "EUR"),
            at: at(3_600),
            campaign_id: Some("spring".into()),
            medium: Some("email".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".into()),
        }
    }

    fn touch(second: i64, medium: &str) -> Touchpoint {
        Touchpoint {
            interaction_id: format!("t{second}"),
            at: at(second),
            partner_id: Some("ada".into()),
            campaign_id: Some("spring".into()),
            source: None,
            medium: Some(medium.into()),
            kind: TouchpointKind::Click,
        }
    }

    #[test]
    fn an_ordinary_purchase_scores_zero() {
        let fraud = FraudAssessment::of(&purchase(), &[touch(0, "cpc")]);
        assert_eq!(fraud.score, 0);
        assert!(fraud.signals.is_empty());
    }

    #[test]
    fn a_purchase_without_campaign_scores_30() {
        let p = Purchase {
            campaign_id: None,
            ..purchase()
        };
        assert_eq!(FraudAssessment::of(&p, &[]).score, 30);
    }

    #[test]
    fn a_bot_medium_on_any_touchpoint_scores_50() {
        let fraud = FraudAssessment::of(&purchase(), &[touch(0, "cpc"), touch(60, "Crawler")]);
        assert_eq!(fraud.signals, [FraudSignal::BotLikeMedium]);
        assert_eq!(fraud.score, 50);
    }

    #[test]
    fn a_blank_user_agent_is_bot_like_but_a_missing_one_is_no_signal() {
        let blank = Purchase {
            user_agent: Some(" ".into()),
            ..purchase()
        };
        let missing = Purchase {
            user_agent: None,
            ..purchase()
        };
        assert_eq!(FraudAssessment::of(&blank, &[]).score, 40);
        assert_eq!(FraudAssessment::of(&missing, &[]).score, 0);
    }

    #[test]
    fn ten_interactions_within_a_minute_are_a_burst() {
        let p = Purchase {
            at: at(54),
            ..purchase()
        };
        let nine: Vec<_> = (0..9).map(|i| touch(i * 6, "cpc")).collect();
        assert_eq!(FraudAssessment::of(&p, &nine).signals, [FraudSignal::Burst]);
    }

    #[test]
    fn ten_interactions_over_more_than_a_minute_are_no_burst() {
        let p = Purchase {
            at: at(61),
            ..purchase()
        };
        let nine: Vec<_> = (0..9).map(|i| touch(i * 6, "cpc")).collect();
        assert_eq!(FraudAssessment::of(&p, &nine).score, 0);
    }

    #[test]
    fn the_score_is_capped_at_100() {
        let p = Purchase {
            campaign_id: None,
            medium: Some("bot".into()),
            user_agent: Some("Googlebot/2.1".into()),
            at: at(0),
            ..purchase()
        };
        let burst: Vec<_> = (0..9).map(|i| touch(i, "cpc")).collect();
        let fraud = FraudAssessment::of(&p, &burst);
        assert_eq!(fraud.signals.len(), 4);
        assert_eq!(fraud.score, 100);
    }

    #[test]
    fn a_score_at_the_threshold_is_suspected() {
        let fraud = FraudAssessment {
            score: 70,
            signals: vec![],
        };
        assert!(fraud.is_suspected(70));
        assert!(!fraud.is_suspected(71));
    }

    proptest! {
        #[test]
        fn the_score_stays_within_0_and_100(
            no_campaign in any::<bool>(),
            medium in "[a-zA-Z]{0,8}",
            agent in prop::option::of("[ a-zA-Z/.0-9]{0,16}"),
            seconds in prop::collection::vec(0i64..600, 0..30),
        ) {
            let p = Purchase {
                campaign_id: (!no_campaign).then(|| "spring".to_owned()),
                medium: Some(medium.clone()),
                user_agent: agent,
                ..purchase()
            };
            let touchpoints: Vec<_> = seconds.iter().map(|s| touch(*s, &medium)).collect();
            let fraud = FraudAssessment::of(&p, &touchpoints);
            prop_assert!(fraud.score <= MAX_FRAUD_SCORE);
            let points: u32 = fraud.signals.iter().map(|s| u32::from(s.points())).sum();
            prop_assert_eq!(u32::from(fraud.score), points.min(100));
        }
    }
}
