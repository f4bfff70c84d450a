//! JSON documents read as Avro values, guided by an event's schema.
//!
//! People write events as plain JSON: an optional field is its value or `null` (Avro's
//! `{"string": "x"}` union wrapping is accepted too), an enum is its symbol, a `timestamp-micros`
//! is an RFC 3339 string (or integer microseconds), a `uuid` is its text. The schema decides what
//! each JSON value becomes, so a document is checked field by field and every problem is reported
//! with the dotted path of the field at fault (`purchase.amount.amount_minor: expected long, got
//! string "12"`), not as one opaque serde error.
//!
//! The result is an [`apache_avro::types::Value`]; `publish` encodes it with the same schema and
//! decodes it into the typed event, so what is published is exactly what the services write.

use std::collections::HashMap;
use std::fmt;

use apache_avro::Schema;
use apache_avro::schema::{
    EnumSchema, Name, NamesRef, RecordField, RecordSchema, ResolvedSchema, UnionSchema, UuidSchema,
};
use apache_avro::types::Value;
use chrono::DateTime;
use serde_json::Value as Json;

/// One field of a document that does not fit the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted path of the field, e.g. `purchase.amount.amount_minor` or `interaction_ids[2]`;
    /// empty for the document itself.
    pub path: String,
    /// What was expected and what was found.
    pub problem: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "(document): {}", self.problem)
        } else {
            write!(f, "{}: {}", self.path, self.problem)
        }
    }
}

/// Reads `document` as a datum of `schema`, or says every field that does not fit.
pub fn to_avro(schema: &Schema, document: &Json) -> Result<Value, Vec<Invalid>> {
    let resolved = ResolvedSchema::try_from(schema).map_err(|e| {
        vec![Invalid {
            path: String::new(),
            problem: format!("the schema itself cannot be resolved: {e}"),
        }]
    })?;
    let reader = Reader {
        names: resolved.get_names(),
    };
    let mut problems = Vec::new();
    match reader.read(schema, document, "", &mut problems) {
        Some(value) if problems.is_empty() => Ok(value),
        _ => Err(problems),
    }
}

/// Walks a schema and a document side by side; `names` resolves references to named types.
struct Reader<'a, 's> {
    names: &'a NamesRef<'s>,
}

