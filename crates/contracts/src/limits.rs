//! What a string field may hold: the one set of rules every entry point applies (HTTP bodies,
//! paths and queries, `alpes publish`, and every consumed event through [`crate::codec`]).
//!
//! Bad strings do their harm far from where they came in: a NUL is legal in JSON and Avro but
//! Postgres refuses it in `jsonb`, and an id of a few kilobytes overflows a btree index row in
//! the saga log, so a sale that every service accepted could never be logged. Checking at the
//! edge, with the same rules everywhere, keeps such values out instead.
//!
//! The rules, per kind of field ([`Limit`]):
//! - lengths are counted in UTF-8 bytes, because the limits that bite (index rows) are in bytes;
//! - no field may hold a control character (Unicode category Cc: C0, DEL and C1), except that
//!   free text (reasons and details) may hold tab, line feed and carriage return, so a reason
//!   can have lines;
//! - a currency is an ISO 4217 alphabetic code: three letters A–Z.
//!
//! Every integration event (and each record inside one) implements [`Validate`]; its error
//! names the first offending field by its path in the event, e.g. `visitor.anonymous_id` or
//! `interaction_ids[2]`.

use std::fmt;

/// What one kind of string field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The most UTF-8 bytes it may hold.
    pub max_bytes: usize,
    /// Whether tab, line feed and carriage return are allowed (free text); no other control
    /// character ever is.
    pub multiline: bool,
}

/// Ids given to alpes or made by it: saga, event, visitor, user, campaign, partner,
/// interaction, order, journey.
pub const ID: Limit = Limit::line(128);
/// Ids alpes composes from another id and a prefix, e.g. `commission-<saga id>`.
pub const COMPOSITE_ID: Limit = Limit::line(256);
/// Names of things and people: a campaign's name, a fraud reporter, a status.
pub const NAME: Limit = Limit::line(200);
/// Short tracking values: IP address, source, medium, content, term, element, device.
pub const LABEL: Limit = Limit::line(256);
/// URLs: a target, a page, a referrer.
pub const URL: Limit = Limit::line(2048);
/// A browser's `User-Agent`.
pub const USER_AGENT: Limit = Limit::line(1024);
/// W3C trace context: `traceparent` is 55 bytes; `tracestate` at most 512 (W3C).
pub const TRACE: Limit = Limit::line(512);
/// A reason a person gives (a fraud report, a campaign paused).
pub const REASON: Limit = Limit::text(1000);
/// An explanation a service composes, possibly quoting a [`REASON`], a [`NAME`] and ids.
pub const DETAIL: Limit = Limit::text(4096);

impl Limit {
    /// A single-line value of at most `max_bytes`.
    pub const fn line(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            multiline: false,
        }
    }

    /// Free text of at most `max_bytes`, lines allowed.
    pub const fn text(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            multiline: true,
        }
    }

    /// Why `value` does not fit, if it does not.
    pub fn problem(&self, value: &str) -> Option<String> {
        if value.len() > self.max_bytes {
            return Some(format!(
                "is {} bytes long; at most {} are allowed",
                value.len(),
                self.max_bytes
            ));
        }
        let allowed = |c: char| self.multiline && matches!(c, '\t' | '\n' | '\r');
        value
            .char_indices()
            .find(|&(_, c)| c.is_control() && !allowed(c))
            .map(|(at, c)| {
                format!(
                    "contains the control character U+{:04X} at byte {at}",
                    u32::from(c)
                )
            })
    }

    /// Checks `value` of the field called `field`.
    pub fn check(&self, field: &str, value: &str) -> Result<(), Invalid> {
        match self.problem(value) {
            None => Ok(()),
            Some(message) => Err(Invalid::new(field, message)),
        }
    }
}

/// Why an ISO 4217 code is not one, if it is not.
pub fn currency_problem(code: &str) -> Option<String> {
    let valid = code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase());
    (!valid).then(|| "must be an ISO 4217 code such as EUR (three letters A-Z)".to_owned())
}

/// A field that breaks its [`Limit`]: its path and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The field's path, e.g. `visitor.anonymous_id` or `credits[0].partner_id`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl Invalid {
    /// `field` is invalid because of `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A value whose string fields can be checked against their limits.
