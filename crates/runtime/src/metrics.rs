//! Prometheus metrics, served as text at `/metrics`.
//!
//! Subscription states are read from the bus's [`SubscriptionHealth`] at each scrape rather
//! than copied into counters: the bus keeps them anyway, and a scrape then never disagrees with
//! `/readyz`.

use std::sync::{Arc, Mutex};

use alpes_bus::SubscriptionHealth;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubscriptionLabels {
    subscription: String,
    topic: String,
}

/// The subscriptions whose state each scrape reports.
#[derive(Debug, Clone, Default)]
struct Subscriptions(Arc<Mutex<Vec<SubscriptionHealth>>>);

impl Collector for Subscriptions {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let states = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let labels = |s: &SubscriptionHealth| SubscriptionLabels {
            subscription: s.name().to_owned(),
            topic: s.topic().to_owned(),
        };
        let mut up = encoder.encode_descriptor(
            "subscription_up",
            "Whether a subscription is consuming (0 while it subscribes again after losing the broker)",
            None,
            MetricType::Gauge,
        )?;
        for state in &states {
            let labels = labels(state);
            ConstGauge::new(i64::from(state.is_up())).encode(up.encode_family(&labels)?)?;
        }
        let mut resubscriptions = encoder.encode_descriptor(
            "subscription_resubscriptions",
            "Times a subscription was made again after losing the broker",
            None,
            MetricType::Counter,
        )?;
        for state in &states {
            let labels = labels(state);
            ConstCounter::new(state.reconnects())
                .encode(resubscriptions.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The counters every service keeps; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    http: Family<HttpLabels, Counter>,
    messages: Family<MessageLabels, Counter>,
    subscriptions: Subscriptions,
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
        let subscriptions = Subscriptions::default();
        registry.register_collector(Box::new(subscriptions.clone()));
        Self {
            registry: Arc::new(registry),
            http,
            messages,
            subscriptions,
        }
    }

    /// Reports `subscription`'s state (up, and how often it subscribed again) from now on.
    pub fn watch(&self, subscription: SubscriptionHealth) {
        self.subscriptions
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(subscription);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_reports_each_subscriptions_state_and_resubscriptions() {
        let metrics = Metrics::new("commission");
        let health = SubscriptionHealth::new("commission", "persistent://alpes/events/a-v1");
        metrics.watch(health.clone());
        let series = r#"{service="commission",subscription="commission",topic="persistent://alpes/events/a-v1"}"#;

        let text = metrics.render();
        assert!(
            text.contains(&format!("alpes_subscription_up{series} 1")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "alpes_subscription_resubscriptions_total{series} 0"
            )),
            "{text}"
        );

        health.lost();
        assert!(
            metrics
                .render()
                .contains(&format!("alpes_subscription_up{series} 0"))
        );
        health.resubscribed();
        let text = metrics.render();
        assert!(
            text.contains(&format!("alpes_subscription_up{series} 1")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "alpes_subscription_resubscriptions_total{series} 1"
            )),
            "{text}"
        );
    }
}