impl Reader<'_, '_> {
    /// The value of `json` at `path` as `schema`, or `None` with the reasons pushed on `problems`.
    fn read(
        &self,
        schema: &Schema,
        json: &Json,
        path: &str,
        problems: &mut Vec<Invalid>,
    ) -> Option<Value> {
        let mut mismatch = || {
            problems.push(Invalid {
                path: path.to_owned(),
                problem: format!("expected {}, got {}", self.expected(schema), describe(json)),
            });
            None
        };
        match (schema, json) {
            (Schema::Ref { name }, _) => match self.resolve(name) {
                Some(named) => self.read(named, json, path, problems),
                None => {
                    problems.push(Invalid {
                        path: path.to_owned(),
                        problem: format!("the schema refers to unknown type {name:?}"),
                    });
                    None
                }
            },
            (Schema::Null, Json::Null) => Some(Value::Null),
            (Schema::Boolean, Json::Bool(b)) => Some(Value::Boolean(*b)),
            (Schema::Int, Json::Number(n)) => match n.as_i64().map(i32::try_from) {
                Some(Ok(i)) => Some(Value::Int(i)),
                Some(Err(_)) => out_of_range(path, "int", n, problems),
                None => mismatch(),
            },
            (Schema::Long, Json::Number(n)) => match n.as_i64() {
                Some(i) => Some(Value::Long(i)),
                None if n.is_u64() => out_of_range(path, "long", n, problems),
                None => mismatch(),
            },
            (Schema::Float, Json::Number(n)) => n.as_f64().map(|f| Value::Float(f as f32)),
            (Schema::Double, Json::Number(n)) => n.as_f64().map(Value::Double),
            (Schema::String, Json::String(s)) => Some(Value::String(s.clone())),
            // Avro's JSON encoding of bytes: one character per byte.
            (Schema::Bytes, Json::String(s)) => match s.chars().map(u8::try_from).collect() {
                Ok(bytes) => Some(Value::Bytes(bytes)),
                Err(_) => mismatch(),
            },
            (Schema::Uuid(UuidSchema::String), Json::String(s)) => match uuid::Uuid::parse_str(s) {
                Ok(uuid) => Some(Value::Uuid(uuid)),
                Err(_) => mismatch(),
            },
            (Schema::Uuid(UuidSchema::String), _) => mismatch(),
            (Schema::TimestampMicros, json) => match instant_micros(json) {
                Some(micros) => Some(Value::TimestampMicros(micros)),
                None => mismatch(),
            },
            (Schema::TimestampMillis, json) => match instant_micros(json) {
                Some(micros) => Some(Value::TimestampMillis(micros.div_euclid(1000))),
                None => mismatch(),
            },
            (Schema::Enum(e), Json::String(symbol)) => self.read_enum(e, symbol, path, problems),
            (Schema::Array(array), Json::Array(items)) => {
                let mut values = Vec::with_capacity(items.len());
                let mut complete = true;
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    match self.read(&array.items, item, &item_path, problems) {
                        Some(value) => values.push(value),
                        None => complete = false,
                    }
                }
                complete.then_some(Value::Array(values))
            }
            (Schema::Map(map), Json::Object(entries)) => {
                let mut values = HashMap::with_capacity(entries.len());
                let mut complete = true;
                for (key, entry) in entries {
                    match self.read(&map.types, entry, &join(path, key), problems) {
                        Some(value) => {
                            values.insert(key.clone(), value);
                        }
                        None => complete = false,
                    }
                }
                complete.then_some(Value::Map(values))
            }
            (Schema::Record(record), Json::Object(fields)) => {
                self.read_record(record, fields, path, problems)
            }
            (Schema::Union(union), json) => self.read_union(union, json, path, problems),
            (
                Schema::Decimal(_)
                | Schema::BigDecimal
                | Schema::Fixed(_)
                | Schema::Duration(_)
                | Schema::Date
                | Schema::TimeMillis
                | Schema::TimeMicros
                | Schema::TimestampNanos
                | Schema::LocalTimestampMillis
                | Schema::LocalTimestampMicros
                | Schema::LocalTimestampNanos
                | Schema::Uuid(_),
                _,
            ) => {
                problems.push(Invalid {
                    path: path.to_owned(),
                    problem: format!(
                        "the schema's type {} is not supported by this tool",
                        self.expected(schema)
                    ),
                });
                None
            }
            _ => mismatch(),
        }
    }

    fn read_enum(
        &self,
        e: &EnumSchema,
        symbol: &str,
        path: &str,
        problems: &mut Vec<Invalid>,
    ) -> Option<Value> {
        match e.symbols.iter().position(|s| s == symbol) {
            Some(i) => Some(Value::Enum(i as u32, symbol.to_owned())),
            None => {
                problems.push(Invalid {
                    path: path.to_owned(),
                    problem: format!(
                        "expected one of {}, got string {:?}",
                        e.symbols.join(", "),
                        symbol
                    ),
                });
                None
            }
        }
    }

    fn read_record(
        &self,
        record: &RecordSchema,
        fields: &serde_json::Map<String, Json>,
        path: &str,
        problems: &mut Vec<Invalid>,
    ) -> Option<Value> {
        let before = problems.len();
        for key in fields.keys() {
            if !record.lookup.contains_key(key) {
                let known: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
                problems.push(Invalid {
                    path: join(path, key),
                    problem: format!(
                        "unknown field; {} has {}",
                        record.name.name(),
                        known.join(", ")
                    ),
                });
            }
        }
        let mut values = Vec::with_capacity(record.fields.len());
        for field in &record.fields {
            let field_path = join(path, &field.name);
            let value = match fields.get(&field.name) {
                Some(json) => self.read(&field.schema, json, &field_path, problems),
                None => match &field.default {
                    Some(default) => self.read_default(field, default, &field_path, problems),
                    None => {
                        problems.push(Invalid {
                            path: field_path,
                            problem: format!(
                                "missing required field (expected {})",
                                self.expected(&field.schema)
                            ),
                        });
                        None
                    }
                },
            };
            if let Some(value) = value {
                values.push((field.name.clone(), value));
            }
        }
        (problems.len() == before).then_some(Value::Record(values))
    }

    /// A field's schema default; a union's default is of its first branch.
    fn read_default(
        &self,
        field: &RecordField,
        default: &Json,
        path: &str,
        problems: &mut Vec<Invalid>,
    ) -> Option<Value> {
        match &field.schema {
            Schema::Union(union) => {
                let first = union.variants().first()?;
                self.read(first, default, path, problems)
                    .map(|v| Value::Union(0, Box::new(v)))
            }
            schema => self.read(schema, default, path, problems),
        }
    }

    /// A union value: `null`, a plain value of one branch (the first that fits), or Avro's
    /// `{"<branch>": value}` wrapping.
    fn read_union(
        &self,
        union: &UnionSchema,
        json: &Json,
        path: &str,
        problems: &mut Vec<Invalid>,
    ) -> Option<Value> {
        let branches = union.variants();
        let null = branches.iter().position(|b| matches!(b, Schema::Null));
        if let (true, Some(i)) = (json.is_null(), null) {
            return Some(Value::Union(i as u32, Box::new(Value::Null)));
        }
        let candidates: Vec<(usize, &Schema)> = branches
            .iter()
            .enumerate()
            .filter(|(_, b)| !matches!(b, Schema::Null))
            .collect();
        for &(i, branch) in &candidates {
            if let Some(value) = self.read(branch, json, path, &mut Vec::new()) {
                return Some(Value::Union(i as u32, Box::new(value)));
            }
        }
        if let Some((i, inner)) = self.wrapped(branches, json) {
            return self
                .read(&branches[i], inner, path, problems)
                .map(|value| Value::Union(i as u32, Box::new(value)));
        }
        // Say why the one branch the value was meant for does not fit, field by field.
        let meant: Vec<&(usize, &Schema)> = if candidates.len() == 1 {
            candidates.iter().collect()
        } else {
            candidates
                .iter()
                .filter(|(_, b)| same_shape(self.deref(b), json))
                .collect()
        };
        match meant.as_slice() {
            [(_, branch)] if !json.is_null() => {
                let before = problems.len();
                self.read(branch, json, path, problems);
                if problems.len() == before {
                    problems.push(Invalid {
                        path: path.to_owned(),
                        problem: format!("does not fit {}", self.expected(branch)),
                    });
                }
            }
            _ => problems.push(Invalid {
                path: path.to_owned(),
                problem: format!(
                    "expected {}, got {}",
                    self.expected(&Schema::Union(union.clone())),
                    describe(json)
                ),
            }),
        }
        None
    }

    /// `{"<branch name>": value}` naming one of `branches`: that branch and the inner value.
    fn wrapped<'j>(&self, branches: &[Schema], json: &'j Json) -> Option<(usize, &'j Json)> {
        let object = json.as_object().filter(|o| o.len() == 1)?;
        let (key, inner) = object.iter().next()?;
        let i = branches.iter().position(|b| {
            let names = branch_names(self.deref(b));
            names.iter().any(|n| n == key)
        })?;
        Some((i, inner))
    }

    fn resolve(&self, name: &Name) -> Option<&Schema> {
        self.names.get(name).copied()
    }

    /// `schema`, or the named schema it refers to.
    fn deref<'x>(&'x self, schema: &'x Schema) -> &'x Schema {
        match schema {
            Schema::Ref { name } => self.resolve(name).unwrap_or(schema),
            other => other,
        }
    }

    /// What a value of `schema` looks like in JSON, for error messages.
    fn expected(&self, schema: &Schema) -> String {
        match self.deref(schema) {
            Schema::Null => "null".into(),
            Schema::Boolean => "boolean".into(),
            Schema::Int => "int".into(),
            Schema::Long => "long".into(),
            Schema::Float => "float".into(),
            Schema::Double => "double".into(),
            Schema::Bytes => "bytes".into(),
            Schema::String => "string".into(),
            Schema::Uuid(_) => "uuid string".into(),
            Schema::TimestampMicros | Schema::TimestampMillis => {
                "timestamp (RFC 3339 string or integer microseconds)".into()
            }
            Schema::Enum(e) => format!("one of {}", e.symbols.join(", ")),
            Schema::Record(r) => format!("{} object", r.name.name()),
            Schema::Array(a) => format!("array of {}", self.expected(&a.items)),
            Schema::Map(m) => format!("object of {}", self.expected(&m.types)),
            Schema::Union(u) => {
                let branches: Vec<String> = u.variants().iter().map(|b| self.expected(b)).collect();
                branches.join(" or ")
            }
            other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
        }
    }
}

