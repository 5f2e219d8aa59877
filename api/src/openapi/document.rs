//! Builds the document from the route table.

use super::Content;
use crate::auth::Access;
use crate::problem::ProblemDetails;
use crate::routes::table::Endpoint;
use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

/// The names of the `{…}` segments of a path.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// `snake_case` words of the path, for a stable operation id: `post_instances_id_transitions`.
fn operation_id(endpoint: &Endpoint) -> String {
    let words: Vec<String> = endpoint
        .path
        .trim_start_matches("/api/v1")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches(|c| c == '{' || c == '}').replace(['-', '.'], "_"))
        .collect();
    format!("{}_{}", endpoint.method.as_str().to_ascii_lowercase(), words.join("_"))
}

/// The first path segment after `/api/v1`, or the first segment: `instances`, `health`.
fn tag(path: &str) -> String {
    let rest = path.strip_prefix("/api/v1/").unwrap_or(path.trim_start_matches('/'));
    rest.split('/').next().unwrap_or("lablet").to_owned()
}

/// A query parameter's schema: `null` dropped from its types (an absent parameter is how a
/// query string says "none").
fn query_schema(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            schema["type"] = only;
        }
    }
    if let Some(any_of) = schema.get("anyOf").and_then(Value::as_array) {
        let kept: Vec<Value> = any_of
            .iter()
            .filter(|s| s.get("type") != Some(&json!("null")))
            .cloned()
            .collect();
        if kept.len() == 1 {
            let mut only = kept[0].clone();
            if let (Some(only), Some(description)) = (only.as_object_mut(), schema.get("description")) {
                only.insert("description".into(), description.clone());
            }
            schema = only;
        }
    }
    schema
}

/// Requests are described as they are read, answers as they are written (a field skipped when
/// empty is optional in an answer); both generators put their types in `components/schemas`.
struct Generators {
    requests: SchemaGenerator,
    answers: SchemaGenerator,
}

impl Generators {
    fn new() -> Self {
        let settings = || {
            let mut settings = SchemaSettings::draft2020_12();
            settings.definitions_path = "/components/schemas".into();
            settings
        };
        Generators {
            requests: settings().for_deserialize().into_generator(),
            answers: settings().for_serialize().into_generator(),
        }
    }

    /// Every named schema. A type described differently for requests and answers would need
    /// two names; the tests make sure none is.
    fn into_schemas(mut self) -> Result<Map<String, Value>, String> {
        let mut schemas = self.requests.take_definitions(true);
        for (name, schema) in self.answers.take_definitions(true) {
            match schemas.get(&name) {
                Some(other) if *other != schema => {
                    return Err(format!("{name} reads differently from how it is written"));
                }
                _ => {
                    schemas.insert(name, schema);
                }
            }
        }
        Ok(schemas)
    }
}

fn parameters(endpoint: &Endpoint, generator: &mut SchemaGenerator) -> Vec<Value> {
    let mut parameters: Vec<Value> = path_parameters(endpoint.path)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if let Some(query) = endpoint.doc.query {
        let schema = query(generator).to_value();
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                let mut parameter = json!({
                    "name": name,
                    "in": "query",
                    "required": required.contains(&name.as_str()),
                    "schema": query_schema(property),
                });
                if let Some(description) = property.get("description") {
                    parameter["description"] = description.clone();
                }
                parameters.push(parameter);
            }
        }
    }
    if endpoint.doc.waits_for_position {
        parameters.push(json!({
            "name": "Lablet-Min-Position",
            "in": "header",
            "required": false,
            "description": "Answer only once the read model has applied this position (read-your-writes).",
            "schema": {"type": "integer", "minimum": 0}
        }));
    }
    parameters
}

/// The problems an endpoint can answer: those of its doc, and those that follow from its
/// shape (credentials, parameters, a body) and from every request (a store may be down, the
/// server may shed load or time out).
fn problem_statuses(endpoint: &Endpoint) -> Vec<u16> {
    let mut statuses = endpoint.doc.problems.clone();
    if endpoint.access != Access::Public {
        statuses.extend([401, 403]);
    }
    if !path_parameters(endpoint.path).is_empty() {
        statuses.extend([400, 404]);
    }
    if endpoint.doc.query.is_some() || endpoint.doc.waits_for_position {
        // 400 for a parameter that cannot be read, 422 for one read but out of range.
        statuses.extend([400, 422]);
    }
    if endpoint.doc.body.is_some() {
        statuses.extend([400, 413, 415, 422]);
    }
    statuses.push(503);
    statuses.sort_unstable();
    statuses.dedup();
    statuses.retain(|status| *status != endpoint.doc.answer_status);
    statuses
}

