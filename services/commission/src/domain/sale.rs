//! An attributed sale, as the commission service needs it: who earns, on what, for which order.
//!
//! A conversion may credit several partners (linear, position-based, time-decay models), but a
//! sale earns one commission. It goes to the partner with the greatest weight; on a tie, to the
//! credit listed last, so the choice is deterministic and, with credits in journey order, is the
//! touch nearest the purchase, as the default last-touch model would choose.

use alpes_contracts::Money;
use alpes_contracts::events::attribution::ConversionAttributed;
use serde::{Deserialize, Serialize};

use super::DomainError;

/// A sale attributed to a campaign and the partner who earns its commission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sale {
    /// The campaign whose budget pays the commission.
    pub campaign_id: String,
    /// The partner who earns it.
    pub partner_id: String,
    /// The shop's order id.
    pub order_id: String,
    /// The sale's amount.
    pub amount: Money,
}

impl Sale {
    /// The sale of an attributed conversion, paid to its most credited partner.
    pub fn from_conversion(conversion: &ConversionAttributed) -> Result<Self, DomainError> {
        let payee = conversion
            .credits
            .iter()
            .max_by_key(|credit| credit.weight_ppm)
            .ok_or_else(|| DomainError::NoCreditedPartner {
                order_id: conversion.order_id.clone(),
            })?;
        Ok(Self {
            campaign_id: conversion.campaign_id.clone(),
            partner_id: payee.partner_id.clone(),
            order_id: conversion.order_id.clone(),
            amount: conversion.amount.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use alpes_contracts::EventMetadata;
    use alpes_contracts::events::attribution::{AttributionModel, Credit};

    use super::*;

    fn credit(partner_id: &str, weight_ppm: i32) -> Credit {
        Credit {
            interaction_id: format!("touch-{partner_id}"),
            partner_id: partner_id.to_owned(),
            campaign_id: Some("spring".to_owned()),
            weight_ppm,
            amount: Money::new(0, "EUR"),
        }
    }

    fn conversion(credits: Vec<Credit>) -> ConversionAttributed {
        ConversionAttributed {
            metadata: EventMetadata::new::<ConversionAttributed>(),
            journey_id: "journey-1".to_owned(),
            interaction_id: "purchase-1".to_owned(),
            order_id: "order-1".to_owned(),
            campaign_id: "spring".to_owned(),
            amount: Money::new(120_00, "EUR"),
            model: AttributionModel::PositionBased,
            credits,
            fraud_score: 0,
        }
    }

    #[test]
    fn the_most_credited_partner_earns_the_commission() {
        let sale = Sale::from_conversion(&conversion(vec![
            credit("first", 400_000),
            credit("middle", 200_000),
            credit("last", 400_000),
        ]))
        .unwrap();

        assert_eq!(sale.partner_id, "last");
        assert_eq!(sale.amount, Money::new(120_00, "EUR"));
        assert_eq!(sale.order_id, "order-1");
    }

    #[test]
    fn a_conversion_without_credits_has_no_one_to_pay() {
        let error = Sale::from_conversion(&conversion(vec![])).unwrap_err();

        assert_eq!(
            error,
            DomainError::NoCreditedPartner {
                order_id: "order-1".to_owned()
            }
        );
    }
}
