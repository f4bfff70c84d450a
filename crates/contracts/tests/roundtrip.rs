//! Every event type survives `encode` then `decode_unchecked` unchanged, for arbitrary values;
//! `decode` refuses exactly the events that fail `validate`, naming the same field; and the
//! registry of event types is consistent with the embedded schemas.

use std::collections::HashSet;

use alpes_contracts::codec::{CodecError, decode, decode_unchecked, encode};
use alpes_contracts::events::attribution::{
    AttributionModel, AttributionReverted, ConversionAttributed, ConversionRejected,
    ConversionRejectionReason, Credit,
};
use alpes_contracts::events::commission::{
    CommissionConfirmed, CommissionKind, CommissionRejected, CommissionRejectionReason,
    CommissionReserved, CommissionReverted, CommissionTerms,
};
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused, FraudDetected,
    SagaTimedOut,
};
use alpes_contracts::events::tracking::{
    InteractionKind, InteractionTracked, InteractionsDiscarded, PageContext, Purchase, Target,
    TrackingParams, Visitor,
};
use alpes_contracts::limits::Validate;
use alpes_contracts::{EventMetadata, Money, Timestamp};
use apache_avro::Schema;
use chrono::DateTime;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

/// Arbitrary unicode text, empty included; mostly printable ASCII, so that some events are
/// within the limits and `decode` accepts them.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[ -~]{0,16}", 1 => any::<String>()]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    of(text())
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..4)
}

/// Any i64, with the extremes and the values around zero made likely.
fn long() -> impl Strategy<Value = i64> {
    prop_oneof![Just(i64::MIN), Just(i64::MAX), -1i64..=1, any::<i64>(),]
}

/// Any i32, with the extremes made likely.
fn int() -> impl Strategy<Value = i32> {
    prop_oneof![Just(i32::MIN), Just(i32::MAX), -1i32..=1, any::<i32>()]
}

/// Instants with microsecond precision over chrono's whole range, edges included.
fn timestamp() -> impl Strategy<Value = Timestamp> {
    let min = DateTime::<chrono::Utc>::MIN_UTC.timestamp_micros();
    let max = DateTime::<chrono::Utc>::MAX_UTC.timestamp_micros();
    prop_oneof![Just(min), Just(max), Just(0), -1i64..=1, min..=max].prop_map(|micros| {
        DateTime::from_timestamp_micros(micros).expect("micros within chrono's range")
    })
}

prop_compose! {
    fn money()(
        amount_minor in long(),
        currency in prop_oneof![Just("EUR".to_owned()), text()],
    ) -> Money {
        Money { amount_minor, currency }
    }
}

prop_compose! {
    // `event_id` is an Avro `uuid`: generate canonical UUID text, as producers do (the codec
    // itself does not check it).
    fn metadata()(
        event_id in any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        event_type in text(),
        schema_version in int(),
        occurred_at in timestamp(),
        producer in text(),
        saga_id in opt_text(),
        causation_id in opt_text(),
        traceparent in opt_text(),
        tracestate in opt_text(),
    ) -> EventMetadata {
        EventMetadata {
            event_id, event_type, schema_version, occurred_at, producer, saga_id, causation_id,
            traceparent, tracestate,
        }
    }
}

fn attribution_model() -> impl Strategy<Value = AttributionModel> {
    prop_oneof![
        Just(AttributionModel::LastTouch),
        Just(AttributionModel::FirstTouch),
        Just(AttributionModel::Linear),
        Just(AttributionModel::PositionBased),
        Just(AttributionModel::TimeDecay),
    ]
}

// ---- tracking

prop_compose! {
    fn interaction_tracked()(
        metadata in metadata(),
        interaction_id in text(),
        kind in prop_oneof![
            Just(InteractionKind::View),
            Just(InteractionKind::Click),
            Just(InteractionKind::Purchase),
        ],
        interacted_at in timestamp(),
        visitor in (opt_text(), text(), opt_text(), opt_text()).prop_map(
            |(user_id, anonymous_id, ip, user_agent)| Visitor { user_id, anonymous_id, ip, user_agent },
        ),
        tracking in (opt_text(), opt_text(), opt_text(), opt_text(), opt_text(), opt_text())
            .prop_map(|(source, medium, campaign_id, partner_id, content, term)| TrackingParams {
                source, medium, campaign_id, partner_id, content, term,
            }),
        target in (text(), opt_text()).prop_map(|(url, element)| Target { url, element }),
        context in (opt_text(), opt_text(), opt_text())
            .prop_map(|(page, referrer, device)| PageContext { page, referrer, device }),
        purchase in of((text(), money()).prop_map(|(order_id, amount)| Purchase { order_id, amount })),
    ) -> InteractionTracked {
        InteractionTracked {
            metadata, interaction_id, kind, interacted_at, visitor, tracking, target, context,
            purchase,
        }
    }
}

