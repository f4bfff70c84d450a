//! The Pulsar tenant and namespace a process's topics live in, e.g. `alpes/events`.
//!
//! Why a process-wide setting rather than a value threaded through every call: topic names are
//! made by [`EventType::topic`](crate::EventType::topic) where no connection is at hand — an
//! aggregate's outgoing events are encoded into its outbox by each service's application code,
//! stored, and sent later by the relay — so passing a namespace explicitly would run through
//! every handler of every service. And a process talks to exactly one platform: the running
//! platform uses `alpes/events`, a test suite `alpes/test`, and the two must never see each
//! other's events. So the namespace is chosen once, at start-up ([`Namespace::install`], from
//! `--pulsar-namespace` / `ALPES_PULSAR_NAMESPACE`), before any topic is named; naming a topic
//! first fixes the default, and a later, different choice is an error rather than a process
//! split silently across two namespaces.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// A Pulsar `tenant/namespace`, e.g. `alpes/events`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace {
    /// `tenant/namespace`, both parts valid Pulsar names.
    full: String,
    /// Where the tenant ends in `full`.
    slash: usize,
}

/// The namespace the platform runs in when nothing else is said.
pub const DEFAULT_NAMESPACE: &str = "alpes/events";

static CURRENT: OnceLock<Namespace> = OnceLock::new();

/// Why a namespace was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespaceError {
    #[error(
        "{0:?} is not a Pulsar namespace: write tenant/namespace, each of letters, digits, '-', '_' or '.' (e.g. alpes/events)"
    )]
    Invalid(String),
    #[error(
        "this process already uses Pulsar namespace {current}; it cannot switch to {wanted} (choose the namespace once, at start-up)"
    )]
    AlreadySet { current: String, wanted: String },
}

impl Namespace {
    /// Parses `tenant/namespace`.
    pub fn parse(text: &str) -> Result<Self, NamespaceError> {
        let invalid = || NamespaceError::Invalid(text.to_owned());
        let (tenant, namespace) = text.split_once('/').ok_or_else(invalid)?;
        let valid = |part: &str| {
            !part.is_empty()
                && part.len() <= 64
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !valid(tenant) || !valid(namespace) {
            return Err(invalid());
        }
        Ok(Self {
            full: text.to_owned(),
            slash: tenant.len(),
        })
    }

    /// The tenant, e.g. `alpes`.
    pub fn tenant(&self) -> &str {
        &self.full[..self.slash]
    }

    /// `tenant/namespace`, as admin REST paths and topic names spell it.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The full name of topic `short` in this namespace, e.g.
    /// `persistent://alpes/events/interaction-tracked-v1`.
    pub fn topic(&self, short: &str) -> String {
        format!("persistent://{}/{short}", self.full)
    }

    /// Makes this the namespace of every topic this process names from now on. Installing the
    /// namespace already in use is fine (every test of a binary may do it); a different one
    /// is refused.
    pub fn install(self) -> Result<(), NamespaceError> {
        self.install_in(&CURRENT)
    }

    fn install_in(self, cell: &OnceLock<Namespace>) -> Result<(), NamespaceError> {
        let wanted = self.full.clone();
        let current = cell.get_or_init(|| self);
        if current.full == wanted {
            Ok(())
        } else {
            Err(NamespaceError::AlreadySet {
                current: current.full.clone(),
                wanted,
            })
        }
    }

    /// The namespace of this process: the installed one, or [`DEFAULT_NAMESPACE`] (which then
    /// stays: see the module doc).
    pub fn current() -> &'static Namespace {
        CURRENT.get_or_init(Namespace::default)
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self::parse(DEFAULT_NAMESPACE).expect("the default namespace is valid")
    }
}

impl FromStr for Namespace {
    type Err = NamespaceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_parse_as_pulsar_spells_them() {
        let ns = Namespace::parse("alpes/test").unwrap();
        assert_eq!(ns.tenant(), "alpes");
        assert_eq!(ns.as_str(), "alpes/test");
        assert_eq!(
            ns.topic("fraud-detected-v1"),
            "persistent://alpes/test/fraud-detected-v1"
        );
        for bad in [
            "alpes",
            "alpes/",
            "/events",
            "a/b/c",
            "al pes/x",
            "alpes/e\0",
            "",
        ] {
            assert!(Namespace::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_process_keeps_the_namespace_it_chose_first() {
        let cell = OnceLock::new();
        let ns = |text| Namespace::parse(text).unwrap();
        ns("alpes/test").install_in(&cell).unwrap();
        ns("alpes/test").install_in(&cell).unwrap();
        let refused = ns("alpes/events").install_in(&cell);
        assert!(
            matches!(refused, Err(NamespaceError::AlreadySet { .. })),
            "{refused:?}"
        );
        assert_eq!(cell.get().map(Namespace::as_str), Some("alpes/test"));
    }
}
