//! Campaign statistics: what the saga events say about each campaign, counted once per event.
//!
//! Marketing consumes every saga event once, for the log and for these counts, so both are
//! written by the same transaction: a [`Count`] is a row of `campaign_counts` keyed by the
//! event's id (a redelivery adds nothing), and the same statement adds the new rows into the
//! campaign's totals in `campaign_stats`. Reading a campaign's statistics is one primary-key
//! lookup, however many events it has seen — the totals are the read model, kept up to date
//! as events arrive, never recomputed per request.
//!
//! Each amount is an `i64`, but their sum need not fit one: two sales of `i64::MAX` minor units
//! must not wrap to a negative total. Postgres sums into `NUMERIC` (exact at any size); they are
//! served as `i128`, which holds the sum of 2^64 `i64`s exactly (more events than a campaign
//! will ever see), and saturate beyond that rather than wrap.

use alpes_contracts::events::tracking::InteractionKind;
use serde::{Deserialize, Serialize};

/// What one event adds to its campaign's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Count {
    /// A view, click or purchase was tracked.
    Interaction { kind: InteractionKind },
    /// A sale was attributed to the campaign.
    Conversion { amount_minor: i64 },
    /// A sale was not attributed.
    ConversionRejected,
    /// A commission was reserved from the campaign's budget.
    CommissionReserved { amount_minor: i64 },
    /// A commission was refused.
    CommissionRejected,
    /// A commission was reverted, releasing this much of the budget.
    CommissionReverted { released_minor: i64 },
}

impl Count {
    /// The name stored in `campaign_counts.kind`.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Self::Interaction {
                kind: InteractionKind::View,
            } => "view",
            Self::Interaction {
                kind: InteractionKind::Click,
            } => "click",
            Self::Interaction {
                kind: InteractionKind::Purchase,
            } => "purchase",
            Self::Conversion { .. } => "conversion",
            Self::ConversionRejected => "conversion_rejected",
            Self::CommissionReserved { .. } => "commission_reserved",
            Self::CommissionRejected => "commission_rejected",
            Self::CommissionReverted { .. } => "commission_reverted",
        }
    }

    /// The amount it adds to its kind's sum (zero for kinds that only count).
    pub(crate) fn amount_minor(self) -> i64 {
        match self {
            Self::Conversion { amount_minor } | Self::CommissionReserved { amount_minor } => {
                amount_minor
            }
            Self::CommissionReverted { released_minor } => released_minor,
            _ => 0,
        }
    }
}

/// One event's count, ready to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// The event's id: it is counted once however often it is delivered.
    pub event_id: String,
    /// The campaign it counts for.
    pub campaign_id: String,
    pub count: Count,
}

/// A campaign's statistics, as `GET /campaigns/{id}/stats` serves them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CampaignStats {
    pub views: u64,
    pub clicks: u64,
    pub purchases: u64,
    pub conversions: u64,
    pub conversions_rejected: u64,
    pub sales_attributed_minor: i128,
    pub commissions_reserved: u64,
    pub commissions_rejected: u64,
    pub commissions_reverted: u64,
    pub commission_reserved_minor: i128,
    pub commission_released_minor: i128,
}

/// A `NUMERIC` sum (as Postgres prints it) as an `i128`, saturating beyond its range.
pub(crate) fn sum_of(text: &str) -> i128 {
    text.parse().unwrap_or_else(|_| {
        let digits = text.trim_start_matches('-');
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if text.starts_with('-') {
                i128::MIN
            } else {
                i128::MAX
            }
        } else {
            // Postgres prints a NUMERIC of whole numbers as digits; anything else is not a sum
            // this table holds.
            0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_beyond_i128_saturate_and_others_read_exactly() {
        assert_eq!(sum_of("0"), 0);
        assert_eq!(
            sum_of("18446744073709551614"),
            2 * i128::from(i64::MAX),
            "two of the largest sales"
        );
        assert_eq!(sum_of("-18446744073709551616"), 2 * i128::from(i64::MIN));
        assert_eq!(sum_of(&format!("{}0", i128::MAX)), i128::MAX);
        assert_eq!(sum_of(&format!("{}0", i128::MIN)), i128::MIN);
    }

    #[test]
    fn each_count_has_its_own_kind() {
        let counts = [
            Count::Interaction {
                kind: InteractionKind::View,
            },
            Count::Interaction {
                kind: InteractionKind::Click,
            },
            Count::Interaction {
                kind: InteractionKind::Purchase,
            },
            Count::Conversion { amount_minor: 1 },
            Count::ConversionRejected,
            Count::CommissionReserved { amount_minor: 1 },
            Count::CommissionRejected,
            Count::CommissionReverted { released_minor: 1 },
        ];
        let mut kinds: Vec<_> = counts.iter().map(|c| c.kind()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), counts.len());
    }
}
