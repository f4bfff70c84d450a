//! The list of commissions: paged in id order across campaigns, filtered exactly, complete
//! (commissions that never reach a budget, another instance's, an earlier version's), and
//! served from the budgets and the registry — never from a replay of the store, but for the
//! one legacy sweep per database.

use alpes_eventstore::Probe;

use super::*;

/// An instance over a new database, its legacy sweep done: what it lists from now on is
/// what the handlers record, not what a sweep would find.
async fn counting() -> (Commissions<Probe>, Probe) {
    let store = Probe::default();
    let app = Commissions::new(store.clone());
    app.prepare_listing().await.unwrap();
    (app, store)
}

async fn swept() -> (Commissions<MemoryStore>, MemoryStore) {
    let (app, store) = app();
    app.prepare_listing().await.unwrap();
    (app, store)
}

fn filter(
    campaign: Option<&str>,
    status: Option<CommissionStatus>,
    limit: usize,
) -> CommissionFilter {
    CommissionFilter {
        campaign: campaign.map(str::to_owned),
        status,
        after: None,
        limit,
    }
}

fn ids(page: &CommissionPage) -> Vec<String> {
    page.items.iter().map(|v| v.commission_id.clone()).collect()
}

fn commission_ids(sagas: &[&str]) -> Vec<String> {
    sagas.iter().map(|saga| Commission::id_for(saga)).collect()
}

/// Every page `filter` selects, following the cursors: each page's ids.
async fn every_page<S: EventStore>(
    app: &Commissions<S>,
    mut filter: CommissionFilter,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    loop {
        let page = app.commissions(&filter).await.unwrap();
        pages.push(ids(&page));
        match page.next_cursor {
            Some(cursor) => filter.after = Some(cursor),
            None => return pages,
        }
    }
}

async fn listed<S: EventStore>(app: &Commissions<S>, filter: CommissionFilter) -> Vec<String> {
    every_page(app, filter).await.concat()
}

