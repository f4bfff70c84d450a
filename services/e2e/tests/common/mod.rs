// Each test binary uses a part of the harness.
#![allow(dead_code)]

//! The four services' real wiring started in-process, each on its own port, MongoDB database
//! and subscriptions, against the local stack's Pulsar, FerretDB and Postgres (a saga-log
//! database of the run's own). A service can be stopped and started again on the same port
//! with the same state, as a crash and restart would.
//!
//! One platform per test binary: every service instance consumes the shared topics, so two
//! platforms in one process would answer each other's sagas. Tests that do not stop services
//! share it ([`shared`]), each with campaigns and sagas of its own, so none depends on which
//! ran before it; a binary whose tests stop and restart services starts its own
//! ([`InProcess::start`]). The topics are the test suites'
//! own ([`NAMESPACE`]), so a platform left running (`scripts/demo.sh`, in `alpes/events`) and
//! the tests never see each other's events; databases are the run's own too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use alpes_bus::Bus;
use alpes_contracts::EventMetadata;
use alpes_contracts::events::marketing::FraudDetected;
use alpes_e2e::{PlatformClient, timeline};
use alpes_runtime::config::CommonArgs;
use alpes_testkit::{Service, bus, postgres};
use serde_json::Value;
use tokio::net::TcpListener;

/// The API token of the services a test starts ([`CommonArgs::for_tests`]).
pub const TOKEN: &str = alpes_runtime::config::TEST_API_TOKEN;

/// The platform the tests of this binary share, started by the first that asks, on a runtime
/// of its own that lasts as long as the process (each `#[tokio::test]` has a runtime that ends
/// with it). Each caller gets a client of its own, whose connections live in its runtime.
pub fn shared(deadline: Duration) -> PlatformClient {
    static SHARED: OnceLock<PlatformClient> = OnceLock::new();
    let platform = SHARED.get_or_init(|| {
        let (started, platform) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a runtime for the shared platform");
            runtime.block_on(async move {
                let services = InProcess::start(deadline).await;
                started
                    .send(services.platform.clone())
                    .expect("the first test waits");
                // The services run until the process ends.
                std::future::pending::<()>().await;
            });
        });
        platform.recv().expect("the shared platform started")
    });
    PlatformClient {
        http: reqwest::Client::new(),
        ..platform.clone()
    }
}

/// The shared platform (see [`shared`]) and a campaign of the caller's own, active in every
/// service: 10 % of each sale, min 5.00, max 50.00, from a 1,000.00 EUR budget.
pub async fn shared_with_campaign(deadline: Duration) -> (PlatformClient, String) {
    let platform = shared(deadline);
    let campaign = platform.known_campaign(100_000, 1_000).await.unwrap();
    (platform, campaign)
}

/// The four services of one test run.
pub struct InProcess {
    pub platform: PlatformClient,
    pub bus: Bus,
    run_id: String,
    postgres_url: String,
    deadline: Duration,
    addrs: BTreeMap<&'static str, SocketAddr>,
    running: BTreeMap<&'static str, Service>,
}

