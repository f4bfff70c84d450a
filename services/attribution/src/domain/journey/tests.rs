//! The journey's business rules, given events / when command / then events.

use alpes_contracts::{Money, Timestamp};
use chrono::{TimeDelta, TimeZone, Utc};

use super::*;
use crate::domain::{Model, TouchpointKind};
use alpes_aggregate::given;

/// When the visitor buys.
fn purchase_time() -> Timestamp {
    Utc.with_ymd_and_hms(2025, 3, 30, 12, 0, 0).unwrap()
}

fn days_before(days: i64) -> Timestamp {
    purchase_time() - TimeDelta::days(days)
}

fn touchpoint(id: &str, days: i64, partner: Option<&str>, kind: TouchpointKind) -> Touchpoint {
    Touchpoint {
        interaction_id: id.into(),
        at: days_before(days),
        partner_id: partner.map(Into::into),
        campaign_id: Some("spring".into()),
        source: Some("blog".into()),
        medium: Some("affiliate".into()),
        kind,
    }
}

/// A click through `partner`'s link `days` before the purchase.
fn click(id: &str, days: i64, partner: &str) -> JourneyEvent {
    JourneyEvent::TouchpointRecorded(touchpoint(id, days, Some(partner), TouchpointKind::Click))
}

fn spring(model: Model, status: CampaignStatus) -> Option<CampaignSettings> {
    Some(CampaignSettings {
        campaign_id: "spring".into(),
        status,
        model,
        window_days: 30,
        fraud_threshold: 70,
        currency: "EUR".into(),
    })
}

fn active(model: Model) -> Option<CampaignSettings> {
    spring(model, CampaignStatus::Active)
}

