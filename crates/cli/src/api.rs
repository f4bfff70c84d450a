//! Speaking HTTP to one alpes service: JSON in, JSON out, and errors that say what to do.
//!
//! Every service answers errors as `{"code", "message", "field"?}`; [`RequestError`] keeps them
//! and explains the ones a user can fix (a 401 is about the API token, a refused connection
//! about the service not running).

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

/// How long one request may take before the service counts as unresponsive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a load tool ([`Api::riding_out_restarts`]) keeps trying a request again while the
/// service is away (connection refused: restarting) or sheds load (`503 overloaded`, `429`),
/// so that it rides out a restart of a service instead of turning every remaining request
/// into an error.
pub const RETRY_FOR: Duration = Duration::from_secs(30);

/// The first wait before trying again; it doubles up to [`MAX_WAIT`], and a `Retry-After`
/// the service sends is honoured up to that too.
const FIRST_WAIT: Duration = Duration::from_millis(200);
const MAX_WAIT: Duration = Duration::from_secs(3);

/// A client of one service at one base URL, or at several (replicas of the service): then each
/// request goes to the next one in turn, and a request tried again after a refused connection
/// goes to the next one too, so a replica that is away costs a retry, not an error.
#[derive(Clone)]
pub struct Api {
    /// The service's name, for messages (`marketing`).
    service: &'static str,
    base: Url,
    /// Every replica's base URL (`base` first), as strings without a trailing `/`.
    replicas: std::sync::Arc<[String]>,
    /// The replica the next request goes to (modulo their number).
    turn: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    token: Option<String>,
    client: reqwest::Client,
    /// How long a request turned away before it was handled is tried again; zero for a person
    /// at a terminal, who wants to hear at once that a service is down.
    retry_for: Duration,
}

/// Why a request to a service failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Nothing answered.
    #[error(
        "cannot reach {service} at {url}: {source}; is it running? (scripts/services.sh up, or set \
         the URL with its flag or ALPES_{upper}_URL)",
        upper = service.to_uppercase()
    )]
    Unreachable {
        service: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with an error.
    #[error("{0}")]
    Refused(Refusal),
    /// The service answered something that is not the JSON its contract promises.
    #[error(
        "{service} answered {method} {url} with {status} and a body that is not the expected JSON: {detail}"
    )]
    Unexpected {
        service: &'static str,
        method: Method,
        url: String,
        status: u16,
        detail: String,
    },
}

/// An error answer of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub service: &'static str,
    pub status: u16,
    /// The stable machine code, e.g. `not_found`, when the body had one.
    pub code: Option<String>,
    pub message: String,
    /// The field at fault, for validation errors.
    pub field: Option<String>,
    /// Whether the request carried a token (a 401 means different things with and without).
    pub token_given: bool,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code.as_deref().unwrap_or("error");
        write!(f, "{} answered {} {code}", self.service, self.status)?;
        if let Some(field) = &self.field {
            write!(f, " (field {field})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        match (self.status, self.token_given) {
            (401, false) => write!(
                f,
                "\n  no API token was given: pass --token or set ALPES_API_TOKEN to the token {} \
                 was started with",
                self.service
            ),
            (401, true) => write!(
                f,
                "\n  the API token given (--token or ALPES_API_TOKEN) is not one {} accepts",
                self.service
            ),
            (403, _) => write!(f, "\n  the API token given is not allowed to do this"),
            _ => Ok(()),
        }
    }
}

/// The error body every alpes service writes.
#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
    field: Option<String>,
}

impl RequestError {
    /// The service's status code, when it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused(refusal) => Some(refusal.status),
            _ => None,
        }
    }
}

