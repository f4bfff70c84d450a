//! W3C trace context carried from an HTTP request into the events it causes.
//!
//! A request's `traceparent` header is kept when valid; otherwise a new trace starts. Handlers
//! take [`TraceContext`] as an extractor and copy it into the metadata of the events they
//! publish; the bus carries it on, and consumers copy it into the events they cause.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

/// The trace a request belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The request's trace when its `traceparent` is valid, else a new one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        match header("traceparent").filter(|t| is_valid(t)) {
            Some(traceparent) => Self {
                traceparent: traceparent.to_owned(),
                // W3C lets a hop drop a `tracestate` over its 512 bytes; kept, it would make
                // the events of this request break their contract's limits.
                tracestate: header("tracestate")
                    .filter(|state| alpes_contracts::limits::TRACE.problem(state).is_none())
                    .map(str::to_owned),
            },
            None => Self::new_trace(),
        }
    }

    /// A new trace, sampled.
    pub fn new_trace() -> Self {
        let trace_id = uuid::Uuid::new_v4().simple().to_string();
        let span_id = &uuid::Uuid::new_v4().simple().to_string()[..16];
        Self {
            traceparent: format!("00-{trace_id}-{span_id}-01"),
            tracestate: None,
        }
    }
}

/// `version-traceid-spanid-flags`, lower-case hex, ids not all zero.
fn is_valid(traceparent: &str) -> bool {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let hex =
        |s: &str, len| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    matches!(parts.as_slice(), [version, trace, span, flags]
        if hex(version, 2) && *version != "ff" && hex(trace, 32) && hex(span, 16) && hex(flags, 2)
            && trace.bytes().any(|b| b != b'0') && span.bytes().any(|b| b != b'0'))
}

impl<S: Send + Sync> FromRequestParts<S> for TraceContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<TraceContext>()
            .cloned()
            .unwrap_or_else(|| Self::from_headers(&parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_kept_and_an_invalid_one_replaced() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", valid.parse().unwrap());
        assert_eq!(TraceContext::from_headers(&headers).traceparent, valid);
        for invalid in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "garbage",
        ] {
            headers.insert("traceparent", invalid.parse().unwrap());
            let fresh = TraceContext::from_headers(&headers).traceparent;
            assert_ne!(fresh, invalid);
            assert!(is_valid(&fresh), "{fresh}");
        }
    }

    #[test]
    fn a_tracestate_over_its_limit_is_dropped() {
        let mut headers = HeaderMap::new();
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", valid.parse().unwrap());
        headers.insert("tracestate", "vendor=1".parse().unwrap());
        let kept = TraceContext::from_headers(&headers).tracestate;
        assert_eq!(kept.as_deref(), Some("vendor=1"));
        let long = format!("vendor={}", "x".repeat(600));
        headers.insert("tracestate", long.parse().unwrap());
        assert_eq!(TraceContext::from_headers(&headers).tracestate, None);
    }
}
