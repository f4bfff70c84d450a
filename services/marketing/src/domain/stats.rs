//! Campaign statistics: a fold of the saga facts other services announce about a campaign.
//!
//! Marketing records each announced fact once (by event id) and computes the statistics by
//! folding them, so they can always be rebuilt from the facts.
//!
//! Each amount is an `i64`, but their sum need not fit one: two sales of `i64::MAX` minor units
//! must not wrap to a negative total. Sums are kept in `i128`, which holds the sum of 2^64
//! `i64`s exactly (more facts than a campaign will ever see), and saturate beyond that rather
//! than wrap. They serialize as JSON integers of whatever size they are.

use alpes_contracts::events::tracking::InteractionKind;
use serde::{Deserialize, Serialize};

/// One announced fact about a campaign, as marketing keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Observed {
    Interaction { kind: InteractionKind },
    Conversion { amount_minor: i64 },
    ConversionRejected,
    CommissionReserved { amount_minor: i64 },
    CommissionRejected,
    CommissionReverted { released_minor: i64 },
}

/// What `GET /campaigns/{id}/stats` answers.
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

impl CampaignStats {
    /// Folds one fact in.
    pub fn apply(&mut self, fact: &Observed) {
        match fact {
            Observed::Interaction { kind } => match kind {
                InteractionKind::View => self.views += 1,
                InteractionKind::Click => self.clicks += 1,
                InteractionKind::Purchase => self.purchases += 1,
            },
            Observed::Conversion { amount_minor } => {
                self.conversions += 1;
                self.sales_attributed_minor = add(self.sales_attributed_minor, *amount_minor);
            }
            Observed::ConversionRejected => self.conversions_rejected += 1,
            Observed::CommissionReserved { amount_minor } => {
                self.commissions_reserved += 1;
                self.commission_reserved_minor = add(self.commission_reserved_minor, *amount_minor);
            }
            Observed::CommissionRejected => self.commissions_rejected += 1,
            Observed::CommissionReverted { released_minor } => {
                self.commissions_reverted += 1;
                self.commission_released_minor =
                    add(self.commission_released_minor, *released_minor);
            }
        }
    }
}

/// `sum + amount`, exact unless beyond `i128`, where it stays at the bound.
fn add(sum: i128, amount: i64) -> i128 {
    sum.saturating_add(i128::from(amount))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn amount() -> impl Strategy<Value = i64> {
        prop_oneof![Just(i64::MAX), Just(i64::MIN), any::<i64>(), -1i64..=1]
    }

    fn fact() -> impl Strategy<Value = Observed> {
        prop_oneof![
            amount().prop_map(|amount_minor| Observed::Conversion { amount_minor }),
            amount().prop_map(|amount_minor| Observed::CommissionReserved { amount_minor }),
            amount().prop_map(|released_minor| Observed::CommissionReverted { released_minor }),
        ]
    }

    proptest! {
        /// Whatever the amounts, each total is their exact sum: no wrap-around, no panic.
        #[test]
        fn amounts_add_up_exactly(facts in proptest::collection::vec(fact(), 0..64)) {
            let mut stats = CampaignStats::default();
            facts.iter().for_each(|f| stats.apply(f));
            let total = |pick: fn(&Observed) -> Option<i64>| -> i128 {
                facts.iter().filter_map(pick).map(i128::from).sum()
            };
            let sales = total(|f| match f {
                Observed::Conversion { amount_minor } => Some(*amount_minor),
                _ => None,
            });
            let reserved = total(|f| match f {
                Observed::CommissionReserved { amount_minor } => Some(*amount_minor),
                _ => None,
            });
            let released = total(|f| match f {
                Observed::CommissionReverted { released_minor } => Some(*released_minor),
                _ => None,
            });
            prop_assert_eq!(stats.sales_attributed_minor, sales);
            prop_assert_eq!(stats.commission_reserved_minor, reserved);
            prop_assert_eq!(stats.commission_released_minor, released);
        }
    }

    #[test]
    fn two_of_the_largest_sales_do_not_wrap() {
        let sale = Observed::Conversion {
            amount_minor: i64::MAX,
        };
        let mut stats = CampaignStats::default();
        stats.apply(&sale);
        stats.apply(&sale);
        assert_eq!(stats.sales_attributed_minor, 2 * i128::from(i64::MAX));
        stats.apply(&sale);
        let json = serde_json::to_string(&stats).unwrap();
        assert!(
            json.contains(r#""sales_attributed_minor":27670116110564327421"#),
            "{json}"
        );
        assert_eq!(
            add(i128::MAX, 1),
            i128::MAX,
            "beyond i128 it stays at the bound"
        );
    }

    #[test]
    fn facts_fold_into_counts_and_amounts() {
        let facts = [
            Observed::Interaction {
                kind: InteractionKind::View,
            },
            Observed::Interaction {
                kind: InteractionKind::Click,
            },
            Observed::Interaction {
                kind: InteractionKind::Purchase,
            },
            Observed::Conversion {
                amount_minor: 12_000,
            },
            Observed::CommissionReserved {
                amount_minor: 1_200,
            },
            Observed::CommissionReverted {
                released_minor: 1_200,
            },
            Observed::ConversionRejected,
            Observed::CommissionRejected,
        ];
        let mut stats = CampaignStats::default();
        facts.iter().for_each(|f| stats.apply(f));
        assert_eq!(
            stats,
            CampaignStats {
                views: 1,
                clicks: 1,
                purchases: 1,
                conversions: 1,
                conversions_rejected: 1,
                sales_attributed_minor: 12_000,
                commissions_reserved: 1,
                commissions_rejected: 1,
                commissions_reverted: 1,
                commission_reserved_minor: 1_200,
                commission_released_minor: 1_200,
            }
        );
    }
}
