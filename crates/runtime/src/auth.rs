//! Who may call what: bearer tokens, each holding scopes, checked by one layer that every
//! service puts on each of its protected routes.
//!
//! Three scopes, one per kind of caller:
//!
//! | scope | grants | typical holder |
//! |---|---|---|
//! | `read` | every `GET` of business data: interactions, journeys, attributions, campaigns, commissions, budgets, sagas, statistics | dashboards, support |
//! | `operate` | campaign create/activate/pause/complete, `POST /commissions/{id}/confirm` | the operator's back office |
//! | `ingest` | `POST /fraud-reports` | a fraud-detection system |
//!
//! `POST /interactions` is public (browsers send it); the probes, `/metrics` and
//! `/openapi.json` too. Everything else needs a token holding the route's scope.
//!
//! Tokens come from two settings every service reads ([`crate::config::CommonArgs`]):
//! `ALPES_API_TOKEN`, one token holding every scope (the operator's), and `ALPES_API_TOKENS`,
//! further tokens with their scopes (`read=…,read+operate=…,ingest=…`, comma or newline
//! separated). Several tokens may hold the same scopes, which is how a token is rotated: add the
//! new one, roll out, move the clients, remove the old one. With no token configured, every
//! protected route refuses every request: a forgotten secret fails closed.
//!
//! Answers: no token, or one not configured, is `401 unauthorized` with `WWW-Authenticate:
//! Bearer`; a token without the route's scope is `403 forbidden`, naming the scope. A token is
//! read from the `Authorization` header only; the query string (`access_token`, RFC 6750 §2.3)
//! is accepted by the routes that say so ([`Access::need_in_query`]: the HTML saga view a browser
//! opens), and refused with a 401 elsewhere, so that tokens do not end up in logs and histories
//! of JSON clients.

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::future::{Either, Ready, ready};

use crate::ApiError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read business data.
    Read,
    /// Change campaigns and confirm commissions.
    Operate,
    /// Report fraud.
    Ingest,
}

impl Scope {
    /// Every scope, in the order they are documented.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Operate, Scope::Ingest];

    /// The scope's name in settings, errors and the OpenAPI documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operate => "operate",
            Scope::Ingest => "ingest",
        }
    }

    fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tokens and the scopes each holds, as `ALPES_API_TOKENS` writes them: `read=abc`,
/// `read+operate=def`, entries separated by commas or newlines. Never printed: `Debug` shows
/// only how many there are.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<(String, u8)>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tokens({} configured)", self.entries.len())
    }
}

impl Tokens {
    /// No token: every protected route refuses.
    pub fn none() -> Self {
        Self::default()
    }

    /// `token`, holding every scope.
    pub fn all_scopes(token: &str) -> Self {
        let mut tokens = Self::none();
        tokens.add(token, &Scope::ALL);
        tokens
    }

    /// Adds `token` with `scopes` (an empty token is ignored: it could never be sent).
    pub fn add(&mut self, token: &str, scopes: &[Scope]) {
        let token = token.trim();
        if !token.is_empty() {
            let bits = scopes.iter().fold(0, |bits, s| bits | s.bit());
            self.entries.push((token.to_owned(), bits));
        }
    }

