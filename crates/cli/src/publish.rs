//! `alpes publish <EventType>`: a JSON document in, one validated event on its topic out.
//!
//! The route is JSON → Avro value (checked field by field against the event's schema, see
//! [`crate::json_avro`]) → Avro bytes → the typed event through `codec::decode` → the bus's
//! [`Outgoing::event`]. Going through the typed event means the message is exactly what a
//! service would publish: same bytes, same key, same properties, same event time. Decoding
//! also checks the field limits every consumer applies (`alpes_contracts::limits`), so an
//! event a consumer would dead-letter (a NUL in an id, an oversize reason) is refused here,
//! naming the field. Nothing touches Pulsar until the document is known to be valid.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alpes_bus::Outgoing;
use alpes_contracts::codec::{self, CodecError};
use alpes_contracts::events::attribution::{
    AttributionReverted, ConversionAttributed, ConversionRejected,
};
use alpes_contracts::events::commission::{
    CommissionConfirmed, CommissionRejected, CommissionReserved, CommissionReverted,
};
use alpes_contracts::events::marketing::{
    CampaignActivated, CampaignCompleted, CampaignCreated, CampaignPaused, FraudDetected,
    SagaTimedOut,
};
use alpes_contracts::events::tracking::{InteractionTracked, InteractionsDiscarded};
use alpes_contracts::{Event, EventType, events};
use anyhow::Context;
use apache_avro::writer::datum::GenericDatumWriter;
use chrono::{SecondsFormat, SubsecRound, Utc};
use clap::Args;
use serde_json::{Value as Json, json};

use crate::json_avro::{self, Invalid};
use crate::{PulsarArgs, Refused};

/// What `publish` writes as `producer` when the document does not say.
pub const PRODUCER: &str = "alpes-cli";

pub const EXAMPLES: &str = "Examples:
  alpes publish FraudDetected --file fraud.json
  echo '{\"metadata\":{\"saga_id\":\"0190f1e2-...\"},\"reason\":\"chargeback\",\"reporter\":\"ops\"}' \\
    | alpes publish FraudDetected -
  alpes publish CampaignPaused --key campaign-7 --dry-run < pause.json

The document is the event as JSON: optional fields are a value or null (or omitted when the
schema has a default), enums are their symbol, timestamps RFC 3339 strings (or integer
microseconds). Missing metadata is filled in: event_id (new UUID), event_type, schema_version,
occurred_at (now) and producer (alpes-cli); give metadata.saga_id to join a saga.
`alpes events` lists the event types. Exit code 2: the document was refused, nothing published.";

/// `alpes publish` flags.
#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The event type, e.g. FraudDetected (see `alpes events`).
    pub event_type: String,
    /// The JSON document: a file, or `-` for standard input (the default).
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// The JSON document's file (same as the positional FILE).
    #[arg(long, short, value_name = "FILE", conflicts_with = "input")]
    pub file: Option<PathBuf>,
    /// Message key instead of the event's own (its saga, visitor or campaign).
    #[arg(long)]
    pub key: Option<String>,
    /// Validate and show what would be published, without publishing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON (topic, key, event id, message id).
    #[arg(long)]
    pub json: bool,
    /// How long to wait for Pulsar to connect and confirm.
    #[arg(long, default_value = "30s", value_parser = crate::when::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub pulsar: PulsarArgs,
}

/// An event ready to publish, and the document it was read from (metadata filled in).
#[derive(Debug)]
pub struct Prepared {
    pub outgoing: Outgoing,
    pub document: Json,
}

pub async fn run(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let ty = event_type(&args.event_type)?;
    let source = args.file.or(args.input);
    let text = read_document(source.as_deref())?;
    let document: Json = serde_json::from_str(&text)
        .map_err(|e| Refused(format!("the document is not JSON: {e}")))?;
    let mut prepared = prepare(ty, document)?;
    if let Some(key) = args.key {
        prepared.outgoing.key = key;
    }
    let outgoing = &prepared.outgoing;
    let event_id = outgoing
        .properties
        .get(alpes_bus::property::EVENT_ID)
        .cloned()
        .unwrap_or_default();
    if args.dry_run {
        let shown = json!({
            "topic": outgoing.topic,
            "key": outgoing.key,
            "event_id": event_id,
            "bytes": outgoing.payload.len(),
            "event": prepared.document,
        });
        println!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    let receipt = tokio::time::timeout(args.timeout, send(&args.pulsar, prepared.outgoing.clone()))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "Pulsar at {} did not confirm within {:?}: is it running? (scripts/stack.sh status)",
                args.pulsar.pulsar_url,
                args.timeout
            )
        })??;
    let outgoing = &prepared.outgoing;
    if args.json {
        let shown = json!({
            "event_type": ty.name,
            "event_id": event_id,
            "saga_id": prepared.document["metadata"]["saga_id"],
            "topic": receipt.topic,
            "key": outgoing.key,
            "message_id": receipt.message_id,
        });
        println!("{shown}");
    } else {
        eprintln!(
            "published {} {event_id} to {} with key {:?}",
            ty.name, receipt.topic, outgoing.key
        );
        println!("{}", receipt.message_id);
    }
    Ok(ExitCode::SUCCESS)
}

