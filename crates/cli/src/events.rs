//! `alpes events`: the registry of event types as a table.

use alpes_contracts::events;

use crate::table::Table;

/// Every event type with its owning service, topic and schema file.
pub fn table() -> String {
    let mut table = Table::new(&["EVENT", "SERVICE", "TOPIC", "SCHEMA"]);
    for ty in events::all() {
        table.row([
            ty.name.to_owned(),
            ty.service.to_owned(),
            ty.topic(),
            format!("schema/{}", ty.schema_path()),
        ]);
    }
    table.render()
}