fn purchase(id: &str) -> Purchase {
    Purchase {
        interaction_id: id.into(),
        order_id: format!("order-of-{id}"),
        amount: Money::new(10_000, "EUR"),
        at: purchase_time(),
        campaign_id: Some("spring".into()),
        medium: Some("affiliate".into()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".into()),
    }
}

fn convert(purchase: Purchase, campaign: Option<CampaignSettings>) -> JourneyCommand {
    JourneyCommand::Convert { purchase, campaign }
}

fn revert() -> JourneyCommand {
    JourneyCommand::Revert {
        reason: "reported as fraud".into(),
    }
}

fn credit(id: &str, partner: &str, weight_ppm: u32, amount_minor: i64) -> Credit {
    Credit {
        interaction_id: id.into(),
        partner_id: partner.into(),
        campaign_id: Some("spring".into()),
        weight_ppm,
        amount_minor,
    }
}

fn attributed(model: Model, credits: Vec<Credit>) -> JourneyEvent {
    JourneyEvent::Attributed(Attribution {
        purchase_interaction_id: "buy".into(),
        order_id: "order-of-buy".into(),
        campaign_id: "spring".into(),
        amount: Money::new(10_000, "EUR"),
        purchased_at: purchase_time(),
        model,
        credits,
        fraud_score: 0,
    })
}

/// The single rejection among `events`.
#[track_caller]
fn rejection(events: Vec<JourneyEvent>) -> Rejection {
    match events.as_slice() {
        [JourneyEvent::Rejected(rejection)] => rejection.clone(),
        other => panic!("expected one rejection, got {other:?}"),
    }
}

/// The single attribution among `events`.
#[track_caller]
fn attribution(events: Vec<JourneyEvent>) -> Attribution {
    match events.as_slice() {
        [JourneyEvent::Attributed(attribution)] => attribution.clone(),
        other => panic!("expected one attribution, got {other:?}"),
    }
}

/// A journey converted by purchase `buy` after clicks `a` (ada) and `b` (bob).
fn converted() -> Vec<JourneyEvent> {
    vec![
        click("a", 10, "ada"),
        click("b", 2, "bob"),
        attributed(
            Model::LastTouch,
            vec![credit("b", "bob", 1_000_000, 10_000)],
        ),
    ]
}

// Touchpoints

#[test]
fn a_touchpoint_joins_an_open_journey() {
    let state = given::<Journey>(&[])
        .when(JourneyCommand::RecordTouchpoint(touchpoint(
            "a",
            1,
            Some("ada"),
            TouchpointKind::View,
        )))
        .then(&[JourneyEvent::TouchpointRecorded(touchpoint(
            "a",
            1,
            Some("ada"),
            TouchpointKind::View,
        ))]);
    assert_eq!(state.status(), JourneyStatus::Open);
    assert_eq!(state.touchpoints().len(), 1);
}

#[test]
fn a_redelivered_touchpoint_changes_nothing() {
    given::<Journey>(&[click("a", 1, "ada")])
        .when(JourneyCommand::RecordTouchpoint(touchpoint(
            "a",
            1,
            Some("ada"),
            TouchpointKind::Click,
        )))
        .then(&[]);
}

#[test]
fn a_converted_journey_sends_the_next_interaction_to_a_new_journey() {
    given::<Journey>(&converted())
        .when(JourneyCommand::RecordTouchpoint(touchpoint(
            "c",
            0,
            Some("ada"),
            TouchpointKind::Click,
        )))
        .then_error(DomainError::JourneyClosed {
            status: JourneyStatus::Converted,
        });
}

#[test]
fn a_touchpoint_redelivered_after_the_conversion_changes_nothing() {
    given::<Journey>(&converted())
        .when(JourneyCommand::RecordTouchpoint(touchpoint(
            "a",
            10,
            Some("ada"),
            TouchpointKind::Click,
        )))
        .then(&[]);
}

// Models

#[test]
fn last_touch_credits_the_last_partner() {
    let state = given::<Journey>(&[click("a", 10, "ada"), click("b", 2, "bob")])
        .when(convert(purchase("buy"), active(Model::LastTouch)))
        .then(&[attributed(
            Model::LastTouch,
            vec![credit("b", "bob", 1_000_000, 10_000)],
        )]);
    assert_eq!(state.status(), JourneyStatus::Converted);
    assert_eq!(state.purchase_interaction_id(), Some("buy"));
}

#[test]
fn last_touch_goes_by_time_not_by_arrival() {
    given::<Journey>(&[click("b", 2, "bob"), click("a", 10, "ada")])
        .when(convert(purchase("buy"), active(Model::LastTouch)))
        .then(&[attributed(
            Model::LastTouch,
            vec![credit("b", "bob", 1_000_000, 10_000)],
        )]);
}

#[test]
fn first_touch_credits_the_first_partner() {
    given::<Journey>(&[click("a", 10, "ada"), click("b", 2, "bob")])
        .when(convert(purchase("buy"), active(Model::FirstTouch)))
        .then(&[attributed(
            Model::FirstTouch,
            vec![credit("a", "ada", 1_000_000, 10_000)],
        )]);
}

#[test]
fn linear_shares_the_sale_without_losing_a_cent() {
    given::<Journey>(&[
        click("a", 10, "ada"),
        click("b", 5, "bob"),
        click("c", 1, "cyd"),
    ])
    .when(convert(purchase("buy"), active(Model::Linear)))
    .then(&[attributed(
        Model::Linear,
        vec![
            credit("a", "ada", 333_333, 3_333),
            credit("b", "bob", 333_333, 3_333),
            credit("c", "cyd", 333_334, 3_334),
        ],
    )]);
}

#[test]
fn position_based_gives_the_ends_40_percent_each() {
    let (events, _) = given::<Journey>(&[
        click("a", 10, "ada"),
        click("b", 5, "bob"),
        click("c", 1, "cyd"),
    ])
    .when(convert(purchase("buy"), active(Model::PositionBased)))
    .then_events();
    let weights: Vec<u32> = attribution(events)
        .credits
        .iter()
        .map(|c| c.weight_ppm)
        .collect();
    assert_eq!(weights, [400_000, 200_000, 400_000]);
}

// Eligibility

#[test]
fn the_window_excludes_old_touchpoints() {
    given::<Journey>(&[click("old", 31, "ada"), click("b", 5, "bob")])
        .when(convert(purchase("buy"), active(Model::FirstTouch)))
        .then(&[attributed(
            Model::FirstTouch,
            vec![credit("b", "bob", 1_000_000, 10_000)],
        )]);
}

#[test]
fn a_touchpoint_on_the_window_edge_still_counts() {
    given::<Journey>(&[click("edge", 30, "ada"), click("b", 5, "bob")])
        .when(convert(purchase("buy"), active(Model::FirstTouch)))
        .then(&[attributed(
            Model::FirstTouch,
            vec![credit("edge", "ada", 1_000_000, 10_000)],
        )]);
}

#[test]
fn a_touchpoint_after_the_purchase_does_not_count() {
    given::<Journey>(&[click("a", 5, "ada"), click("later", -1, "bob")])
        .when(convert(purchase("buy"), active(Model::LastTouch)))
        .then(&[attributed(
            Model::LastTouch,
            vec![credit("a", "ada", 1_000_000, 10_000)],
        )]);
}

#[test]
fn a_view_only_journey_is_credited_when_it_names_a_partner() {
    let view = touchpoint("v", 3, Some("ada"), TouchpointKind::View);
    given::<Journey>(&[JourneyEvent::TouchpointRecorded(view)])
        .when(convert(purchase("buy"), active(Model::LastTouch)))
        .then(&[attributed(
            Model::LastTouch,
            vec![credit("v", "ada", 1_000_000, 10_000)],
        )]);
}

#[test]
fn touchpoints_without_partner_are_never_credited() {
    let organic = touchpoint("o", 1, None, TouchpointKind::Click);
    let blank = touchpoint("blank", 1, Some(" "), TouchpointKind::Click);
    given::<Journey>(&[
        click("a", 5, "ada"),
        JourneyEvent::TouchpointRecorded(organic),
        JourneyEvent::TouchpointRecorded(blank),
    ])
    .when(convert(purchase("buy"), active(Model::LastTouch)))
    .then(&[attributed(
        Model::LastTouch,
        vec![credit("a", "ada", 1_000_000, 10_000)],
    )]);
}

#[test]
fn no_partner_means_no_eligible_touchpoint() {
    let organic = touchpoint("o", 1, None, TouchpointKind::Click);
    let (events, state) = given::<Journey>(&[JourneyEvent::TouchpointRecorded(organic)])
        .when(convert(purchase("buy"), active(Model::LastTouch)))
        .then_events();
    let rejection = rejection(events);
    assert_eq!(rejection.reason, RejectionReason::NoEligibleTouchpoint);
    assert_eq!(rejection.campaign_id.as_deref(), Some("spring"));
    assert_eq!(
        state.status(),
        JourneyStatus::Converted,
        "a rejected purchase closes the journey too"
    );
}

// Campaign

#[test]
fn an_unknown_campaign_rejects_the_purchase() {
    let (events, _) = given::<Journey>(&[click("a", 1, "ada")])
        .when(convert(purchase("buy"), None))
        .then_events();
    let rejection = rejection(events);
    assert_eq!(rejection.reason, RejectionReason::CampaignUnknown);
    assert_eq!(rejection.campaign_id.as_deref(), Some("spring"));
    assert_eq!(rejection.detail, "campaign spring is not known");
}

#[test]
fn a_purchase_without_any_campaign_is_rejected_as_campaign_unknown() {
    let mut untracked = touchpoint("a", 1, Some("ada"), TouchpointKind::Click);
    untracked.campaign_id = None;
    let bare = Purchase {
        campaign_id: None,
        ..purchase("buy")
    };
    let journey = given::<Journey>(&[JourneyEvent::TouchpointRecorded(untracked)]);
    let (events, _) = journey.when(convert(bare, None)).then_events();
    let rejection = rejection(events);
    assert_eq!(rejection.reason, RejectionReason::CampaignUnknown);
    assert_eq!(rejection.campaign_id, None);
    assert_eq!(rejection.fraud_score, 30);
}

#[test]
fn a_purchase_without_campaign_takes_that_of_its_latest_partner_touchpoint() {
    let bare = Purchase {
        campaign_id: None,
        ..purchase("buy")
    };
    let journey = Journey::from_events(&[click("a", 10, "ada"), click("b", 2, "bob")]);
    assert_eq!(journey.campaign_for(&bare).as_deref(), Some("spring"));
    let (events, _) = given::<Journey>(&[click("a", 10, "ada"), click("b", 2, "bob")])
        .when(convert(bare, active(Model::LastTouch)))
        .then_events();
    let attribution = attribution(events);
    assert_eq!(attribution.campaign_id, "spring");
    assert_eq!(
        attribution.fraud_score, 30,
        "no campaign on the purchase is a signal"
    );
}

#[test]
fn a_paused_campaign_rejects_the_purchase_as_inactive() {
    let (events, _) = given::<Journey>(&[click("a", 1, "ada")])
        .when(convert(
            purchase("buy"),
            spring(Model::LastTouch, CampaignStatus::Paused),
        ))
        .then_events();
    let rejection = rejection(events);
    assert_eq!(rejection.reason, RejectionReason::CampaignInactive);
    assert_eq!(rejection.detail, "campaign spring is PAUSED");
}

#[test]
fn draft_and_completed_campaigns_are_inactive_too() {
    for status in [CampaignStatus::Draft, CampaignStatus::Completed] {
        let (events, _) = given::<Journey>(&[click("a", 1, "ada")])
            .when(convert(purchase("buy"), spring(Model::LastTouch, status)))
            .then_events();
        assert_eq!(rejection(events).reason, RejectionReason::CampaignInactive);
    }
}

#[test]
fn settings_of_another_campaign_are_refused() {
    let mut other = active(Model::LastTouch).unwrap();
    other.campaign_id = "autumn".into();
    given::<Journey>(&[click("a", 1, "ada")])
        .when(convert(purchase("buy"), Some(other)))
        .then_error(DomainError::WrongCampaign {
            expected: Some("spring".into()),
            given: "autumn".into(),
        });
}

// Fraud

#[test]
fn a_fraud_score_at_the_threshold_rejects_the_purchase() {
    let bot = Purchase {
        medium: Some("bot".into()),
        user_agent: Some("HeadlessChrome/120".into()),
        ..purchase("buy")
    };
    let (events, _) = given::<Journey>(&[click("a", 1, "ada")])
        .when(convert(bot, active(Model::LastTouch)))
        .then_events();
    let rejection = rejection(events);
    assert_eq!(rejection.reason, RejectionReason::FraudSuspected);
    assert_eq!(rejection.fraud_score, 90);
    assert_eq!(
        rejection.detail,
        "fraud score 90 (bot-like medium, blank or bot-like user agent) reaches the campaign's threshold 70"
    );
}

#[test]
fn a_fraud_score_below_the_threshold_is_attributed_with_its_score() {
    let crawled = Purchase {
        medium: Some("crawler".into()),
        ..purchase("buy")
    };
    let (events, _) = given::<Journey>(&[click("a", 1, "ada")])
        .when(convert(crawled, active(Model::LastTouch)))
        .then_events();
    assert_eq!(attribution(events).fraud_score, 50);
}

// Invalid purchases

#[test]
fn a_negative_amount_is_refused() {
    let refund = Purchase {
        amount: Money::new(-1, "EUR"),
        ..purchase("buy")
    };
    given::<Journey>(&[click("a", 1, "ada")])
        .when(convert(refund, active(Model::LastTouch)))
        .then_error(DomainError::NegativeAmount { amount_minor: -1 });
}

#[test]
fn a_purchase_in_another_currency_than_its_campaign_is_rejected_with_the_reason() {
    let dollars = Purchase {
        amount: Money::new(100, "USD"),
        ..purchase("buy")
    };
    let (events, journey) = given::<Journey>(&[click("a", 1, "ada")])
        .when(convert(dollars, active(Model::LastTouch)))
        .then_events();
    let rejection = rejection(events);
    assert_eq!(rejection.reason, RejectionReason::CurrencyMismatch);
    assert_eq!(
        rejection.detail,
        "the purchase is in USD, its campaign spring in EUR"
    );
    assert_eq!(rejection.campaign_id.as_deref(), Some("spring"));
    assert_eq!(journey.status(), JourneyStatus::Converted);
}

#[test]
fn a_free_order_is_attributed_with_zero_amounts() {
    let free = Purchase {
        amount: Money::new(0, "EUR"),
        ..purchase("buy")
    };
    let (events, _) = given::<Journey>(&[click("a", 1, "ada")])
        .when(convert(free, active(Model::LastTouch)))
        .then_events();
    assert_eq!(attribution(events).credits[0].amount_minor, 0);
}

// Idempotency of conversion

#[test]
fn converting_twice_with_the_same_purchase_changes_nothing() {
    given::<Journey>(&converted())
        .when(convert(purchase("buy"), active(Model::LastTouch)))
        .then(&[]);
}

#[test]
fn another_purchase_on_a_converted_journey_belongs_to_a_new_journey() {
    given::<Journey>(&converted())
        .when(convert(purchase("buy-again"), active(Model::LastTouch)))
        .then_error(DomainError::JourneyClosed {
            status: JourneyStatus::Converted,
        });
}

// Compensation

#[test]
fn reverting_returns_every_interaction_of_the_journey() {
    let state = given::<Journey>(&converted())
        .when(revert())
        .then(&[JourneyEvent::Reverted(Reversal {
            interaction_ids: vec!["a".into(), "b".into(), "buy".into()],
            reason: "reported as fraud".into(),
        })]);
    assert_eq!(state.status(), JourneyStatus::Reverted);
}

#[test]
fn reverting_a_reverted_journey_changes_nothing() {
    let mut history = converted();
    history.push(JourneyEvent::Reverted(Reversal {
        interaction_ids: vec!["a".into(), "b".into(), "buy".into()],
        reason: "reported as fraud".into(),
    }));
    given::<Journey>(&history).when(revert()).then(&[]);
    given::<Journey>(&history)
        .when(convert(purchase("buy"), active(Model::LastTouch)))
        .then(&[]);
}

#[test]
fn a_rejected_conversion_can_be_reverted_too() {
    let organic = touchpoint("o", 1, None, TouchpointKind::Click);
    let (events, _) = given::<Journey>(&[JourneyEvent::TouchpointRecorded(organic.clone())])
        .when(convert(purchase("buy"), active(Model::LastTouch)))
        .then_events();
    let mut history = vec![JourneyEvent::TouchpointRecorded(organic)];
    history.extend(events);
    given::<Journey>(&history)
        .when(revert())
        .then(&[JourneyEvent::Reverted(Reversal {
            interaction_ids: vec!["o".into(), "buy".into()],
            reason: "reported as fraud".into(),
        })]);
}

#[test]
fn an_open_journey_has_nothing_to_revert() {
    given::<Journey>(&[click("a", 1, "ada")])
        .when(revert())
        .then_error(DomainError::NothingToRevert);
}