impl Api {
    /// A client of `service` at `base` (e.g. `http://127.0.0.1:8084`; several replicas'
    /// separated by commas), sending `token` as a bearer token when there is one.
    pub fn new(service: &'static str, base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let mut replicas = Vec::new();
        for given in base.split(',').map(str::trim).filter(|b| !b.is_empty()) {
            let url = Url::parse(given)
                .map_err(|e| anyhow::anyhow!("{service} URL {given:?} is not a URL: {e}"))?;
            if url.cannot_be_a_base() {
                anyhow::bail!("{service} URL {url} cannot be a base URL");
            }
            replicas.push(url);
        }
        let Some(base) = replicas.first().cloned() else {
            anyhow::bail!("{service} URL {base:?} names no URL");
        };
        let replicas = replicas
            .iter()
            .map(|url| url.as_str().trim_end_matches('/').to_owned())
            .collect();
        Ok(Self {
            service,
            base,
            replicas,
            turn: Default::default(),
            token: token.filter(|t| !t.is_empty()),
            client: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()?,
            retry_for: Duration::ZERO,
        })
    }

    /// This client, trying a request again for up to `retry_for` while the service refuses
    /// connections or sheds load, or a GET's connection breaks (never a request that may have
    /// taken effect).
    pub fn riding_out_restarts(mut self, retry_for: Duration) -> Self {
        self.retry_for = retry_for;
        self
    }

    /// The (first replica's) base URL, as given.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `url` (made by [`Api::url`], under the first replica's base) at replica `turn` (modulo
    /// their number), or at the one whose turn it is.
    fn at_replica(&self, url: &Url, turn: Option<usize>) -> Url {
        let turn =
            turn.unwrap_or_else(|| self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let replica = &self.replicas[turn % self.replicas.len()];
        let Some(rest) = url.as_str().strip_prefix(self.replicas[0].as_str()) else {
            return url.clone(); // not under the base: as given
        };
        Url::parse(&format!("{replica}{rest}")).unwrap_or_else(|_| url.clone())
    }

    /// The URL of `segments` (each escaped) under the base, with `query` pairs.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the base can be a base")
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
        }
        url
    }

    /// `GET` as JSON.
    pub async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, RequestError> {
        self.call(Method::GET, url, None, None, Repeat::Safe, None)
            .await
    }

    /// `POST` a JSON body, answer as JSON.
    pub async fn post<T: DeserializeOwned>(
        &self,
        url: Url,
        body: &Json,
    ) -> Result<T, RequestError> {
        self.call(Method::POST, url, Some(body), None, Repeat::Unsafe, None)
            .await
    }

    /// [`Api::post`] of a request the service makes idempotent (the same body twice is one
    /// effect, e.g. a fraud report): asked again, like a `GET`, when its connection breaks or
    /// any `503` answers.
    pub async fn post_idempotent<T: DeserializeOwned>(
        &self,
        url: Url,
        body: &Json,
    ) -> Result<T, RequestError> {
        self.call(Method::POST, url, Some(body), None, Repeat::Safe, None)
            .await
    }

    /// [`Api::post`] to the replica `affinity` picks, always the same one for the same value
    /// (while it answers; a retry goes to the next): what a load balancer with session
    /// affinity does, e.g. for one visitor's interactions, which must reach the platform in
    /// the order they happened. With an idempotency `key` (sent as `Idempotency-Key`: the
    /// service answers the same request again with what it did the first time), it is asked
    /// again like a `GET` after a broken connection or a `503`.
    pub async fn post_with_affinity<T: DeserializeOwned>(
        &self,
        affinity: &str,
        key: Option<&str>,
        url: Url,
        body: &Json,
    ) -> Result<T, RequestError> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        affinity.hash(&mut hasher);
        let replica = (hasher.finish() % self.replicas.len() as u64) as usize;
        let repeat = if key.is_some() {
            Repeat::Safe
        } else {
            Repeat::Unsafe
        };
        self.call(Method::POST, url, Some(body), Some(replica), repeat, key)
            .await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Json>,
        replica: Option<usize>,
        repeat: Repeat,
        key: Option<&str>,
    ) -> Result<T, RequestError> {
        let mut target = self.at_replica(&url, replica);
        let unreachable = |target: &Url, source| RequestError::Unreachable {
            service: self.service,
            url: target.to_string(),
            source,
        };
        let send = |target: &Url| {
            let mut request = self.client.request(method.clone(), target.clone());
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            if let Some(key) = key {
                request = request.header("Idempotency-Key", key);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            request.send()
        };
        let started = std::time::Instant::now();
        let mut wait = FIRST_WAIT;
        let (status, text) = loop {
            // Past `retry_for`, the answer (or error) of one last try is the one reported.
            let last = started.elapsed() >= self.retry_for;
            let retry_after = match send(&target).await {
                // Nothing was sent: the service is not listening (yet, or again). A GET changes
                // nothing (nor does an idempotent request twice), so one whose connection broke
                // (a replica killed mid-request) is simply asked again.
                Err(e) if !last && (e.is_connect() || repeat == Repeat::Safe && in_transit(&e)) => {
                    None
                }
                Err(e) => return Err(unreachable(&target, e)),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(&response);
                    let text = response.text().await.map_err(|e| unreachable(&target, e))?;
                    if last || !refused_before_handling(repeat, status, &text) {
                        break (status, text);
                    }
                    retry_after
                }
            };
            tokio::time::sleep(retry_after.unwrap_or(wait).min(MAX_WAIT)).await;
            wait = (wait * 2).min(MAX_WAIT);
            target = self.at_replica(&url, None);
        };
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|e| RequestError::Unexpected {
                service: self.service,
                method,
                url: target.to_string(),
                status: status.as_u16(),
                detail: e.to_string(),
            });
        }
        Err(RequestError::Refused(self.refusal(status, &text)))
    }

    fn refusal(&self, status: StatusCode, text: &str) -> Refusal {
        let (code, message, field) = match serde_json::from_str::<ErrorBody>(text) {
            Ok(body) => (Some(body.code), body.message, body.field),
            Err(_) => {
                let text = text.trim();
                let message = if text.is_empty() {
                    status.canonical_reason().unwrap_or_default().to_owned()
                } else {
                    text.chars().take(300).collect()
                };
                (None, message, None)
            }
        };
        Refusal {
            service: self.service,
            status: status.as_u16(),
            code,
            message,
            field,
            token_given: self.token.is_some(),
        }
    }
}

