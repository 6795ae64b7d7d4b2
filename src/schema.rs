//! The JSON Schema of the workflow format, generated from the serde types so it cannot drift.
//!
//! Draft-07, because that is the draft editors' YAML support (the yaml-language-server behind
//! VS Code's and JetBrains' YAML plugins) reads best. The checked-in copy is
//! `schemas/workflow.schema.json`; a test fails when it differs from what the code generates,
//! and `sopflow schema > schemas/workflow.schema.json` regenerates it.

use crate::definition::Workflow;
use schemars::generate::SchemaSettings;

/// Where the checked-in schema lives, relative to the project root.
pub const SCHEMA_PATH: &str = "schemas/workflow.schema.json";

/// The schema as pretty-printed JSON, ending with a newline.
pub fn workflow_schema_json() -> String {
    let schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<Workflow>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".to_string());
    text.push('\n');
    text
}
