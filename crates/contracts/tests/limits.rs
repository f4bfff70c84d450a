//! The limits as consumers meet them: `decode` refuses an event whose strings break them and
//! names the field, so no service ever acts on (or logs) such an event.

use alpes_contracts::codec::{self, CodecError};
use alpes_contracts::events::attribution::{ConversionAttributed, Credit};
use alpes_contracts::events::marketing::FraudDetected;
use alpes_contracts::events::tracking::{
    InteractionKind, InteractionTracked, PageContext, Purchase, Target, TrackingParams, Visitor,
};
use alpes_contracts::limits::{self, Validate};
use alpes_contracts::{EventMetadata, Money};

fn purchase() -> InteractionTracked {
    InteractionTracked {
        metadata: EventMetadata::new::<InteractionTracked>().in_saga("saga-1"),
        interaction_id: "i-1".into(),
        kind: InteractionKind::Purchase,
        interacted_at: chrono::DateTime::from_timestamp_micros(1_764_000_000_000_000).unwrap(),
        visitor: Visitor {
            user_id: None,
            anonymous_id: "visitor-1".into(),
            ip: Some("203.0.113.7".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        },
        tracking: TrackingParams {
            campaign_id: Some("campaign-1".into()),
            partner_id: Some("partner-1".into()),
            ..TrackingParams::default()
        },
        target: Target {
            url: "https://shop.example/checkout".into(),
            element: None,
        },
        context: PageContext::default(),
        purchase: Some(Purchase {
            order_id: "order-1".into(),
            amount: Money::new(12_000, "EUR"),
        }),
    }
}

fn fraud(reason: &str) -> FraudDetected {
    FraudDetected {
        metadata: EventMetadata::new::<FraudDetected>().in_saga("saga-1"),
        reason: reason.into(),
        reporter: "ops".into(),
        score: None,
    }
}

/// The field `decode` names when it refuses `event`.
fn refused_field<E: alpes_contracts::Event>(event: &E) -> String {
    let bytes = codec::encode(event).unwrap();
    match codec::decode::<E>(&bytes) {
        Err(CodecError::Invalid { source, .. }) => source.field,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_valid_event_decodes() {
    let event = purchase();
    let bytes = codec::encode(&event).unwrap();
    assert_eq!(codec::decode::<InteractionTracked>(&bytes).unwrap(), event);
    let reason = "chargeback\nconfirmed by the bank";
    assert!(codec::decode::<FraudDetected>(&codec::encode(&fraud(reason)).unwrap()).is_ok());
}

#[test]
fn a_nul_in_an_id_is_refused_naming_the_field() {
    let mut event = purchase();
    event.visitor.anonymous_id = "a\u{0}b".into();
    assert_eq!(refused_field(&event), "visitor.anonymous_id");
}

#[test]
fn an_oversize_id_is_refused_naming_the_field() {
    let mut event = purchase();
    event.tracking.campaign_id = Some("c".repeat(3_000));
    assert_eq!(refused_field(&event), "tracking.campaign_id");
    let mut event = purchase();
    event.tracking.campaign_id = Some("c".repeat(limits::ID.max_bytes));
    assert!(event.validate().is_ok(), "the limit itself is allowed");
}

#[test]
fn a_nul_in_a_reason_is_refused_and_the_message_says_why() {
    let bytes = codec::encode(&fraud("chargeback\u{0}")).unwrap();
    let error = codec::decode::<FraudDetected>(&bytes).unwrap_err();
    assert_eq!(
        error.to_string(),
        "FraudDetected is not valid: reason: contains the control character U+0000 at byte 10"
    );
}

#[test]
fn metadata_nested_records_and_lists_are_checked() {
    let mut event = fraud("chargeback");
    event.metadata.saga_id = Some("s".repeat(129));
    assert_eq!(refused_field(&event), "metadata.saga_id");

    let mut event = purchase();
    event.purchase.as_mut().unwrap().amount.currency = "eur".into();
    assert_eq!(refused_field(&event), "purchase.amount.currency");

    let credit = |partner: &str| Credit {
        interaction_id: "i-1".into(),
        partner_id: partner.into(),
        campaign_id: None,
        weight_ppm: 500_000,
        amount: Money::new(6_000, "EUR"),
    };
    let attributed = ConversionAttributed {
        metadata: EventMetadata::new::<ConversionAttributed>().in_saga("saga-1"),
        journey_id: "j-1".into(),
        interaction_id: "i-1".into(),
        order_id: "order-1".into(),
        campaign_id: "campaign-1".into(),
        amount: Money::new(12_000, "EUR"),
        model: alpes_contracts::events::attribution::AttributionModel::Linear,
        credits: vec![credit("p-1"), credit("p\u{1b}[31m")],
        fraud_score: 0,
    };
    assert_eq!(refused_field(&attributed), "credits[1].partner_id");
}

#[test]
fn unchecked_decoding_still_reads_what_arrived() {
    let bytes = codec::encode(&fraud("chargeback\u{0}")).unwrap();
    let read: FraudDetected = codec::decode_unchecked(&bytes).unwrap();
    assert_eq!(read.reason, "chargeback\u{0}");
}
