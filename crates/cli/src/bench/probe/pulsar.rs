//! Pulsar messages, counted by the broker: the `msgInCounter` (published) and per-subscription
//! `msgOutCounter` (delivered) of every topic in the alpes namespace, from the admin REST API.
//!
//! The broker's counters see every producer and consumer, retries and dead letters included,
//! without instrumenting the services. They are per topic and reset when a topic is unloaded
//! (a broker restart), so a counter that goes backwards is reported rather than subtracted.
//! The bench's own subscriptions (named [`BENCH_PREFIX`]…) and their retry topics are left out:
//! they are the observer, not the platform. This is also where the bench removes them again.

use std::collections::BTreeMap;
use std::time::Duration;

use alpes_bus::PulsarToken;
use alpes_contracts::Namespace;
use futures::StreamExt;
use serde::Deserialize;

/// The name every subscription of `alpes bench` starts with.
pub const BENCH_PREFIX: &str = "alpes-bench-";

/// Topic stats asked for at once.
const PARALLEL_REQUESTS: usize = 8;

/// Messages through one topic so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicCounters {
    /// Messages published to the topic.
    pub published: u64,
    /// Messages delivered to its subscriptions, the bench's own excluded.
    pub delivered: u64,
}

/// The subset of `GET .../{topic}/stats` the bench reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicStats {
    #[serde(default)]
    msg_in_counter: u64,
    #[serde(default)]
    subscriptions: BTreeMap<String, SubscriptionStats>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionStats {
    #[serde(default)]
    msg_out_counter: u64,
}

impl TopicStats {
    /// The topic's counters, without the bench's subscriptions.
    pub fn counters(&self) -> TopicCounters {
        TopicCounters {
            published: self.msg_in_counter,
            delivered: self
                .subscriptions
                .iter()
                .filter(|(name, _)| !name.starts_with(BENCH_PREFIX))
                .map(|(_, s)| s.msg_out_counter)
                .sum(),
        }
    }
}

/// Whether `topic` belongs to the bench (a retry topic of one of its subscriptions).
pub fn is_bench_topic(topic: &str) -> bool {
    topic.contains(&format!("-{BENCH_PREFIX}"))
}

/// The admin REST path of a persistent topic: `persistent://t/n/x` → `persistent/t/n/x`;
/// `None` for any other kind of topic.
pub fn rest_path(topic: &str) -> Option<String> {
    topic
        .strip_prefix("persistent://")
        .map(|rest| format!("persistent/{rest}"))
}

/// Pulsar's admin REST API, for the few calls the bench makes.
#[derive(Clone)]
pub struct PulsarAdmin {
    base: String,
    client: reqwest::Client,
}

impl PulsarAdmin {
    /// The admin API at `base` (e.g. `http://127.0.0.1:8080`), presenting `token` when there
    /// is one (a broker with token authentication; topic stats need the admin role).
    pub fn new(base: &str, token: Option<PulsarToken>) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            headers.insert(reqwest::header::AUTHORIZATION, token.bearer());
        }
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .default_headers(headers)
                .build()
                .unwrap_or_default(),
        }
    }

    /// Counters of every persistent topic of the process's namespace but the bench's own, by topic,
    /// and why the stats of some topics could not be read.
    pub async fn counters(&self) -> Result<(BTreeMap<String, TopicCounters>, Vec<String>), String> {
        let url = format!(
            "{}/admin/v2/namespaces/{}/topics",
            self.base,
            Namespace::current()
        );
        let topics: Vec<String> = self.get_json(&url).await?;
        let topics: Vec<(String, String)> = topics
            .into_iter()
            .filter(|topic| !is_bench_topic(topic))
            .filter_map(|topic| rest_path(&topic).map(|path| (topic, path)))
            .collect();
        let stats: Vec<_> = futures::stream::iter(topics)
            .map(|(topic, path)| async move {
                let url = format!("{}/admin/v2/{path}/stats", self.base);
                (topic, self.get_json::<TopicStats>(&url).await)
            })
            .buffer_unordered(PARALLEL_REQUESTS)
            .collect()
            .await;
        let mut counters = BTreeMap::new();
        let mut unreadable = Vec::new();
        for (topic, stats) in stats {
            match stats {
                Ok(stats) => {
                    counters.insert(topic, stats.counters());
                }
                Err(error) => unreadable.push(error),
            }
        }
        Ok((counters, unreadable))
    }

    /// Removes subscription `name` from `topic`, disconnecting any consumer still on it.
    pub async fn delete_subscription(&self, topic: &str, name: &str) -> Result<(), String> {
        let path = rest_path(topic).ok_or_else(|| format!("{topic} is not persistent"))?;
        let url = format!(
            "{}/admin/v2/{path}/subscription/{name}?force=true",
            self.base
        );
        self.delete(&url).await
    }

    /// Deletes `topic` with its subscriptions.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), String> {
        let path = rest_path(topic).ok_or_else(|| format!("{topic} is not persistent"))?;
        let url = format!("{}/admin/v2/{path}?force=true", self.base);
        self.delete(&url).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!("GET {url}: {status} {}", body.trim()));
        }
        response
            .json()
            .await
            .map_err(|e| format!("GET {url}: unexpected answer: {e}"))
    }

    async fn delete(&self, url: &str) -> Result<(), String> {
        let response = self
            .client
            .delete(url)
            .send()
            .await
            .map_err(|e| format!("DELETE {url}: {e}"))?;
        let status = response.status();
        // 404: already gone, which is what was asked.
        if status.is_success() || status.as_u16() == 404 {
            Ok(())
        } else {
            let body = response.text().await.unwrap_or_default();
            Err(format!("DELETE {url}: {status} {}", body.trim()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_sums_the_subscriptions_but_the_benchs_own() {
        let stats: TopicStats = serde_json::from_str(
            r#"{"msgRateIn": 0.0, "msgInCounter": 120, "msgOutCounter": 400,
                "subscriptions": {
                  "commission": {"msgOutCounter": 120, "msgBacklog": 0},
                  "marketing": {"msgOutCounter": 130},
                  "alpes-bench-1f2e": {"msgOutCounter": 150}
                }}"#,
        )
        .unwrap();
        assert_eq!(
            stats.counters(),
            TopicCounters {
                published: 120,
                delivered: 250
            }
        );
        let empty: TopicStats = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.counters(), TopicCounters::default());
    }

    #[test]
    fn topics_map_to_admin_paths_and_the_benchs_retry_topics_are_recognised() {
        assert_eq!(
            rest_path("persistent://alpes/events/commission-reserved-v1").as_deref(),
            Some("persistent/alpes/events/commission-reserved-v1")
        );
        assert_eq!(rest_path("non-persistent://alpes/events/x"), None);
        assert!(is_bench_topic(
            "persistent://alpes/events/commission-reserved-v1-alpes-bench-1f2e-retry"
        ));
        assert!(!is_bench_topic(
            "persistent://alpes/events/commission-reserved-v1-marketing-retry"
        ));
    }
}
