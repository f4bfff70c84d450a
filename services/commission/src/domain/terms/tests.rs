//! The rules of computing a commission, and the property that it always lands in its bounds.

use alpes_testkit::fixtures::percentage;
use proptest::prelude::*;

use super::*;

fn fixed(amount_minor: i64, minimum_minor: i64, maximum_minor: Option<i64>) -> CommissionTerms {
    CommissionTerms {
        kind: CommissionKind::Fixed,
        percentage_bps: None,
        fixed_minor: Some(amount_minor),
        minimum_minor,
        maximum_minor,
    }
}

fn terms(wire: CommissionTerms) -> Terms {
    Terms::try_from(wire).unwrap()
}

#[test]
fn ten_percent_of_120_eur_is_capped_at_the_10_eur_maximum() {
    let terms = terms(percentage(1_000, 5_00, Some(10_00)));

    assert_eq!(terms.commission_on(120_00), Ok(10_00));
}

#[test]
fn ten_percent_of_80_eur_is_8_eur_between_the_bounds() {
    let terms = terms(percentage(1_000, 5_00, Some(10_00)));

    assert_eq!(terms.commission_on(80_00), Ok(8_00));
}

#[test]
fn a_fixed_3_eur_is_raised_to_the_5_eur_minimum() {
    let terms = terms(fixed(3_00, 5_00, None));

    assert_eq!(terms.commission_on(120_00), Ok(5_00));
}

#[test]
fn a_percentage_is_rounded_half_up_to_the_cent() {
    let terms = terms(percentage(1_250, 0, None));

    assert_eq!(terms.commission_on(1_02), Ok(13), "12.75 cents");
    assert_eq!(terms.commission_on(1_00), Ok(13), "12.5 cents");
    assert_eq!(terms.commission_on(99), Ok(12), "12.375 cents");
}

#[test]
fn the_largest_sale_does_not_overflow() {
    let terms = terms(percentage(10_000, 0, None));

    assert_eq!(terms.commission_on(i64::MAX), Ok(i64::MAX));
}

#[test]
fn a_negative_sale_earns_nothing_but_an_error() {
    let terms = terms(fixed(3_00, 0, None));

    assert_eq!(
        terms.commission_on(-1),
        Err(DomainError::NegativeAmount {
            what: "sale",
            amount_minor: -1
        })
    );
}

#[test]
fn terms_outside_their_rules_are_refused() {
    let refused = |wire| Terms::try_from(wire).unwrap_err();

    assert_eq!(
        refused(percentage(10_001, 0, None)),
        DomainError::BasisPointsOutOfRange(10_001)
    );
    assert_eq!(
        refused(percentage(-1, 0, None)),
        DomainError::BasisPointsOutOfRange(-1)
    );
    assert_eq!(
        refused(percentage(500, 10_00, Some(5_00))),
        DomainError::MinimumAboveMaximum {
            minimum_minor: 10_00,
            maximum_minor: 5_00
        }
    );
    assert!(matches!(
        refused(fixed(-1, 0, None)),
        DomainError::NegativeAmount { .. }
    ));
    assert!(matches!(
        refused(percentage(500, -1, None)),
        DomainError::NegativeAmount { .. }
    ));
    assert_eq!(
        refused(CommissionTerms {
            percentage_bps: None,
            fixed_minor: Some(3_00),
            ..percentage(0, 0, None)
        }),
        DomainError::MissingRate(CommissionKind::Percentage)
    );
}

#[test]
fn stored_terms_read_back_through_the_same_checks() {
    let stored = serde_json::to_value(terms(percentage(1_000, 5_00, Some(10_00)))).unwrap();

    assert_eq!(
        stored["rate"],
        serde_json::json!({ "kind": "PERCENTAGE", "bps": 1_000 })
    );
    assert_eq!(
        serde_json::from_value::<Terms>(stored).unwrap(),
        terms(percentage(1_000, 5_00, Some(10_00)))
    );
    let invalid = |rate, minimum_minor, maximum_minor| {
        let stored = serde_json::json!({
            "rate": rate, "minimum_minor": minimum_minor, "maximum_minor": maximum_minor,
        });
        serde_json::from_value::<Terms>(stored).is_err()
    };
    let percent = |bps: u32| serde_json::json!({ "kind": "PERCENTAGE", "bps": bps });
    assert!(invalid(percent(20_000), 0, None));
    assert!(invalid(percent(1_000), 10_00, Some(5_00)));
    assert!(!invalid(percent(1_000), 5_00, Some(10_00)));
}

fn valid_terms() -> impl Strategy<Value = Terms> {
    let rate = prop_oneof![
        (0..=WHOLE_BPS).prop_map(|bps| Rate::Percentage { bps }),
        (0..=i64::MAX).prop_map(|amount_minor| Rate::Fixed { amount_minor }),
    ];
    (rate, 0..=i64::MAX, any::<bool>(), 0..=i64::MAX).prop_map(|(rate, a, capped, b)| {
        let maximum = capped.then_some(a.max(b));
        Terms::new(rate, a.min(b), maximum).unwrap()
    })
}

proptest! {
    #[test]
    fn a_commission_is_always_within_its_minimum_and_maximum(
        terms in valid_terms(),
        sale_minor in 0..=i64::MAX,
    ) {
        let commission = terms.commission_on(sale_minor).unwrap();

        prop_assert!(commission >= terms.minimum_minor());
        if let Some(maximum) = terms.maximum_minor() {
            prop_assert!(commission <= maximum);
        }
    }

    #[test]
    fn a_percentage_before_its_bounds_never_exceeds_the_sale(
        bps in 0..=WHOLE_BPS,
        sale_minor in 0..=i64::MAX,
    ) {
        let terms = Terms::new(Rate::Percentage { bps }, 0, None).unwrap();

        prop_assert!(terms.commission_on(sale_minor).unwrap() <= sale_minor);
    }
}
