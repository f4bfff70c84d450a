//! Bootstrap through Pulsar's admin REST API: tenant, namespace, policies, topics, schemas.
//!
//! Every step is idempotent (an existing tenant, namespace or topic is fine; uploading a schema
//! the registry already holds returns its version), so every service and test calls
//! [`Admin::bootstrap`] at start-up without coordination.
//!
//! Everything happens in the process's namespace ([`Namespace::current`]): the platform's
//! `alpes/events` by default, a test suite's own otherwise.

use std::time::Duration;

use alpes_contracts::{EventType, Namespace, events};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::{BusError, PulsarToken};

/// Schema compatibility the registry enforces: every new schema must be readable by, and able
/// to read, every earlier one of the topic — the same rule `alpes schema check` applies in CI.
pub const COMPATIBILITY_STRATEGY: &str = "FULL_TRANSITIVE";

/// How long messages stay after every subscription acknowledged them (and on topics nobody
/// subscribes to, such as dead letters), so they can be inspected and replayed.
const RETENTION_MINUTES: u32 = 7 * 24 * 60;
const RETENTION_MEGABYTES: u32 = 1024;

/// A client of the admin REST API (the broker's web port, e.g. `http://127.0.0.1:8080`).
///
/// On a broker with token authentication, [`Admin::with_token`] sends a role's token with every
/// request; creating tenants and namespaces and granting permissions ([`Admin::bootstrap`],
/// [`Admin::apply`]) need the superuser's.
#[derive(Clone)]
pub struct Admin {
    http: reqwest::Client,
    base: String,
    token: Option<PulsarToken>,
}

/// What [`Admin::bootstrap`] set up: each event topic with its registered schema version.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub topics: Vec<(String, i64)>,
}

/// The upload's answer: `{"version":{"version":N}}` (Pulsar 4), or `{"version":N}`.
#[derive(Deserialize)]
struct Uploaded {
    version: UploadedVersion,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UploadedVersion {
    Nested { version: i64 },
    Flat(i64),
}

impl Admin {
    /// A client for the admin API at `base_url`, sending no credentials.
    pub fn new(base_url: &str) -> Self {
        Self::authenticated(base_url, None)
    }

    /// This client, sending `token` as `Authorization: Bearer` with every request.
    pub fn with_token(self, token: PulsarToken) -> Self {
        Self::authenticated(&self.base, Some(token))
    }

    /// A client for the admin API at `base_url`, sending `token` when there is one.
    pub fn authenticated(base_url: &str, token: Option<PulsarToken>) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &token {
            headers.insert(reqwest::header::AUTHORIZATION, token.bearer());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .default_headers(headers)
            .build()
            .expect("a plain HTTP client always builds");
        Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// The token this client sends, if any.
    pub fn token(&self) -> Option<&PulsarToken> {
        self.token.as_ref()
    }

    /// Answers when the broker's admin API does: a readiness check.
    pub async fn clusters(&self) -> Result<Vec<String>, BusError> {
        self.get_json("/admin/v2/clusters").await
    }

    /// `GET path` (e.g. `/admin/v2/persistent/alpes/events/<topic>/stats`), its JSON body read
    /// as `T`: for the admin API's reads this client has no method of its own for.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, BusError> {
        let response = self.call(Method::GET, path, None).await?;
        response
            .json()
            .await
            .map_err(|e| admin_error("GET", self.url(path), e))
    }