impl InProcess {
    /// Starts the four services; sagas time out `deadline` after they start.
    pub async fn start(deadline: Duration) -> Self {
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let postgres_url = postgres(&format!("alpes_e2e_{}", &run_id[..12])).await;
        let bus = bus("e2e").await;
        let mut this = Self {
            platform: PlatformClient {
                tracking: String::new(),
                attribution: String::new(),
                commission: String::new(),
                marketing: String::new(),
                token: TOKEN.to_owned(),
                http: reqwest::Client::new(),
            },
            bus,
            run_id,
            postgres_url,
            deadline,
            addrs: BTreeMap::new(),
            running: BTreeMap::new(),
        };
        for service in ["tracking", "attribution", "commission", "marketing"] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            this.addrs.insert(service, addr);
            let base = format!("http://{addr}");
            match service {
                "tracking" => this.platform.tracking = base,
                "attribution" => this.platform.attribution = base,
                "commission" => this.platform.commission = base,
                _ => this.platform.marketing = base,
            }
            this.launch(service, listener).await;
        }
        this
    }

    /// Stops `service` the way SIGTERM does, and waits until it has.
    pub async fn stop(&mut self, service: &'static str) {
        self.running.remove(service).expect("running").stop().await;
    }

    /// Starts `service` again, on its port, with its state.
    pub async fn restart(&mut self, service: &'static str) {
        let listener = TcpListener::bind(self.addrs[service]).await.unwrap();
        self.launch(service, listener).await;
    }

    /// Stops every service.
    pub async fn shutdown(mut self) {
        let services: Vec<&'static str> = self.running.keys().copied().collect();
        for service in services {
            self.stop(service).await;
        }
    }

    async fn launch(&mut self, service: &'static str, listener: TcpListener) {
        // Retries four times faster than a deployment's: a purchase with no touchpoint is
        // refused on its last attempt, about 4 s in (15 s by default), within the sagas' deadline.
        let common = |common: CommonArgs| CommonArgs {
            retry_backoff: Duration::from_millis(250),
            ..common
        };
        let name = format!("e2e_{service}_{}", self.run_id);
        let running = match service {
            "tracking" => {
                let config = |c| alpes_tracking::service::Config {
                    common: common(c),
                    database: name.clone(),
                    subscription: name.clone(),
                };
                Service::spawn_on(listener, config, alpes_tracking::service::run).await
            }
            "attribution" => {
                let config = |c| alpes_attribution::service::Config {
                    common: common(c),
                    database: name.clone(),
                    subscription: name.clone(),
                };
                Service::spawn_on(listener, config, alpes_attribution::service::run).await
            }
            "commission" => {
                let config = |c| alpes_commission::service::Config {
                    common: common(c),
                    database: name.clone(),
                    subscription: name.clone(),
                };
                Service::spawn_on(listener, config, alpes_commission::service::run).await
            }
            _ => {
                let config = |c| alpes_marketing::service::Config {
                    common: common(c),
                    database: name.clone(),
                    subscription: name.clone(),
                    saga_log: alpes_marketing::service::SagaLogArgs {
                        postgres_url: self.postgres_url.clone(),
                        saga_deadline: self.deadline,
                    },
                };
                Service::spawn_on(listener, config, alpes_marketing::service::run).await
            }
        };
        self.running.insert(service, running);
    }
}

/// The steps of a saga compensated after it completed, in the order they happen.
pub const COMPENSATED_TIMELINE: [&str; 7] = [
    "InteractionTracked",
    "ConversionAttributed",
    "CommissionReserved",
    "FraudDetected",
    "CommissionReverted",
    "AttributionReverted",
    "InteractionsDiscarded",
];

pub fn count(saga: &Value, event_type: &str) -> usize {
    timeline(saga).iter().filter(|t| *t == event_type).count()
}

/// Checks through each service's own API that nothing of `saga` is live any more.
pub async fn assert_undone(platform: &PlatformClient, saga: &str, purchase: &str) {
    let commission = platform.commission_status(saga).await.unwrap();
    assert!(
        !matches!(commission.as_deref(), Some("RESERVED") | Some("CONFIRMED")),
        "saga {saga} still holds a commission: {commission:?}"
    );
    let (_, attribution) = platform
        .get(format!("{}/attributions/{saga}", platform.attribution))
        .await
        .unwrap();
    assert_eq!(attribution["reverted"], true, "{attribution}");
    let journey = attribution["journey_id"].as_str().unwrap();
    let (_, journey) = platform
        .get(format!("{}/journeys/{journey}", platform.attribution))
        .await
        .unwrap();
    assert_eq!(journey["status"], "REVERTED", "{journey}");
    for interaction in journey["interaction_ids"].as_array().unwrap() {
        let id = interaction.as_str().unwrap();
        let (_, tracked) = platform
            .get(format!("{}/interactions/{id}", platform.tracking))
            .await
            .unwrap();
        assert_eq!(tracked["status"], "DISCARDED", "{tracked}");
    }
    let (_, tracked) = platform
        .get(format!("{}/interactions/{purchase}", platform.tracking))
        .await
        .unwrap();
    assert_eq!(
        tracked["status"], "DISCARDED",
        "the purchase itself: {tracked}"
    );
}

/// A `FraudDetected` for `saga`, published straight to its topic (as a fraud system would).
pub async fn publish_fraud(bus: &Bus, saga: &str) {
    let fraud = FraudDetected {
        metadata: EventMetadata::new::<FraudDetected>()
            .in_saga(saga)
            .produced_by("e2e"),
        reason: "chargeback".into(),
        reporter: "e2e".into(),
        score: Some(90),
    };
    bus.publisher().publish(&fraud).await.unwrap();
}
