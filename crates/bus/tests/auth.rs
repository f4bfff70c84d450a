//! Pulsar token authentication and authorization, against a real broker that enforces them:
//! the stack started with `ALPES_PULSAR_AUTH=token scripts/stack.sh up` (on its own ports and
//! stack directory, see scripts/test.sh), after the permission plan
//! (`alpes_bus::permissions`) was applied as the admin role.
//!
//! - A client without a token, or with a forged one, is refused: it cannot publish a saga event.
//! - A service's role cannot publish another service's events (tracking cannot announce a
//!   commission nor report fraud), nor write into another service's retry topic.
//! - A role cannot consume under another service's subscription, even on a topic it may
//!   consume itself, nor consume a topic it does not subscribe to.
//! - What the plan grants works, end to end through the bus: publishing, consuming, retrying
//!   through the retry topic, dead-lettering, and the writer-schema look-up over the admin API.
//! - The admin API refuses anonymous clients and does not let a service grant itself anything.
//!
//! Located by the stack's `ALPES_PULSAR_URL`, `ALPES_PULSAR_ADMIN_URL` and
//! `ALPES_PULSAR_TOKEN_DIR` (the directory of `<role>.token` files, which `stack.sh env` prints
//! for a stack with token authentication only). Without the last, every test here says loudly
//! that it was skipped, and passes: scripts/test.sh runs the workspace's tests on such a stack.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use alpes_bus::admin::Admin;
use alpes_bus::permissions::{self, ADMIN_ROLE, role_of};
use alpes_bus::{
    Backoff, Bus, Delivery, Outcome, PulsarToken, Shutdown, StartAt, SubscriptionConfig, property,
};
use alpes_contracts::events::commission::CommissionReserved;
use alpes_contracts::events::marketing::{CampaignCreated, FraudDetected, SagaTimedOut};
use alpes_contracts::events::tracking::{
    InteractionKind, InteractionTracked, PageContext, Purchase, Target, TrackingParams, Visitor,
};
use alpes_contracts::{Event, EventMetadata, Money, Namespace};
use futures::StreamExt;
use pulsar::consumer::InitialPosition;
use pulsar::{
    ConnectionRetryOptions, ConsumerOptions, OperationRetryOptions, Pulsar, SubType, TokioExecutor,
};
use tokio::sync::{OnceCell, mpsc};

/// The namespace of this suite: its own, so that its subscription permissions (which hold
/// namespace-wide) touch no other suite.
const NAMESPACE: &str = "alpes/auth-test";

/// How long a refused operation may take before the test calls it a hang.
const REFUSAL_WITHIN: Duration = Duration::from_secs(30);

struct Broker {
    url: String,
    admin_url: String,
    tokens: PathBuf,
}

impl Broker {
    fn token(&self, role: &str) -> PulsarToken {
        PulsarToken::of_role(&self.tokens, role)
            .unwrap_or_else(|e| panic!("the token of {role}: {e}"))
    }

    fn token_of(&self, service: &str) -> PulsarToken {
        self.token(&role_of(service))
    }

    fn admin(&self) -> Admin {
        Admin::new(&self.admin_url).with_token(self.token(ADMIN_ROLE))
    }

    /// The bus of `service`, connected with its role's token.
    async fn bus(&self, service: &str) -> Bus {
        Bus::connect_with(
            &self.url,
            &self.admin_url,
            service,
            Some(self.token_of(service)),
        )
        .await
        .unwrap_or_else(|e| panic!("{service} cannot connect with its own token: {e}"))
    }

    /// A plain client presenting `token`, giving up quickly on a refused connection.
    async fn client(
        &self,
        token: Option<PulsarToken>,
    ) -> Result<Pulsar<TokioExecutor>, pulsar::Error> {
        let mut builder = Pulsar::builder(self.url.clone(), TokioExecutor)
            .with_connection_retry_options(ConnectionRetryOptions {
                max_retries: 1,
                min_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(200),
                connection_timeout: Duration::from_secs(5),
                ..ConnectionRetryOptions::default()
            })
            .with_operation_retry_options(OperationRetryOptions {
                operation_timeout: Duration::from_secs(10),
                retry_delay: Duration::from_millis(200),
                max_retries: Some(1),
            });
        if let Some(token) = token {
            builder = builder.with_auth(token.authentication());
        }
        builder.build().await
    }
}

