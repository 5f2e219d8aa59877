//! Queries on read models: one document, or a filtered page of a collection, optionally after
//! waiting for the projection to reach a position (read-your-writes).

use crate::context::RequestContext;
use crate::error::{AppError, FieldError};
use crate::mediator::{Handler, Request, RequestKind};
use crate::ports::read_models::Filter;
use crate::ports::{CollectionSpec, EventStore, ListPage, ListQuery, ReadModelStore, StoredDocument};
use crate::progress::ProjectionProgress;
use async_trait::async_trait;
use lablet_domain::AggregateKind;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub const LAB_RECORDS: CollectionSpec = CollectionSpec {
    name: "lab_records",
    filter_fields: &["worker_id", "state", "removed_at"],
};
pub const LABLET_INSTANCES: CollectionSpec = CollectionSpec {
    name: "lablet_instances",
    filter_fields: &["state", "owner_id", "worker_id"],
};
pub const WORK_ORDERS: CollectionSpec = CollectionSpec {
    name: "work_orders",
    filter_fields: &["state", "kind"],
};
pub const WORKERS: CollectionSpec = CollectionSpec {
    name: "workers",
    filter_fields: &["status", "region"],
};
pub const LABLET_DEFINITIONS: CollectionSpec = CollectionSpec {
    name: "lablet_definitions",
    filter_fields: &["name", "status"],
};
pub const WORKER_TEMPLATES: CollectionSpec = CollectionSpec {
    name: "worker_templates",
    filter_fields: &["name", "license_type"],
};
pub const COLLECTIONS: [CollectionSpec; 6] = [
    LAB_RECORDS,
    LABLET_INSTANCES,
    WORK_ORDERS,
    WORKERS,
    LABLET_DEFINITIONS,
    WORKER_TEMPLATES,
];

/// The read model that documents the aggregates of `kind`, if it has one.
pub fn collection_of_kind(kind: AggregateKind) -> Option<CollectionSpec> {
    match kind {
        AggregateKind::LabRecord => Some(LAB_RECORDS),
        AggregateKind::LabletInstance => Some(LABLET_INSTANCES),
        AggregateKind::WorkOrder => Some(WORK_ORDERS),
        AggregateKind::Worker => Some(WORKERS),
        AggregateKind::InboxMessage => None,
        AggregateKind::LabletDefinition => Some(LABLET_DEFINITIONS),
        AggregateKind::WorkerTemplate => Some(WORKER_TEMPLATES),
    }
}

/// Page sizes of list queries.
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 500;

/// One document by id.
pub struct GetDocument {
    pub collection: CollectionSpec,
    pub id: String,
    pub min_position: Option<u64>,
}

impl Request for GetDocument {
    type Output = Box<RawValue>;
    const NAME: &'static str = "get_document";
    const KIND: RequestKind = RequestKind::Query;
}

/// Several documents by id at once, without their history; missing ones are absent.
pub struct GetDocuments {
    pub collection: CollectionSpec,
    pub ids: Vec<String>,
}

impl Request for GetDocuments {
    type Output = HashMap<String, StoredDocument>;
    const NAME: &'static str = "get_documents";
    const KIND: RequestKind = RequestKind::Query;
}

/// A page of a collection.
pub struct ListDocuments {
    pub collection: CollectionSpec,
    pub query: ListQuery,
    pub min_position: Option<u64>,
}

impl Request for ListDocuments {
    type Output = ListPage;
    const NAME: &'static str = "list_documents";
    const KIND: RequestKind = RequestKind::Query;

    fn validate(&self) -> Result<(), Vec<crate::FieldError>> {
        let unknown = self.query.filters.iter().find_map(|filter| {
            let field = match filter {
                Filter::Equals { field, .. } | Filter::IsNull { field } => *field,
            };
            (!self.collection.filter_fields.contains(&field)).then_some(field)
        });
        match unknown {
            Some(field) => Err(vec![crate::FieldError::new(field, "cannot be filtered on")]),
            None => crate::error::validate_limit(self.query.limit, MAX_PAGE),
        }
    }
}

pub struct ReadModelQueries {
    store: Arc<dyn ReadModelStore>,
    /// Asked for its head when a query waits for a position not applied yet.
    events: Arc<dyn EventStore>,
    progress: ProjectionProgress,
    max_wait: Duration,
}

impl ReadModelQueries {
    pub fn new(
        store: Arc<dyn ReadModelStore>,
        events: Arc<dyn EventStore>,
        progress: ProjectionProgress,
        max_wait: Duration,
    ) -> Self {
        ReadModelQueries {
            store,
            events,
            progress,
            max_wait,
        }
    }

    async fn wait(&self, collection: CollectionSpec, min_position: Option<u64>) -> Result<(), AppError> {
        let Some(position) = min_position else {
            return Ok(());
        };
        if position > self.progress.applied(collection.name).position {
            // A position no command has reached yet is a mistake, not something to wait for.
            let head = self.events.head_position().await?;
            if position > head {
                return Err(AppError::Validation(vec![FieldError::new(
                    "Lablet-Min-Position",
                    format!("is beyond the log's head ({head}); send a position a command answered"),
                )]));
            }
        }
        self.progress.wait_for(collection.name, position, self.max_wait).await
    }
}

#[async_trait]
impl Handler<GetDocument> for ReadModelQueries {
    async fn handle(&self, request: &GetDocument, _: &RequestContext) -> Result<Box<RawValue>, AppError> {
        self.wait(request.collection, request.min_position).await?;
        self.store
            .get(request.collection.name, &request.id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("{} {}", request.collection.name, request.id)))
    }
}

#[async_trait]
impl Handler<GetDocuments> for ReadModelQueries {
    async fn handle(
        &self,
        request: &GetDocuments,
        _: &RequestContext,
    ) -> Result<HashMap<String, StoredDocument>, AppError> {
        Ok(self.store.load_documents(request.collection.name, &request.ids).await?)
    }
}

#[async_trait]
impl Handler<ListDocuments> for ReadModelQueries {
    async fn handle(&self, request: &ListDocuments, _: &RequestContext) -> Result<ListPage, AppError> {
        self.wait(request.collection, request.min_position).await?;
        Ok(self.store.list(request.collection.name, &request.query).await?)
    }
}

/// Every document of `collection` matching `filters`, parsed.
pub async fn list_all<T: serde::de::DeserializeOwned>(
    mediator: &crate::mediator::Mediator,
    collection: CollectionSpec,
    filters: Vec<Filter>,
    context: &RequestContext,
) -> Result<Vec<T>, AppError> {
    let mut found = Vec::new();
    let mut after_id = None;
    loop {
        let query = ListDocuments {
            collection,
            query: ListQuery {
                filters: filters.clone(),
                limit: MAX_PAGE,
                after_id: after_id.take(),
                include_history: false,
            },
            min_position: None,
        };
        let page = mediator.send(query, context).await?;
        for item in &page.items {
            found.push(
                serde_json::from_str(item.get())
                    .map_err(|e| AppError::Internal(format!("a {} document cannot be read: {e}", collection.name)))?,
            );
        }
        match page.next_cursor {
            Some(cursor) => after_id = Some(cursor),
            None => return Ok(found),
        }
    }
}