/// Names a union branch goes by in Avro's JSON wrapping: its type name, or its short and full
/// names when it is a named type.
fn branch_names(schema: &Schema) -> Vec<String> {
    match schema {
        Schema::Record(RecordSchema { name, .. }) | Schema::Enum(EnumSchema { name, .. }) => {
            vec![name.name().to_owned(), name.fullname(None)]
        }
        Schema::Fixed(f) => vec![f.name.name().to_owned(), f.name.fullname(None)],
        Schema::Null => vec!["null".into()],
        Schema::Boolean => vec!["boolean".into()],
        Schema::Int => vec!["int".into()],
        Schema::Long | Schema::TimestampMicros | Schema::TimestampMillis => vec!["long".into()],
        Schema::Float => vec!["float".into()],
        Schema::Double => vec!["double".into()],
        Schema::Bytes => vec!["bytes".into()],
        Schema::String | Schema::Uuid(_) => vec!["string".into()],
        Schema::Array(_) => vec!["array".into()],
        Schema::Map(_) => vec!["map".into()],
        _ => Vec::new(),
    }
}

/// Whether `json` is the kind of JSON value `schema` is written as (object for a record, string
/// for an enum, ...), whatever its content.
fn same_shape(schema: &Schema, json: &Json) -> bool {
    match json {
        Json::Null => matches!(schema, Schema::Null),
        Json::Bool(_) => matches!(schema, Schema::Boolean),
        Json::Number(_) => matches!(
            schema,
            Schema::Int
                | Schema::Long
                | Schema::Float
                | Schema::Double
                | Schema::TimestampMicros
                | Schema::TimestampMillis
        ),
        Json::String(_) => matches!(
            schema,
            Schema::String
                | Schema::Bytes
                | Schema::Enum(_)
                | Schema::Uuid(_)
                | Schema::TimestampMicros
                | Schema::TimestampMillis
        ),
        Json::Array(_) => matches!(schema, Schema::Array(_)),
        Json::Object(_) => matches!(schema, Schema::Record(_) | Schema::Map(_)),
    }
}