/// The broker of the auth stack, bootstrapped and granted once per test binary; `None`, with
/// a loud message, when the environment does not point at one.
async fn broker() -> Option<&'static Broker> {
    static BROKER: OnceCell<Option<Broker>> = OnceCell::const_new();
    BROKER
        .get_or_init(|| async {
            let setting = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            let Some(tokens) = setting("ALPES_PULSAR_TOKEN_DIR") else {
                // Straight to stderr, past the test harness's capture: a skip must be seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n\
                     ###################################################################\n\
                     ### SKIPPED: Pulsar token authentication and authorization tests\n\
                     ### (crates/bus/tests/auth.rs): ALPES_PULSAR_TOKEN_DIR is unset.\n\
                     ### Start a stack with ALPES_PULSAR_AUTH=token scripts/stack.sh up and\n\
                     ### run the tests in its `env` (scripts/test.sh does both).\n\
                     ###################################################################\n"
                );
                return None;
            };
            let url =
                setting("ALPES_PULSAR_URL").unwrap_or_else(|| "pulsar://127.0.0.1:6650".into());
            let admin_url =
                setting("ALPES_PULSAR_ADMIN_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into());
            Namespace::parse(NAMESPACE).unwrap().install().unwrap();
            let _ = tracing_subscriber::fmt()
                .with_test_writer()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .try_init();
            let broker = Broker {
                url,
                admin_url,
                tokens: PathBuf::from(tokens),
            };
            let admin = broker.admin();
            admin
                .bootstrap()
                .await
                .expect("bootstrap as the admin role (is the auth stack up?)");
            let applied = admin
                .apply(&permissions::default_plan(Namespace::current()))
                .await
                .expect("applying the permission plan as the admin role");
            eprintln!("permission plan applied: {applied:?}");
            Some(broker)
        })
        .await
        .as_ref()
}

macro_rules! broker_or_skip {
    () => {
        match broker().await {
            Some(broker) => broker,
            None => return,
        }
    };
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn fraud(saga: &str, reason: &str) -> FraudDetected {
    FraudDetected {
        metadata: EventMetadata::new::<FraudDetected>().in_saga(saga),
        reason: reason.to_owned(),
        reporter: "auth-tests".to_owned(),
        score: Some(90),
    }
}

fn timed_out(saga: &str) -> SagaTimedOut {
    let metadata = EventMetadata::new::<SagaTimedOut>().in_saga(saga);
    SagaTimedOut {
        deadline: metadata.occurred_at,
        metadata,
        last_status: "STARTED".to_owned(),
    }
}

fn purchase(saga: &str) -> InteractionTracked {
    let metadata = EventMetadata::new::<InteractionTracked>().in_saga(saga);
    InteractionTracked {
        interacted_at: metadata.occurred_at,
        metadata,
        interaction_id: unique("interaction"),
        kind: InteractionKind::Purchase,
        visitor: Visitor {
            user_id: None,
            anonymous_id: unique("visitor"),
            ip: None,
            user_agent: None,
        },
        tracking: TrackingParams {
            campaign_id: Some("campaign-auth".into()),
            partner_id: Some("partner-auth".into()),
            ..TrackingParams::default()
        },
        target: Target {
            url: "https://shop.example/checkout".into(),
            element: None,
        },
        context: PageContext::default(),
        purchase: Some(Purchase {
            order_id: unique("order"),
            amount: Money::new(10_000, "EUR"),
        }),
    }
}

fn reserved(saga: &str) -> CommissionReserved {
    CommissionReserved {
        metadata: EventMetadata::new::<CommissionReserved>().in_saga(saga),
        commission_id: unique("commission"),
        campaign_id: "campaign-auth".into(),
        partner_id: "partner-auth".into(),
        order_id: unique("order"),
        sale_amount: Money::new(10_000, "EUR"),
        commission: Money::new(1_000, "EUR"),
        budget_remaining: Money::new(1_000_000, "EUR"),
    }
}

/// `outcome` is a refusal by the broker (not a success, nor a hang); returns its text.
fn refused<T>(
    what: &str,
    outcome: Result<Result<T, impl std::fmt::Display>, tokio::time::error::Elapsed>,
) -> String {
    match outcome {
        Ok(Err(e)) => {
            let text = e.to_string();
            // The first line is enough (the admin API may answer with a whole HTML page).
            let shown: String = text
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(240)
                .collect();
            eprintln!("refused as expected: {what}: {shown}");
            text
        }
        Ok(Ok(_)) => panic!("{what}: allowed, but must be refused"),
        Err(_) => panic!("{what}: neither allowed nor refused within {REFUSAL_WITHIN:?}"),
    }
}

/// A consumer of `topic` under `subscription`, as `client`.
async fn consumer(
    client: &Pulsar<TokioExecutor>,
    topic: &str,
    subscription: &str,
) -> Result<pulsar::Consumer<Vec<u8>, TokioExecutor>, pulsar::Error> {
    client
        .consumer()
        .with_topic(topic)
        .with_subscription(subscription)
        .with_subscription_type(SubType::KeyShared)
        .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Latest))
        .build()
        .await
}

