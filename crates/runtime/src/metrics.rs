//! Prometheus metrics, served as text at `/metrics`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    subscription: String,
    outcome: String,
}

/// The counters every service keeps; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    http: Family<HttpLabels, Counter>,
    messages: Family<MessageLabels, Counter>,
}

impl Metrics {
    /// A registry whose metrics are prefixed `alpes_` and labelled with `service`.
    pub fn new(service: &str) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            "alpes",
            [("service".into(), service.to_owned().into())].into_iter(),
        );
        let http = Family::<HttpLabels, Counter>::default();
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", http.clone());
        registry.register(
            "messages_handled",
            "Bus messages handled, by outcome",
            messages.clone(),
        );
        Self {
            registry: Arc::new(registry),
            http,
            messages,
        }
    }

    /// Counts one answered HTTP request.
    pub fn http_request(&self, method: &str, route: &str, status: u16) {
        let labels = HttpLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        self.http.get_or_create(&labels).inc();
    }

    /// Counts one handled message (`done`, `retry`, `reject`).
    pub fn message_handled(&self, subscription: &str, outcome: &str) {
        let labels = MessageLabels {
            subscription: subscription.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.messages.get_or_create(&labels).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
