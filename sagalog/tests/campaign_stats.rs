//! Marketing's read models beside the log. Campaign statistics, counted in the saga log's
//! transactions: each event once, sums exact, concurrent writers and a one-time import of older
//! counts adding up. The campaign list: newest version wins, paged in id order. Against the
//! local stack's Postgres (`scripts/stack.sh up`).

mod common;

use std::time::Duration;

use alpes_contracts::events::tracking::InteractionKind;
use alpes_sagalog::{CampaignStats, Count, Counted, Observation, Recorder, SagaLog};

async fn log() -> SagaLog {
    common::log_with(Duration::from_secs(30)).await
}

fn campaign() -> String {
    format!("stats-{}", uuid::Uuid::now_v7())
}

fn counted(campaign_id: &str, count: Count) -> Counted {
    Counted {
        event_id: uuid::Uuid::new_v4().to_string(),
        campaign_id: campaign_id.to_owned(),
        count,
    }
}

fn only(counted: &Counted) -> Observation {
    Observation {
        step: None,
        counted: Some(counted.clone()),
    }
}

const VIEW: Count = Count::Interaction {
    kind: InteractionKind::View,
};

#[tokio::test]
async fn each_event_counts_once_however_often_it_arrives() {
    let log = log().await;
    let campaign = campaign();
    let events = [
        counted(&campaign, VIEW),
        counted(&campaign, VIEW),
        counted(
            &campaign,
            Count::Interaction {
                kind: InteractionKind::Click,
            },
        ),
        counted(
            &campaign,
            Count::Interaction {
                kind: InteractionKind::Purchase,
            },
        ),
        counted(
            &campaign,
            Count::Conversion {
                amount_minor: 5_000,
            },
        ),
        counted(&campaign, Count::ConversionRejected),
        counted(&campaign, Count::CommissionReserved { amount_minor: 500 }),
        counted(&campaign, Count::CommissionRejected),
        counted(
            &campaign,
            Count::CommissionReverted {
                released_minor: 500,
            },
        ),
    ];
    let observed: Vec<Observation> = events.iter().map(only).collect();
    log.observe(&observed).await.unwrap();
    // Redelivered: alone, in a batch of their own, and mixed with a new one.
    log.observe(&observed).await.unwrap();
    log.observe(&observed[..3]).await.unwrap();
    let late = counted(&campaign, VIEW);
    log.observe(&[only(&late), observed[0].clone()])
        .await
        .unwrap();

    let wanted = CampaignStats {
        views: 3,
        clicks: 1,
        purchases: 1,
        conversions: 1,
        conversions_rejected: 1,
        sales_attributed_minor: 5_000,
        commissions_reserved: 1,
        commissions_rejected: 1,
        commissions_reverted: 1,
        commission_reserved_minor: 500,
        commission_released_minor: 500,
    };
    assert_eq!(log.campaign_stats(&campaign).await.unwrap(), wanted);
    assert_eq!(
        log.campaign_stats(&self::campaign()).await.unwrap(),
        CampaignStats::default(),
        "a campaign nothing counted for is all zeros"
    );
}

#[tokio::test]
async fn two_of_the_largest_sales_add_up_exactly() {
    let log = log().await;
    let campaign = campaign();
    let sale = || {
        only(&counted(
            &campaign,
            Count::Conversion {
                amount_minor: i64::MAX,
            },
        ))
    };
    log.observe(&[sale(), sale()]).await.unwrap();
    let stats = log.campaign_stats(&campaign).await.unwrap();
    assert_eq!(stats.sales_attributed_minor, 2 * i128::from(i64::MAX));
    let json = serde_json::to_string(&stats).unwrap();
    assert!(
        json.contains("\"sales_attributed_minor\":18446744073709551614"),
        "{json}"
    );
}

