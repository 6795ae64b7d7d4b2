//! The checked-in JSON Schema is what the code generates, and the shipped workflows (and the
//! fixtures' base) conform to it, so an editor checking against it agrees with `validate`.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_checked_in_schema_is_current() {
    let path = root().join(sopflow::schema::SCHEMA_PATH);
    let on_disk = std::fs::read_to_string(&path).expect("schemas/workflow.schema.json exists");
    let generated = sopflow::schema::workflow_schema_json();
    assert!(
        on_disk == generated,
        "{} is out of date: run `cargo run -- schema > {}`",
        path.display(),
        sopflow::schema::SCHEMA_PATH
    );
}

#[test]
fn the_checked_in_role_list_schema_is_current() {
    let path = root().join(sopflow::schema::ROLES_SCHEMA_PATH);
    let on_disk = std::fs::read_to_string(&path).expect("schemas/roles.schema.json exists");
    assert!(
        on_disk == sopflow::schema::roles_schema_json(),
        "{} is out of date: run `cargo run -- schema roles > {}`",
        path.display(),
        sopflow::schema::ROLES_SCHEMA_PATH
    );
}

#[test]
fn the_shipped_role_list_conforms_to_its_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&sopflow::schema::roles_schema_json()).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let text = std::fs::read_to_string(root().join("workflows/roles.yaml")).expect("readable");
    let value: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(!validator.is_valid(&serde_json::json!({"roles": {"a": {"titel": "x"}}})));
}

#[test]
fn the_schema_is_draft_07_and_closed() {
    let schema: serde_json::Value =
        serde_json::from_str(&sopflow::schema::workflow_schema_json()).expect("JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    // Unknown keys are errors in the editor too.
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["definitions"]["Transition"]["additionalProperties"],
        false
    );
    for key in ["id", "title", "initial", "states"] {
        assert!(
            schema["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|k| k == key)),
            "{key}"
        );
    }
}

fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !sopflow::definition::roles::is_role_list(p))
        .collect();
    files.sort();
    files
}

#[test]
fn shipped_workflows_conform_to_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&sopflow::schema::workflow_schema_json()).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let mut files = yaml_files(&root().join("workflows"));
    files.extend(yaml_files(&root().join("tests/fixtures/base")));
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let value: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
}

#[test]
fn the_schema_rejects_what_the_validator_rejects_as_unknown() {
    let schema: serde_json::Value =
        serde_json::from_str(&sopflow::schema::workflow_schema_json()).expect("JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let typo = serde_json::json!({
        "id": "w", "title": "t", "initial": "a",
        "states": {"a": {"on": {"go": {"to": "b", "gaurd": "x"}}}, "b": {"final": true}}
    });
    assert!(!validator.is_valid(&typo));
    let fixed = serde_json::json!({
        "id": "w", "title": "t", "initial": "a",
        "states": {"a": {"on": {"go": [{"to": "b", "guard": "data.x > 1"}, {"to": "a"}]}}, "b": {"final": true}}
    });
    assert!(validator.is_valid(&fixed));
}

/// Editors' YAML support validates with ajv in strict mode, which refuses a schema naming a
/// format no draft defines (`uint32`, `int64`, `double`): the schemas name none.
#[test]
fn the_schemas_name_no_format_a_strict_validator_refuses() {
    fn formats(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(f) = map.get("format").and_then(|f| f.as_str()) {
                    out.push(f.to_string());
                }
                map.values().for_each(|v| formats(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| formats(v, out)),
            _ => {}
        }
    }
    for text in [
        sopflow::schema::workflow_schema_json(),
        sopflow::schema::roles_schema_json(),
    ] {
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let mut found = Vec::new();
        formats(&value, &mut found);
        assert!(found.is_empty(), "{found:?}");
    }
}
