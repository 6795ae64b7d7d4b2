//! The OpenAPI 3.1 document (`GET /api/openapi.json`), made from the route table
//! ([`ROUTES`]). Request bodies and query strings are described by the schemas of the very
//! types the handlers deserialize (schemars), so their documented shapes are the accepted ones.

pub use super::table::{Access, Op, ROUTES, Route, Shape, Verb};

use super::schemas;
use axum::Json;
use serde_json::{Map, Value, json};

/// `GET /api/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(openapi())
}

/// The OpenAPI 3.1 document of [`ROUTES`].
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let item = paths
            .entry(route.path)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(route.verb.as_str().to_ascii_lowercase(), operation(route));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "sopflow",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Workflows from a service centre's operating manual, run and audited. Every error is application/problem+json with a stable `code`. The actor of every step is the authenticated caller; bodies cannot name another.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas::components(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token from the users file"},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::server::auth::SESSION_COOKIE, "description": "A console session; requests that change anything must also send the session's CSRF token in the X-CSRF-Token header"},
            },
        },
    })
}

fn operation(route: &Route) -> Value {
    let mut parameters: Vec<Value> = path_parameters(route.path);
    if let Some(query) = route.query {
        parameters.extend(query_parameters(&query()));
    }
    if matches!(route.op, Op::Start | Op::Fire) {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Repeat the command safely: the same key answers with the first result (`replayed: true`) and writes nothing new",
            "schema": {"type": "string", "maxLength": 200},
        }));
    }
    let mut op = json!({
        "operationId": format!("{:?}", route.op),
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": parameters,
        "responses": responses(route),
    });
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
        op["requestBody"] = json!({
            "required": false,
            "description": "JSON; an empty body is read as {}. Unknown members are refused (422 `bad_body`).",
            "content": {"application/json": {"schema": reference(body)}},
        });
    }
    op
}

fn responses(route: &Route) -> Value {
    let content = match route.shape {
        Shape::Json(name) => json!({"application/json": {"schema": reference(name)}}),
        Shape::List(name) => {
            json!({"application/json": {"schema": {"type": "array", "items": reference(name)}}})
        }
        Shape::Text(types) => Value::Object(
            types
                .iter()
                .map(|t| (t.to_string(), json!({"schema": {"type": "string"}})))
                .collect(),
        ),
    };
    let problem = json!({
        "description": "A problem (RFC 9457) with a stable `code`",
        "content": {crate::server::problem::PROBLEM_JSON: {"schema": reference("Problem")}},
    });
    let mut out = Map::new();
    out.insert(
        route.status.to_string(),
        json!({"description": "Success", "content": content}),
    );
    if route.op == Op::Start {
        out.insert(
            "200".into(),
            json!({"description": "Replayed: the Idempotency-Key was used before", "content": {"application/json": {"schema": reference("Outcome")}}}),
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

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
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
                _ => "",
            };
            json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string"}})
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
        assert_eq!(seen.len(), 20, "an Op is missing from ROUTES");
    }

    #[test]
    fn every_reference_resolves() {
        let doc = openapi();
        let text = doc.to_string();
        let components = doc["components"]["schemas"].as_object().expect("schemas");
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(components.contains_key(&name), "no schema {name}");
        }
        // Every reference points into the document's components.
        for part in text.split("\"$ref\":\"").skip(1) {
            assert!(
                part.starts_with("#/components/schemas/"),
                "a dangling $ref: {part:.60}"
            );
        }
        assert!(!text.contains("$defs"));
    }
}
