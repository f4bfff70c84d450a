//! The campaign API from the outside, with its announcements on the real bus.

use std::time::Duration;

use alpes_contracts::events::marketing::{CampaignActivated, CampaignCreated, SagaTimedOut};
use alpes_marketing::service::{self, Config, SagaLogArgs};
use alpes_runtime::auth::{Scope, testing};
use alpes_runtime::config::CommonArgs;
use alpes_testkit::{Observer, Service, bus, database, env, namespace, postgres, unique};
use serde_json::{Value, json};

async fn spawn_app() -> Service {
    spawn_app_on(&database("marketing_test")).await
}

/// The service over event store database `database`.
async fn spawn_app_on(database: &str) -> Service {
    // A log of its own: sagas other tests leave open must not time out here.
    let postgres_url = postgres("alpes_marketing_test").await;
    let config = |common| Config {
        common: CommonArgs {
            // Besides the test token, one token per scope and one per scope missing.
            api_tokens: Some(testing::tokens()),
            ..common
        },
        database: database.to_owned(),
        subscription: unique("marketing-test"),
        saga_log: SagaLogArgs {
            postgres_url,
            saga_deadline: Duration::from_secs(30),
        },
    };
    Service::spawn(config, service::run).await
}

#[tokio::test]
async fn every_endpoint_but_the_probes_needs_a_token_with_its_scope() {
    let app = spawn_app().await;
    let base = app.base.clone();
    for (method, path, scope) in [
        ("GET", "/campaigns", Scope::Read),
        ("POST", "/campaigns", Scope::Operate),
        ("GET", "/campaigns/c-1", Scope::Read),
        ("GET", "/campaigns/c-1/stats", Scope::Read),
        ("POST", "/campaigns/c-1/activate", Scope::Operate),
        ("POST", "/campaigns/c-1/pause", Scope::Operate),
        ("POST", "/campaigns/c-1/complete", Scope::Operate),
        ("GET", "/sagas", Scope::Read),
        ("GET", "/sagas/stats", Scope::Read),
        ("GET", "/sagas/s-1", Scope::Read),
        ("GET", "/sagas/s-1/view", Scope::Read),
        ("POST", "/fraud-reports", Scope::Ingest),
    ] {
        testing::assert_guarded_at(&base, method, path, scope).await;
    }
    let http = reqwest::Client::new();
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} is public");
    }

    // A token in the query string: only the page a browser opens takes it.
    let token = testing::only(Scope::Read);
    let json = http
        .get(format!("{base}/sagas/s-1?access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 401);
    let page = http
        .get(format!("{base}/sagas/s-1/view?access_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404, "known token, unknown saga");
    let wrong = http
        .get(format!("{base}/sagas/s-1/view?access_token=unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    app.stop().await;
}

#[tokio::test]
async fn a_campaign_is_created_activated_and_announced() {
    let app = spawn_app().await;
    let base = app.base.clone();
    let bus = bus("marketing-tests").await;
    let mut created = Observer::<CampaignCreated>::listen(&bus).await;
    let mut activated = Observer::<CampaignActivated>::listen(&bus).await;
    let http = testing::client();

    let response = http
        .post(format!("{base}/campaigns"))
        .json(&json!({
            "name": "Black Friday",
            "budget": { "amount_minor": 100000, "currency": "EUR" },
            "terms": { "kind": "PERCENTAGE", "percentage_bps": 1000, "minimum_minor": 500, "maximum_minor": 1000 },
            "attribution_model": "LINEAR"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let id = body["campaign_id"].as_str().unwrap().to_owned();
    assert_eq!(body["status"], "DRAFT");
    assert_eq!(body["attribution_window_days"], 30, "defaults apply");

    let announced = created.next_where(|e| e.campaign_id == id).await;
    assert_eq!(announced.budget.amount_minor, 100_000);
    assert_eq!(announced.terms.percentage_bps, Some(1000));

    let step = |s: &str| http.post(format!("{base}/campaigns/{id}/{s}")).send();
    let active: Value = step("activate").await.unwrap().json().await.unwrap();
    assert_eq!(active["status"], "ACTIVE");
    activated.next_where(|e| e.campaign_id == id).await;
    assert_eq!(
        step("activate").await.unwrap().status(),
        200,
        "repeating a step is harmless"
    );

    assert_eq!(step("complete").await.unwrap().status(), 200);
    let refused = step("activate").await.unwrap();
    assert_eq!(refused.status(), 409);
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "conflict");
    assert_eq!(step("explode").await.unwrap().status(), 404);

    // The list is a read model in the saga log's database, which other tests share: page
    // through it to this campaign.
    let mut after: Option<String> = None;
    let listed = loop {
        let mut url = format!("{base}/campaigns?limit=2");
        if let Some(after) = &after {
            url.push_str(&format!("&after={after}"));
        }
        let page: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{page}");
        if let Some(found) = items.iter().find(|c| c["campaign_id"] == id.as_str()) {
            break found.clone();
        }
        after = Some(
            page["next_cursor"]
                .as_str()
                .unwrap_or_else(|| panic!("campaign {id} is not listed"))
                .to_owned(),
        );
    };
    assert_eq!(listed["status"], "COMPLETED", "the list reads its writes");
    assert_eq!(listed["name"], "Black Friday");
    let bad = http
        .get(format!("{base}/campaigns?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["field"], "limit");
    let unknown = http
        .get(format!("{base}/campaigns/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let invalid = http
        .post(format!("{base}/campaigns"))
        .json(
            &json!({ "name": "x", "budget": { "amount_minor": 0, "currency": "EUR" },
                       "terms": { "kind": "FIXED", "fixed_minor": 300 } }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    assert_eq!(
        invalid.json::<Value>().await.unwrap()["field"],
        "budget.amount_minor"
    );

    app.stop().await;
}

/// The sweeper writes each timeout into the log before it publishes it, so no service's answer
/// to the timeout can reach the log ahead of its cause (the log would show the answer alone,
/// e.g. COMPENSATED for a saga that was rejected in time, until the timeout caught up).
#[tokio::test]
async fn the_log_holds_a_timeout_before_any_service_can_answer_it() {
    use alpes_marketing::coordinator::SagaCoordinator;
    use alpes_sagalog::{Direction, Facts, Recorder, SagaLog, Status, Step};

    let url = postgres("alpes_marketing_sweeper_test").await;
    // Every saga of this database is due at once: none is meant to stay open.
    let log = SagaLog::connect(&url, Duration::from_millis(1))
        .await
        .unwrap();
    let saga = unique("sweep");
    let started = chrono::Utc::now() - chrono::Duration::minutes(1);
    log.record(&[Step {
        event_id: uuid::Uuid::new_v4().to_string(),
        saga_id: saga.clone(),
        event_type: "InteractionTracked".into(),
        service: "tracking".into(),
        direction: Direction::Forward,
        payload: json!({}),
        occurred_at: started,
        facts: Facts::default(),
    }])
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    namespace();
    let admin_url = env("ALPES_PULSAR_ADMIN_URL", "http://127.0.0.1:8080");
    alpes_bus::admin::Admin::authenticated(&admin_url, alpes_bus::PulsarToken::from_env().unwrap())
        .bootstrap()
        .await
        .unwrap();
    let bus = bus("marketing").await;
    let mut timeouts = Observer::<SagaTimedOut>::listen(&bus).await;
    let (recorder, _writer) = Recorder::spawn(log.clone());
    let sagas = SagaCoordinator::new(log.clone(), recorder, bus.publisher().clone());
    let timed_out = sagas.time_out_overdue(chrono::Utc::now()).await.unwrap();
    assert!(timed_out >= 1);
    let ours = |e: &SagaTimedOut| e.metadata.saga_id.as_deref() == Some(saga.as_str());
    let published = timeouts.next_where(ours).await;

    // No consumer of SagaTimedOut runs here: the step can only be the sweeper's own.
    let summary = log.saga(&saga).await.unwrap().unwrap().summary;
    assert_eq!(summary.status, Status::TimedOut);
    assert!(
        log.due(chrono::Utc::now(), 1_000, Duration::ZERO)
            .await
            .unwrap()
            .iter()
            .all(|d| d.saga_id != saga),
        "and it is published once"
    );

    // Timeouts are published straight to Pulsar, not through an outbox (see `sagas`): a
    // replica that dies after publishing and before noting it leaves the saga claimed, and
    // once its lease lapses the next sweep publishes the timeout again — the same event, so
    // the log and every service take it once.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(
        "UPDATE sagas SET timeout_published_at = NULL, timeout_claimed_until = NULL \
         WHERE saga_id = $1",
    )
    .bind(&saga)
    .execute(&pool)
    .await
    .unwrap();
    assert!(sagas.time_out_overdue(chrono::Utc::now()).await.unwrap() >= 1);
    let again = timeouts.next_where(ours).await;
    assert_eq!(again.metadata.event_id, published.metadata.event_id);
    assert_eq!(again.deadline, published.deadline);
    let steps = log.saga(&saga).await.unwrap().unwrap().steps;
    let recorded = steps
        .iter()
        .filter(|s| s.event_type == "SagaTimedOut")
        .count();
    assert_eq!(recorded, 1, "{steps:?}");
    bus.publisher().close().await;
}

/// What earlier versions kept in the event store — statistics as one stream per counted event,
/// campaigns only as their streams — is imported into the read models once, in the background
/// after start (reads answer 503 until then), and served from there with what is counted live.
#[tokio::test]
async fn what_earlier_versions_kept_is_imported_once_and_served_from_the_read_models() {
    use alpes_eventstore::{EventStore, MongoStore, NewCommit, StoredEvent};
    use alpes_sagalog::{Count, Counted, Observation, SagaLog};

    namespace();
    let database = unique("marketing_test");
    // A campaign an earlier version created and activated: its stream, and nothing listed.
    let legacy_campaign = uuid::Uuid::now_v7().to_string();
    let store = MongoStore::connect(
        &env("ALPES_MONGO_URL", "mongodb://127.0.0.1:27017"),
        &database,
    )
    .await
    .unwrap();
    let created = json!({"type": "Created", "definition": {
        "name": "Legacy", "budget": {"amount_minor": 5000, "currency": "EUR"},
        "terms": {"kind": "FIXED", "percentage_bps": null, "fixed_minor": 100,
                  "minimum_minor": 0, "maximum_minor": null},
        "attribution_model": "LAST_TOUCH", "attribution_window_days": 30,
        "fraud_threshold": 80}});
    let activated = json!({"type": "StatusChanged", "status": "ACTIVE", "reason": null});
    for (version, (kind, event)) in [
        ("CampaignCreated", created),
        ("CampaignStatusChanged", activated),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .append(NewCommit {
                stream: format!("campaign-{legacy_campaign}"),
                expected_version: version as u64,
                events: vec![StoredEvent::new(kind, &event).unwrap()],
                outbox: Vec::new(),
                handled: None,
            })
            .await
            .unwrap();
    }
    // Its statistics as that version kept them: two views and a conversion.
    let legacy = [
        json!({"type": "Interaction", "kind": "VIEW"}),
        json!({"type": "Interaction", "kind": "VIEW"}),
        json!({"type": "Conversion", "amount_minor": 4200}),
    ];
    for fact in legacy {
        let event_id = uuid::Uuid::new_v4().to_string();
        store
            .append(NewCommit {
                stream: format!("stats-{legacy_campaign}-{event_id}"),
                expected_version: 0,
                events: vec![StoredEvent::new("Observed", &fact).unwrap()],
                outbox: Vec::new(),
                handled: Some(event_id),
            })
            .await
            .unwrap();
    }
    drop(store);
    let log_url = postgres("alpes_marketing_test").await;
    let log = SagaLog::connect(&log_url, Duration::from_secs(30))
        .await
        .unwrap();
    let http = testing::client();

    // Started twice: the first start imports, the second finds the import noted (were it
    // imported again, nothing would count twice either: by event id).
    for _ in 0..2 {
        let app = spawn_app_on(&database).await;
        let base = app.base.clone();
        let stats_url = format!("{base}/campaigns/{legacy_campaign}/stats");
        let mut served = Value::Null;
        for _ in 0..200 {
            let response = http.get(&stats_url).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            match status {
                200 => {
                    served = body;
                    break;
                }
                503 => tokio::time::sleep(Duration::from_millis(100)).await,
                other => panic!("{other}: {body}"),
            }
        }
        assert_eq!(served["stats"]["views"], 2, "{served}");
        assert_eq!(served["stats"]["conversions"], 1, "{served}");
        assert_eq!(served["stats"]["sales_attributed_minor"], 4200, "{served}");
        let before: Value = http
            .get(format!(
                "{base}/campaigns?after={}",
                legacy_campaign_before(&legacy_campaign)
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let listed = before["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["campaign_id"] == legacy_campaign.as_str())
            .unwrap_or_else(|| panic!("the earlier version's campaign is listed: {before}"));
        assert_eq!(listed["status"], "ACTIVE");
        assert_eq!(listed["name"], "Legacy");

        // What is counted live is served beside it.
        let click = Counted {
            event_id: uuid::Uuid::new_v4().to_string(),
            campaign_id: legacy_campaign.clone(),
            count: Count::Interaction {
                kind: alpes_contracts::events::tracking::InteractionKind::Click,
            },
        };
        let observation = Observation {
            step: None,
            counted: Some(click),
        };
        log.observe(&[observation.clone(), observation])
            .await
            .unwrap();
        let after_click: Value = http
            .get(&stats_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(after_click["stats"]["views"], 2, "{after_click}");
        assert!(after_click["stats"]["clicks"].as_u64().unwrap() >= 1);
        let bad = http
            .get(format!("{base}/campaigns/c%00/stats"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let unknown = http
            .get(format!("{base}/campaigns/{}/stats", uuid::Uuid::now_v7()))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404, "statistics of no campaign here");
        app.stop().await;
    }
    let stats = log.campaign_stats(&legacy_campaign).await.unwrap();
    assert_eq!((stats.views, stats.clicks), (2, 2), "{stats:?}");
}

/// An id just before `id` in the list's order, so that a page after it starts with `id`.
fn legacy_campaign_before(id: &str) -> String {
    let mut before = id.to_owned();
    before.pop();
    before
}
