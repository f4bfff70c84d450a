//! Pulsar token authentication: the JWT a client presents, on the binary protocol and to the
//! admin REST API.
//!
//! A broker with `authenticationEnabled=true` and the token provider (the local stack with
//! `ALPES_PULSAR_AUTH=token`, GKE) refuses a client without a valid token; its subject is the
//! client's role, which the broker's authorization checks against the grants of
//! [`crate::permissions`]. A broker without authentication ignores the token.

use std::fmt;
use std::path::Path;

use crate::BusError;

/// A Pulsar JWT, e.g. the content of `<stack dir>/pulsar-auth/alpes-commission.token`.
///
/// A secret: [`fmt::Debug`] does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct PulsarToken(String);

impl PulsarToken {
    /// The token `text`, without surrounding whitespace. An empty token is refused: it would
    /// connect as nobody, which is never what a configured client means.
    pub fn new(text: impl AsRef<str>) -> Result<Self, BusError> {
        let token = text.as_ref().trim();
        if token.is_empty() {
            return Err(BusError::Token("the token is empty".to_owned()));
        }
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(BusError::Token(
                "the token holds whitespace or control characters".to_owned(),
            ));
        }
        Ok(Self(token.to_owned()))
    }

    /// The token in `text` when it holds one; an unset or blank setting means no token (a
    /// deployment passing an empty variable configures none).
    pub fn optional(text: Option<&str>) -> Result<Option<Self>, BusError> {
        text.filter(|t| !t.trim().is_empty())
            .map(Self::new)
            .transpose()
    }

    /// The token in `ALPES_PULSAR_TOKEN` ([`PulsarToken::ENV`]), the variable every alpes
    /// process and test reads it from; `None` when unset or blank.
    pub fn from_env() -> Result<Option<Self>, BusError> {
        Self::optional(std::env::var(Self::ENV).ok().as_deref())
            .map_err(|e| BusError::Token(format!("{}: {e}", Self::ENV)))
    }

    /// The environment variable [`PulsarToken::from_env`] reads.
    pub const ENV: &'static str = "ALPES_PULSAR_TOKEN";

    /// The token held in file `path` (the format `pulsar tokens create` and
    /// `scripts/stack.sh` write: the JWT, optionally followed by a newline).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, BusError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| BusError::Token(format!("cannot read {}: {e}", path.display())))?;
        Self::new(text).map_err(|e| BusError::Token(format!("{}: {e}", path.display())))
    }

    /// The token of `role` in directory `dir`: `<dir>/<role>.token`, as `scripts/stack.sh`
    /// lays them out (`ALPES_PULSAR_TOKEN_DIR`).
    pub fn of_role(dir: impl AsRef<Path>, role: &str) -> Result<Self, BusError> {
        Self::from_file(dir.as_ref().join(format!("{role}.token")))
    }

    /// The token itself, for where it must be sent.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// `Authorization: Bearer <token>` for the admin REST API, marked sensitive (kept out of
    /// debug output).
    pub fn bearer(&self) -> reqwest::header::HeaderValue {
        let mut value = reqwest::header::HeaderValue::try_from(format!("Bearer {}", self.0))
            .expect("a PulsarToken holds no whitespace nor control characters");
        value.set_sensitive(true);
        value
    }

    /// The `pulsar` crate's authentication data for this token.
    pub fn authentication(&self) -> pulsar::Authentication {
        pulsar::Authentication {
            name: "token".to_owned(),
            data: self.0.clone().into_bytes(),
        }
    }

    /// The role the token names (its `sub` claim), read without checking the signature (only
    /// the broker can): for messages and logs.
    pub fn subject(&self) -> Option<String> {
        let payload = self.0.split('.').nth(1)?;
        let bytes = base64url_decode(payload)?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        claims.get("sub")?.as_str().map(str::to_owned)
    }
}

impl fmt::Debug for PulsarToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subject() {
            Some(sub) => write!(f, "PulsarToken(sub={sub:?}, ..)"),
            None => f.write_str("PulsarToken(..)"),
        }
    }
}

/// Unpadded base64url, as JWTs are written.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0u32;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // {"alg":"HS256"}.{"sub":"alpes-tracking"}, signed with some key.
    const TRACKING: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbHBlcy10cmFja2luZyJ9.c2lnbmF0dXJl";

    #[test]
    fn a_token_names_its_role_and_never_prints_itself() {
        let token = PulsarToken::new(format!("{TRACKING}\n")).unwrap();
        assert_eq!(token.secret(), TRACKING, "trailing newline trimmed");
        assert_eq!(token.subject().as_deref(), Some("alpes-tracking"));
        let shown = format!("{token:?}");
        assert!(!shown.contains(TRACKING), "{shown}");
        assert!(shown.contains("alpes-tracking"), "{shown}");
        let bearer = token.bearer();
        assert_eq!(bearer.to_str().unwrap(), format!("Bearer {TRACKING}"));
        assert!(bearer.is_sensitive());
        let auth = token.authentication();
        assert_eq!(auth.name, "token");
        assert_eq!(auth.data, TRACKING.as_bytes());
    }

    #[test]
    fn empty_or_malformed_tokens_are_refused() {
        assert!(PulsarToken::new("").is_err());
        assert!(PulsarToken::new(" \n").is_err());
        assert!(PulsarToken::new("a b").is_err());
        assert_eq!(PulsarToken::new("not-a-jwt").unwrap().subject(), None);
        assert_eq!(PulsarToken::optional(None).unwrap(), None);
        assert_eq!(PulsarToken::optional(Some(" ")).unwrap(), None);
        assert!(PulsarToken::optional(Some("a b")).is_err());
        assert_eq!(
            PulsarToken::optional(Some(TRACKING))
                .unwrap()
                .unwrap()
                .secret(),
            TRACKING
        );
    }
}
