//! The OpenAPI 3.1 document (`GET /api/openapi.json`), made from the route table
//! ([`ROUTES`]). Request bodies and query strings are described by the schemas of the very
//! types the handlers deserialize, and answers by those of the types they serialise
//! (schemars), so the documented shapes are the ones accepted and sent.

use super::table::Shape;
pub use super::table::{Access, Op, ROUTES, Route, Verb};

use super::schemas::{self, generator, schema};
use crate::server::problem::{PROBLEM_JSON, ProblemBody};
use axum::Json;
use schemars::generate::Contract;
use schemars::{JsonSchema, SchemaGenerator};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// The OpenAPI document itself: an object of the OpenAPI 3.1 specification's shape.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct OpenApiDocument(pub Map<String, Value>);

/// `GET /api/openapi.json`.
pub async fn document() -> Json<OpenApiDocument> {
    match openapi() {
        Value::Object(document) => Json(OpenApiDocument(document)),
        _ => Json(OpenApiDocument(Map::new())),
    }
}

/// The generators that collect `components.schemas` while the paths are described.
struct Components {
    answers: SchemaGenerator,
    bodies: SchemaGenerator,
}

/// The OpenAPI 3.1 document of [`ROUTES`].
pub fn openapi() -> Value {
    let mut components = Components {
        answers: generator(Contract::Serialize),
        bodies: generator(Contract::Deserialize),
    };
    let mut paths = Map::new();
    for route in ROUTES {
        let operation = operation(route, &mut components);
        let item = paths
            .entry(route.path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(route.verb.as_str().to_ascii_lowercase(), operation);
        }
    }
    // A type both sent and received would need one schema per side; none is, so the two
    // sets of definitions are disjoint (a test holds it).
    let mut definitions = components.answers.take_definitions(true);
    definitions.extend(components.bodies.take_definitions(true));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "sopflow",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Workflows from a service centre's operating manual, run and audited. Every error is application/problem+json (RFC 9457) with a stable `code`; its `type` is a URI the server describes. The actor of every step is the authenticated caller; bodies cannot name another.",
            "license": {"name": env!("CARGO_PKG_LICENSE"), "identifier": env!("CARGO_PKG_LICENSE")},
        },
        "servers": [{"url": "/", "description": "The server that serves this document"}],
        "tags": [
            {"name": "meta", "description": "The server itself"},
            {"name": "workflows", "description": "The definitions in force and their versions"},
            {"name": "instances", "description": "Running workflows: start, fire, read"},
            {"name": "audit", "description": "The auditor's questions"},
            {"name": "notices", "description": "People's notices, and the dead letters of delivery"},
        ],
        "paths": paths,
        "components": {
            "schemas": definitions,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token from the users file"},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::server::auth::SESSION_COOKIE, "description": "A console session; requests that change anything must also send the session's CSRF token in the X-CSRF-Token header"},
            },
        },
    })
}

fn operation(route: &Route, components: &mut Components) -> Value {
    let mut parameters: Vec<Value> = path_parameters(route.path);
    if let Some(query) = route.query {
        parameters.extend(query_parameters(&query()));
    }
    if matches!(route.op, Op::Start | Op::Fire) {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Repeat the command safely: the same key answers with the first result (`replayed: true`) and writes nothing new. 1 to 200 visible ASCII characters (a UUID will do); anything else is refused (400 `bad_idempotency_key`).",
            "schema": {"type": "string", "minLength": 1, "maxLength": super::MAX_IDEMPOTENCY_KEY, "pattern": "^[\\x21-\\x7E]+$"},
        }));
    }
    let mut op = json!({
        "operationId": format!("{:?}", route.op),
        "summary": route.summary,
        "tags": [route.tag],
        "responses": responses(route, components),
    });
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    let security = match route.access {
        Access::Public => json!([]),
        Access::User | Access::Role(_) => json!([{"bearer": []}, {"session": []}]),
    };
    op["security"] = security;
    if let Access::Role(role) = route.access {
        op["description"] = json!(format!(
            "Needs the role `{role}` (403 `missing_role` otherwise)."
        ));
    }
    if let Some(body) = route.body {
        let description = if route.body_required {
            "JSON. Unknown members are refused (422 `bad_body`)."
        } else {
            "JSON; an empty body is read as {}. Unknown members are refused (422 `bad_body`)."
        };
        op["requestBody"] = json!({
            "required": route.body_required,
            "description": description,
            "content": {"application/json": {"schema": body(&mut components.bodies)}},
        });
    }
    op
}