/// Whether `error` happened on the way (a broken connection, a timeout), not in building the
/// request: only then can sending it again succeed.
fn in_transit(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// Whether sending a request twice is as good as once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// A `GET`, or a request the service makes idempotent.
    Safe,
    /// Sent again only when it was surely not handled.
    Unsafe,
}

/// Whether an answer says the request may be sent again: `429`, `503 overloaded` (load shed
/// at the door), and any `503` to a request safe to repeat. A `503 timed_out` to another
/// `POST` is not: it may have taken effect.
fn refused_before_handling(repeat: Repeat, status: StatusCode, text: &str) -> bool {
    match status {
        StatusCode::TOO_MANY_REQUESTS => true,
        StatusCode::SERVICE_UNAVAILABLE => {
            repeat == Repeat::Safe
                || serde_json::from_str::<ErrorBody>(text).is_ok_and(|b| b.code == "overloaded")
        }
        _ => false,
    }
}

/// A `Retry-After` given in seconds.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service on loopback that answers its `n`-th request with `answers[n]` (status line and
    /// JSON body), the last one from then on; returns its URL and how many requests it had.
    async fn service(
        answers: Vec<(&'static str, &'static str)>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then as much body as it announces.
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let n = count.fetch_add(1, Ordering::SeqCst);
                let (status, body) = answers[n.min(answers.len() - 1)];
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nretry-after: 0\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        (url, seen)
    }

    const OVERLOADED: (&str, &str) = (
        "503 Service Unavailable",
        r#"{"code":"overloaded","message":"busy"}"#,
    );
    const TIMED_OUT: (&str, &str) = (
        "503 Service Unavailable",
        r#"{"code":"timed_out","message":"slow"}"#,
    );
    const OK: (&str, &str) = ("200 OK", r#"{"ok":true}"#);

    #[tokio::test]
    async fn a_load_tool_rides_out_shed_load_and_a_person_hears_at_once() {
        use std::sync::atomic::Ordering;
        let (url, seen) = service(vec![OVERLOADED, OVERLOADED, OK]).await;
        let api = Api::new("tracking", &url, None)
            .unwrap()
            .riding_out_restarts(RETRY_FOR);
        let answer: Json = api.post(api.url(&["x"], &[]), &Json::Null).await.unwrap();
        assert_eq!(answer["ok"], true);
        assert_eq!(seen.load(Ordering::SeqCst), 3);

        let (url, seen) = service(vec![OVERLOADED, OK]).await;
        let api = Api::new("tracking", &url, None).unwrap();
        let error = api
            .post::<Json>(api.url(&["x"], &[]), &Json::Null)
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(503), "without retries: {error}");
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_post_that_may_have_taken_effect_is_not_sent_twice_but_a_get_is() {
        use std::sync::atomic::Ordering;
        let (url, seen) = service(vec![TIMED_OUT, TIMED_OUT, OK]).await;
        let api = Api::new("tracking", &url, None)
            .unwrap()
            .riding_out_restarts(RETRY_FOR);
        let error = api
            .post::<Json>(api.url(&["x"], &[]), &Json::Null)
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(503));
        assert_eq!(
            seen.load(Ordering::SeqCst),
            1,
            "a timed-out POST is not sent again"
        );
        let answer: Json = api.get(api.url(&["x"], &[])).await.unwrap();
        assert_eq!(answer["ok"], true, "a GET is");
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_idempotent_post_is_sent_again_after_any_503() {
        use std::sync::atomic::Ordering;
        let unavailable = (
            "503 Service Unavailable",
            r#"{"code":"unavailable","message":"the broker is away"}"#,
        );
        let (url, seen) = service(vec![unavailable, TIMED_OUT, OK]).await;
        let api = Api::new("marketing", &url, None)
            .unwrap()
            .riding_out_restarts(RETRY_FOR);
        let answer: Json = api
            .post_idempotent(api.url(&["fraud-reports"], &[]), &Json::Null)
            .await
            .unwrap();
        assert_eq!(answer["ok"], true);
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_load_tool_waits_for_a_service_that_is_not_listening_yet() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let api = Api::new("tracking", &format!("http://{addr}"), None)
            .unwrap()
            .riding_out_restarts(RETRY_FOR);
        let url = api.url(&["x"], &[]);
        let call = tokio::spawn(async move { api.get::<Json>(url).await });
        tokio::time::sleep(Duration::from_millis(700)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let (mut stream, _) = listener.accept().await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await.unwrap();
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
            .await
            .unwrap();
        let answer = call.await.unwrap().unwrap();
        assert_eq!(answer, serde_json::json!({}));
    }

    #[tokio::test]
    async fn a_get_whose_connection_breaks_is_asked_again() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            // The first request's connection is dropped unanswered (a replica killed).
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = stream.read(&mut [0u8; 4096]).await;
            drop(stream);
            let (mut stream, _) = listener.accept().await.unwrap();
            let _ = stream.read(&mut [0u8; 4096]).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                .await;
        });
        let api = Api::new("commission", &url, None)
            .unwrap()
            .riding_out_restarts(RETRY_FOR);
        let answer: Json = api.get(api.url(&["x"], &[])).await.unwrap();
        assert_eq!(answer, serde_json::json!({}));
    }

    #[tokio::test]
    async fn replicas_take_turns_and_one_that_is_away_costs_a_retry_not_an_error() {
        use std::sync::atomic::Ordering;
        let (first, first_seen) = service(vec![OK]).await;
        let (second, second_seen) = service(vec![OK]).await;
        let api = Api::new("tracking", &format!("{first}, {second}/"), None).unwrap();
        for _ in 0..4 {
            let answer: Json = api.get(api.url(&["x"], &[])).await.unwrap();
            assert_eq!(answer["ok"], true);
        }
        assert_eq!(first_seen.load(Ordering::SeqCst), 2);
        assert_eq!(second_seen.load(Ordering::SeqCst), 2);

        let away = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let away_url = format!("http://{}", away.local_addr().unwrap());
        drop(away);
        let api = Api::new("tracking", &format!("{away_url},{first}"), None)
            .unwrap()
            .riding_out_restarts(RETRY_FOR);
        for _ in 0..3 {
            let answer: Json = api.post(api.url(&["x"], &[]), &Json::Null).await.unwrap();
            assert_eq!(answer["ok"], true);
        }
        assert_eq!(
            first_seen.load(Ordering::SeqCst),
            5,
            "every request landed there"
        );
        assert!(Api::new("tracking", " , ", None).is_err(), "no URL at all");

        // Affinity: one key, one replica, whatever the turn.
        let api = Api::new("tracking", &format!("{first},{second}"), None).unwrap();
        let before = (
            first_seen.load(Ordering::SeqCst),
            second_seen.load(Ordering::SeqCst),
        );
        for _ in 0..4 {
            let _: Json = api
                .post_with_affinity("visitor-7", None, api.url(&["x"], &[]), &Json::Null)
                .await
                .unwrap();
        }
        let after = (
            first_seen.load(Ordering::SeqCst) - before.0,
            second_seen.load(Ordering::SeqCst) - before.1,
        );
        assert!(after == (4, 0) || after == (0, 4), "{after:?}");
    }

    #[test]
    fn urls_escape_their_segments_and_keep_the_base_path() {
        let api = Api::new("marketing", "http://host:8084/alpes/", None).unwrap();
        let url = api.url(
            &["sagas", "a/b c"],
            &[("status", "COMPLETED,REJECTED".into())],
        );
        assert_eq!(
            url.as_str(),
            "http://host:8084/alpes/sagas/a%2Fb%20c?status=COMPLETED%2CREJECTED"
        );
    }

    #[test]
    fn error_bodies_are_shown_with_code_field_and_message() {
        let api = Api::new("marketing", "http://host:8084", None).unwrap();
        let refusal = api.refusal(
            StatusCode::BAD_REQUEST,
            r#"{"code":"validation_failed","message":"must be 1..500","field":"limit"}"#,
        );
        assert_eq!(
            refusal.to_string(),
            "marketing answered 400 validation_failed (field limit): must be 1..500"
        );
    }

    #[test]
    fn a_401_explains_the_token() {
        let without = Api::new("marketing", "http://host:8084", None).unwrap();
        let with = Api::new("marketing", "http://host:8084", Some("t".into())).unwrap();
        let body = r#"{"code":"unauthorized","message":"missing bearer token"}"#;
        let text = without.refusal(StatusCode::UNAUTHORIZED, body).to_string();
        assert!(text.contains("no API token was given"), "{text}");
        assert!(text.contains("ALPES_API_TOKEN"), "{text}");
        let text = with.refusal(StatusCode::UNAUTHORIZED, body).to_string();
        assert!(text.contains("is not one marketing accepts"), "{text}");
    }

    #[test]
    fn a_body_that_is_not_an_error_object_is_quoted() {
        let api = Api::new("tracking", "http://host:8081", None).unwrap();
        let refusal = api.refusal(StatusCode::BAD_GATEWAY, "upstream down");
        assert_eq!(
            refusal.to_string(),
            "tracking answered 502 error: upstream down"
        );
        let refusal = api.refusal(StatusCode::SERVICE_UNAVAILABLE, "");
        assert_eq!(
            refusal.to_string(),
            "tracking answered 503 error: Service Unavailable"
        );
    }
}
