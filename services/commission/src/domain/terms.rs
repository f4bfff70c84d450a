//! A campaign's commission terms, validated once, and the commission they give on a sale.
//!
//! The contract type [`CommissionTerms`] is the wire shape (nullable fields, `i32` basis
//! points). [`Terms`] is the same thing after validation, so that computing a commission cannot
//! fail on bad terms: they are checked when the campaign's budget is opened, and a stored
//! [`Terms`] deserializes through the same check. Terms are stored in their own shape (a rate
//! tagged with its kind), not the contract's: `BudgetOpened` stored them in the contract's shape
//! until its version 2, and [`upcast_v1`] reads those.
//!
//! Rounding: a percentage is rounded **half up** to the minor unit (12.345 → 12.35). Sales are
//! never negative, so half up is also half away from zero; on a tie the partner gets the cent.
//! Arithmetic is integer, in `i128`, so no sale amount can overflow it.

use alpes_contracts::events::commission::{CommissionKind, CommissionTerms};
use serde::{Deserialize, Serialize};

use super::DomainError;

/// Basis points in a whole: 10 000 bps = 100 %.
pub const WHOLE_BPS: u16 = 10_000;

/// How the raw commission of a sale is computed, before the minimum and maximum apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Rate {
    /// A share of the sale, in basis points (0..=10 000).
    Percentage {
        /// Basis points of the sale.
        bps: u16,
    },
    /// The same amount for every sale, in minor units.
    Fixed {
        /// Minor units per sale.
        amount_minor: i64,
    },
}

/// Validated commission terms: a rate, then a clamp to `[minimum, maximum]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Unchecked")]
pub struct Terms {
    rate: Rate,
    minimum_minor: i64,
    maximum_minor: Option<i64>,
}

/// Terms as stored, before the check that makes them [`Terms`].
#[derive(Deserialize)]
struct Unchecked {
    rate: Rate,
    minimum_minor: i64,
    maximum_minor: Option<i64>,
}

impl TryFrom<Unchecked> for Terms {
    type Error = DomainError;

    fn try_from(terms: Unchecked) -> Result<Self, Self::Error> {
        Self::new(terms.rate, terms.minimum_minor, terms.maximum_minor)
    }
}

/// Terms as version 1 of `BudgetOpened` stored them: the contract's shape of that time, kept
/// here so that a change of the contract cannot change how they read.
#[derive(Deserialize)]
struct TermsV1 {
    kind: KindV1,
    percentage_bps: Option<i32>,
    fixed_minor: Option<i64>,
    minimum_minor: i64,
    maximum_minor: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum KindV1 {
    Percentage,
    Fixed,
}

/// Stored terms of version 1 in the shape of version 2 (checked on the way).
pub(super) fn upcast_v1(v1: serde_json::Value) -> Result<serde_json::Value, String> {
    let v1: TermsV1 = serde_json::from_value(v1).map_err(|e| e.to_string())?;
    let terms = Terms::try_from(CommissionTerms {
        kind: match v1.kind {
            KindV1::Percentage => CommissionKind::Percentage,
            KindV1::Fixed => CommissionKind::Fixed,
        },
        percentage_bps: v1.percentage_bps,
        fixed_minor: v1.fixed_minor,
        minimum_minor: v1.minimum_minor,
        maximum_minor: v1.maximum_minor,
    })
    .map_err(|e| e.to_string())?;
    serde_json::to_value(terms).map_err(|e| e.to_string())
}

impl Terms {
    /// Terms from their parts, checked as [`TryFrom<CommissionTerms>`] checks them.
    pub fn new(
        rate: Rate,
        minimum_minor: i64,
        maximum_minor: Option<i64>,
    ) -> Result<Self, DomainError> {
        match rate {
            Rate::Percentage { bps } if bps > WHOLE_BPS => {
                return Err(DomainError::BasisPointsOutOfRange(i64::from(bps)));
            }
            Rate::Fixed { amount_minor } => non_negative("fixed commission", amount_minor)?,
            Rate::Percentage { .. } => {}
        }
        non_negative("minimum commission", minimum_minor)?;
        if let Some(maximum_minor) = maximum_minor {
            non_negative("maximum commission", maximum_minor)?;
            if minimum_minor > maximum_minor {
                return Err(DomainError::MinimumAboveMaximum {
                    minimum_minor,
                    maximum_minor,
                });
            }
        }
        Ok(Self {
            rate,
            minimum_minor,
            maximum_minor,
        })
    }

    /// How the raw commission is computed.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// The least commission of a sale, in minor units.
    pub fn minimum_minor(&self) -> i64 {
        self.minimum_minor
    }

    /// The most commission of a sale, in minor units, if capped.
    pub fn maximum_minor(&self) -> Option<i64> {
        self.maximum_minor
    }

    /// The commission on a sale of `sale_minor` minor units: the rate, then the clamp.
    pub fn commission_on(&self, sale_minor: i64) -> Result<i64, DomainError> {
        non_negative("sale", sale_minor)?;
        let raw = match self.rate {
            Rate::Percentage { bps } => percentage_half_up(sale_minor, bps),
            Rate::Fixed { amount_minor } => amount_minor,
        };
        let at_least_minimum = raw.max(self.minimum_minor);
        Ok(match self.maximum_minor {
            Some(maximum) => at_least_minimum.min(maximum),
            None => at_least_minimum,
        })
    }
}

/// `bps` basis points of a non-negative `sale_minor`, rounded half up.
fn percentage_half_up(sale_minor: i64, bps: u16) -> i64 {
    let whole = i128::from(WHOLE_BPS);
    let share = (i128::from(sale_minor) * i128::from(bps) + whole / 2) / whole;
    // bps ≤ 10 000, so the share never exceeds the sale and always fits back into i64.
    i64::try_from(share).unwrap_or(i64::MAX)
}

fn non_negative(what: &'static str, amount_minor: i64) -> Result<(), DomainError> {
    if amount_minor < 0 {
        return Err(DomainError::NegativeAmount { what, amount_minor });
    }
    Ok(())
}

impl TryFrom<CommissionTerms> for Terms {
    type Error = DomainError;

    /// Checks the wire terms: the field of their kind is present, 0 ≤ bps ≤ 10 000, amounts
    /// are not negative, minimum ≤ maximum. The other kind's field is ignored.
    fn try_from(terms: CommissionTerms) -> Result<Self, Self::Error> {
        let rate = match terms.kind {
            CommissionKind::Percentage => {
                let bps = terms
                    .percentage_bps
                    .ok_or(DomainError::MissingRate(CommissionKind::Percentage))?;
                let bps = u16::try_from(bps)
                    .map_err(|_| DomainError::BasisPointsOutOfRange(i64::from(bps)))?;
                Rate::Percentage { bps }
            }
            CommissionKind::Fixed => Rate::Fixed {
                amount_minor: terms
                    .fixed_minor
                    .ok_or(DomainError::MissingRate(CommissionKind::Fixed))?,
            },
        };
        Self::new(rate, terms.minimum_minor, terms.maximum_minor)
    }
}

impl From<Terms> for CommissionTerms {
    fn from(terms: Terms) -> Self {
        let (kind, percentage_bps, fixed_minor) = match terms.rate {
            Rate::Percentage { bps } => (CommissionKind::Percentage, Some(i32::from(bps)), None),
            Rate::Fixed { amount_minor } => (CommissionKind::Fixed, None, Some(amount_minor)),
        };
        Self {
            kind,
            percentage_bps,
            fixed_minor,
            minimum_minor: terms.minimum_minor,
            maximum_minor: terms.maximum_minor,
        }
    }
}

#[cfg(test)]
mod tests;