async fn send(pulsar: &PulsarArgs, outgoing: Outgoing) -> anyhow::Result<alpes_bus::Receipt> {
    let bus = pulsar.connect(PRODUCER).await?;
    let receipt = bus.publisher().send(outgoing).await?.confirmed().await?;
    bus.publisher().close().await;
    Ok(receipt)
}

fn read_document(source: Option<&std::path::Path>) -> anyhow::Result<String> {
    match source {
        None => read_stdin(),
        Some(path) if path.as_os_str() == "-" => read_stdin(),
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Refused(format!("cannot read {}: {e}", path.display())).into()),
    }
}

fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the document from standard input")?;
    Ok(text)
}

/// The event type called `name`, or a refusal listing the known ones.
pub fn event_type(name: &str) -> Result<&'static EventType, Refused> {
    events::by_name(name).ok_or_else(|| {
        let known: Vec<&str> = events::all().iter().map(|t| t.name).collect();
        Refused(format!(
            "unknown event type {name:?}; known: {}",
            known.join(", ")
        ))
    })
}

/// Validates `document` as an event of type `ty`, filling in the metadata it lacks, and
/// encodes it as the services would.
pub fn prepare(ty: &'static EventType, mut document: Json) -> Result<Prepared, Refused> {
    let refused = |problems: Vec<Invalid>| {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        Refused(format!(
            "the document does not fit {} (schema/{}); nothing was published:\n{}",
            ty.name,
            ty.schema_path(),
            lines.join("\n")
        ))
    };
    complete_metadata(ty, &mut document).map_err(refused)?;
    let value = json_avro::to_avro(ty.schema(), &document).map_err(refused)?;
    let bytes = GenericDatumWriter::builder(ty.schema())
        .build()
        .and_then(|writer| writer.write_value_to_vec(value))
        .map_err(|e| {
            Refused(format!(
                "the document cannot be encoded as {}: {e}",
                ty.name
            ))
        })?;
    let outgoing = typed_outgoing(ty.name, &bytes)
        .ok_or_else(|| Refused(format!("publishing {} is not supported yet", ty.name)))?
        .map_err(|e| match e {
            CodecError::Invalid { source, .. } => refused(vec![Invalid {
                path: source.field,
                problem: source.message,
            }]),
            other => Refused(other.to_string()),
        })?;
    Ok(Prepared { outgoing, document })
}