prop_compose! {
    fn interactions_discarded()(
        metadata in metadata(), visitor_id in text(), interaction_ids in texts(), reason in text(),
    ) -> InteractionsDiscarded {
        InteractionsDiscarded { metadata, visitor_id, interaction_ids, reason }
    }
}

// ---- attribution

prop_compose! {
    fn credit()(
        interaction_id in text(),
        partner_id in text(),
        campaign_id in opt_text(),
        weight_ppm in prop_oneof![0..=1_000_000, int()],
        amount in money(),
    ) -> Credit {
        Credit { interaction_id, partner_id, campaign_id, weight_ppm, amount }
    }
}

prop_compose! {
    fn conversion_attributed()(
        metadata in metadata(),
        journey_id in text(),
        interaction_id in text(),
        order_id in text(),
        campaign_id in text(),
        amount in money(),
        model in attribution_model(),
        credits in vec(credit(), 0..4),
        fraud_score in int(),
    ) -> ConversionAttributed {
        ConversionAttributed {
            metadata, journey_id, interaction_id, order_id, campaign_id, amount, model, credits,
            fraud_score,
        }
    }
}

prop_compose! {
    fn conversion_rejected()(
        metadata in metadata(),
        journey_id in opt_text(),
        interaction_id in text(),
        order_id in text(),
        campaign_id in opt_text(),
        reason in prop_oneof![
            Just(ConversionRejectionReason::NoEligibleTouchpoint),
            Just(ConversionRejectionReason::CampaignUnknown),
            Just(ConversionRejectionReason::CampaignInactive),
            Just(ConversionRejectionReason::FraudSuspected),
        ],
        detail in text(),
        fraud_score in int(),
    ) -> ConversionRejected {
        ConversionRejected {
            metadata, journey_id, interaction_id, order_id, campaign_id, reason, detail, fraud_score,
        }
    }
}

prop_compose! {
    fn attribution_reverted()(
        metadata in metadata(), journey_id in text(), interaction_ids in texts(), reason in text(),
    ) -> AttributionReverted {
        AttributionReverted { metadata, journey_id, interaction_ids, reason }
    }
}

// ---- commission

prop_compose! {
    fn commission_reserved()(
        metadata in metadata(),
        commission_id in text(),
        campaign_id in text(),
        partner_id in text(),
        order_id in text(),
        sale_amount in money(),
        commission in money(),
        budget_remaining in money(),
    ) -> CommissionReserved {
        CommissionReserved {
            metadata, commission_id, campaign_id, partner_id, order_id, sale_amount, commission,
            budget_remaining,
        }
    }
}

prop_compose! {
    fn commission_rejected()(
        metadata in metadata(),
        campaign_id in text(),
        partner_id in opt_text(),
        order_id in text(),
        reason in prop_oneof![
            Just(CommissionRejectionReason::BudgetExhausted),
            Just(CommissionRejectionReason::CampaignInactive),
            Just(CommissionRejectionReason::CampaignUnknown),
            Just(CommissionRejectionReason::SagaCompensated),
        ],
        detail in text(),
    ) -> CommissionRejected {
        CommissionRejected { metadata, campaign_id, partner_id, order_id, reason, detail }
    }
}

prop_compose! {
    fn commission_reverted()(
        metadata in metadata(),
        commission_id in opt_text(),
        campaign_id in opt_text(),
        released in of(money()),
        reason in text(),
    ) -> CommissionReverted {
        CommissionReverted { metadata, commission_id, campaign_id, released, reason }
    }
}

prop_compose! {
    fn commission_confirmed()(
        metadata in metadata(),
        commission_id in text(),
        campaign_id in text(),
        partner_id in text(),
        amount in money(),
    ) -> CommissionConfirmed {
        CommissionConfirmed { metadata, commission_id, campaign_id, partner_id, amount }
    }
}

// ---- marketing

prop_compose! {
    fn fraud_detected()(
        metadata in metadata(), reason in text(), reporter in text(), score in of(int()),
    ) -> FraudDetected {
        FraudDetected { metadata, reason, reporter, score }
    }
}

prop_compose! {
    fn saga_timed_out()(
        metadata in metadata(), deadline in timestamp(), last_status in text(),
    ) -> SagaTimedOut {
        SagaTimedOut { metadata, deadline, last_status }
    }
}

prop_compose! {
    fn commission_terms()(
        kind in prop_oneof![Just(CommissionKind::Percentage), Just(CommissionKind::Fixed)],
        percentage_bps in of(int()),
        fixed_minor in of(long()),
        minimum_minor in long(),
        maximum_minor in of(long()),
    ) -> CommissionTerms {
        CommissionTerms { kind, percentage_bps, fixed_minor, minimum_minor, maximum_minor }
    }
}

