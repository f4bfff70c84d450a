//! Plain Avro binary encoding of events: no container header, no fingerprint, exactly what the
//! official Pulsar clients write for an `AvroSchema`.
//!
//! Decoding reads with the event's current schema. Bytes written with an older revision of the
//! schema are read through Avro schema resolution when the caller passes that writer schema
//! (the bus fetches it from Pulsar's schema registry by the message's schema version).
//!
//! Decoding also checks the event against [`crate::limits`]: every consumer decodes through
//! here, so an event with a NUL in an id or a reason of a megabyte is refused (and dead-lettered
//! by the bus, with the field and why) before any service acts on it. Encoding does not check:
//! what a service produces from checked input stays within the limits.

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;

use crate::Event;
use crate::limits::Invalid;

/// Why an event could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The value does not fit its schema: a bug in the event type, not in the data.
    #[error("cannot encode {event} as Avro: {source}")]
    Encode {
        event: &'static str,
        #[source]
        source: apache_avro::Error,
    },
    /// The bytes are not a valid datum of the writer schema.
    #[error("cannot decode {event} from Avro: {source}")]
    Decode {
        event: &'static str,
        #[source]
        source: apache_avro::Error,
    },
    /// The datum decoded but a field breaks its limit (see [`crate::limits`]).
    #[error("{event} is not valid: {source}")]
    Invalid {
        event: &'static str,
        #[source]
        source: Invalid,
    },
    /// The datum decoded but bytes were left over: not one datum of this schema.
    #[error("cannot decode {event} from Avro: {trailing} trailing byte(s) after the datum")]
    Trailing {
        event: &'static str,
        trailing: usize,
    },
}

/// Encodes `event` as plain Avro binary with its current schema.
pub fn encode<E: Event>(event: &E) -> Result<Vec<u8>, CodecError> {
    let ty = E::event_type();
    let encode_error = |source| CodecError::Encode {
        event: ty.name,
        source,
    };
    GenericDatumWriter::builder(ty.schema())
        .build()
        .map_err(encode_error)?
        .write_ser_to_vec(event)
        .map_err(encode_error)
}

/// Decodes plain Avro binary written with the event's current schema, and checks the event
/// against its limits.
pub fn decode<E: Event>(bytes: &[u8]) -> Result<E, CodecError> {
    decode_unchecked(bytes).and_then(checked)
}

/// Decodes plain Avro binary written with the event's current schema, without checking its
/// limits: for tools that must show whatever arrived (a dead letter, a codec test).
pub fn decode_unchecked<E: Event>(bytes: &[u8]) -> Result<E, CodecError> {
    let ty = E::event_type();
    let decode_error = |source| CodecError::Decode {
        event: ty.name,
        source,
    };
    let mut rest = bytes;
    let event = GenericDatumReader::builder(ty.schema())
        .build()
        .map_err(decode_error)?
        .read_deser(&mut rest)
        .map_err(decode_error)?;
    ensure_consumed::<E>(rest)?;
    Ok(event)
}

/// Decodes plain Avro binary written with `writer`, an older or newer revision of the event's
/// schema within the same major version, resolving it to the current schema, and checks the
/// event against its limits.
pub fn decode_with_writer<E: Event>(bytes: &[u8], writer: &Schema) -> Result<E, CodecError> {
    let ty = E::event_type();
    if writer == ty.schema() {
        return decode(bytes);
    }
    let decode_error = |source| CodecError::Decode {
        event: ty.name,
        source,
    };
    let mut rest = bytes;
    let value = GenericDatumReader::builder(writer)
        .reader_schema(ty.schema())
        .build()
        .map_err(decode_error)?
        .read_value(&mut rest)
        .map_err(decode_error)?;
    ensure_consumed::<E>(rest)?;
    apache_avro::from_value(&value)
        .map_err(decode_error)
        .and_then(checked)
}

fn checked<E: Event>(event: E) -> Result<E, CodecError> {
    match event.validate() {
        Ok(()) => Ok(event),
        Err(source) => Err(CodecError::Invalid {
            event: E::event_type().name,
            source,
        }),
    }
}

fn ensure_consumed<E: Event>(rest: &[u8]) -> Result<(), CodecError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(CodecError::Trailing {
            event: E::event_type().name,
            trailing: rest.len(),
        })
    }
}
