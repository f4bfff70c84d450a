//! What every alpes test suite against the real local stack needs, written once: the stack's
//! settings ([`env`], [`common`]), names of a test's own ([`unique`], [`database`]), the test
//! suites' Pulsar namespace ([`namespace`]), a service running in process ([`Service`]) or
//! just its routes ([`serve`]), an
//! observer of a topic ([`Observer`]), and the contract events tests publish ([`fixtures`]).
//!
//! Every suite runs in [`NAMESPACE`], so a platform left running (`scripts/demo.sh`, in
//! `alpes/events`) and the tests never consume each other's events; each service a test starts
//! has a database and subscriptions of its own.

pub mod fixtures;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use alpes_bus::{Bus, Delivery, Outcome, Shutdown, StartAt, SubscriptionConfig};
use alpes_contracts::{Event, Namespace};
use alpes_runtime::auth::testing;
use alpes_runtime::config::CommonArgs;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The W3C trace context tests send, to check that it travels.
pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The Pulsar namespace of the test suites.
pub const NAMESPACE: &str = "alpes/test";

/// How long a test waits for what it expects before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A setting of the local stack, as `scripts/stack.sh env` prints it; `default` when unset or
/// empty.
pub fn env(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// `prefix` made unique to this call.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A MongoDB or Postgres database name of this call's own, starting with `prefix`.
pub fn database(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}

/// [`NAMESPACE`], installed for this process before any topic is named.
pub fn namespace() -> Namespace {
    let namespace = Namespace::parse(NAMESPACE).expect("the test namespace is valid");
    namespace
        .clone()
        .install()
        .expect("one namespace per process");
    namespace
}

/// The settings of a service a test runs in process on `addr`: the local stack, the test
/// namespace, the test API token ([`CommonArgs::for_tests`]).
pub fn common(addr: SocketAddr) -> CommonArgs {
    CommonArgs {
        pulsar_namespace: namespace(),
        ..CommonArgs::for_tests(addr)
    }
}

/// A connection to the local stack's broker as `name`, in the test namespace.
pub async fn bus(name: &str) -> Bus {
    namespace();
    Bus::connect_with(
        &env("ALPES_PULSAR_URL", "pulsar://127.0.0.1:6650"),
        &env("ALPES_PULSAR_ADMIN_URL", "http://127.0.0.1:8080"),
        name,
        alpes_bus::PulsarToken::from_env().expect("ALPES_PULSAR_TOKEN, if set, is a token"),
    )
    .await
    .expect("Pulsar of the local stack (scripts/stack.sh up)")
}

/// The URL of the local stack's Postgres database `name`, created (and migrated for a saga
/// log) if missing.
pub async fn postgres(name: &str) -> String {
    let server = env(
        "ALPES_POSTGRES_URL",
        "postgres://alpes@127.0.0.1:5433/alpes",
    );
    alpes_sagalog::ensure_database(&server, name)
        .await
        .expect("Postgres of the local stack (scripts/stack.sh up)")
}

/// Serves `router` (a service's routes over an in-memory store, say) on a free loopback port
/// for as long as the test's runtime lasts; its base URL, `http://127.0.0.1:<port>`.
pub async fn serve(router: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("a bound port"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

/// A service running in process, spoken to over HTTP with the test token.
pub struct Service {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    stop: Shutdown,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Service {
    /// Binds a free port and starts a service there: `run` is its `service::run` applied to
    /// its configuration, which `config` makes from the [`common`] settings of that port.
    /// Returns once `/readyz` says ready.
    pub async fn spawn<C, F, Fut>(config: impl FnOnce(CommonArgs) -> C, run: F) -> Self
    where
        F: FnOnce(C, TcpListener, Shutdown) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        Self::spawn_on(listener, config, run).await
    }

    /// [`Service::spawn`] on `listener` (a port a stopped instance left, for a restart).
    pub async fn spawn_on<C, F, Fut>(
        listener: TcpListener,
        config: impl FnOnce(CommonArgs) -> C,
        run: F,
    ) -> Self
    where
        F: FnOnce(C, TcpListener, Shutdown) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let addr = listener.local_addr().expect("a bound port");
        let stop = Shutdown::new();
        let task = tokio::spawn(run(config(common(addr)), listener, stop.clone()));
        let service = Self {
            base: format!("http://{addr}"),
            addr,
            http: testing::client(),
            stop,
            task,
        };
        for _ in 0..300 {
            let ready = service.http.get(service.url("/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return service;
            }
            if service.task.is_finished() {
                panic!(
                    "the service at {addr} stopped while starting: {:?}",
                    service.task.await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the service at {addr} never became ready: is the stack up? (scripts/stack.sh up)");
    }

    /// `path` on this service.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GETs `path`: the status and the JSON body (`null` when there is none).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        answer(self.http.get(self.url(path)).send().await).await
    }

    /// POSTs `body` (none when `None`) to `path` with [`TRACEPARENT`]: the status and the JSON
    /// body.
    pub async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url(path))
            .header("traceparent", TRACEPARENT);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await).await
    }

    /// GETs `path` until it answers 200 with a body `wanted` accepts, within [`PATIENCE`].
    pub async fn wait_for(&self, path: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && wanted(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "GET {path} did not answer as expected within {PATIENCE:?}; last: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the service as SIGTERM does and waits until it has, checking it stopped cleanly.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("the service task")
            .expect("a clean stop");
    }
}

async fn answer(response: reqwest::Result<reqwest::Response>) -> (u16, Value) {
    let response = response.expect("the service answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// The events of type `E` published after [`Observer::listen`], for a test to pick from.
pub struct Observer<E> {
    events: mpsc::UnboundedReceiver<E>,
    stop: Shutdown,
}

impl<E: Event> Observer<E> {
    /// Subscribes to `E` on `bus` from now on, with a subscription of its own.
    pub async fn listen(bus: &Bus) -> Self {
        Self::try_listen(bus)
            .await
            .expect("subscribing an observer")
    }

    /// [`Observer::listen`], for callers that report errors instead of panicking.
    pub async fn try_listen(bus: &Bus) -> Result<Self, alpes_bus::BusError> {
        let mut config = SubscriptionConfig::new(unique("observer"));
        config.start_at = StartAt::Latest;
        let subscription = bus.subscribe::<E>(config).await?;
        let (tx, events) = mpsc::unbounded_channel();
        let stop = Shutdown::new();
        tokio::spawn(subscription.run(
            move |delivery: Delivery<E>| {
                let _ = tx.send(delivery.event);
                std::future::ready(Outcome::Done)
            },
            stop.clone(),
        ));
        Ok(Self { events, stop })
    }

    /// The next event `wanted` accepts, within [`PATIENCE`]; the test fails otherwise.
    pub async fn next_where(&mut self, wanted: impl Fn(&E) -> bool) -> E {
        self.next_within(PATIENCE, wanted)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The next event of saga `saga`, within [`PATIENCE`].
    pub async fn next_of_saga(&mut self, saga: &str) -> E {
        self.next_of_saga_where(saga, |_| true).await
    }

    /// The next event of saga `saga` that `wanted` accepts, within [`PATIENCE`].
    pub async fn next_of_saga_where(&mut self, saga: &str, wanted: impl Fn(&E) -> bool) -> E {
        self.next_where(|e| e.metadata().saga_id.as_deref() == Some(saga) && wanted(e))
            .await
    }

    /// The next event of saga `saga`, within `timeout`.
    pub async fn next_of_saga_within(
        &mut self,
        saga: &str,
        timeout: Duration,
    ) -> anyhow::Result<E> {
        self.next_within(timeout, |e| e.metadata().saga_id.as_deref() == Some(saga))
            .await
    }

    /// The next event, if one arrives before `deadline`.
    pub async fn next_before(&mut self, deadline: tokio::time::Instant) -> Option<E> {
        tokio::time::timeout_at(deadline, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// An event already received and not taken yet, without waiting.
    pub fn try_next(&mut self) -> Option<E> {
        self.events.try_recv().ok()
    }

    /// The next event `wanted` accepts, within `timeout`.
    pub async fn next_within(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&E) -> bool,
    ) -> anyhow::Result<E> {
        let next = async {
            loop {
                match self.events.recv().await {
                    Some(event) if wanted(&event) => return Ok(event),
                    Some(_) => {}
                    None => anyhow::bail!("the observer of {} stopped", E::event_type().name),
                }
            }
        };
        tokio::time::timeout(timeout, next)
            .await
            .map_err(|_| anyhow::anyhow!("no such {} within {timeout:?}", E::event_type().name))?
    }
}

impl<E> Drop for Observer<E> {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
