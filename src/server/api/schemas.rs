//! The schemas of `components.schemas` in the OpenAPI document: request bodies from the types
//! the handlers deserialize (so the document cannot promise a shape the server refuses), and
//! hand-written envelopes for the answers, whose types (`Instance`, `Entry`...) belong to the
//! engine and have no JSON Schema of their own.

use super::{audit, instances, meta};
use schemars::JsonSchema;
use serde_json::{Value, json};

/// The JSON Schema (2020-12, which OpenAPI 3.1 uses) of a type, self-contained (no `$defs`,
/// whose references would break once the schema is moved into the document) and without its
/// `$schema` key.
pub fn of<T: JsonSchema>() -> Value {
    let mut schema = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
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

fn string() -> Value {
    json!({"type": "string"})
}

fn nullable(kind: &str) -> Value {
    json!({"type": [kind, "null"]})
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn list(name: &str) -> Value {
    json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{name}")}})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Every schema the paths refer to.
pub fn components() -> Value {
    let mut components = all_components();
    // Added here: the `json!` above is as large as the macro's recursion allows.
    components["Entry"]["properties"]["number"] = json!({"type": "string", "description": "On a start: the instance's readable number, when its workflow has a `number` format"});
    components
}

fn all_components() -> Value {
    json!({
        "Any": {},
        "StartBody": of::<instances::StartBody>(),
        "FireBody": of::<instances::FireBody>(),
        "VerifyBody": of::<audit::VerifyBody>(),
        "ReloadBody": of::<meta::ReloadBody>(),
        "Problem": object(&["type", "title", "status", "detail", "code"], json!({
            "type": string(), "title": string(), "status": {"type": "integer"},
            "detail": string(),
            "code": {"type": "string", "description": "Stable: a refusal's own code (role_not_allowed, four_eyes, not_your_turn, missing_field, field_not_writable, field_fixed, too_long, ill_typed, guard_failed, stale, not_a_party...), or the server's: missing_role, unauthenticated, bad_json, bad_body, bad_query, bad_path, bad_instance_id, unsupported_media_type, body_too_large, body_timeout, uri_too_long, headers_too_large, too_many_connections, no_route, method_not_allowed, unknown_instance, unknown_workflow, definitions_invalid, signin_busy, signin_throttled, login_cross_site, login_expired, demo_user_proxied"},
            "refused": {"type": "boolean", "description": "Present (true) when the engine refused a command: nothing was written"},
        })),
        "Health": object(&["status", "version", "workflows", "time"], json!({
            "status": {"const": "ok"}, "version": string(), "workflows": {"type": "integer"}, "time": time(),
        })),
        "Me": object(&["id", "name", "roles"], json!({
            "id": string(), "name": string(), "roles": {"type": "array", "items": string()},
        })),
        "Diagnostic": object(&["code", "severity", "file", "line", "column", "message", "hint"], json!({
            "code": string(), "severity": string(), "file": string(), "line": {"type": "integer"},
            "column": {"type": "integer"}, "message": string(), "hint": string(),
        })),
        "Attempt": object(&["at", "result", "changed", "removed", "errors", "warnings", "diagnostics"], json!({
            "at": time(),
            "result": {"enum": ["applied", "unchanged", "rejected", "failed"]},
            "changed": {"type": "array", "description": "[workflow, old hash or null, new hash]", "items": {"type": "array"}},
            "removed": {"type": "array", "items": string()},
            "errors": {"type": "integer"}, "warnings": {"type": "integer"},
            "diagnostics": list("Diagnostic"),
            "message": nullable("string"),
        })),
        "Validation": object(&["ok", "errors", "warnings", "diagnostics", "last_reload"], json!({
            "ok": {"type": "boolean", "description": "The definitions in force have no error"},
            "errors": {"type": "integer"}, "warnings": {"type": "integer"},
            "diagnostics": list("Diagnostic"),
            "last_reload": {"oneOf": [reference("Attempt"), {"type": "null"}]},
        })),
        "WorkflowSummary": object(&["id", "title", "description", "version", "source", "roles", "states", "start_roles", "can_start"], json!({
            "id": string(), "title": string(), "description": nullable("string"),
            "version": {"type": "string", "description": "The newest version's hash"},
            "source": {"oneOf": [{"type": "null"}, object(&["manual"], json!({
                "manual": string(), "section": nullable("string"), "lines": nullable("string"),
            }))]},
            "roles": {"type": "object", "additionalProperties": string(), "description": "role id: title"},
            "states": {"type": "integer", "description": "How many states"},
            "start_roles": {"type": "array", "items": string(), "description": "The roles that may start an instance (empty: only a schedule or a parent workflow)"},
            "can_start": {"type": "boolean", "description": "Whether the caller may start one"},
        })),
        "WorkflowDetail": object(&["id", "title", "description", "version", "file", "yaml", "rules", "roles", "states"], json!({
            "id": string(), "title": string(), "description": nullable("string"), "version": string(),
            "file": string(), "yaml": string(),
            "rules": {"type": "object", "additionalProperties": string(), "description": "rules file name: text"},
            "roles": {"type": "object", "additionalProperties": string()},
            "states": {"type": "array", "items": object(&["id", "title", "final"], json!({
                "id": string(), "title": nullable("string"), "final": {"type": "boolean"},
            }))},
        })),
        "VersionRef": object(&["hash", "file", "current"], json!({
            "hash": string(), "file": string(),
            "current": {"type": "boolean", "description": "New instances start on it"},
        })),
        "StoredDefinition": object(&["hash", "workflow", "file", "yaml", "rules"], json!({
            "hash": string(), "workflow": string(), "file": string(), "yaml": string(),
            "rules": {"type": "object", "additionalProperties": string()},
        })),
        "Instance": object(&["id", "workflow", "version", "state", "data", "seq", "created", "updated", "finished"], json!({
            "id": string(), "workflow": string(), "version": string(), "state": string(),
            "data": {"type": "object"}, "seq": {"type": "integer", "description": "The last entry's number: send it as expected_seq"},
            "business_key": nullable("string"), "parent": nullable("string"),
            "number": {"type": "string", "description": "The readable number (`DH-2026-0001`) of a workflow with a `number` format; absent otherwise. `GET /api/instances/{number}` finds the instance by it"},
            "children": {"type": "array"}, "approval": {}, "timers": {"type": "array"}, "acts": {"type": "array"},
            "started_by": {"oneOf": [string(), {"type": "null"}], "description": "Who started it; null when a schedule or a parent workflow did"},
            "roles": {"type": "array", "items": string(), "description": "The roles people have acted in on it"},
            "created": time(), "updated": time(), "finished": {"type": "boolean"}, "last_hash": string(),
        })),
        "Entry": object(&["instance", "seq", "kind", "workflow", "version", "event", "to", "actor", "payload", "changes", "at", "prev_hash", "hash"], json!({
            "instance": string(), "seq": {"type": "integer"}, "kind": string(), "workflow": string(),
            "version": string(), "event": string(), "from": nullable("string"), "to": string(),
            "entered": {"type": "boolean"}, "finished": {"type": "boolean"},
            "actor": string(), "role": nullable("string"),
            "payload": {"type": "object"}, "changes": {"type": "object"},
            "guards": {"type": "array"}, "at": time(),
            "audit": {"type": "string", "enum": ["approval", "rejection", "decision"], "description": "What a person's step was to an auditor, recorded by the step"},
            "branch": {"type": "integer", "description": "Which of the event's guarded branches the step took, from 0"},
            "idempotency_key": string(),
            "prev_hash": string(), "hash": {"type": "string", "description": "SHA-256 of the entry's canonical JSON; links to the next entry's prev_hash"},
        })),
        "Outcome": object(&["instance", "entry", "replayed"], json!({
            "instance": reference("Instance"), "entry": reference("Entry"),
            "replayed": {"type": "boolean", "description": "An Idempotency-Key matched an earlier command: nothing new was written"},
        })),
        "Available": object(&["event", "title", "role"], json!({
            "event": string(), "title": nullable("string"), "role": string(),
            "blocked": {"type": "array", "items": string(), "description": "Present when the instance's data keeps the step closed for now: what its guards said (may be empty)"},
        })),
        "Turn": object(&["event", "title", "role", "role_title"], json!({
            "event": string(), "title": nullable("string"), "role": string(), "role_title": string(),
        })),
        "Next": object(&["turns", "timers", "children"], json!({
            "turns": list("Turn"),
            "timers": {"type": "array", "items": {"type": "object"}, "description": "The current state's pending timers (id, event, due, title), earliest first"},
            "children": {"type": "array", "items": string(), "description": "Awaited children not finished yet"},
        })),
        "InstanceView": object(&["instance", "state_title", "available", "blocked", "next", "overdue"], json!({
            "instance": reference("Instance"), "state_title": nullable("string"),
            "available": list("Available"),
            "blocked": {"type": "array", "items": reference("Available"), "description": "The caller's steps here that the instance's data keeps closed for now, each with why"},
            "next": reference("Next"), "overdue": {"type": "boolean"},
        })),
        "Task": object(&["instance", "actions", "due", "timer", "overdue"], json!({
            "instance": reference("Instance"), "actions": list("Available"),
            "due": {"oneOf": [time(), {"type": "null"}]},
            "timer": {"oneOf": [{"type": "object", "description": "The pending timer of `due`: id, event, due, title"}, {"type": "null"}]},
            "overdue": {"type": "boolean"},
        })),
        "ApprovalChain": {"type": "object", "description": "The shape of `sopflow audit chain --format json`: the instance, and one link per step with actor, role, local and UTC times, comment, guards explained and version", "required": ["instance", "workflow", "links"]},
        "Verification": object(&["clean", "summary", "digest_token", "digest_check", "problems"], json!({
            "clean": {"type": "boolean"},
            "summary": {"type": "object", "description": "instances, entries, definitions, problems, digest"},
            "digest_token": {"type": "string", "description": "TIME:HEX; give it back as `digest` to check nothing made by then changed"},
            "digest_check": {"oneOf": [{"type": "null"}, object(&["expected", "matches"], json!({"expected": string(), "matches": {"type": "boolean"}}))]},
            "problems": {"type": "array", "items": object(&["code", "detail"], json!({
                "code": string(), "instance": string(), "seq": {"type": "integer"}, "detail": string(),
            }))},
        })),
    })
}
