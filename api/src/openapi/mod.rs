//! The OpenAPI 3.1 document, generated from the route table: every endpoint with its access,
//! parameters, request body, answer and the problems it can answer. Schemas come from the
//! Rust types themselves (`schemars`, JSON Schema 2020-12, which OpenAPI 3.1 uses as is).

mod document;

pub use document::document;

use schemars::{JsonSchema, Schema, SchemaGenerator};

/// Produces the schema of one type, registering the types it refers to.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

fn inline_schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.root_schema_for::<T>()
}

/// What a successful answer carries.
#[derive(Clone, Copy)]
pub enum Content {
    Json(SchemaFn),
    /// `text/event-stream` (Server-Sent Events).
    EventStream,
    /// `text/plain` (the Prometheus exposition format).
    Text,
}

/// How an endpoint is documented.
#[derive(Clone)]
pub struct Doc {
    pub summary: &'static str,
    /// A JSON request body, and whether it is required.
    pub body: Option<(SchemaFn, bool)>,
    /// Other media types the body may come in (the inbox takes CloudEvents media types).
    pub body_media: &'static [&'static str],
    /// The query string, as an object type whose fields are the parameters.
    pub query: Option<SchemaFn>,
    /// Whether the endpoint honours `Lablet-Min-Position` (read-your-writes).
    pub waits_for_position: bool,
    pub answer_status: u16,
    pub answer: Content,
    /// A second success this endpoint may answer instead, with its JSON body.
    pub other_answer: Option<(u16, SchemaFn)>,
    /// Problems this endpoint answers beyond those every endpoint of its kind may answer.
    pub problems: Vec<u16>,
}

impl Doc {
    pub fn new(summary: &'static str) -> Self {
        Doc {
            summary,
            body: None,
            body_media: &[],
            query: None,
            waits_for_position: false,
            answer_status: 200,
            answer: Content::Json(schema_of::<serde_json::Value>),
            other_answer: None,
            problems: Vec::new(),
        }
    }

    /// A required JSON body of type `T`.
    pub fn body<T: JsonSchema>(mut self) -> Self {
        self.body = Some((schema_of::<T>, true));
        self
    }

    /// A JSON body of type `T` that may be left out.
    pub fn optional_body<T: JsonSchema>(mut self) -> Self {
        self.body = Some((schema_of::<T>, false));
        self
    }

    /// Media types besides `application/json` the body may be sent as.
    pub fn body_media(mut self, media: &'static [&'static str]) -> Self {
        self.body_media = media;
        self
    }

    pub fn query<T: JsonSchema>(mut self) -> Self {
        self.query = Some(inline_schema_of::<T>);
        self
    }

    pub fn waits_for_position(mut self) -> Self {
        self.waits_for_position = true;
        self
    }

    /// Answers `status` with a JSON body of type `T`.
    pub fn answers<T: JsonSchema>(mut self, status: u16) -> Self {
        self.answer_status = status;
        self.answer = Content::Json(schema_of::<T>);
        self
    }

    /// May answer `status` with a JSON body of type `T` instead of its usual answer.
    pub fn or_answers<T: JsonSchema>(mut self, status: u16) -> Self {
        self.other_answer = Some((status, schema_of::<T>));
        self
    }

    pub fn answers_events(mut self) -> Self {
        self.answer = Content::EventStream;
        self
    }

    pub fn answers_text(mut self) -> Self {
        self.answer = Content::Text;
        self
    }

    pub fn problems(mut self, statuses: &[u16]) -> Self {
        self.problems.extend_from_slice(statuses);
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::routes::endpoints;

    /// The whole OpenAPI document as a snapshot (`snapshots/`): any change to a route, a body, an
    /// answer or a problem shows up in review as a change of this file.
    #[test]
    fn the_openapi_document_is_as_reviewed() {
        let document = super::document(&endpoints(false)).expect("the document is made");
        // Keys sorted: whether serde_json keeps insertion order depends on the build's features.
        insta::with_settings!({ sort_maps => true }, {
            insta::assert_json_snapshot!("openapi", document);
        });
    }
}