prop_compose! {
    fn campaign_created()(
        metadata in metadata(),
        campaign_id in text(),
        name in text(),
        budget in money(),
        terms in commission_terms(),
        attribution_model in attribution_model(),
        attribution_window_days in int(),
        fraud_threshold in int(),
    ) -> CampaignCreated {
        CampaignCreated {
            metadata, campaign_id, name, budget, terms, attribution_model,
            attribution_window_days, fraud_threshold,
        }
    }
}

prop_compose! {
    fn campaign_activated()(
        metadata in metadata(), campaign_id in text(), reason in opt_text(),
    ) -> CampaignActivated {
        CampaignActivated { metadata, campaign_id, reason }
    }
}

prop_compose! {
    fn campaign_paused()(
        metadata in metadata(), campaign_id in text(), reason in opt_text(),
    ) -> CampaignPaused {
        CampaignPaused { metadata, campaign_id, reason }
    }
}

prop_compose! {
    fn campaign_completed()(
        metadata in metadata(), campaign_id in text(), reason in opt_text(),
    ) -> CampaignCompleted {
        CampaignCompleted { metadata, campaign_id, reason }
    }
}

/// One proptest per event type: `decode_unchecked(encode(e)) == e`, and `decode` agrees with
/// `validate`.
macro_rules! roundtrip {
    ($($test:ident: $ty:ty = $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            $(
                #[test]
                fn $test(event in $strategy) {
                    let bytes = encode(&event)?;
                    let back: $ty = decode_unchecked(&bytes)?;
                    prop_assert_eq!(&back, &event);
                    match (decode::<$ty>(&bytes), event.validate()) {
                        (Ok(checked), Ok(())) => prop_assert_eq!(checked, event),
                        (Err(CodecError::Invalid { source, .. }), Err(invalid)) => {
                            prop_assert_eq!(source, invalid)
                        }
                        (decoded, validated) => prop_assert!(
                            false,
                            "decode {decoded:?} disagrees with validate {validated:?}"
                        ),
                    }
                }
            )*
        }
    };
}

roundtrip! {
    interaction_tracked_roundtrips: InteractionTracked = interaction_tracked();
    interactions_discarded_roundtrips: InteractionsDiscarded = interactions_discarded();
    conversion_attributed_roundtrips: ConversionAttributed = conversion_attributed();
    conversion_rejected_roundtrips: ConversionRejected = conversion_rejected();
    attribution_reverted_roundtrips: AttributionReverted = attribution_reverted();
    commission_reserved_roundtrips: CommissionReserved = commission_reserved();
    commission_rejected_roundtrips: CommissionRejected = commission_rejected();
    commission_reverted_roundtrips: CommissionReverted = commission_reverted();
    commission_confirmed_roundtrips: CommissionConfirmed = commission_confirmed();
    fraud_detected_roundtrips: FraudDetected = fraud_detected();
    saga_timed_out_roundtrips: SagaTimedOut = saga_timed_out();
    campaign_created_roundtrips: CampaignCreated = campaign_created();
    campaign_activated_roundtrips: CampaignActivated = campaign_activated();
    campaign_paused_roundtrips: CampaignPaused = campaign_paused();
    campaign_completed_roundtrips: CampaignCompleted = campaign_completed();
}

#[test]
fn every_event_type_is_distinct_and_its_schema_matches() {
    let all = alpes_contracts::events::all();
    let names: HashSet<_> = all.iter().map(|t| t.name).collect();
    assert_eq!(names.len(), 15, "duplicate names in {all:?}");
    let topics: HashSet<_> = all.iter().map(|t| t.topic()).collect();
    assert_eq!(topics.len(), 15, "duplicate topics in {all:?}");

    for ty in all {
        let schema = Schema::parse_str(ty.schema_text)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", ty.schema_path()));
        let Schema::Record(record) = &schema else {
            panic!("{} is not a record", ty.schema_path());
        };
        assert_eq!(record.name.name(), ty.name, "{}", ty.schema_path());
        assert_eq!(
            record.name.fullname(None),
            format!("dev.alpes.v1.{}.{}", ty.service, ty.name),
            "{}",
            ty.schema_path()
        );
        assert_eq!(
            record.fields.first().map(|f| f.name.as_str()),
            Some("metadata"),
            "{}",
            ty.schema_path()
        );
        assert_eq!(ty.schema(), &schema, "{}", ty.schema_path());
        assert_eq!(
            alpes_contracts::events::by_name(ty.name).map(|t| t.name),
            Some(ty.name)
        );
    }
}