/// Fills in the metadata a person need not write, and checks what they did write agrees with
/// the event type.
fn complete_metadata(ty: &EventType, document: &mut Json) -> Result<(), Vec<Invalid>> {
    let Some(fields) = document.as_object_mut() else {
        return Ok(()); // The schema check says what is wrong with it.
    };
    let metadata = fields
        .entry("metadata")
        .and_modify(|m| {
            if m.is_null() {
                *m = json!({});
            }
        })
        .or_insert_with(|| json!({}));
    let Some(metadata) = metadata.as_object_mut() else {
        return Ok(());
    };
    let now = Utc::now()
        .trunc_subsecs(6)
        .to_rfc3339_opts(SecondsFormat::Micros, true);
    let defaults = [
        ("event_id", json!(uuid::Uuid::now_v7().to_string())),
        ("event_type", json!(ty.name)),
        ("schema_version", json!(ty.major)),
        ("occurred_at", json!(now)),
        ("producer", json!(PRODUCER)),
    ];
    for (name, value) in defaults {
        if metadata.get(name).is_none_or(Json::is_null) {
            metadata.insert(name.to_owned(), value);
        }
    }
    let mut problems = Vec::new();
    if metadata["event_type"] != json!(ty.name) {
        problems.push(Invalid {
            path: "metadata.event_type".into(),
            problem: format!(
                "expected {:?} (the event being published), got {}",
                ty.name, metadata["event_type"]
            ),
        });
    }
    if metadata["schema_version"] != json!(ty.major) {
        problems.push(Invalid {
            path: "metadata.schema_version".into(),
            problem: format!(
                "expected {} (schema/v{}), got {}",
                ty.major, ty.major, metadata["schema_version"]
            ),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Decodes `bytes` as the event type called `name` and encodes it for its topic; `None` for a
/// type this function does not list (a test keeps the list complete).
fn typed_outgoing(name: &str, bytes: &[u8]) -> Option<Result<Outgoing, CodecError>> {
    fn outgoing<E: Event>(bytes: &[u8]) -> Result<Outgoing, CodecError> {
        Outgoing::event(&codec::decode::<E>(bytes)?)
    }
    macro_rules! by_name {
        ($($ty:ident),+ $(,)?) => {
            match name {
                $(stringify!($ty) => Some(outgoing::<$ty>(bytes)),)+
                _ => None,
            }
        };
    }
    by_name!(
        InteractionTracked,
        InteractionsDiscarded,
        ConversionAttributed,
        ConversionRejected,
        AttributionReverted,
        CommissionReserved,
        CommissionRejected,
        CommissionConfirmed,
        CommissionReverted,
        FraudDetected,
        SagaTimedOut,
        CampaignCreated,
        CampaignActivated,
        CampaignPaused,
        CampaignCompleted,
    )
}

#[cfg(test)]
mod tests {
    use alpes_bus::property;
    use alpes_contracts::EventMetadata;

    use super::*;

    fn prepared(name: &str, document: Json) -> Result<Prepared, String> {
        prepare(event_type(name).unwrap(), document).map_err(|e| e.0)
    }

    fn purchase() -> Json {
        json!({
            "metadata": {"saga_id": "saga-1", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
            "interaction_id": "i-1",
            "kind": "PURCHASE",
            "interacted_at": "2025-03-01T12:00:00Z",
            "visitor": {"anonymous_id": "v-1", "user_agent": "Firefox"},
            "tracking": {"campaign_id": "c-1", "partner_id": "p-1"},
            "target": {"url": "https://shop.example/checkout"},
            "context": {},
            "purchase": {"order_id": "o-1", "amount": {"amount_minor": 12000, "currency": "EUR"}}
        })
    }

    #[test]
    fn every_known_event_type_can_be_published() {
        for ty in events::all() {
            assert!(
                typed_outgoing(ty.name, &[]).is_some(),
                "{} is missing from typed_outgoing",
                ty.name
            );
        }
    }

    #[test]
    fn a_purchase_is_published_as_the_tracking_service_would() {
        let prepared = prepared("InteractionTracked", purchase()).unwrap();
        let out = &prepared.outgoing;
        assert_eq!(
            out.topic,
            "persistent://alpes/events/interaction-tracked-v1"
        );
        assert_eq!(out.key, "v-1", "interactions are keyed by visitor");
        let event: InteractionTracked = codec::decode(&out.payload).unwrap();
        let amount = &event.purchase.as_ref().unwrap().amount;
        assert_eq!(
            (amount.amount_minor, amount.currency.as_str()),
            (12000, "EUR")
        );
        assert_eq!(
            event.interacted_at.to_rfc3339(),
            "2025-03-01T12:00:00+00:00"
        );
        assert_eq!(event.visitor.ip, None);
        assert_eq!(event.metadata.saga_id.as_deref(), Some("saga-1"));
        assert_eq!(event.metadata.producer, PRODUCER);
        assert_eq!(event.metadata.event_type, "InteractionTracked");
        assert_eq!(out.properties[property::SAGA_ID], "saga-1");
        assert_eq!(
            out.payload,
            codec::encode(&event).unwrap(),
            "the bytes are the typed encoder's"
        );
    }

    #[test]
    fn missing_metadata_is_filled_in_and_given_metadata_is_kept() {
        let fraud = json!({"reason": "chargeback", "reporter": "ops", "score": 97});
        let before = Utc::now().trunc_subsecs(6);
        let out = prepared("FraudDetected", fraud).unwrap().outgoing;
        let event: FraudDetected = codec::decode(&out.payload).unwrap();
        let m = &event.metadata;
        assert!(uuid::Uuid::parse_str(&m.event_id).is_ok());
        assert_eq!(m.event_type, "FraudDetected");
        assert_eq!(m.schema_version, 1);
        assert_eq!(m.producer, PRODUCER);
        assert!(m.occurred_at >= before && m.occurred_at <= Utc::now());
        assert_eq!(m.saga_id, None);
        assert_eq!(
            out.key, m.event_id,
            "outside a saga the key is the event id"
        );
        assert_eq!(event.score, Some(97));

        let given = EventMetadata::new::<FraudDetected>().in_saga("s-9");
        let document = json!({
            "metadata": {"event_id": given.event_id, "occurred_at": given.occurred_at.timestamp_micros(),
                         "producer": "fraud-desk", "saga_id": {"string": "s-9"}},
            "reason": "chargeback", "reporter": "ops"
        });
        let out = prepared("FraudDetected", document).unwrap().outgoing;
        let event: FraudDetected = codec::decode(&out.payload).unwrap();
        assert_eq!(event.metadata.event_id, given.event_id);
        assert_eq!(event.metadata.occurred_at, given.occurred_at);
        assert_eq!(event.metadata.producer, "fraud-desk");
        assert_eq!(out.key, "s-9");
        assert_eq!(event.score, None);
    }

    #[test]
    fn campaign_and_commission_events_convert_with_their_enums_and_arrays() {
        let created = json!({
            "campaign_id": "c-1", "name": "Spring",
            "budget": {"amount_minor": 100000, "currency": "EUR"},
            "terms": {"kind": "PERCENTAGE", "percentage_bps": 1000, "fixed_minor": null,
                      "minimum_minor": 500, "maximum_minor": 5000},
            "attribution_model": "LAST_TOUCH", "attribution_window_days": 30, "fraud_threshold": 80
        });
        let out = prepared("CampaignCreated", created).unwrap().outgoing;
        assert_eq!(out.key, "c-1");
        let event: CampaignCreated = codec::decode(&out.payload).unwrap();
        assert_eq!(event.terms.percentage_bps, Some(1000));

        let discarded = json!({
            "metadata": {"saga_id": "s-2"}, "visitor_id": "v-1",
            "interaction_ids": ["i-1", "i-2"], "reason": "fraud"
        });
        let out = prepared("InteractionsDiscarded", discarded)
            .unwrap()
            .outgoing;
        let event: InteractionsDiscarded = codec::decode(&out.payload).unwrap();
        assert_eq!(event.interaction_ids, ["i-1", "i-2"]);
        assert_eq!(out.key, "s-2");
    }

    #[test]
    fn a_missing_required_field_is_refused_by_its_path() {
        let mut doc = purchase();
        doc["visitor"]
            .as_object_mut()
            .unwrap()
            .remove("anonymous_id");
        let error = prepared("InteractionTracked", doc).unwrap_err();
        assert!(
            error.contains("visitor.anonymous_id: missing required field (expected string)"),
            "{error}"
        );
        assert!(error.contains("nothing was published"), "{error}");
    }

    #[test]
    fn a_wrong_type_is_refused_with_what_was_expected() {
        let mut doc = purchase();
        doc["purchase"]["amount"]["amount_minor"] = json!("12");
        let error = prepared("InteractionTracked", doc).unwrap_err();
        assert!(
            error.contains("purchase.amount.amount_minor: expected long, got string \"12\""),
            "{error}"
        );
    }

    #[test]
    fn a_bad_enum_symbol_lists_the_symbols() {
        let mut doc = purchase();
        doc["kind"] = json!("BUY");
        let error = prepared("InteractionTracked", doc).unwrap_err();
        assert!(
            error.contains("kind: expected one of VIEW, CLICK, PURCHASE, got string \"BUY\""),
            "{error}"
        );
    }

    #[test]
    fn a_bad_timestamp_is_refused() {
        let mut doc = purchase();
        doc["metadata"]["occurred_at"] = json!("2025-13-01 noon");
        let error = prepared("InteractionTracked", doc).unwrap_err();
        assert!(
            error.contains("metadata.occurred_at: expected timestamp (RFC 3339 string or integer microseconds), got string \"2025-13-01 noon\""),
            "{error}"
        );
    }

    #[test]
    fn metadata_contradicting_the_event_type_is_refused() {
        let mut doc = purchase();
        doc["metadata"]["event_type"] = json!("FraudDetected");
        doc["metadata"]["schema_version"] = json!(2);
        let error = prepared("InteractionTracked", doc).unwrap_err();
        assert!(
            error.contains("metadata.event_type: expected \"InteractionTracked\""),
            "{error}"
        );
        assert!(
            error.contains("metadata.schema_version: expected 1"),
            "{error}"
        );
    }

    #[test]
    fn a_string_over_its_limit_is_refused_by_its_path_before_publishing() {
        let mut doc = purchase();
        doc["visitor"]["anonymous_id"] = json!("a\u{0}b");
        let error = prepared("InteractionTracked", doc).unwrap_err();
        assert!(
            error.contains("visitor.anonymous_id: contains the control character U+0000"),
            "{error}"
        );
        assert!(error.contains("nothing was published"), "{error}");

        let mut doc = purchase();
        doc["tracking"]["campaign_id"] = json!("c".repeat(3_000));
        let error = prepared("InteractionTracked", doc).unwrap_err();
        assert!(
            error.contains("tracking.campaign_id: is 3000 bytes long; at most 128"),
            "{error}"
        );

        let fraud =
            json!({"metadata": {"saga_id": "s-1"}, "reason": "chargeback\u{0}", "reporter": "ops"});
        let error = prepared("FraudDetected", fraud).unwrap_err();
        assert!(
            error.contains("\n  reason: contains the control"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_event_type_lists_the_known_ones() {
        let error = event_type("FraudDetectd").unwrap_err().0;
        assert!(
            error.starts_with("unknown event type \"FraudDetectd\"; known: "),
            "{error}"
        );
        for ty in events::all() {
            assert!(error.contains(ty.name), "{error} lacks {}", ty.name);
        }
    }
}
