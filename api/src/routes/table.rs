//! The route table: every endpoint with its method, path, access and documentation.
//!
//! It is the only way a route reaches the router ([`build_router`]), so no route can exist
//! without an [`Access`] in front of it; the OpenAPI document and the route-walk test read the
//! same table, so none can be left out of either.

use super::AppState;
use crate::auth::{guard, Access, Authenticator, Guard};
use crate::openapi::Doc;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One method on one path.
pub struct Endpoint {
    pub method: Method,
    /// In axum's syntax: `/api/v1/instances/{id}`.
    pub path: &'static str,
    pub access: Access,
    pub doc: Doc,
    route: MethodRouter<AppState>,
}

impl Endpoint {
    fn new<H, T>(method: Method, path: &'static str, access: Access, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
        Endpoint {
            method,
            path,
            access,
            doc: Doc::new(summary),
            route: on(filter, handler),
        }
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: H,
    ) -> Self {
        Self::new(Method::GET, path, access, summary, handler)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: H,
    ) -> Self {
        Self::new(Method::POST, path, access, summary, handler)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        path: &'static str,
        access: Access,
        summary: &'static str,
        handler: H,
    ) -> Self {
        Self::new(Method::DELETE, path, access, summary, handler)
    }

    /// Changes the documentation (request body, answers, problems).
    pub fn doc(mut self, describe: impl FnOnce(Doc) -> Doc) -> Self {
        self.doc = describe(self.doc);
        self
    }
}

/// The router of `endpoints`, each behind a guard for its access.
pub fn build_router(endpoints: Vec<Endpoint>, authenticator: &Arc<Authenticator>) -> Router<AppState> {
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for endpoint in endpoints {
        let guarded = endpoint.route.route_layer(axum::middleware::from_fn_with_state(
            Guard {
                authenticator: authenticator.clone(),
                access: endpoint.access,
            },
            guard,
        ));
        let merged = match by_path.remove(endpoint.path) {
            Some(existing) => existing.merge(guarded),
            None => guarded,
        };
        by_path.insert(endpoint.path, merged);
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, route)| router.route(path, route))
}
