//! The BSON the MongoDB adapters send: filters, updates and the conversions between stored
//! documents and the JSON Lablet serves. Pure functions, unit-tested without a server.
//!
//! A read-model document is `{_id, body, last_position, operation_history}`: `body` is the
//! projection's JSON object (filter fields are `body.<field>`), `last_position` the last event
//! applied, and `operation_history` the newest 50 operations, kept by `$push` with `$each` and
//! `$slice: -50`.

use lablet_application::ports::read_models::{Filter, ListQuery, OPERATION_HISTORY_LIMIT};
use lablet_application::ports::{DocumentWrite, ReadModelError};
use mongodb::bson::{self, doc, Bson, Document};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub fn corrupt(err: impl std::fmt::Display) -> ReadModelError {
    ReadModelError::Corrupt(err.to_string())
}

/// A JSON object as BSON.
pub fn to_bson_document(object: &Map<String, Value>) -> Result<Document, ReadModelError> {
    bson::to_document(object).map_err(corrupt)
}

/// A BSON document as the JSON text Lablet serves (relaxed extended JSON: numbers stay numbers).
pub fn to_json_text(document: Document) -> String {
    Bson::Document(document).into_relaxed_extjson().to_string()
}

/// A BSON document as a JSON object.
pub fn to_json_object(document: Document) -> Result<Map<String, Value>, ReadModelError> {
    match Bson::Document(document).into_relaxed_extjson() {
        Value::Object(object) => Ok(object),
        other => Err(corrupt(format!("a document must be an object, not {other}"))),
    }
}

/// Matches document `id` only if it has not applied `last_position` (or anything later) yet;
/// an upsert with it inserts a missing document, and meets a duplicate key when the stored one
/// is newer (the write is then already applied).
pub fn guarded_filter(id: &str, last_position: u64) -> Document {
    doc! {
        "_id": id,
        "$or": [
            { "last_position": { "$lt": last_position as i64 } },
            { "last_position": { "$exists": false } },
        ],
    }
}

/// The update of one projected document: its whole body, its position, and its new operations
/// pushed with the history cut to the newest 50.
pub fn document_update(write: &DocumentWrite) -> Result<Document, ReadModelError> {
    let mut update = doc! {
        "$set": {
            "body": to_bson_document(&write.body)?,
            "last_position": write.last_position as i64,
        },
    };
    if !write.new_history.is_empty() {
        let entries: Vec<Bson> = write
            .new_history
            .iter()
            .map(|entry| serde_json::from_str::<Map<String, Value>>(entry.json.get()).map_err(corrupt))
            .map(|entry| entry.and_then(|e| to_bson_document(&e)).map(Bson::Document))
            .collect::<Result<_, _>>()?;
        update.insert(
            "$push",
            doc! {
                "operation_history": {
                    "$each": entries,
                    "$slice": -(OPERATION_HISTORY_LIMIT as i64),
                },
            },
        );
    }
    Ok(update)
}

/// The filter of a list query: every field filter on `body.<field>`, and the page cursor.
pub fn list_filter(query: &ListQuery) -> Document {
    let mut filter = Document::new();
    for condition in &query.filters {
        match condition {
            // Field names come from the collection spec, never from input.
            Filter::Equals { field, value } => filter.insert(format!("body.{field}"), value.as_str()),
            // `null` matches a field that is null or absent.
            Filter::IsNull { field } => filter.insert(format!("body.{field}"), Bson::Null),
        };
    }
    if let Some(after) = &query.after_id {
        filter.insert("_id", doc! { "$gt": after.as_str() });
    }
    filter
}

