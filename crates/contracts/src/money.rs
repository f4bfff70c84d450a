//! Money as the brief defines it: an integer amount in minor units and an ISO 4217 code.

use serde::{Deserialize, Serialize};

use crate::limits::{At, Invalid, Validate, currency_problem};

/// An amount of money in minor units (cents for EUR) of an ISO 4217 currency. Never a float.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Amount in minor units; negative amounts are legal in contracts, domains restrict them.
    pub amount_minor: i64,
    /// ISO 4217 alphabetic code, e.g. `EUR`.
    pub currency: String,
}

impl Money {
    /// `amount_minor` of `currency`.
    pub fn new(amount_minor: i64, currency: impl Into<String>) -> Self {
        Self {
            amount_minor,
            currency: currency.into(),
        }
    }
}

impl Validate for Money {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        match currency_problem(&self.currency) {
            None => Ok(()),
            Some(message) => Err(Invalid::new(At(at).path("currency"), message)),
        }
    }
}