fn responses(route: &Route, components: &mut Components) -> Value {
    let answers = &mut components.answers;
    let content: Map<String, Value> = match route.shape {
        Shape::Json(of) => [(
            "application/json".to_string(),
            json!({"schema": of(answers)}),
        )]
        .into_iter()
        .collect(),
        Shape::Media(types) => types
            .iter()
            .map(|(media, of)| (media.to_string(), json!({"schema": of(answers)})))
            .collect(),
    };
    let problem = json!({
        "description": "A problem (RFC 9457) with a stable `code`",
        "content": {PROBLEM_JSON: {"schema": schema::<ProblemBody>(answers)}},
    });
    let mut out = Map::new();
    out.insert(
        route.status.to_string(),
        json!({"description": "Success", "content": content}),
    );
    if route.op == Op::Start {
        out.insert(
            "200".into(),
            json!({"description": "Replayed: the Idempotency-Key was used before", "content": {"application/json": {"schema": schema::<crate::engine::Outcome>(answers)}}}),
        );
    }
    if route.access != Access::Public {
        out.insert("401".into(), problem.clone());
    }
    if let Access::Role(_) = route.access {
        out.insert("403".into(), problem.clone());
    }
    out.insert("4XX".into(), problem.clone());
    out.insert("5XX".into(), problem);
    Value::Object(out)
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let description = match (name, path.starts_with("/api/workflows")) {
                ("id", true) => "The workflow's id, for example `hot_work_permit`",
                ("id", false) => "The instance's id, for example `hot_work_permit-1`, or its readable number, for example `DH-2026-0001`",
                ("event", _) => "The event, for example `approve`",
                ("hash", _) => "The version's hash (hex SHA-256 of its YAML and rules)",
                ("code", _) => "A problem's code, for example `stale`",
                _ => "",
            };
            // An instance id never has a control character (400 `bad_instance_id`).
            let schema = if name == "id" && !path.starts_with("/api/workflows") {
                json!({"type": "string", "pattern": "^[^\\x00-\\x1F\\x7F-\\x9F]+$"})
            } else {
                json!({"type": "string"})
            };
            json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
        })
        .collect()
}

/// One query parameter per property of a query type's schema.
fn query_parameters(schema: &Value) -> Vec<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = schema["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = schemas::without_null(property.clone());
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"))
                .unwrap_or(Value::String(String::new()));
            json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "description": description,
                "schema": property,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_routed_once_and_every_route_once() {
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(
                seen.insert(format!("{:?}", route.op)),
                "{:?} twice",
                route.op
            );
            assert!(
                ROUTES
                    .iter()
                    .filter(|r| r.path == route.path && r.verb == route.verb)
                    .count()
                    == 1
            );
        }
        assert_eq!(seen.len(), 29, "an Op is missing from ROUTES");
    }

    /// Every `$ref` resolves into `components.schemas`, every array says what it holds, and
    /// no schema is left in `$defs`: what a client generator needs to make typed models
    /// (one that meets an array without `items` drops the model that holds it).
    #[test]
    fn every_reference_resolves_and_every_array_has_items() {
        let doc = openapi();
        let components = doc["components"]["schemas"].as_object().expect("schemas");
        let mut problems = Vec::new();
        walk(&doc, "#", &mut |at, node| {
            if let Some(target) = node.get("$ref") {
                let name = target
                    .as_str()
                    .and_then(|t| t.strip_prefix("#/components/schemas/"));
                if !name.is_some_and(|n| components.contains_key(n)) {
                    problems.push(format!("{at}: $ref {target} does not resolve"));
                }
            }
            let is_array = node.get("type") == Some(&json!("array"))
                || node["type"]
                    .as_array()
                    .is_some_and(|t| t.contains(&json!("array")));
            if is_array && node.get("items").is_none() && node.get("prefixItems").is_none() {
                problems.push(format!("{at}: an array without items"));
            }
            if node.get("type") == Some(&json!("integer")) && node.get("format").is_some() {
                problems.push(format!("{at}: a Rust number format"));
            }
            if node.get("$defs").is_some() {
                problems.push(format!("{at}: $defs"));
            }
        });
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// Every success answer names a schema from `components.schemas` (or an array of one),
    /// generated from the handler's type; only text is a bare string.
    #[test]
    fn every_success_answer_is_a_component() {
        let doc = openapi();
        for route in ROUTES {
            let method = route.verb.as_str().to_ascii_lowercase();
            let answer = &doc["paths"][route.path][&method]["responses"][route.status.to_string()];
            let content = answer["content"].as_object().expect("content");
            for (media, body) in content {
                let schema = &body["schema"];
                let named = schema.get("$ref").is_some() || schema["items"].get("$ref").is_some();
                let text = !media.contains("json") && schema == &json!({"type": "string"});
                assert!(named || text, "{} {media}: {schema}", route.path);
            }
        }
        for name in [
            "Attempt",
            "Entry",
            "Outcome",
            "Instance",
            "InstanceView",
            "Task",
            "Problem",
        ] {
            assert!(
                doc["components"]["schemas"][name]["properties"].is_object(),
                "{name} has no properties"
            );
        }
    }

    /// The types sent and the types received are described by two generators; a type in
    /// both would be described twice, once for each side, and one would be lost.
    #[test]
    fn answers_and_bodies_share_no_schema() {
        let mut answers = generator(Contract::Serialize);
        let mut bodies = generator(Contract::Deserialize);
        for route in ROUTES {
            match route.shape {
                Shape::Json(of) => {
                    of(&mut answers);
                }
                Shape::Media(types) => types.iter().for_each(|(_, of)| {
                    of(&mut answers);
                }),
            }
            if let Some(body) = route.body {
                body(&mut bodies);
            }
        }
        schema::<ProblemBody>(&mut answers);
        for name in bodies.definitions().keys() {
            assert!(
                !answers.definitions().contains_key(name),
                "{name} on both sides"
            );
        }
    }

    fn walk(node: &Value, at: &str, visit: &mut dyn FnMut(&str, &Value)) {
        match node {
            Value::Object(object) => {
                visit(at, node);
                for (key, value) in object {
                    walk(value, &format!("{at}/{key}"), visit);
                }
            }
            Value::Array(items) => {
                for (i, value) in items.iter().enumerate() {
                    walk(value, &format!("{at}/{i}"), visit);
                }
            }
            _ => {}
        }
    }
}
