//! The metadata every event carries: identity, causality and trace context.
//!
//! It is a record inside each event (not only Pulsar message properties) so that it survives
//! storage in an outbox, republishing and replay unchanged.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::Event;
use crate::limits::{At, ID, Invalid, TRACE, Validate};

/// A UTC instant, stored in Avro as `timestamp-micros`.
pub type Timestamp = DateTime<Utc>;

/// Identity, causality and trace context of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Unique id of this event; consumers deduplicate on it.
    pub event_id: String,
    /// The event's type name, e.g. `InteractionTracked`.
    pub event_type: String,
    /// Major version of the event's contract (`schema/v<major>`).
    pub schema_version: i32,
    /// When the fact happened, with microsecond precision.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub occurred_at: Timestamp,
    /// The service that produced the event.
    pub producer: String,
    /// The saga (one per purchase) this event belongs to, if any.
    pub saga_id: Option<String>,
    /// The event id of the event that caused this one.
    pub causation_id: Option<String>,
    /// W3C `traceparent` of the trace this event belongs to.
    pub traceparent: Option<String>,
    /// W3C `tracestate` accompanying `traceparent`.
    pub tracestate: Option<String>,
}

impl EventMetadata {
    /// Fresh metadata for an event of type `E` that starts a new causal chain.
    pub fn new<E: Event>() -> Self {
        let ty = E::event_type();
        Self {
            event_id: uuid::Uuid::now_v7().to_string(),
            event_type: ty.name.to_owned(),
            schema_version: ty.major as i32,
            occurred_at: Utc::now().trunc_subsecs(6),
            producer: ty.service.to_owned(),
            saga_id: None,
            causation_id: None,
            traceparent: None,
            tracestate: None,
        }
    }

    /// Fresh metadata for an event of type `E` caused by the event carrying `cause`: it joins
    /// the same saga and trace, and records `cause` as its causation.
    pub fn caused_by<E: Event>(cause: &EventMetadata) -> Self {
        Self {
            saga_id: cause.saga_id.clone(),
            causation_id: Some(cause.event_id.clone()),
            traceparent: cause.traceparent.clone(),
            tracestate: cause.tracestate.clone(),
            ..Self::new::<E>()
        }
    }

    /// The same metadata, in saga `saga_id`.
    pub fn in_saga(mut self, saga_id: impl Into<String>) -> Self {
        self.saga_id = Some(saga_id.into());
        self
    }

    /// The same metadata, produced by `service` instead of the event's owning service.
    pub fn produced_by(mut self, service: impl Into<String>) -> Self {
        self.producer = service.into();
        self
    }
}

impl Validate for EventMetadata {
    fn validate_at(&self, at: &str) -> Result<(), Invalid> {
        let at = At(at);
        at.check("event_id", ID, &self.event_id)?;
        at.check("event_type", ID, &self.event_type)?;
        at.check("producer", ID, &self.producer)?;
        at.check_opt("saga_id", ID, &self.saga_id)?;
        at.check_opt("causation_id", ID, &self.causation_id)?;
        at.check_opt("traceparent", TRACE, &self.traceparent)?;
        at.check_opt("tracestate", TRACE, &self.tracestate)
    }
}