pub trait Validate {
    /// Checks every string field; the error names the first offending one, its path starting
    /// with `at` (the path of this value inside a larger one, or `""`).
    fn validate_at(&self, at: &str) -> Result<(), Invalid>;

    /// Checks every string field; the error names the first offending one.
    fn validate(&self) -> Result<(), Invalid> {
        self.validate_at("")
    }
}

/// Where the fields being checked are: builds their paths only when one is at fault.
#[derive(Debug, Clone, Copy)]
pub struct At<'a>(pub &'a str);

impl At<'_> {
    /// The path of the field `name` here.
    pub fn path(&self, name: impl fmt::Display) -> String {
        if self.0.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.0)
        }
    }

    /// Checks the field `name` against `limit`.
    pub fn check(&self, name: &str, limit: Limit, value: &str) -> Result<(), Invalid> {
        match limit.problem(value) {
            None => Ok(()),
            Some(message) => Err(Invalid::new(self.path(name), message)),
        }
    }

    /// Checks the optional field `name` against `limit`, when it is present.
    pub fn check_opt(
        &self,
        name: &str,
        limit: Limit,
        value: &Option<String>,
    ) -> Result<(), Invalid> {
        value
            .as_deref()
            .map_or(Ok(()), |value| self.check(name, limit, value))
    }

    /// Checks each element of the list `name` against `limit`.
    pub fn check_each(&self, name: &str, limit: Limit, values: &[String]) -> Result<(), Invalid> {
        for (i, value) in values.iter().enumerate() {
            if let Some(message) = limit.problem(value) {
                return Err(Invalid::new(
                    self.path(format_args!("{name}[{i}]")),
                    message,
                ));
            }
        }
        Ok(())
    }

    /// Validates the nested value `name`.
    pub fn nested(&self, name: &str, value: &impl Validate) -> Result<(), Invalid> {
        value.validate_at(&self.path(name))
    }

    /// Validates the nested value `name`, when it is present.
    pub fn nested_opt(&self, name: &str, value: &Option<impl Validate>) -> Result<(), Invalid> {
        value
            .as_ref()
            .map_or(Ok(()), |value| self.nested(name, value))
    }

    /// Validates each element of the list `name`.
    pub fn nested_each(&self, name: &str, values: &[impl Validate]) -> Result<(), Invalid> {
        for (i, value) in values.iter().enumerate() {
            value.validate_at(&self.path(format_args!("{name}[{i}]")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_within_its_limit_passes() {
        assert_eq!(ID.problem(&"a".repeat(128)), None);
        assert_eq!(ID.problem("visitor-é"), None);
        assert_eq!(REASON.problem("chargeback\r\nconfirmed by\tthe bank"), None);
    }

    #[test]
    fn length_is_counted_in_bytes() {
        assert!(ID.problem(&"a".repeat(129)).is_some());
        // 65 two-byte characters: 130 bytes.
        assert!(ID.problem(&"é".repeat(65)).unwrap().contains("130 bytes"));
    }

    #[test]
    fn control_characters_are_refused_and_located() {
        assert_eq!(
            ID.problem("a\u{0}b").as_deref(),
            Some("contains the control character U+0000 at byte 1")
        );
        assert!(ID.problem("a\nb").is_some(), "ids are single-line");
        assert!(NAME.problem("tab\there").is_some(), "names are single-line");
        assert!(REASON.problem("chargeback\u{0}").is_some());
        assert!(REASON.problem("bell\u{7}").is_some());
        assert!(DETAIL.problem("C1 \u{85} too").is_some());
        assert!(REASON.problem("delete\u{7f}").is_some());
    }

    #[test]
    fn currencies_are_three_capital_letters() {
        assert_eq!(currency_problem("EUR"), None);
        for bad in ["eur", "EURO", "E\u{0}R", "", "ÉUR"] {
            assert!(currency_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn paths_name_nested_and_listed_fields() {
        let at = At("visitor");
        assert_eq!(at.path("anonymous_id"), "visitor.anonymous_id");
        assert_eq!(At("").path("reason"), "reason");
        let ids = vec!["ok".to_owned(), "bad\u{0}".to_owned()];
        let error = At("").check_each("interaction_ids", ID, &ids).unwrap_err();
        assert_eq!(error.field, "interaction_ids[1]");
    }
}