#[tokio::test]
async fn concurrent_writers_over_the_same_campaigns_lose_and_double_nothing() {
    let log = log().await;
    let campaigns = [campaign(), campaign(), campaign()];
    // 600 views spread over three campaigns, every one handed in twice, by 12 writers at once
    // (through the group-committing recorder and straight to the log).
    let views: Vec<Counted> = (0..600).map(|i| counted(&campaigns[i % 3], VIEW)).collect();
    let (recorder, writer) = Recorder::spawn(log.clone());
    let mut tasks = Vec::new();
    for writer_no in 0..12 {
        let chunk: Vec<Counted> = views
            .iter()
            .skip(writer_no % 6 * 100)
            .take(100)
            .cloned()
            .collect();
        let (log, recorder) = (log.clone(), recorder.clone());
        tasks.push(tokio::spawn(async move {
            if writer_no % 2 == 0 {
                for view in chunk {
                    recorder.observe(only(&view)).await.unwrap();
                }
            } else {
                for pair in chunk.chunks(7) {
                    let batch: Vec<Observation> = pair.iter().map(only).collect();
                    log.observe(&batch).await.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    drop(recorder);
    writer.await.unwrap();
    for campaign in &campaigns {
        assert_eq!(log.campaign_stats(campaign).await.unwrap().views, 200);
    }
}

#[tokio::test]
async fn an_import_counts_once_and_is_noted_with_its_counts() {
    let log = log().await;
    let campaign = campaign();
    let source = format!("test import {campaign}");
    let live = counted(&campaign, Count::Conversion { amount_minor: 70 });
    let older = counted(&campaign, Count::Conversion { amount_minor: 30 });
    log.observe(&[only(&live)]).await.unwrap();
    assert!(!log.imported(&source).await.unwrap());
    // The import holds an event also counted live: it counts once.
    log.import(&source, &[older.clone(), live.clone()], &[])
        .await
        .unwrap();
    assert!(log.imported(&source).await.unwrap());
    log.import(&source, &[older], &[]).await.unwrap();
    let stats = log.campaign_stats(&campaign).await.unwrap();
    assert_eq!((stats.conversions, stats.sales_attributed_minor), (2, 100));
}

#[tokio::test]
async fn the_campaign_list_keeps_each_campaigns_newest_version_and_pages_in_id_order() {
    use serde_json::json;

    let log = log().await;
    // Ids of this run only, sharing a prefix no other run has, in a known order.
    let prefix = format!("list-{}", uuid::Uuid::now_v7());
    let id = |n: u32| format!("{prefix}-{n}");
    for n in 0..5 {
        log.list_campaign(&id(n), 1, &json!({ "status": "DRAFT", "n": n }))
            .await
            .unwrap();
    }
    // A newer version replaces the listed one; an older one arriving late does not.
    log.list_campaign(&id(2), 3, &json!({ "status": "COMPLETED", "n": 2 }))
        .await
        .unwrap();
    log.list_campaign(&id(2), 2, &json!({ "status": "ACTIVE", "n": 2 }))
        .await
        .unwrap();
    // An import racing live writers changes nothing they wrote newer.
    let source = format!("test import {prefix}");
    log.import(
        &source,
        &[],
        &[
            (id(2), 1, json!({ "status": "DRAFT", "n": 2 })),
            (id(5), 1, json!({ "status": "DRAFT", "n": 5 })),
            (id(5), 2, json!({ "status": "ACTIVE", "n": 5 })),
        ],
    )
    .await
    .unwrap();

    let mut listed = Vec::new();
    let mut after = Some(format!("{prefix}-"));
    loop {
        let page = log.campaigns(after.as_deref(), 2).await.unwrap();
        let ours: Vec<_> = page
            .iter()
            .filter(|(id, _)| id.starts_with(&prefix))
            .cloned()
            .collect();
        if ours.is_empty() {
            break;
        }
        after = page.last().map(|(id, _)| id.clone());
        listed.extend(ours);
    }
    let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
    let wanted: Vec<String> = (0..6).map(id).collect();
    assert_eq!(ids, wanted);
    assert_eq!(listed[2].1["status"], "COMPLETED");
    assert_eq!(listed[5].1["status"], "ACTIVE");
}
