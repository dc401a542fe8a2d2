//! JSON output and its schema (compatibility policy: docs/json.md).

use crate::model::Snapshot;

/// The JSON Schema of [`Snapshot`], as checked in at `docs/schema/snapshot.schema.json`.
pub fn snapshot_schema() -> serde_json::Value {
    with_id(schemars::schema_for!(Snapshot), "urn:sockq:schema:snapshot")
}

/// The JSON Schema of one `watch --json` line ([`crate::model::Tick`]), as checked in at
/// `docs/schema/tick.schema.json`.
pub fn tick_schema() -> serde_json::Value {
    with_id(
        schemars::schema_for!(crate::model::Tick),
        "urn:sockq:schema:tick",
    )
}

/// The schema as JSON with its `$id` at the root (only there: a `$id` in a subschema would
/// change how its `$ref`s resolve).
fn with_id(schema: schemars::Schema, id: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(schema).unwrap_or(serde_json::Value::Null);
    if let Some(root) = v.as_object_mut() {
        root.insert("$id".into(), id.into());
    }
    v
}

/// The JSON Schema of `snapshot --all-netns --json` ([`crate::model::fleet::FleetSnapshot`]),
/// as checked in at `docs/schema/all-netns.schema.json`.
pub fn fleet_schema() -> serde_json::Value {
    with_id(
        schemars::schema_for!(crate::model::fleet::FleetSnapshot),
        "urn:sockq:schema:all-netns",
    )
}

/// The JSON Schema of one `watch --all-netns --json` line ([`crate::model::fleet::FleetLine`]),
/// as checked in at `docs/schema/all-netns-line.schema.json`.
pub fn fleet_line_schema() -> serde_json::Value {
    with_id(
        schemars::schema_for!(crate::model::fleet::FleetLine),
        "urn:sockq:schema:all-netns-line",
    )
}

/// Pretty JSON of one snapshot (one document).
pub fn snapshot_pretty(snap: &Snapshot) -> serde_json::Result<String> {
    serde_json::to_string_pretty(snap)
}
