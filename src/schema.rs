//! The JSON Schemas of the workflow format and of the role list, generated from the serde types
//! so they cannot drift.
//!
//! Draft-07, because that is the draft editors' YAML support (the yaml-language-server behind
//! VS Code's and JetBrains' YAML plugins) reads best. The checked-in copy is
//! `schemas/workflow.schema.json` (and `schemas/roles.schema.json`); a test fails when one
//! differs from what the code generates, and `sopflow schema > schemas/workflow.schema.json`
//! (`sopflow schema roles > schemas/roles.schema.json`) regenerates it.

use crate::definition::Workflow;
use crate::definition::roles::RoleListFile;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use serde_json::Value;

/// Where the checked-in schema lives, relative to the project root.
pub const SCHEMA_PATH: &str = "schemas/workflow.schema.json";

/// Where the checked-in schema of the role list lives.
pub const ROLES_SCHEMA_PATH: &str = "schemas/roles.schema.json";

/// Where the checked-in schema of a migration's mapping file lives
/// (`workflows/<id>.migration.yaml`, `sopflow migrate --mapping`).
pub const MIGRATION_SCHEMA_PATH: &str = "schemas/migration.schema.json";

/// The schema of a migration's mapping file, pretty-printed, ending with a newline.
pub fn migration_schema_json() -> String {
    schema_json::<crate::machine::Mapping>()
}

/// The workflow schema as pretty-printed JSON, ending with a newline.
pub fn workflow_schema_json() -> String {
    schema_json::<Workflow>()
}

/// The role list's schema (`workflows/roles.yaml`), pretty-printed, ending with a newline.
pub fn roles_schema_json() -> String {
    schema_json::<RoleListFile>()
}

fn schema_json<T: schemars::JsonSchema>() -> String {
    let schema = SchemaSettings::draft07()
        .with_transform(RecursiveTransform(
            drop_number_formats as fn(&mut schemars::Schema),
        ))
        .into_generator()
        .into_root_schema_for::<T>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".to_string());
    text.push('\n');
    text
}

/// Drops the Rust-specific `format`s schemars gives numbers (`uint32`, `int64`, `double`): no
/// JSON Schema draft defines them, and validators in their strict mode (ajv, which editors'
/// YAML support uses) refuse a schema that names an unknown format. The API's document drops
/// them too: the OpenAPI format registry does not have them either.
pub(crate) fn drop_number_formats(schema: &mut schemars::Schema) {
    let numeric = |t: &Value| matches!(t.as_str(), Some("integer" | "number"));
    let is_number = match schema.get("type") {
        Some(Value::Array(types)) => types.iter().any(numeric),
        Some(t) => numeric(t),
        None => false,
    };
    if is_number {
        schema.remove("format");
    }
}
