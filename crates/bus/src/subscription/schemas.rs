//! Decoding a message with the schema it was written with: the broker's schema version (or,
//! on a retried copy, the original's, kept in a property) names it, and the registry's text of
//! it is fetched once per version.

use std::collections::BTreeMap;
use std::sync::Arc;

use alpes_contracts::{Event, codec};
use apache_avro::Schema;
use pulsar::consumer::Message;

use super::{Subscription, Undecodable};
use crate::property;

impl<E: Event> Subscription<E> {
    pub(super) async fn decode(
        &mut self,
        message: &Message<Vec<u8>>,
        properties: &BTreeMap<String, String>,
    ) -> Result<E, Undecodable> {
        // A retried copy carries its original's schema version in a property.
        let version = properties
            .get(property::WRITER_SCHEMA_VERSION)
            .and_then(|hex| decode_hex(hex))
            .or_else(|| message.metadata().schema_version.clone())
            // Producers without a schema send an empty version: read with the current schema.
            .filter(|version| !version.is_empty());
        let writer = match version {
            Some(version) => self.writer_schema(version).await?,
            None => None,
        };
        let data = &message.payload.data;
        let decoded = match writer {
            Some(writer) => codec::decode_with_writer::<E>(data, &writer),
            None => codec::decode::<E>(data),
        };
        decoded.map_err(|e| Undecodable::Poison(e.to_string()))
    }

    async fn writer_schema(
        &mut self,
        version: Vec<u8>,
    ) -> Result<Option<Arc<Schema>>, Undecodable> {
        if let Some(known) = self.writer_schemas.get(&version) {
            return Ok(known.clone());
        }
        let number = <[u8; 8]>::try_from(version.as_slice())
            .map(i64::from_be_bytes)
            .map_err(|_| {
                Undecodable::Poison(format!("malformed schema version {}", encode_hex(&version)))
            })?;
        let topic_name = E::event_type().topic_name();
        let text = self
            .admin
            .schema_at(&topic_name, number)
            .await
            .map_err(|e| Undecodable::Transient(format!("fetching writer schema: {e}")))?
            .ok_or_else(|| {
                Undecodable::Poison(format!(
                    "schema version {number} is unknown to the registry of {}",
                    self.topic
                ))
            })?;
        let writer = Schema::parse_str(&text)
            .map_err(|e| Undecodable::Poison(format!("writer schema is not valid Avro: {e}")))?;
        let writer = (&writer != E::event_type().schema()).then(|| Arc::new(writer));
        self.writer_schemas.insert(version, writer.clone());
        Ok(writer)
    }
}

pub(super) fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_versions_survive_the_hex_round_trip() {
        let version = vec![0, 0, 0, 0, 0, 0, 1, 0xff];
        assert_eq!(decode_hex(&encode_hex(&version)), Some(version));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
