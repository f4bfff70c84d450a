//! What ties a Rust type to its contract: name, owning service, major version, topic, schema.

use std::fmt;
use std::sync::OnceLock;

use apache_avro::Schema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{EventMetadata, Namespace};

/// The contract of one event type at one major version.
pub struct EventType {
    /// Type name, e.g. `InteractionTracked`; also the `.avsc` file's stem.
    pub name: &'static str,
    /// The service that owns the contract, e.g. `tracking`.
    pub service: &'static str,
    /// Major version: the `schema/v<major>` folder the schema lives in.
    pub major: u32,
    /// The `.avsc` text, embedded at compile time.
    pub schema_text: &'static str,
    parsed: OnceLock<Schema>,
}

impl EventType {
    /// Declares a contract; used by the event types of this crate.
    pub(crate) const fn new(
        name: &'static str,
        service: &'static str,
        major: u32,
        schema_text: &'static str,
    ) -> Self {
        Self {
            name,
            service,
            major,
            schema_text,
            parsed: OnceLock::new(),
        }
    }

    /// The parsed Avro schema.
    ///
    /// Every embedded schema is parsed by this crate's tests, so a failure here is a build that
    /// skipped them; it panics with the file's name.
    pub fn schema(&self) -> &Schema {
        self.parsed.get_or_init(|| {
            Schema::parse_str(self.schema_text).unwrap_or_else(|e| {
                panic!(
                    "schema/v{}/{}/{}.avsc: {e}",
                    self.major, self.service, self.name
                )
            })
        })
    }

    /// Path of the schema file relative to the repository's `schema/` folder.
    pub fn schema_path(&self) -> String {
        format!("v{}/{}/{}.avsc", self.major, self.service, self.name)
    }

    /// The topic's short name: kebab-case type name plus major version,
    /// e.g. `interaction-tracked-v1`.
    pub fn topic_name(&self) -> String {
        let mut kebab = String::with_capacity(self.name.len() + 8);
        for (i, c) in self.name.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    kebab.push('-');
                }
                kebab.push(c.to_ascii_lowercase());
            } else {
                kebab.push(c);
            }
        }
        format!("{kebab}-v{}", self.major)
    }

    /// The full topic in this process's namespace ([`Namespace::current`]), e.g.
    /// `persistent://alpes/events/interaction-tracked-v1`.
    pub fn topic(&self) -> String {
        Namespace::current().topic(&self.topic_name())
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.v{}", self.name, self.major)
    }
}

/// A Rust type that is the payload of one integration event; [`crate::limits::Validate`] checks
/// its string fields, and decoding refuses an event that fails it.
pub trait Event:
    Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + crate::limits::Validate + 'static
{
    /// The contract this type implements.
    fn event_type() -> &'static EventType;
    /// The event's metadata.
    fn metadata(&self) -> &EventMetadata;
    /// The message key: the saga id, or the visitor or campaign for events outside a saga.
    /// Key_Shared subscriptions keep the order of one key.
    fn key(&self) -> &str;
}

/// Implements [`Event`] for a type with a `metadata` field whose schema lives at
/// `schema/v1/<service>/<Type>.avsc`; the closure-like argument picks the message key.
macro_rules! impl_event {
    ($ty:ident, $service:literal, |$e:ident| $key:expr) => {
        impl $crate::Event for $ty {
            fn event_type() -> &'static $crate::EventType {
                static TYPE: $crate::EventType = $crate::EventType::new(
                    stringify!($ty),
                    $service,
                    1,
                    include_str!(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/../../schema/v1/",
                        $service,
                        "/",
                        stringify!($ty),
                        ".avsc"
                    )),
                );
                &TYPE
            }

            fn metadata(&self) -> &$crate::EventMetadata {
                &self.metadata
            }

            fn key(&self) -> &str {
                let $e = self;
                $key
            }
        }
    };
}
pub(crate) use impl_event;

/// The saga id of an event, or its own event id when it is outside any saga.
pub(crate) fn saga_key(metadata: &EventMetadata) -> &str {
    metadata.saga_id.as_deref().unwrap_or(&metadata.event_id)
}
