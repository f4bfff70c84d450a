//! The one place logging is set up, for the whole binary.

use crate::config::LogFormat;

/// Installs the global subscriber: `RUST_LOG` filters (default `info`), output as `format`.
/// Calling it twice keeps the first (tests start several services in one process).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,pulsar=warn,mongodb=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