    /// Reads `ALPES_API_TOKENS`' format; an error names the entry at fault (never the token).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut tokens = Self::none();
        let entries = text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (n, entry) in entries.enumerate() {
            let n = n + 1;
            let (scopes, token) = entry.split_once('=').ok_or_else(|| {
                format!("entry {n} is not `scope[+scope...]=token` (e.g. `read+operate=...`)")
            })?;
            let scopes = scopes
                .split('+')
                .map(|name| {
                    Scope::parse(name.trim()).ok_or_else(|| {
                        format!(
                            "entry {n}: unknown scope {:?}; the scopes are read, operate and ingest",
                            name.trim()
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if token.trim().is_empty() {
                return Err(format!("entry {n} has no token after `=`"));
            }
            tokens.add(token, &scopes);
        }
        Ok(tokens)
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The scopes of `given`, or `None` if it is not a configured token. Every configured token
    /// is compared, each in time independent of where the first difference is.
    fn scopes_of(&self, given: &str) -> Option<u8> {
        self.entries.iter().fold(None, |found, (token, bits)| {
            let matches = same(given.as_bytes(), token.as_bytes());
            found.or(matches.then_some(*bits))
        })
    }
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The tokens a service accepts, and the layers that guard its routes with them.
#[derive(Debug, Clone, Default)]
pub struct Access {
    tokens: Arc<Tokens>,
}

impl Access {
    /// Accepts `tokens`.
    pub fn new(tokens: Tokens) -> Self {
        Self {
            tokens: Arc::new(tokens),
        }
    }

    /// Whether no token is configured (every protected route refuses).
    pub fn is_closed(&self) -> bool {
        self.tokens.is_empty()
    }

    /// A layer (for `route_layer`) letting through only requests whose bearer token holds
    /// `scope`.
    pub fn need(&self, scope: Scope) -> Need {
        Need {
            tokens: self.tokens.clone(),
            scope,
            query: false,
        }
    }

    /// [`Access::need`], also accepting the token as the `access_token` query parameter: for a
    /// page a browser opens from a link, which cannot send a header.
    pub fn need_in_query(&self, scope: Scope) -> Need {
        Need {
            query: true,
            ..self.need(scope)
        }
    }
}

/// The layer [`Access::need`] makes.
#[derive(Debug, Clone)]
pub struct Need {
    tokens: Arc<Tokens>,
    scope: Scope,
    query: bool,
}

impl Need {
    /// Lets `request` through, or says why not.
    fn check(&self, request: &Request) -> Result<(), Refusal> {
        let header = request.headers().get(header::AUTHORIZATION);
        let bearer = header
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned());
        if header.is_some() && bearer.is_none() {
            return Err(Refusal::Unauthorized(
                "the Authorization header must be `Bearer <token>`".into(),
            ));
        }
        let in_query = query_token(request);
        let given = match (bearer, in_query) {
            (Some(token), _) => token,
            (None, Some(token)) if self.query => token,
            (None, Some(_)) => {
                return Err(Refusal::Unauthorized(
                    "a token in the query string is accepted only by the HTML saga view; \
                     send it as `Authorization: Bearer <token>`"
                        .into(),
                ));
            }
            (None, None) => {
                return Err(Refusal::Unauthorized(
                    format!(
                        "this endpoint needs a token with scope `{}`: send \
                     `Authorization: Bearer <token>` (ALPES_API_TOKEN)",
                        self.scope
                    )
                    .into(),
                ));
            }
        };
        match self.tokens.scopes_of(&given) {
            None => Err(Refusal::Unauthorized("the token is not valid".into())),
            Some(bits) if bits & self.scope.bit() == 0 => Err(Refusal::Forbidden(self.scope)),
            Some(_) => Ok(()),
        }
    }
}

/// The `access_token` query parameter, if the query has one.
fn query_token(request: &Request) -> Option<String> {
    let query = request.uri().query()?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs
        .into_iter()
        .find_map(|(name, value)| (name == "access_token").then_some(value))
}

/// Why a request is not let through.
enum Refusal {
    /// No valid token: 401.
    Unauthorized(Cow<'static, str>),
    /// A valid token without the scope: 403.
    Forbidden(Scope),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthorized(message) => unauthorized(message),
            Refusal::Forbidden(scope) => forbidden(scope),
        }
    }
}

fn unauthorized(message: impl Into<String>) -> Response {
    let mut response = ApiError::unauthorized(message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"alpes\""),
    );
    response
}

fn forbidden(scope: Scope) -> Response {
    let mut response =
        ApiError::forbidden(format!("this endpoint needs scope `{scope}`")).into_response();
    let challenge =
        format!("Bearer realm=\"alpes\", error=\"insufficient_scope\", scope=\"{scope}\"");
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

impl<S> tower_layer::Layer<S> for Need {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            need: self.clone(),
        }
    }
}

/// A route behind [`Need`].
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    need: Need,
}

impl<S> tower_service::Service<Request> for Guarded<S>
where
    S: tower_service::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.need.check(&request) {
            Ok(()) => Either::Left(self.inner.call(request)),
            Err(refusal) => Either::Right(ready(Ok(refusal.into_response()))),
        }
    }
}

