//! The schemas of the OpenAPI document, all made by schemars from Rust types: request bodies
//! from the types the handlers deserialize (so the document cannot promise a shape the server
//! refuses), answers from the types they serialise (so a generated client gets typed models
//! that match what it receives). Nothing is described by hand.

use schemars::generate::{Contract, SchemaSettings};
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

/// The JSON Schema (2020-12, which OpenAPI 3.1 uses) of a type, self-contained (no `$defs`,
/// whose references would break once the schema is moved into the document) and without its
/// `$schema` key.
pub fn of<T: JsonSchema>() -> Value {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .with_transform(no_number_formats())
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
    }
    schema
}

/// A query parameter's schema: a parameter is left out rather than sent as `null`, so the
/// `null` alternative of an `Option` is dropped.
pub fn without_null(schema: Value) -> Value {
    let Value::Object(mut object) = schema else {
        return schema;
    };
    if object.get("default") == Some(&Value::Null) {
        object.remove("default");
    }
    if let Some(Value::Array(types)) = object.get("type") {
        let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        object.insert(
            "type".into(),
            match kept.as_slice() {
                [one] => one.clone(),
                _ => Value::Array(kept),
            },
        );
    }
    // An optional enum lists `null` among its values (`["me", null]`), which its type no
    // longer allows.
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    let is_null =
        |v: &Value| v.get("type") == Some(&json!("null")) || v.get("const") == Some(&Value::Null);
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(options)) = object.get(key) {
            let kept: Vec<Value> = options.iter().filter(|o| !is_null(o)).cloned().collect();
            if let [one] = kept.as_slice() {
                let description = object.remove("description");
                let mut merged = one.clone();
                // The field's own description says more than its type's.
                if let (Some(description), Some(m)) = (description, merged.as_object_mut()) {
                    m.insert("description".into(), description);
                }
                object.remove(key);
                if let Value::Object(inner) = merged {
                    object.extend(inner);
                }
            }
        }
    }
    Value::Object(object)
}

/// A type's schema in the document: a reference into `components.schemas` for a named type
/// (the generator collects its definition), inline for the rest (`Vec<T>` is an array of
/// references, `String` a string).
pub fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A generator whose definitions go to `components.schemas`. Answers are described as the
/// handlers serialise them (a field that is always sent is required) and bodies as they are
/// deserialised (a field with a default may be left out), so each side has its own contract.
pub fn generator(contract: Contract) -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.contract = contract;
        })
        .with_transform(no_number_formats())
        .into_generator()
}

/// The transform that drops the Rust-specific number formats (`uint64`...) from every
/// schema, as the editors' schemas do.
fn no_number_formats() -> RecursiveTransform<fn(&mut Schema)> {
    RecursiveTransform(crate::schema::drop_number_formats as fn(&mut Schema))
}
