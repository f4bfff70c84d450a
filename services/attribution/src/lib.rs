//! The attribution service: folds a visitor's interactions into journeys and attributes each
//! purchase to the partners and campaign that brought it.
//!
//! `domain` is pure: no I/O, no Pulsar, no MongoDB; it is tested given/when/then.

pub mod domain;
