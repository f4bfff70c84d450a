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

use alpes_bus::Bus;
use alpes_e2e::PlatformClient;
use alpes_runtime::config::CommonArgs;
use alpes_testkit::{Service, bus, postgres};
use tokio::net::TcpListener;

/// The API token of the services a test starts ([`CommonArgs::for_tests`]).
pub const TOKEN: &str = alpes_runtime::config::TEST_API_TOKEN;

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