fn reason(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Problem")
}

fn operation(endpoint: &Endpoint, generators: &mut Generators, problem: &Value) -> Value {
    let doc = &endpoint.doc;
    let generator = &mut generators.answers;
    let mut responses = Map::new();
    let answer = match doc.answer {
        Content::Json(schema) => json!({"application/json": {"schema": schema(generator).to_value()}}),
        Content::EventStream => json!({"text/event-stream": {"schema": {"type": "string"}}}),
        Content::Text => json!({"text/plain": {"schema": {"type": "string"}}}),
    };
    responses.insert(
        doc.answer_status.to_string(),
        json!({"description": reason(doc.answer_status), "content": answer}),
    );
    if let Some((status, schema)) = doc.other_answer {
        let content = json!({"application/json": {"schema": schema(generator).to_value()}});
        responses.insert(
            status.to_string(),
            json!({"description": reason(status), "content": content}),
        );
    }
    for status in problem_statuses(endpoint) {
        let mut response = json!({
            "description": reason(status),
            "content": {"application/problem+json": {"schema": problem}},
        });
        if status == 503 || status == 429 {
            response["headers"] = json!({"Retry-After": {"schema": {"type": "integer"}}});
        }
        if status == 401 {
            response["headers"] = json!({"WWW-Authenticate": {"schema": {"type": "string"}}});
        }
        responses.insert(status.to_string(), response);
    }
    let mut operation = json!({
        "operationId": operation_id(endpoint),
        "summary": doc.summary,
        "tags": [tag(endpoint.path)],
        "parameters": parameters(endpoint, &mut generators.requests),
        "responses": responses,
    });
    match endpoint.access {
        Access::Public => operation["security"] = json!([]),
        access => {
            operation["security"] = json!([{"bearerAuth": []}, {"apiKey": []}]);
            let roles: Vec<&str> = access.granted().iter().map(|role| role.as_str()).collect();
            operation["x-lablet-roles"] = json!(roles);
        }
    }
    if let Some((schema, required)) = doc.body {
        let schema = schema(&mut generators.requests).to_value();
        let mut content = Map::new();
        content.insert("application/json".into(), json!({"schema": schema}));
        for media in doc.body_media {
            content.insert((*media).into(), json!({"schema": {}}));
        }
        operation["requestBody"] = json!({"required": required, "content": content});
    }
    operation
}

/// The OpenAPI 3.1 document of `endpoints`.
pub fn document(endpoints: &[Endpoint]) -> Result<Value, String> {
    let mut generators = Generators::new();
    let problem = generators.answers.subschema_for::<ProblemDetails>().to_value();
    let mut paths: Map<String, Value> = Map::new();
    for endpoint in endpoints {
        let operation = operation(endpoint, &mut generators, &problem);
        let item = paths
            .entry(endpoint.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        item[endpoint.method.as_str().to_ascii_lowercase()] = operation;
    }
    let schemas = generators.into_schemas()?;
    Ok(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Lablet",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Runs hands-on network labs on a fleet of Cisco Modeling Labs servers.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A JWT from the configured OIDC issuer, or from `lablet token issue` on the embedded default.",
                },
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "A key from `lablet apikey create`.",
                },
            },
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::endpoints;

    #[test]
    fn every_endpoint_is_documented_once_with_its_security() {
        let table = endpoints(false);
        let doc = document(&table).expect("no type reads differently from how it is written");
        for endpoint in &table {
            let method = endpoint.method.as_str().to_ascii_lowercase();
            let operation = &doc["paths"][endpoint.path][&method];
            assert!(operation.is_object(), "{method} {} is missing", endpoint.path);
            let public = endpoint.access == Access::Public;
            assert_eq!(
                operation["security"].as_array().unwrap().is_empty(),
                public,
                "{}",
                endpoint.path
            );
            if !public {
                assert!(operation["responses"]["401"].is_object() && operation["responses"]["403"].is_object());
            }
        }
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(documented, table.len(), "no operation the table does not have");
    }

    #[test]
    fn query_parameters_drop_null_from_their_types() {
        assert_eq!(
            query_schema(&json!({"type": ["integer", "null"]})),
            json!({"type": "integer"})
        );
        assert_eq!(
            query_schema(&json!({"anyOf": [{"$ref": "#/x"}, {"type": "null"}], "description": "d"})),
            json!({"$ref": "#/x", "description": "d"})
        );
    }
}
