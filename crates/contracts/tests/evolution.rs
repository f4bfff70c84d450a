//! Reading across writers: bytes from another language's Avro library, and bytes written with
//! older and newer revisions of a schema, resolved to the current one.

use alpes_contracts::codec::{self, CodecError};
use alpes_contracts::events::marketing::FraudDetected;
use alpes_contracts::{Event, EventMetadata};
use apache_avro::Schema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use chrono::{TimeZone, Utc};

const FASTAVRO_BYTES: &[u8] = include_bytes!("fixtures/interop/FraudDetected.fastavro.bin");

fn python_event() -> FraudDetected {
    FraudDetected {
        metadata: EventMetadata {
            event_id: "0193a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b".into(),
            event_type: "FraudDetected".into(),
            schema_version: 1,
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 25, 12, 30, 45).unwrap()
                + chrono::Duration::microseconds(123_456),
            producer: "python".into(),
            saga_id: Some("saga-42".into()),
            causation_id: None,
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: None,
        },
        reason: "chargeback: carte volée".into(),
        reporter: "fraud-desk".into(),
        score: Some(88),
    }
}

#[test]
fn bytes_written_by_python_fastavro_decode_and_ours_are_identical() {
    assert_eq!(
        codec::decode::<FraudDetected>(FASTAVRO_BYTES).unwrap(),
        python_event()
    );
    assert_eq!(codec::encode(&python_event()).unwrap(), FASTAVRO_BYTES);
}

/// The current schema with `edit` applied to its text.
fn revision(edit: impl Fn(&str) -> String) -> Schema {
    let text = edit(FraudDetected::event_type().schema_text);
    assert_ne!(
        text,
        FraudDetected::event_type().schema_text,
        "the edit applied"
    );
    Schema::parse_str(&text).unwrap()
}

fn field_value(event: &FraudDetected, name: &str) -> Value {
    match apache_avro::to_value(event).unwrap() {
        Value::Record(fields) => fields.into_iter().find(|(n, _)| n == name).unwrap().1,
        other => panic!("not a record: {other:?}"),
    }
}

#[test]
fn an_older_writer_without_an_optional_field_reads_as_its_default() {
    let older = revision(|s| {
        s.replace(
            r#",
    {"name": "score", "type": ["null", "int"], "default": null, "doc": "Fraud score 0..100 when the reporter has one."}"#,
            "",
        )
    });
    let event = python_event();
    let old_record = Value::Record(vec![
        ("metadata".into(), field_value(&event, "metadata")),
        ("reason".into(), Value::String(event.reason.clone())),
        ("reporter".into(), Value::String(event.reporter.clone())),
    ]);
    let bytes = GenericDatumWriter::builder(&older)
        .build()
        .unwrap()
        .write_value_to_vec(old_record)
        .unwrap();
    let read = codec::decode_with_writer::<FraudDetected>(&bytes, &older).unwrap();
    assert_eq!(
        read,
        FraudDetected {
            score: None,
            ..event
        }
    );
}

#[test]
fn a_newer_writer_with_an_extra_field_reads_without_it() {
    let newer = revision(|s| {
        s.replace(
            r#"{"name": "reporter", "type": "string"},"#,
            r#"{"name": "reporter", "type": "string"},
    {"name": "channel", "type": "string", "default": "web"},"#,
        )
    });
    let event = python_event();
    let Value::Record(mut fields) = apache_avro::to_value(&event).unwrap() else {
        unreachable!()
    };
    fields.insert(3, ("channel".into(), Value::String("phone".into())));
    let bytes = GenericDatumWriter::builder(&newer)
        .build()
        .unwrap()
        .write_value_to_vec(Value::Record(fields))
        .unwrap();
    assert!(
        codec::decode::<FraudDetected>(&bytes).is_err(),
        "needs resolution"
    );
    assert_eq!(
        codec::decode_with_writer::<FraudDetected>(&bytes, &newer).unwrap(),
        event
    );
}

#[test]
fn garbage_and_trailing_bytes_are_decode_errors_not_panics() {
    let mut bytes = codec::encode(&python_event()).unwrap();
    bytes.push(0);
    assert!(matches!(
        codec::decode::<FraudDetected>(&bytes),
        Err(CodecError::Trailing { trailing: 1, .. })
    ));
    for garbage in [
        &[][..],
        &[0xff; 3],
        &[0x02, 0x41],
        &[0xff, 0xff, 0xff, 0xff, 0x0f],
    ] {
        assert!(
            codec::decode::<FraudDetected>(garbage).is_err(),
            "{garbage:?}"
        );
    }
}
