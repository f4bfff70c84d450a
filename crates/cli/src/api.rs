//! Speaking HTTP to one alpes service: JSON in, JSON out, and errors that say what to do.
//!
//! Every service answers errors as `{"code", "message", "field"?}`; [`ApiError`] keeps them
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

/// A client of one service at one base URL.
#[derive(Clone)]
pub struct Api {
    /// The service's name, for messages (`marketing`).
    service: &'static str,
    base: Url,
    token: Option<String>,
    client: reqwest::Client,
}

/// Why a request to a service failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
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

impl ApiError {
    /// The service's status code, when it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused(refusal) => Some(refusal.status),
            _ => None,
        }
    }
}

impl Api {
    /// A client of `service` at `base` (e.g. `http://127.0.0.1:8084`), sending `token` as a
    /// bearer token when there is one.
    pub fn new(service: &'static str, base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let base = Url::parse(base)
            .map_err(|e| anyhow::anyhow!("{service} URL {base:?} is not a URL: {e}"))?;
        if base.cannot_be_a_base() {
            anyhow::bail!("{service} URL {base} cannot be a base URL");
        }
        Ok(Self {
            service,
            base,
            token: token.filter(|t| !t.is_empty()),
            client: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()?,
        })
    }

    /// The base URL, as given.
    pub fn base(&self) -> &Url {
        &self.base
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
    pub async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, ApiError> {
        self.call(Method::GET, url, None).await
    }

    /// `POST` a JSON body, answer as JSON.
    pub async fn post<T: DeserializeOwned>(&self, url: Url, body: &Json) -> Result<T, ApiError> {
        self.call(Method::POST, url, Some(body)).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Json>,
    ) -> Result<T, ApiError> {
        let mut request = self.client.request(method.clone(), url.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |source| ApiError::Unreachable {
            service: self.service,
            url: url.to_string(),
            source,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|e| ApiError::Unexpected {
                service: self.service,
                method,
                url: url.to_string(),
                status: status.as_u16(),
                detail: e.to_string(),
            });
        }
        Err(ApiError::Refused(self.refusal(status, &text)))
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

#[cfg(test)]
mod tests {
    use super::*;

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
