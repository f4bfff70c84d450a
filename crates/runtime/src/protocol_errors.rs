//! hyper's own answers, as JSON.
//!
//! A request hyper cannot parse never reaches the router: a URI over 64 KiB gets `414`, a
//! header section too large or with too many fields `431`, anything that is not HTTP/1.1
//! `400` — each written by hyper itself with an empty body, before closing the connection.
//! Clients are promised JSON errors everywhere, and hyper has no hook for these answers, so
//! the connection's writes are watched: an error response with no body at all can only be one
//! of hyper's (every error the router answers carries a JSON body, see `http::json_errors`),
//! and it is replaced, whole, by the same status with an [`ApiError`] body.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::ApiError;

/// A connection whose bodiless error responses are rewritten as JSON errors.
pub(crate) struct JsonProtocolErrors<IO> {
    inner: IO,
    rewriting: Option<Rewrite>,
}

/// A replacement being written in place of the `original` bytes hyper asked to write.
struct Rewrite {
    bytes: Vec<u8>,
    written: usize,
    original: usize,
}

impl<IO> JsonProtocolErrors<IO> {
    pub(crate) fn new(inner: IO) -> Self {
        Self {
            inner,
            rewriting: None,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for JsonProtocolErrors<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for JsonProtocolErrors<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.rewriting.is_none() {
            match replacement(buf) {
                Some(bytes) => {
                    this.rewriting = Some(Rewrite {
                        bytes,
                        written: 0,
                        original: buf.len(),
                    })
                }
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        // hyper calls again with the same bytes while this is pending.
        let rewrite = this.rewriting.as_mut().expect("set above");
        while rewrite.written < rewrite.bytes.len() {
            let rest = &rewrite.bytes[rewrite.written..];
            match ready!(Pin::new(&mut this.inner).poll_write(cx, rest)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => rewrite.written += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let original = rewrite.original;
        this.rewriting = None;
        Poll::Ready(Ok(original))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then writes a response head in one buffer, which is what is matched.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// The JSON response to write instead of `buf`, when `buf` is exactly one bodiless error
/// response head (`HTTP/1.1 4xx|5xx ...`, `content-length: 0`, nothing after the head).
fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(buf.strip_prefix(b"HTTP/1.1 ")?).ok()?;
    let head = head.strip_suffix("\r\n\r\n")?;
    if head.contains("\r\n\r\n") {
        return None;
    }
    let status = StatusCode::from_bytes(head.get(..3)?.as_bytes()).ok()?;
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let mut lines = head.split("\r\n").skip(1);
    if !lines.any(|line| line.eq_ignore_ascii_case("content-length: 0")) {
        return None;
    }
    let date = head
        .split("\r\n")
        .find(|line| line.len() > 5 && line[..5].eq_ignore_ascii_case("date:"));
    let message = match status {
        StatusCode::URI_TOO_LONG => "the request's URI is longer than this server accepts",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "the request's header section is larger, or has more fields, than this server accepts"
        }
        StatusCode::BAD_REQUEST => "the request is not valid HTTP/1.1",
        _ => status.canonical_reason().unwrap_or("the request failed"),
    };
    let body = serde_json::to_vec(&ApiError::from_status(status, message)).ok()?;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if let Some(date) = date {
        out.push_str(date);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodiless_error_heads_are_replaced() {
        let hyper_414 = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(hyper_414).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("date: Mon, 01 Jan 2024"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "uri_too_long");

        for kept in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 20\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"{\"code\":\"x\"}",
        ] {
            assert!(
                replacement(kept).is_none(),
                "{}",
                String::from_utf8_lossy(kept)
            );
        }
    }
}