// (a) --------------------------------------------------------------------------------------

#[tokio::test]
async fn a_client_without_a_valid_token_cannot_publish_a_saga_event() {
    let broker = broker_or_skip!();
    // The bus refuses to come up at all: the broker answers the connection with an
    // authentication error.
    let anonymous = tokio::time::timeout(
        REFUSAL_WITHIN,
        Bus::connect(&broker.url, &broker.admin_url, "anonymous"),
    )
    .await;
    let error = refused("connecting without a token", anonymous);
    assert!(error.contains("Pulsar"), "{error}");

    // A raw client, attempting to produce FraudDetected.
    let topic = FraudDetected::event_type().topic();
    let outcome = tokio::time::timeout(REFUSAL_WITHIN, async {
        let client = broker.client(None).await?;
        client.producer().with_topic(&topic).build().await
    })
    .await;
    refused("producing FraudDetected without a token", outcome);

    // A token for the admin role, but not signed with the broker's key.
    let forged = PulsarToken::new(forge(ADMIN_ROLE)).unwrap();
    let outcome = tokio::time::timeout(REFUSAL_WITHIN, async {
        let client = broker.client(Some(forged)).await?;
        client.producer().with_topic(&topic).build().await
    })
    .await;
    refused("producing FraudDetected with a forged admin token", outcome);

    // The same, with the producing service's real token, goes through: the refusals above are
    // about the token, not about the topic.
    let client = broker
        .client(Some(broker.token_of("marketing")))
        .await
        .unwrap();
    client
        .producer()
        .with_topic(&topic)
        .build()
        .await
        .expect("marketing produces FraudDetected");
}

/// A JWT naming `role`, signed with a key the broker does not know.
fn forge(role: &str) -> String {
    let b64 = |text: &str| {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = text.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    };
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"HS256"}"#),
        b64(&format!(r#"{{"sub":"{role}"}}"#)),
        b64("not the broker's signature, not at all")
    )
}

// (b) --------------------------------------------------------------------------------------

#[tokio::test]
async fn a_service_publishes_its_own_events_and_no_one_elses() {
    let broker = broker_or_skip!();
    let tracking = broker.bus("tracking").await;
    let saga = unique("auth-produce");

    // Its own: allowed.
    let receipt = tracking
        .publisher()
        .publish(&purchase(&saga))
        .await
        .expect("tracking publishes InteractionTracked");
    assert_eq!(receipt.topic, InteractionTracked::event_type().topic());

    // Commission's, and the saga-ending events of marketing: refused.
    let outcome = tokio::time::timeout(
        REFUSAL_WITHIN,
        tracking.publisher().publish(&reserved(&saga)),
    )
    .await;
    let error = refused("tracking publishing CommissionReserved", outcome);
    assert!(error.contains("commission-reserved-v1"), "{error}");
    let outcome = tokio::time::timeout(
        REFUSAL_WITHIN,
        tracking.publisher().publish(&fraud(&saga, "forged")),
    )
    .await;
    refused("tracking publishing FraudDetected", outcome);
    let outcome = tokio::time::timeout(
        REFUSAL_WITHIN,
        tracking.publisher().publish(&timed_out(&saga)),
    )
    .await;
    refused("tracking publishing SagaTimedOut", outcome);

    // Nor can it slip a message into commission's retry topic, which commission consumes.
    let client = broker
        .client(Some(broker.token_of("tracking")))
        .await
        .unwrap();
    let retries = alpes_bus::retry_topic(&FraudDetected::event_type().topic(), "commission");
    let outcome = tokio::time::timeout(
        REFUSAL_WITHIN,
        client.producer().with_topic(&retries).build(),
    )
    .await;
    refused("tracking producing to commission's retry topic", outcome);
}