/// For services' tests: tokens of every shape, and a check that a route is guarded by exactly
/// one scope.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use axum::Router;
    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;

    /// The token holding only `scope`.
    pub fn only(scope: Scope) -> String {
        format!("only-{scope}")
    }

    /// The token holding every scope but `scope`.
    pub fn all_but(scope: Scope) -> String {
        format!("all-but-{scope}")
    }

    /// An HTTP client sending [`TEST_API_TOKEN`](crate::config::TEST_API_TOKEN) (every scope
    /// of a service started with [`CommonArgs::for_tests`](crate::config::CommonArgs::for_tests)).
    #[cfg(feature = "testing")]
    pub fn client() -> reqwest::Client {
        let bearer = format!("Bearer {}", crate::config::TEST_API_TOKEN);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            bearer.parse().expect("a valid header"),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("a plain HTTP client always builds")
    }

    /// Tokens [`only`] and [`all_but`] of every scope.
    pub fn tokens() -> Tokens {
        let mut tokens = Tokens::none();
        for scope in Scope::ALL {
            tokens.add(&only(scope), &[scope]);
            let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != scope).collect();
            tokens.add(&all_but(scope), &others);
        }
        tokens
    }

    /// An [`Access`] accepting [`tokens`].
    pub fn access() -> Access {
        Access::new(tokens())
    }

    /// Panics unless `router` (guarded with [`access`]) answers `method path` with `401` without
    /// a token or with an unknown one, `403` to a token holding every scope but `scope`, and
    /// neither to the token holding only `scope`.
    pub async fn assert_guarded(router: &Router, method: &str, path: &str, scope: Scope) {
        let call = |token: Option<String>| {
            let mut request = Request::builder().method(method).uri(path);
            if let Some(token) = token {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let request = request.body(Body::empty()).expect("a valid request");
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await.expect("infallible");
                let status = response.status().as_u16();
                let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        judge(&format!("{method} {path}"), scope, call).await;
    }

    /// [`assert_guarded`] over HTTP, for a service listening at `base` (e.g.
    /// `http://127.0.0.1:8084`) and accepting [`tokens`].
    #[cfg(feature = "testing")]
    pub async fn assert_guarded_at(base: &str, method: &str, path: &str, scope: Scope) {
        let http = reqwest::Client::new();
        let method_ = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let call = |token: Option<String>| {
            let mut request = http.request(method_.clone(), format!("{base}{path}"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move {
                let response = request.send().await.expect("the service answers");
                let status = response.status().as_u16();
                (status, response.text().await.unwrap_or_default())
            }
        };
        judge(&format!("{method} {path}"), scope, call).await;
    }

    async fn judge<F, Fut>(what: &str, scope: Scope, call: F)
    where
        F: Fn(Option<String>) -> Fut,
        Fut: std::future::Future<Output = (u16, String)>,
    {
        let (status, body) = call(None).await;
        assert_eq!(status, 401, "{what} without a token: {body}");
        assert!(body.contains("\"code\":\"unauthorized\""), "{what}: {body}");
        let (status, body) = call(Some("unknown".to_owned())).await;
        assert_eq!(status, 401, "{what}, unknown token: {body}");
        let (status, body) = call(Some(all_but(scope))).await;
        assert_eq!(status, 403, "{what} without `{scope}`: {body}");
        assert!(body.contains(&format!("scope `{scope}`")), "{what}: {body}");
        let (status, body) = call(Some(only(scope))).await;
        assert!(
            status != 401 && status != 403,
            "{what} with only `{scope}`: {status} {body}"
        );
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    use super::*;

    fn app(access: &Access) -> Router {
        Router::new()
            .route(
                "/things",
                get(|| async { "listed" })
                    .route_layer(access.need(Scope::Read))
                    .merge(post(|| async { "changed" }).route_layer(access.need(Scope::Operate))),
            )
            .route(
                "/page",
                get(|| async { "page" }).route_layer(access.need_in_query(Scope::Read)),
            )
    }

    async fn call(
        router: &Router,
        method: &str,
        uri: &str,
        auth: Option<&str>,
    ) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let response = router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn each_route_lets_through_only_tokens_holding_its_scope() {
        let mut tokens = Tokens::parse("read=reader,\nread+operate=operator").unwrap();
        tokens.add("fraud-bot", &[Scope::Ingest]);
        let router = app(&Access::new(tokens));

        for (method, token, want) in [
            ("GET", "reader", StatusCode::OK),
            ("GET", "operator", StatusCode::OK),
            ("GET", "fraud-bot", StatusCode::FORBIDDEN),
            ("POST", "reader", StatusCode::FORBIDDEN),
            ("POST", "operator", StatusCode::OK),
            ("POST", "fraud-bot", StatusCode::FORBIDDEN),
            ("POST", "operato", StatusCode::UNAUTHORIZED),
            ("POST", "operatorr", StatusCode::UNAUTHORIZED),
        ] {
            let auth = format!("Bearer {token}");
            let (status, body) = call(&router, method, "/things", Some(&auth)).await;
            assert_eq!(status, want, "{method} with {token}: {body}");
            if want == StatusCode::FORBIDDEN {
                let scope = if method == "GET" { "read" } else { "operate" };
                assert!(body.contains("\"code\":\"forbidden\""), "{body}");
                assert!(body.contains(&format!("scope `{scope}`")), "{body}");
            }
        }
    }

    #[tokio::test]
    async fn a_missing_or_malformed_token_is_a_json_401_with_a_challenge() {
        let router = app(&Access::new(Tokens::all_scopes("secret")));
        for auth in [
            None,
            Some("secret"),
            Some("Basic c2VjcmV0"),
            Some("Bearer "),
        ] {
            let mut request = Request::builder().uri("/things");
            if let Some(auth) = auth {
                request = request.header(header::AUTHORIZATION, auth);
            }
            let request = request.body(Body::empty()).unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
            let challenge = response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap();
            assert!(challenge.starts_with("Bearer"), "{auth:?}: {challenge}");
        }
        let (status, body) = call(&router, "GET", "/things", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains("\"code\":\"unauthorized\""), "{body}");
        assert!(body.contains("scope `read`"), "{body}");
    }

    #[tokio::test]
    async fn the_query_string_carries_a_token_only_where_the_route_accepts_it() {
        let router = app(&Access::new(Tokens::all_scopes("secret")));
        let (status, _) = call(&router, "GET", "/page?access_token=secret", None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = call(&router, "GET", "/page?access_token=other", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, body) = call(&router, "GET", "/things?access_token=secret", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains("query string"), "{body}");
    }

    #[tokio::test]
    async fn with_no_token_configured_every_protected_route_refuses() {
        let access = Access::new(Tokens::parse("").unwrap());
        assert!(access.is_closed());
        let router = app(&access);
        let (status, _) = call(&router, "GET", "/things", Some("Bearer ")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = call(&router, "GET", "/things", Some("Bearer anything")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn the_tokens_setting_names_the_entry_at_fault_and_never_the_token() {
        for (text, want) in [
            ("read", "entry 1 is not"),
            ("read=a,write=b", "entry 2: unknown scope \"write\""),
            ("read+operate=", "entry 1 has no token"),
        ] {
            let error = Tokens::parse(text).unwrap_err();
            assert!(error.contains(want), "{text}: {error}");
        }
        let tokens = Tokens::parse(" read = a , ingest=b\n\n").unwrap();
        assert_eq!(tokens.scopes_of("a"), Some(Scope::Read.bit()));
        assert_eq!(tokens.scopes_of("b"), Some(Scope::Ingest.bit()));
        assert_eq!(format!("{tokens:?}"), "Tokens(2 configured)");
    }
}