/// The served JSON of a stored document: its body with `operation_history` (when asked for
/// and stored).
pub fn served(mut stored: Document, with_history: bool) -> Result<Box<RawValue>, ReadModelError> {
    let body = stored.get_document("body").map_err(corrupt)?.clone();
    let history: Vec<Box<RawValue>> = if with_history {
        match stored.remove("operation_history") {
            Some(Bson::Array(entries)) => entries
                .into_iter()
                .map(|entry| RawValue::from_string(entry.into_relaxed_extjson().to_string()).map_err(corrupt))
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    };
    let text = to_json_text(body);
    if with_history {
        crate::documents::with_history(&text, &history)
    } else {
        RawValue::from_string(text).map_err(corrupt)
    }
}

/// Whether `err` is a duplicate key (code 11000): the guarded upsert met a newer document.
pub fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(write)) => write.code == 11000,
        ErrorKind::Command(command) => command.code == 11000,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lablet_application::ports::HistoryRecord;
    use serde_json::json;

    fn write(history: usize) -> DocumentWrite {
        let body = json!({"id": "lab-1", "state": "STARTED", "node_count": 4, "removed_at": null});
        DocumentWrite {
            collection: "lab_records",
            id: "lab-1".into(),
            body: body.as_object().unwrap().clone(),
            last_position: 42,
            new_history: (0..history)
                .map(|n| HistoryRecord {
                    position: 40 + n as u64,
                    json: RawValue::from_string(format!(r#"{{"position":{},"event_type":"x"}}"#, 40 + n)).unwrap(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_guard_matches_only_documents_behind_the_write() {
        assert_eq!(
            guarded_filter("lab-1", 42),
            doc! {"_id": "lab-1", "$or": [{"last_position": {"$lt": 42_i64}}, {"last_position": {"$exists": false}}]}
        );
    }

    #[test]
    fn an_update_sets_the_body_and_pushes_the_history_cut_to_fifty() {
        let update = document_update(&write(2)).unwrap();
        let set = update.get_document("$set").unwrap();
        assert_eq!(set.get_i64("last_position").unwrap(), 42);
        let body = set.get_document("body").unwrap();
        assert_eq!(body.get_str("state").unwrap(), "STARTED");
        assert_eq!(body.get("node_count"), Some(&Bson::Int64(4)));
        assert_eq!(body.get("removed_at"), Some(&Bson::Null));
        let push = update
            .get_document("$push")
            .unwrap()
            .get_document("operation_history")
            .unwrap();
        assert_eq!(push.get_i64("$slice").unwrap(), -50);
        let entries = push.get_array("$each").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1].as_document().unwrap().get("position"),
            Some(&Bson::Int64(41))
        );
        assert!(
            document_update(&write(0)).unwrap().get("$push").is_none(),
            "nothing to push"
        );
    }

    #[test]
    fn list_filters_name_body_fields_and_the_cursor() {
        let query = ListQuery {
            filters: vec![
                Filter::Equals {
                    field: "worker_id",
                    value: "w-1".into(),
                },
                Filter::IsNull { field: "removed_at" },
            ],
            limit: 10,
            after_id: Some("lab-9".into()),
            include_history: false,
        };
        assert_eq!(
            list_filter(&query),
            doc! {"body.worker_id": "w-1", "body.removed_at": Bson::Null, "_id": {"$gt": "lab-9"}}
        );
    }

    #[test]
    fn a_stored_document_is_served_as_its_body_with_its_history() {
        let update = document_update(&write(2)).unwrap();
        let set = update.get_document("$set").unwrap();
        let push = update
            .get_document("$push")
            .unwrap()
            .get_document("operation_history")
            .unwrap();
        let stored = doc! {
            "_id": "lab-1",
            "body": set.get_document("body").unwrap().clone(),
            "last_position": 42_i64,
            "operation_history": push.get_array("$each").unwrap().clone(),
        };
        let with: Value = serde_json::from_str(served(stored.clone(), true).unwrap().get()).unwrap();
        assert_eq!(with["node_count"], 4, "numbers stay numbers");
        assert_eq!(with["operation_history"][1]["position"], 41);
        let without: Value = serde_json::from_str(served(stored, false).unwrap().get()).unwrap();
        assert!(without.get("operation_history").is_none());
        assert_eq!(without["state"], "STARTED");
    }
}
