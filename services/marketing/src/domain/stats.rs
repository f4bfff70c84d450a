//! Campaign statistics: a fold of the saga facts other services announce about a campaign.
//!
//! Marketing records each announced fact once (by event id) and computes the statistics by
//! folding them, so they can always be rebuilt from the facts.

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
    pub sales_attributed_minor: i64,
    pub commissions_reserved: u64,
    pub commissions_rejected: u64,
    pub commissions_reverted: u64,
    pub commission_reserved_minor: i64,
    pub commission_released_minor: i64,
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
                self.sales_attributed_minor += amount_minor;
            }
            Observed::ConversionRejected => self.conversions_rejected += 1,
            Observed::CommissionReserved { amount_minor } => {
                self.commissions_reserved += 1;
                self.commission_reserved_minor += amount_minor;
            }
            Observed::CommissionRejected => self.commissions_rejected += 1,
            Observed::CommissionReverted { released_minor } => {
                self.commissions_reverted += 1;
                self.commission_released_minor += released_minor;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