/// An instant as microseconds since the epoch: an RFC 3339 string or an integer.
fn instant_micros(json: &Json) -> Option<i64> {
    match json {
        Json::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_micros()),
        Json::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn out_of_range(
    path: &str,
    ty: &str,
    n: &serde_json::Number,
    problems: &mut Vec<Invalid>,
) -> Option<Value> {
    problems.push(Invalid {
        path: path.to_owned(),
        problem: format!("expected {ty}, got number {n} (out of range)"),
    });
    None
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// A JSON value as error messages show it: its kind and, for scalars, the value.
fn describe(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("boolean {b}"),
        Json::Number(n) => format!("number {n}"),
        Json::String(s) if s.chars().count() > 40 => {
            let head: String = s.chars().take(40).collect();
            format!("string {:?}…", head)
        }
        Json::String(s) => format!("string {s:?}"),
        Json::Array(_) => "array".into(),
        Json::Object(_) => "object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(text: &str) -> Schema {
        Schema::parse_str(text).unwrap()
    }

    fn problems(schema: &Schema, document: Json) -> Vec<String> {
        to_avro(schema, &document)
            .expect_err("the document should be refused")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const ORDER: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["OPEN", "PAID"]}},
        {"name": "total", "type": {"type": "record", "name": "Money", "fields": [
            {"name": "amount_minor", "type": "long"}, {"name": "currency", "type": "string"}]}},
        {"name": "refund", "type": ["null", "Money"], "default": null},
        {"name": "note", "type": ["null", "string", "int"], "default": null},
        {"name": "lines", "type": {"type": "array", "items": "int"}, "default": []}
    ]}"#;

    fn order() -> Json {
        json!({
            "id": "0190f1e2-7c4b-7d3a-9b1e-2f3a4b5c6d7e",
            "at": "2025-03-01T12:00:00.123456Z",
            "state": "PAID",
            "total": {"amount_minor": 12000, "currency": "EUR"},
        })
    }

    #[test]
    fn a_plain_document_becomes_the_schemas_values_with_defaults_filled_in() {
        let value = to_avro(&schema(ORDER), &order()).unwrap();
        let Value::Record(fields) = value else {
            panic!("not a record")
        };
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["id", "at", "state", "total", "refund", "note", "lines"]
        );
        assert_eq!(
            fields[0].1,
            Value::Uuid("0190f1e2-7c4b-7d3a-9b1e-2f3a4b5c6d7e".parse().unwrap())
        );
        assert_eq!(fields[1].1, Value::TimestampMicros(1_740_830_400_123_456));
        assert_eq!(fields[2].1, Value::Enum(1, "PAID".into()));
        assert_eq!(fields[4].1, Value::Union(0, Box::new(Value::Null)));
        assert_eq!(fields[6].1, Value::Array(vec![]));
    }

    #[test]
    fn union_values_are_plain_or_wrapped_and_pick_the_branch_that_fits() {
        let s = schema(ORDER);
        let mut doc = order();
        doc["note"] = json!(7);
        doc["refund"] = json!({"shop.Money": {"amount_minor": 5, "currency": "EUR"}});
        doc["at"] = json!(1_000_000);
        let Value::Record(fields) = to_avro(&s, &doc).unwrap() else {
            panic!()
        };
        assert_eq!(fields[1].1, Value::TimestampMicros(1_000_000));
        assert_eq!(fields[5].1, Value::Union(2, Box::new(Value::Int(7))));
        assert!(
            matches!(&fields[4].1, Value::Union(1, inner) if matches!(**inner, Value::Record(_)))
        );

        doc["note"] = json!({"string": "gift"});
        let Value::Record(fields) = to_avro(&s, &doc).unwrap() else {
            panic!()
        };
        assert_eq!(
            fields[5].1,
            Value::Union(1, Box::new(Value::String("gift".into())))
        );
    }

    #[test]
    fn a_wrong_type_names_the_dotted_path_and_what_was_expected() {
        let mut doc = order();
        doc["refund"] = json!({"amount_minor": "12", "currency": "EUR"});
        assert_eq!(
            problems(&schema(ORDER), doc),
            ["refund.amount_minor: expected long, got string \"12\""]
        );
    }

    #[test]
    fn every_problem_is_reported_not_only_the_first() {
        let mut doc = order();
        doc.as_object_mut().unwrap().remove("state");
        doc["total"]["currency"] = json!(978);
        doc["lines"] = json!([1, "two", 3.5]);
        doc["colour"] = json!("red");
        assert_eq!(
            problems(&schema(ORDER), doc),
            [
                "colour: unknown field; Order has id, at, state, total, refund, note, lines",
                "state: missing required field (expected one of OPEN, PAID)",
                "total.currency: expected string, got number 978",
                "lines[1]: expected int, got string \"two\"",
                "lines[2]: expected int, got number 3.5",
            ]
        );
    }

    #[test]
    fn bad_enums_timestamps_uuids_and_ranges_say_what_is_allowed() {
        let mut doc = order();
        doc["state"] = json!("SHIPPED");
        doc["at"] = json!("yesterday");
        doc["id"] = json!("order-1");
        doc["lines"] = json!([4_294_967_296i64]);
        assert_eq!(
            problems(&schema(ORDER), doc),
            [
                "id: expected uuid string, got string \"order-1\"",
                "at: expected timestamp (RFC 3339 string or integer microseconds), got string \"yesterday\"",
                "state: expected one of OPEN, PAID, got string \"SHIPPED\"",
                "lines[0]: expected int, got number 4294967296 (out of range)",
            ]
        );
    }

    #[test]
    fn a_union_that_fits_no_branch_says_which_branches_there_are() {
        let mut doc = order();
        doc["note"] = json!(true);
        assert_eq!(
            problems(&schema(ORDER), doc),
            ["note: expected null or string or int, got boolean true"]
        );
    }

    #[test]
    fn a_document_that_is_not_an_object_is_refused_as_a_whole() {
        assert_eq!(
            problems(&schema(ORDER), json!([1, 2])),
            ["(document): expected Order object, got array"]
        );
    }
}
