//! JSON output and its schema.

use crate::model::Snapshot;

/// The JSON Schema of [`Snapshot`], as checked in at `docs/schema/snapshot.schema.json`.
pub fn snapshot_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Snapshot);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}

/// The JSON Schema of one `watch --json` line ([`crate::model::Tick`]), as checked in at
/// `docs/schema/tick.schema.json`.
pub fn tick_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(crate::model::Tick);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}

/// Pretty JSON of one snapshot (one document).
pub fn snapshot_pretty(snap: &Snapshot) -> serde_json::Result<String> {
    serde_json::to_string_pretty(snap)
}