    /// Creates the tenant and namespace, sets their policies, and registers every event
    /// topic's schema.
    ///
    /// Services start together and bootstrap concurrently; the broker then answers a racing
    /// creation with a 500 (a metadata version conflict) rather than a 409. Every step being
    /// idempotent, the whole sequence is simply run again, a few times, before giving up.
    pub async fn bootstrap(&self) -> Result<Bootstrapped, BusError> {
        let mut attempt = 1;
        loop {
            match self.bootstrap_once().await {
                // Credentials without the right stay refused: no use asking again.
                Err(e) if attempt < 5 && !e.is_refused_by_authorization() => {
                    tracing::warn!(error = %e, attempt, "Pulsar bootstrap failed, trying again");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn bootstrap_once(&self) -> Result<Bootstrapped, BusError> {
        let ns = Namespace::current();
        let tenant = ns.tenant();
        let clusters = self.clusters().await?;
        let tenant_info = json!({ "adminRoles": [], "allowedClusters": clusters });
        self.create(&format!("/admin/v2/tenants/{tenant}"), Some(tenant_info))
            .await?;
        let namespace = format!("/admin/v2/namespaces/{ns}");
        self.create(&namespace, None).await?;
        self.call(
            Method::PUT,
            &format!("{namespace}/schemaCompatibilityStrategy"),
            Some(json!(COMPATIBILITY_STRATEGY)),
        )
        .await?;
        let retention = json!({
            "retentionTimeInMinutes": RETENTION_MINUTES,
            "retentionSizeInMB": RETENTION_MEGABYTES,
        });
        self.call(
            Method::POST,
            &format!("{namespace}/retention"),
            Some(retention),
        )
        .await?;
        // By default the broker deletes a topic nobody subscribes to after a minute without
        // producers, with its messages, schema and grants: a dead-letter topic nobody has read
        // yet, or a topic bootstrapped before the services that use it start.
        let keep_idle_topics = json!({
            "inactiveTopicDeleteMode": "delete_when_no_subscriptions",
            "maxInactiveDurationSeconds": 60,
            "deleteWhileInactive": false,
        });
        self.call(
            Method::POST,
            &format!("{namespace}/inactiveTopicPolicies"),
            Some(keep_idle_topics),
        )
        .await?;

        let mut topics = Vec::new();
        for ty in events::all() {
            let topic = ty.topic_name();
            self.create(&format!("/admin/v2/persistent/{ns}/{topic}"), None)
                .await?;
            let version = self.upload_schema(&topic, ty).await?;
            topics.push((ty.topic(), version));
        }
        Ok(Bootstrapped { topics })
    }

    /// Registers `ty`'s Avro schema for `topic` (a short name in the process's namespace) and
    /// returns its version. The registry refuses a schema that breaks compatibility with the
    /// topic's earlier schemas: that is [`BusError::SchemaRefused`].
    pub async fn upload_schema(&self, topic: &str, ty: &EventType) -> Result<i64, BusError> {
        self.upload_schema_text(topic, ty.schema_text).await
    }

    /// Registers an Avro schema given as `.avsc` text for `topic`; see [`Admin::upload_schema`].
    pub async fn upload_schema_text(&self, topic: &str, avsc: &str) -> Result<i64, BusError> {
        let ns = Namespace::current();
        let path = format!("/admin/v2/schemas/{ns}/{topic}/schema");
        let body = json!({ "type": "AVRO", "schema": avsc, "properties": {} });
        let response = self
            .http
            .post(self.url(&path))
            .json(&body)
            .send()
            .await
            .map_err(|e| admin_error("POST", self.url(&path), e))?;
        match response.status() {
            status if status.is_success() => {
                let uploaded: Uploaded = response
                    .json()
                    .await
                    .map_err(|e| admin_error("POST", self.url(&path), e))?;
                Ok(match uploaded.version {
                    UploadedVersion::Nested { version } | UploadedVersion::Flat(version) => version,
                })
            }
            StatusCode::CONFLICT => Err(BusError::SchemaRefused {
                topic: topic.to_owned(),
                detail: response.text().await.unwrap_or_default(),
            }),
            status => Err(admin_error(
                "POST",
                self.url(&path),
                format!("{status}: {}", response.text().await.unwrap_or_default()),
            )),
        }
    }

    /// Checks, without changing anything, that every topic of `types` has a schema in the
    /// registry: what a service whose role may not bootstrap (a broker with authorization,
    /// where only the admin role creates tenants, namespaces and topics) does at start-up
    /// instead of [`Admin::bootstrap`]. A role may read the schemas of the topics it produces
    /// or consumes; for any other topic the broker answers 401, reported as such.
    pub async fn check_schemas(&self, types: &[&EventType]) -> Result<(), BusError> {
        let ns = Namespace::current();
        for ty in types {
            let topic = ty.topic_name();
            let path = format!("/admin/v2/schemas/{ns}/{topic}/schema");
            match self.call(Method::GET, &path, None).await {
                Ok(_) => {}
                Err(BusError::Admin { detail, .. }) if detail.starts_with("404") => {
                    return Err(admin_error(
                        "GET",
                        self.url(&path),
                        format!(
                            "no schema registered for {}: bootstrap Pulsar first, as the admin role (`alpes bootstrap`)",
                            ty.topic()
                        ),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The Avro schema text registered for `topic` (a short name in the process's namespace) at
    /// `version`, or `None` when the registry has no such version.
    pub async fn schema_at(&self, topic: &str, version: i64) -> Result<Option<String>, BusError> {
        #[derive(Deserialize)]
        struct Registered {
            data: String,
        }
        let ns = Namespace::current();
        let path = format!("/admin/v2/schemas/{ns}/{topic}/schema/{version}");
        let url = self.url(&path);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| admin_error("GET", url.clone(), e))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => {
                let registered: Registered = response
                    .json()
                    .await
                    .map_err(|e| admin_error("GET", url, e))?;
                Ok(Some(registered.data))
            }
            status => Err(admin_error(
                "GET",
                url,
                format!("{status}: {}", response.text().await.unwrap_or_default()),
            )),
        }
    }

    /// Deletes subscription `subscription` of event topic `topic` (its short name) with its
    /// backlog: for subscriptions a new version no longer reads, which would otherwise retain
    /// every message for ever. A subscription that does not exist is no error; one that still
    /// has consumers (an older replica still running) is refused by the broker.
    pub async fn delete_subscription(
        &self,
        topic: &str,
        subscription: &str,
    ) -> Result<(), BusError> {
        let ns = Namespace::current();
        let path = format!("/admin/v2/persistent/{ns}/{topic}/subscription/{subscription}");
        match self.call(Method::DELETE, &path, None).await {
            Ok(_) => Ok(()),
            Err(BusError::Admin { detail, .. }) if detail.starts_with("404") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// PUT that treats "already exists" as success.
    pub(crate) async fn create(
        &self,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(), BusError> {
        match self.call(Method::PUT, path, body).await {
            Ok(_) => Ok(()),
            Err(BusError::Admin { detail, .. }) if detail.starts_with("409") => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, BusError> {
        let url = self.url(path);
        let name = method_name(&method);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| admin_error(name, url.clone(), e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Err(admin_error(name, url, format!("{status}: {text}")))
    }

    /// The admin API's base URL, e.g. `http://127.0.0.1:8080`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        _ => "HTTP",
    }
}

fn admin_error(method: &'static str, url: String, detail: impl ToString) -> BusError {
    BusError::Admin {
        method,
        url,
        detail: detail.to_string(),
    }
}