// (c) --------------------------------------------------------------------------------------

#[tokio::test]
async fn a_service_cannot_consume_under_another_services_subscription() {
    let broker = broker_or_skip!();
    let attribution = broker
        .client(Some(broker.token_of("attribution")))
        .await
        .unwrap();
    // Both attribution and commission read campaign announcements: the topic is open to
    // attribution, commission's subscription on it is not.
    let campaigns = CampaignCreated::event_type().topic();
    let outcome = tokio::time::timeout(
        REFUSAL_WITHIN,
        consumer(&attribution, &campaigns, "commission"),
    )
    .await;
    refused(
        "attribution consuming CampaignCreated as `commission`",
        outcome,
    );
    // Its own subscription there is fine.
    consumer(&attribution, &campaigns, "attribution")
        .await
        .expect("attribution consumes CampaignCreated as `attribution`")
        .close()
        .await
        .unwrap();

    // FraudDetected is commission's (and marketing's) to read, under any subscription name.
    let fraud_topic = FraudDetected::event_type().topic();
    let outcome = tokio::time::timeout(
        REFUSAL_WITHIN,
        consumer(&attribution, &fraud_topic, "commission"),
    )
    .await;
    refused(
        "attribution consuming FraudDetected as `commission`",
        outcome,
    );
    let outcome = tokio::time::timeout(
        REFUSAL_WITHIN,
        consumer(&attribution, &fraud_topic, &unique("attribution-own")),
    )
    .await;
    refused(
        "attribution consuming FraudDetected under a name of its own",
        outcome,
    );
    // Nor commission's retries of it.
    let retries = alpes_bus::retry_topic(&fraud_topic, "commission");
    let outcome = tokio::time::timeout(
        REFUSAL_WITHIN,
        consumer(&attribution, &retries, "commission"),
    )
    .await;
    refused("attribution consuming commission's retry topic", outcome);

    // Through the bus, the same refusal.
    let bus = broker.bus("attribution").await;
    let mut config = SubscriptionConfig::new("commission");
    config.start_at = StartAt::Latest;
    let outcome =
        tokio::time::timeout(REFUSAL_WITHIN, bus.subscribe::<FraudDetected>(config)).await;
    let error = refused(
        "attribution's bus subscribing to FraudDetected as `commission`",
        outcome,
    );
    assert!(error.contains("commission"), "{error}");
}

// (d) --------------------------------------------------------------------------------------

#[tokio::test]
async fn what_the_plan_grants_works_through_the_bus_retries_and_dead_letters_included() {
    let broker = broker_or_skip!();
    let marketing = broker.bus("marketing").await;
    let commission = broker.bus("commission").await;
    let prefix = unique("auth-flow");
    let retried = format!("{prefix}-retried");
    let rejected = format!("{prefix}-rejected");

    let mut config = SubscriptionConfig::new("commission");
    config.start_at = StartAt::Latest;
    config.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(100),
    };
    let subscription = commission
        .subscribe::<FraudDetected>(config)
        .await
        .expect("commission subscribes to FraudDetected as `commission`");
    let dead_letters = subscription.dead_letter_topic().to_owned();
    let (tx, mut rx) = mpsc::unbounded_channel::<Delivery<FraudDetected>>();
    let shutdown = Shutdown::new();
    let (retried_saga, rejected_saga) = (retried.clone(), rejected.clone());
    let handler = move |delivery: Delivery<FraudDetected>| {
        let saga = delivery.event.metadata.saga_id.clone().unwrap_or_default();
        let outcome = if saga == retried_saga && delivery.attempt == 1 {
            Outcome::Retry("once more, through the retry topic".into())
        } else if saga == rejected_saga {
            Outcome::Reject("refused on purpose by the auth test".into())
        } else {
            Outcome::Done
        };
        if saga == retried_saga || saga == rejected_saga {
            let _ = tx.send(delivery);
        }
        std::future::ready(outcome)
    };
    let running = tokio::spawn(subscription.run(handler, shutdown.clone()));

    // A reader of the dead letters, as the admin role (operators read them; services do not).
    let admin_client = broker.client(Some(broker.token(ADMIN_ROLE))).await.unwrap();
    let mut dlq: pulsar::Consumer<Vec<u8>, TokioExecutor> = admin_client
        .consumer()
        .with_topic(&dead_letters)
        .with_subscription(unique("inspect"))
        .with_subscription_type(SubType::Exclusive)
        .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Latest))
        .build()
        .await
        .expect("the admin role reads dead letters");

    marketing
        .publisher()
        .publish(&fraud(&retried, "chargeback"))
        .await
        .expect("marketing publishes FraudDetected");
    marketing
        .publisher()
        .publish(&fraud(&rejected, "chargeback"))
        .await
        .expect("marketing publishes FraudDetected");

    let mut attempts = Vec::new();
    let mut rejected_seen = false;
    while attempts.len() < 2 || !rejected_seen {
        let delivery = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("deliveries missing: retried attempts {attempts:?}, rejected seen {rejected_seen}")
            })
            .expect("the subscription stopped");
        match delivery.event.metadata.saga_id.as_deref() {
            Some(s) if s == retried => attempts.push(delivery.attempt),
            _ => rejected_seen = true,
        }
    }
    assert_eq!(
        attempts,
        [1, 2],
        "the retry came back through commission's retry topic"
    );

    let letter = tokio::time::timeout(Duration::from_secs(30), dlq.next())
        .await
        .expect("no dead letter within 30 s")
        .unwrap()
        .unwrap();
    dlq.ack(&letter).await.unwrap();
    let properties: std::collections::HashMap<_, _> = letter
        .metadata()
        .properties
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert_eq!(properties[property::SAGA_ID], rejected);
    assert!(
        properties[property::DEAD_LETTER_REASON].contains("refused on purpose"),
        "{properties:?}"
    );

    shutdown.cancel();
    running.await.unwrap().unwrap();
}