async fn reserve<S: EventStore>(app: &Commissions<S>, saga: &str, campaign: &str, amount: i64) {
    app.reserve(&attributed(saga, campaign, amount), Attempt::Retryable)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_list_pages_across_campaigns_in_commission_id_order() {
    let (app, _) = counting().await;
    campaign(&app, "spring", 1_000_00).await;
    campaign(&app, "autumn", 1_000_00).await;
    for (saga, campaign) in [
        ("saga-e", "spring"),
        ("saga-b", "autumn"),
        ("saga-a", "spring"),
        ("saga-d", "autumn"),
        ("saga-c", "spring"),
    ] {
        reserve(&app, saga, campaign, 120_00).await;
    }
    // Two that never reach a budget: a campaign unknown for good, a saga compensated first.
    refuse_unknown(&app, "saga-f").await;
    app.revert_for_fraud(&fraud("saga-0")).await.unwrap();

    let pages = every_page(&app, filter(None, None, 2)).await;
    assert_eq!(
        pages,
        [
            commission_ids(&["saga-0", "saga-a"]),
            commission_ids(&["saga-b", "saga-c"]),
            commission_ids(&["saga-d", "saga-e"]),
            commission_ids(&["saga-f"]),
        ]
    );
    let first = app.commissions(&filter(None, None, 3)).await.unwrap();
    assert_eq!(first.next_cursor.as_deref(), Some("commission-saga-b"));
    let all = app.commissions(&filter(None, None, 7)).await.unwrap();
    assert_eq!(all.items.len(), 7);
    assert_eq!(all.next_cursor, None, "no cursor when nothing follows");

    let spring = every_page(&app, filter(Some("spring"), None, 2)).await;
    assert_eq!(
        spring,
        [
            commission_ids(&["saga-a", "saga-c"]),
            commission_ids(&["saga-e"])
        ]
    );
    assert_eq!(
        listed(&app, filter(Some("autumn"), None, 10)).await,
        commission_ids(&["saga-b", "saga-d"])
    );
    assert_eq!(
        listed(&app, filter(Some("nowhere"), None, 10)).await,
        commission_ids(&["saga-f"])
    );
    assert!(
        listed(&app, filter(Some("winter"), None, 10))
            .await
            .is_empty()
    );
    let view = &app.commissions(&filter(None, None, 1)).await.unwrap().items[0];
    assert_eq!(
        (view.status, view.campaign_id.as_deref()),
        (CommissionStatus::Reverted, None)
    );
}

#[tokio::test]
async fn a_status_filter_lists_exactly_the_commissions_in_that_status() {
    let (app, store) = swept().await;
    campaign(&app, CAMPAIGN, 40_00).await; // three commissions of 12.00, not one of 50.00
    reserve(&app, "saga-1", CAMPAIGN, 120_00).await;
    reserve(&app, "saga-2", CAMPAIGN, 120_00).await;
    app.confirm("commission-saga-2", &TraceContext::new_trace())
        .await
        .unwrap();
    reserve(&app, "saga-6", CAMPAIGN, 120_00).await;
    app.revert_for_fraud(&fraud("saga-6")).await.unwrap(); // released
    reserve(&app, "saga-3", CAMPAIGN, 1_000_00).await; // exhausted
    reserve(&app, "saga-4", CAMPAIGN, 1_000_00).await; // exhausted, then reported:
    app.revert_for_fraud(&fraud("saga-4")).await.unwrap(); // its budget still says refused
    app.revert_for_fraud(&fraud("saga-7")).await.unwrap(); // before its sale
    // The budget refused saga-5, and the process died before the commission heard of it.
    let sale = attributed("saga-5", CAMPAIGN, 1_000_00);
    crashed_after(
        &store,
        "commission-saga-5",
        &[CommissionEvent::Attributed {
            commission_id: "commission-saga-5".to_owned(),
            sale: Sale::from_conversion(&sale).unwrap(),
        }],
    )
    .await;
    crashed_after(
        &store,
        &format!("budget-{CAMPAIGN}"),
        &[BudgetEvent::Rejected {
            saga_id: "saga-5".to_owned(),
            commission_id: "commission-saga-5".to_owned(),
            reason: crate::domain::RejectionReason::BudgetExhausted,
            detail: "too much".to_owned(),
        }],
    )
    .await;

    for (status, sagas) in [
        (CommissionStatus::Pending, &["saga-5"][..]),
        (CommissionStatus::Reserved, &["saga-1"]),
        (CommissionStatus::Confirmed, &["saga-2"]),
        (CommissionStatus::Rejected, &["saga-3"]),
        (CommissionStatus::Reverted, &["saga-4", "saga-6", "saga-7"]),
    ] {
        for campaign in [None, Some(CAMPAIGN)] {
            let wanted: Vec<&str> = sagas
                .iter()
                .copied()
                .filter(|saga| campaign.is_none() || *saga != "saga-7")
                .collect();
            let pages = every_page(&app, filter(campaign, Some(status), 1)).await;
            assert_eq!(
                pages.concat(),
                commission_ids(&wanted),
                "{status:?} {campaign:?}"
            );
            assert_eq!(
                pages.len(),
                wanted.len().max(1),
                "{status:?} {campaign:?}: {pages:?}"
            );
            let page = app
                .commissions(&filter(campaign, Some(status), 10))
                .await
                .unwrap();
            assert!(page.items.iter().all(|v| v.status == status));
        }
    }
}

#[tokio::test]
async fn commissions_that_never_reach_a_budget_are_listed() {
    let (app, _) = swept().await;
    campaign(&app, CAMPAIGN, 1_000_00).await;
    // Unknown for good: refused before any budget.
    refuse_unknown(&app, "saga-1").await;
    // Compensated before its sale, which arrives later and is refused SAGA_COMPENSATED.
    app.revert_for_timeout(&timeout("saga-2")).await.unwrap();
    reserve(&app, "saga-2", CAMPAIGN, 120_00).await;
    // Compensated, and its sale never comes.
    app.revert_for_fraud(&fraud("saga-3")).await.unwrap();
    // The registry was written and the process died before the commission was: nothing to
    // list, and no error; the redelivery writes it.
    app.list_commission("commission-saga-4", None)
        .await
        .unwrap();

    assert_eq!(
        listed(&app, filter(None, None, 10)).await,
        commission_ids(&["saga-1", "saga-2", "saga-3"])
    );
    assert_eq!(
        listed(&app, filter(Some("nowhere"), None, 10)).await,
        commission_ids(&["saga-1"])
    );
    let spring = app
        .commissions(&filter(Some(CAMPAIGN), None, 10))
        .await
        .unwrap();
    assert_eq!(ids(&spring), commission_ids(&["saga-2"]));
    let late = &spring.items[0];
    assert_eq!(late.status, CommissionStatus::Reverted);
    assert_eq!(
        late.rejection.as_ref().map(|r| r.reason),
        Some(CommissionRejectionReason::SagaCompensated)
    );
    assert_eq!(
        listed(&app, filter(None, Some(CommissionStatus::Rejected), 10)).await,
        commission_ids(&["saga-1"])
    );

    app.revert_for_fraud(&fraud("saga-4")).await.unwrap();
    assert_eq!(
        listed(&app, filter(None, None, 10)).await,
        commission_ids(&["saga-1", "saga-2", "saga-3", "saga-4"])
    );
}

#[tokio::test]
async fn another_instance_over_the_same_store_lists_what_this_one_wrote() {
    let store = MemoryStore::new();
    let (one, other) = (
        Commissions::new(store.clone()),
        Commissions::new(store.clone()),
    );
    assert!(
        one.commissions(&filter(None, None, 10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        other
            .commissions(&filter(None, None, 10))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    campaign(&one, "spring", 1_000_00).await;
    reserve(&one, "saga-a", "spring", 120_00).await;
    campaign(&other, "autumn", 1_000_00).await;
    reserve(&other, "saga-b", "autumn", 120_00).await;
    reserve(&other, "saga-c", "spring", 120_00).await;
    other.revert_for_fraud(&fraud("saga-d")).await.unwrap();
    refuse_unknown(&one, "saga-e").await;

    let everything = commission_ids(&["saga-a", "saga-b", "saga-c", "saga-d", "saga-e"]);
    for app in [&one, &other] {
        assert_eq!(listed(app, filter(None, None, 2)).await, everything);
        assert_eq!(
            listed(app, filter(Some("spring"), None, 1)).await,
            commission_ids(&["saga-a", "saga-c"])
        );
    }
}

/// A sale of a campaign unknown for good: refused before reaching any budget.
async fn refuse_unknown<S: EventStore>(app: &Commissions<S>, saga: &str) {
    app.reserve(&attributed(saga, "nowhere", 120_00), Attempt::Last)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_list_never_replays_the_store_but_once_per_database() {
    let (app, store) = counting().await;
    campaign(&app, CAMPAIGN, 1_000_00).await;
    reserve(&app, "saga-a", CAMPAIGN, 120_00).await;
    let swept = store.replays();
    assert!(swept > 0, "a new database is swept once too");

    reserve(&app, "saga-b", CAMPAIGN, 120_00).await;
    app.revert_for_fraud(&fraud("saga-c")).await.unwrap();
    for limit in [1, 10] {
        for status in [None, Some(CommissionStatus::Reserved)] {
            every_page(&app, filter(None, status, limit)).await;
            every_page(&app, filter(Some(CAMPAIGN), status, limit)).await;
        }
    }
    let replica = Commissions::new(store.clone());
    assert_eq!(
        listed(&replica, filter(None, None, 10)).await,
        commission_ids(&["saga-a", "saga-b", "saga-c"])
    );
    assert_eq!(
        store.replays(),
        swept,
        "the flag is read, the store not replayed"
    );

    // A commission stream no budget or registry names yet (the process died between its
    // first and second write) is in the store, where a replay would find it, and not listed:
    // the list is not a replay. The redelivery reaches the budget, and lists it.
    let sale = attributed("saga-0", CAMPAIGN, 120_00);
    crashed_after(
        store.store(),
        "commission-saga-0",
        &[CommissionEvent::Attributed {
            commission_id: "commission-saga-0".to_owned(),
            sale: Sale::from_conversion(&sale).unwrap(),
        }],
    )
    .await;
    assert!(app.commission("commission-saga-0").await.unwrap().is_some());
    assert_eq!(
        listed(&app, filter(None, None, 10)).await,
        commission_ids(&["saga-a", "saga-b", "saga-c"])
    );
    app.reserve(&sale, Attempt::Retryable).await.unwrap();
    assert_eq!(
        listed(&app, filter(Some(CAMPAIGN), None, 10)).await,
        commission_ids(&["saga-0", "saga-a", "saga-b"])
    );
    assert_eq!(store.replays(), swept);
}

/// `store`'s commits but the registry's: a database an earlier version wrote.
async fn without_registry(store: &MemoryStore) -> MemoryStore {
    let legacy = MemoryStore::new();
    for commit in store.replay(None, usize::MAX).await.unwrap() {
        if commit.stream.starts_with("registry-") {
            continue;
        }
        legacy
            .append(NewCommit {
                expected_version: commit.version - 1,
                stream: commit.stream,
                events: commit.events,
                outbox: commit.outbox,
                handled: commit.handled,
            })
            .await
            .unwrap();
    }
    legacy
}

#[tokio::test]
async fn commissions_an_earlier_version_wrote_are_listed_after_one_sweep() {
    let (before, store) = app();
    campaign(&before, CAMPAIGN, 1_000_00).await;
    reserve(&before, "saga-1", CAMPAIGN, 120_00).await;
    before.revert_for_fraud(&fraud("saga-2")).await.unwrap();
    refuse_unknown(&before, "saga-3").await;
    before.revert_for_timeout(&timeout("saga-5")).await.unwrap();
    reserve(&before, "saga-5", CAMPAIGN, 120_00).await; // refused SAGA_COMPENSATED
    let pending = attributed("saga-4", CAMPAIGN, 120_00);
    crashed_after(
        &store,
        "commission-saga-4",
        &[CommissionEvent::Attributed {
            commission_id: "commission-saga-4".to_owned(),
            sale: Sale::from_conversion(&pending).unwrap(),
        }],
    )
    .await;
    let legacy = Probe::over(without_registry(&store).await);

    let app = Commissions::new(legacy.clone());
    let everything = commission_ids(&["saga-1", "saga-2", "saga-3", "saga-4", "saga-5"]);
    assert_eq!(listed(&app, filter(None, None, 2)).await, everything);
    assert_eq!(
        listed(&app, filter(Some(CAMPAIGN), None, 2)).await,
        commission_ids(&["saga-1", "saga-4", "saga-5"])
    );
    assert_eq!(
        listed(&app, filter(Some("nowhere"), None, 2)).await,
        commission_ids(&["saga-3"])
    );
    let swept = legacy.replays();
    assert!(swept > 0);

    // Once per database: another process reads the flag.
    let replica = Commissions::new(legacy.clone());
    assert_eq!(listed(&replica, filter(None, None, 10)).await, everything);
    // The pending one reaches its budget: listed once, not twice.
    replica.reserve(&pending, Attempt::Retryable).await.unwrap();
    assert_eq!(listed(&replica, filter(None, None, 10)).await, everything);
    assert_eq!(
        listed(&replica, filter(None, Some(CommissionStatus::Reserved), 10)).await,
        commission_ids(&["saga-1", "saga-4"])
    );
    assert_eq!(legacy.replays(), swept);
}

#[tokio::test]
async fn a_page_ends_early_after_examining_its_share_and_the_cursor_goes_on() {
    let (app, store) = swept().await;
    campaign(&app, CAMPAIGN, 1_000_000_00).await;
    // More reservations than one request examines for a status they cannot be sure not to
    // have, none of them reverted.
    let held: Vec<BudgetEvent> = (0..crate::app::listing::MAX_PASSED + 8)
        .map(|i| BudgetEvent::Reserved {
            saga_id: format!("held-{i:04}"),
            commission_id: format!("commission-held-{i:04}"),
            sale: eur(10_00),
            amount: eur(1_00),
            remaining: eur(1_00),
        })
        .collect();
    crashed_after(&store, &format!("budget-{CAMPAIGN}"), &held).await;
    app.revert_for_fraud(&fraud("zzz")).await.unwrap();

    let pages = every_page(&app, filter(None, Some(CommissionStatus::Reverted), 10)).await;
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages[0].is_empty());
    assert_eq!(pages[1], commission_ids(&["zzz"]));
}
