//! The commission service: computes a partner's commission from the campaign's terms and
//! reserves it against the campaign's budget, never beyond it.
//!
//! `domain` is pure: no I/O, no Pulsar, no MongoDB; it is tested given/when/then.

// Tests write money as units_cents (`120_00` is 120.00 EUR), which this lint calls inconsistent.
#![cfg_attr(test, allow(clippy::inconsistent_digit_grouping))]

pub mod domain;
