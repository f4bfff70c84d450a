//! The schema compatibility check CI runs on every change.
//!
//! Layout of `schema/`: `v<major>/<service>/<Event>.avsc` is an event's current contract;
//! the revisions released before it, frozen, are `v<major>/<service>/history/<Event>.<n>.avsc`.
//! Within a major version every current schema must be *fully* compatible with every earlier
//! revision: new readers read old data (backward) and old readers read new data (forward), so
//! producers and consumers can be upgraded in any order. A breaking change starts `v<major+1>`.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use apache_avro::Schema;
use apache_avro::error::CompatibilityError;
use apache_avro::schema_compatibility::SchemaCompatibility;

/// Which reader could not read which writer's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The current schema cannot read data written with an earlier revision.
    Backward,
    /// An earlier revision cannot read data written with the current schema.
    Forward,
}

/// One incompatibility between an event's current schema and one of its earlier revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// The event type, e.g. `InteractionTracked`.
    pub event: String,
    /// The earlier revision's file, relative to the schema root.
    pub revision: PathBuf,
    /// Which way reading fails.
    pub direction: Direction,
    /// Dotted path of the offending field (`purchase.amount`), when Avro names one.
    pub field: Option<String>,
    /// What Avro found.
    pub detail: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.direction {
            Direction::Backward => "the current schema cannot read data written with",
            Direction::Forward => "data written with the current schema cannot be read with",
        };
        write!(f, "{}: ", self.event)?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        write!(f, "{how} {} ({})", self.revision.display(), self.detail)
    }
}

/// What a check looked at and what it found.
#[derive(Debug, Default)]
pub struct Report {
    /// Current schemas checked.
    pub schemas: usize,
    /// Earlier revisions compared against.
    pub revisions: usize,
    /// Everything that is not fully compatible; empty means the check passed.
    pub incompatibilities: Vec<Incompatibility>,
}

/// A schema tree that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid Avro schema: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: apache_avro::Error,
    },
    #[error("{path} defines record `{found}`, but the file is named for `{expected}`")]
    Misnamed {
        path: PathBuf,
        expected: String,
        found: String,
    },
}

/// Checks every `v<major>/<service>/<Event>.avsc` under `root` against its earlier revisions.
pub fn check(root: &Path) -> Result<Report, CheckError> {
    let mut report = Report::default();
    for major in subdirs(root)?
        .into_iter()
        .filter(|d| is_major(d.file_name()))
    {
        for service in subdirs(&major)? {
            for current in avsc_files(&service)? {
                let event = stem(&current);
                let schema = parse(&current, &event)?;
                report.schemas += 1;
                for revision in revisions(&service, &event)? {
                    let earlier = parse(&revision, &event)?;
                    report.revisions += 1;
                    let relative = revision.strip_prefix(root).unwrap_or(&revision);
                    for (direction, writer, reader) in [
                        (Direction::Backward, &earlier, &schema),
                        (Direction::Forward, &schema, &earlier),
                    ] {
                        if let Err(e) = SchemaCompatibility::can_read(writer, reader) {
                            let (field, detail) = explain(&e);
                            report.incompatibilities.push(Incompatibility {
                                event: event.clone(),
                                revision: relative.to_path_buf(),
                                direction,
                                field,
                                detail,
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(report)
}

/// Follows Avro's nested field mismatches down to the innermost field and its cause.
fn explain(error: &CompatibilityError) -> (Option<String>, String) {
    let mut path = Vec::new();
    let mut current = error;
    loop {
        match current {
            CompatibilityError::FieldTypeMismatch(field, inner) => {
                path.push(field.as_str());
                current = inner;
            }
            CompatibilityError::MissingDefaultValue(field) => {
                path.push(field.as_str());
                let detail = "it has no default, so it is required but absent".to_owned();
                return (Some(path.join(".")), detail);
            }
            other => {
                let field = (!path.is_empty()).then(|| path.join("."));
                return (field, other.to_string());
            }
        }
    }
}

fn is_major(name: Option<&std::ffi::OsStr>) -> bool {
    name.and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix('v'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned()
}

fn parse(path: &Path, event: &str) -> Result<Schema, CheckError> {
    let text = fs::read_to_string(path).map_err(|source| CheckError::Io {
        path: path.to_owned(),
        source,
    })?;
    let schema = Schema::parse_str(&text).map_err(|source| CheckError::Parse {
        path: path.to_owned(),
        source,
    })?;
    let found = match &schema {
        Schema::Record(record) => record.name.name().to_owned(),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)),
    };
    if found != event {
        return Err(CheckError::Misnamed {
            path: path.to_owned(),
            expected: event.to_owned(),
            found,
        });
    }
    Ok(schema)
}

/// `history/<event>.<n>.avsc` under `service`, oldest first.
fn revisions(service: &Path, event: &str) -> Result<Vec<PathBuf>, CheckError> {
    let history = service.join("history");
    if !history.is_dir() {
        return Ok(Vec::new());
    }
    let prefix = format!("{event}.");
    let mut numbered: Vec<(u32, PathBuf)> = avsc_files(&history)?
        .into_iter()
        .filter_map(|path| {
            let name = stem(&path);
            let n = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((n, path))
        })
        .collect();
    numbered.sort();
    Ok(numbered.into_iter().map(|(_, path)| path).collect())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CheckError> {
    entries(dir, |p| {
        p.is_dir() && p.file_name().is_some_and(|n| n != "history")
    })
}

fn avsc_files(dir: &Path) -> Result<Vec<PathBuf>, CheckError> {
    entries(dir, |p| {
        p.is_file() && p.extension().is_some_and(|e| e == "avsc")
    })
}

fn entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>, CheckError> {
    let io_error = |source| CheckError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        if keep(&path) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}