// The admin API --------------------------------------------------------------------------------

#[tokio::test]
async fn the_admin_api_refuses_anonymous_clients_and_services_cannot_grant_themselves() {
    let broker = broker_or_skip!();
    let anonymous = Admin::new(&broker.admin_url);
    let outcome = tokio::time::timeout(REFUSAL_WITHIN, anonymous.clusters()).await;
    let error = refused("the admin API without a token", outcome);
    assert!(error.contains("401"), "{error}");

    let tracking = Admin::new(&broker.admin_url).with_token(broker.token_of("tracking"));
    // Authenticated, it may ask whether the broker is up (readiness), and check the schemas of
    // what it produces and consumes (what a service does at start-up instead of bootstrapping)...
    tracking
        .clusters()
        .await
        .expect("a service's readiness check");
    let own = permissions::platform(&permissions::SubscriptionNames::default())
        .into_iter()
        .find(|s| s.service == "tracking")
        .unwrap();
    tracking
        .check_schemas(&own.event_types())
        .await
        .expect("tracking reads the schemas of its own topics");
    let outcome = tokio::time::timeout(
        REFUSAL_WITHIN,
        tracking.check_schemas(&[CommissionReserved::event_type()]),
    )
    .await;
    refused("tracking reading commission's schema", outcome);
    // ...but not give itself commission's events,
    let grab = format!(
        "{}/admin/v2/persistent/{NAMESPACE}/{}/permissions/{}",
        broker.admin_url,
        CommissionReserved::event_type().topic_name(),
        role_of("tracking")
    );
    let answer = reqwest::Client::new()
        .post(&grab)
        .bearer_auth(broker.token_of("tracking").secret())
        .json(&["produce"])
        .send()
        .await
        .unwrap();
    eprintln!(
        "refused as expected: tracking granting itself CommissionReserved: {}",
        answer.status()
    );
    assert!(
        matches!(answer.status().as_u16(), 401 | 403),
        "tracking granting itself CommissionReserved: {}",
        answer.status()
    );
    // nor bootstrap (create tenants and namespaces): that is the admin role's.
    let outcome = tokio::time::timeout(REFUSAL_WITHIN, tracking.bootstrap()).await;
    refused("tracking bootstrapping", outcome);

    // The plan is what the broker holds.
    let held = broker
        .admin()
        .topic_permissions(&CommissionReserved::event_type().topic())
        .await
        .unwrap();
    assert_eq!(
        held.get("alpes-commission")
            .map(|a| a.iter().map(String::as_str).collect::<Vec<_>>()),
        Some(vec!["produce"]),
        "{held:?}"
    );
    assert!(!held.contains_key("alpes-tracking"), "{held:?}");
}
