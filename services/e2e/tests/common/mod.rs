// Each test binary uses a part of the harness.
#![allow(dead_code)]

//! The four services' real wiring started in-process, each on its own port, MongoDB database
//! and subscriptions, against the local stack's Pulsar, FerretDB and Postgres (a saga-log
//! database of the run's own). A service can be stopped and started again on the same port
//! with the same state, as a crash and restart would.
//!
//! One platform per test binary: every service instance consumes the shared topics, so two
//! platforms in one process would answer each other's sagas. The topics are the test suites'
//! own ([`NAMESPACE`]), so a platform left running (`scripts/demo.sh`, in `alpes/events`) and
//! the tests never see each other's events; databases are the run's own too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use alpes_bus::{Bus, Shutdown};
use alpes_contracts::events::tracking::{
    InteractionKind, InteractionTracked, PageContext, Purchase, Target, TrackingParams, Visitor,
};
use alpes_contracts::{EventMetadata, Money};
use alpes_e2e::PlatformClient;
use alpes_runtime::config::CommonArgs;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The API token of the services a test starts ([`CommonArgs::for_tests`]).
pub const TOKEN: &str = alpes_runtime::config::TEST_API_TOKEN;

/// The Pulsar namespace of the test suites.
pub const NAMESPACE: &str = "alpes/test";

/// [`NAMESPACE`], installed for this process before any topic is named.
pub fn namespace() -> alpes_contracts::Namespace {
    let namespace = alpes_contracts::Namespace::parse(NAMESPACE).unwrap();
    namespace.clone().install().unwrap();
    namespace
}

pub fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

struct Running {
    stop: Shutdown,
    task: JoinHandle<anyhow::Result<()>>,
}

/// The four services of one test run.
pub struct InProcess {
    pub platform: PlatformClient,
    pub bus: Bus,
    run_id: String,
    postgres_url: String,
    deadline: Duration,
    addrs: BTreeMap<&'static str, SocketAddr>,
    running: BTreeMap<&'static str, Running>,
}

impl InProcess {
    /// Starts the four services; sagas time out `deadline` after they start.
    pub async fn start(deadline: Duration) -> Self {
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let postgres_url = alpes_sagalog::ensure_database(
            &env(
                "ALPES_POSTGRES_URL",
                "postgres://alpes@127.0.0.1:5433/alpes",
            ),
            &format!("alpes_e2e_{}", &run_id[..12]),
        )
        .await
        .expect("Postgres of the local stack (scripts/stack.sh up)");
        namespace();
        let bus = Bus::connect_with(
            &env("ALPES_PULSAR_URL", "pulsar://127.0.0.1:6650"),
            &env("ALPES_PULSAR_ADMIN_URL", "http://127.0.0.1:8080"),
            "e2e",
            alpes_bus::PulsarToken::from_env().unwrap(),
        )
        .await
        .expect("Pulsar of the local stack (scripts/stack.sh up)");
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
        let running = self.running.remove(service).expect("running");
        running.stop.cancel();
        running.task.await.unwrap().unwrap();
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
        let addr = listener.local_addr().unwrap();
        // Retries four times faster than a deployment's: a purchase with no touchpoint is
        // refused on its last attempt, about 4 s in (15 s by default), within the sagas' deadline.
        let common = CommonArgs {
            pulsar_namespace: namespace(),
            retry_backoff: Duration::from_millis(250),
            ..CommonArgs::for_tests(addr)
        };
        let name = format!("e2e_{service}_{}", self.run_id);
        let stop = Shutdown::new();
        let task = match service {
            "tracking" => {
                let config = alpes_tracking::service::Config {
                    common,
                    database: name.clone(),
                    subscription: name,
                };
                tokio::spawn(alpes_tracking::service::run(config, listener, stop.clone()))
            }
            "attribution" => {
                let config = alpes_attribution::service::Config {
                    common,
                    database: name.clone(),
                    subscription: name,
                };
                tokio::spawn(alpes_attribution::service::run(
                    config,
                    listener,
                    stop.clone(),
                ))
            }
            "commission" => {
                let config = alpes_commission::service::Config {
                    common,
                    database: name.clone(),
                    subscription: name,
                };
                tokio::spawn(alpes_commission::service::run(
                    config,
                    listener,
                    stop.clone(),
                ))
            }
            _ => {
                let config = alpes_marketing::service::Config {
                    common,
                    database: name.clone(),
                    subscription: name,
                    saga_log: alpes_marketing::service::SagaLogArgs {
                        postgres_url: self.postgres_url.clone(),
                        saga_deadline: self.deadline,
                    },
                };
                tokio::spawn(alpes_marketing::service::run(
                    config,
                    listener,
                    stop.clone(),
                ))
            }
        };
        let base = format!("http://{addr}");
        for _ in 0..300 {
            let ready = reqwest::get(format!("{base}/readyz")).await;
            if ready.is_ok_and(|r| r.status() == 200) {
                self.running.insert(service, Running { stop, task });
                return;
            }
            assert!(
                !task.is_finished(),
                "{service} stopped during start-up: {:?}",
                task.await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{service} at {base} never became ready: is the stack up? (scripts/stack.sh up)");
    }
}

/// A partner click, or a purchase in a saga for an amount, as tracking would publish it (and as
/// `alpes publish InteractionTracked` sends it: straight to the topic, keyed by the visitor).
pub fn interaction(
    visitor: &str,
    campaign: &str,
    purchase: Option<(&str, i64)>,
) -> InteractionTracked {
    let mut metadata = EventMetadata::new::<InteractionTracked>().produced_by("e2e");
    if let Some((saga, _)) = purchase {
        metadata = metadata.in_saga(saga);
    }
    InteractionTracked {
        metadata,
        interaction_id: uuid::Uuid::now_v7().to_string(),
        kind: if purchase.is_some() {
            InteractionKind::Purchase
        } else {
            InteractionKind::Click
        },
        interacted_at: chrono::Utc::now(),
        visitor: Visitor {
            user_id: None,
            anonymous_id: visitor.to_owned(),
            ip: None,
            user_agent: Some("Mozilla/5.0".to_owned()),
        },
        tracking: TrackingParams {
            campaign_id: Some(campaign.to_owned()),
            partner_id: Some("partner-1".to_owned()),
            medium: Some("affiliate".to_owned()),
            ..TrackingParams::default()
        },
        target: Target {
            url: "https://shop.example/p/1".to_owned(),
            element: None,
        },
        context: PageContext::default(),
        purchase: purchase.map(|(_, amount_minor)| Purchase {
            order_id: format!("order-{}", uuid::Uuid::new_v4().simple()),
            amount: Money::new(amount_minor, "EUR"),
        }),
    }
}
