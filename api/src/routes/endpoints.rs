//! The table of every endpoint Lablet serves: method, path, who may call it, its handler and
//! its documentation. The router, the OpenAPI document, the route-walk test and the API guide's
//! tidy check all read it.

use super::table::Endpoint;
use super::*;

/// Every endpoint Lablet serves; `/metrics` needs credentials unless `metrics_public`.
pub fn endpoints(metrics_public: bool) -> Vec<Endpoint> {
    use Endpoint as E;
    let metrics_access = if metrics_public {
        Access::Public
    } else {
        Access::OBSERVE
    };
    let mut table = vec![
        E::get("/health/live", Access::Public, "The process answers", health::live),
        E::get(
            "/health/ready",
            Access::Public,
            "Stores answer and projections caught up",
            health::ready,
        ),
        E::get("/metrics", metrics_access, "Prometheus metrics", metrics::scrape).doc(|d| d.answers_text()),
        E::get(
            "/api/v1/openapi.json",
            Access::Public,
            "This document",
            openapi_document,
        ),
        E::post(
            "/api/v1/lab-records/observations",
            Access::OPERATE,
            "Record a lab as a worker reports it",
            lab_records::observe,
        )
        .doc(|d| {
            d.body::<lab_records::ObservationBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::get(
            "/api/v1/lab-records",
            Access::READ,
            "List lab records",
            lab_records::list,
        )
        .doc(|d| {
            d.query::<lab_records::ListParams>()
                .waits_for_position()
                .answers::<DocumentPage>(200)
        }),
        E::get(
            "/api/v1/lab-records/{id}",
            Access::READ,
            "One lab record",
            lab_records::get_one,
        )
        .doc(|d| d.waits_for_position().answers::<Document>(200)),
        E::post(
            "/api/v1/lab-records/{id}/remove",
            Access::OPERATE,
            "Remove a lab record",
            lab_records::remove,
        )
        .doc(|d| {
            d.optional_body::<lab_records::RemoveBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::get(
            "/api/v1/workers/{worker_id}/labs",
            Access::READ,
            "The labs on one worker",
            lab_records::list_for_worker,
        )
        .doc(|d| {
            d.query::<lab_records::ListParams>()
                .waits_for_position()
                .answers::<DocumentPage>(200)
        }),
        E::post(
            "/api/v1/workers",
            Access::ADMIN,
            "Register a CML worker (credentials are sealed, never shown)",
            workers::register,
        )
        .doc(|d| {
            d.body::<workers::RegisterBody>()
                .answers::<Created>(201)
                .problems(&[409])
        }),
        E::get("/api/v1/workers", Access::READ, "List workers", workers::list).doc(|d| {
            d.query::<workers::ListParams>()
                .waits_for_position()
                .answers::<DocumentPage>(200)
        }),
        E::get("/api/v1/workers/{id}", Access::READ, "One worker", workers::get_one)
            .doc(|d| d.waits_for_position().answers::<Document>(200)),
        E::delete(
            "/api/v1/workers/{id}",
            Access::ADMIN,
            "Terminate a worker",
            workers::terminate,
        )
        .doc(|d| d.answers::<CommandOutcome>(200).problems(&[409])),
        E::post(
            "/api/v1/workers/{id}/drain",
            Access::OPERATE,
            "Drain a worker: it takes no new work",
            workers::drain,
        )
        .doc(|d| {
            d.optional_body::<workers::ReasonBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/workers/{id}/cancel-drain",
            Access::ADMIN,
            "Cancel a drain: the worker runs again",
            workers::cancel_drain,
        )
        .doc(|d| {
            d.optional_body::<workers::ReasonBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/workers/{id}/stop",
            Access::OPERATE,
            "Stop a worker",
            workers::stop,
        )
        .doc(|d| {
            d.optional_body::<workers::ReasonBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/workers/{id}/status",
            Access::ADMIN,
            "Move a worker to a status its status machine allows",
            workers::set_status,
        )
        .doc(|d| {
            d.body::<workers::StatusBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/workers/{id}/credentials",
            Access::ADMIN,
            "Replace a worker's CML credentials (sealed, never shown)",
            workers::change_credentials,
        )
        .doc(|d| {
            d.body::<workers::CredentialsBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/workers/{id}/idle-detection",
            Access::OPERATE,
            "Turn idle detection on or off",
            workers::idle_detection,
        )
        .doc(|d| {
            d.body::<workers::IdleDetectionBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/workers/{id}/capacity",
            Access::ADMIN,
            "Change what a worker declares it can hold (available capacity never goes below zero)",
            workers::declare_capacity,
        )
        .doc(|d| {
            d.body::<workers::CapacityBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::get(
            "/api/v1/workers/{id}/idle-status",
            Access::READ,
            "Whether a worker is idle now, and why",
            workers::idle_status,
        )
        .doc(|d| d.answers::<lablet_application::workers::WorkerIdleStatus>(200)),
        E::post(
            "/api/v1/workers/{id}/labs/refresh",
            Access::OPERATE,
            "Refresh a worker's labs now (at most once per 10 s)",
            workers::refresh_labs,
        )
        .doc(|d| d.answers::<workers::RefreshAnswer>(200).problems(&[409, 429, 502])),
        E::post(
            "/api/v1/instances",
            Access::INSTANCES,
            "Reserve a lablet instance",
            instances::request,
        )
        .doc(|d| {
            d.body::<instances::RequestBody>()
                .answers::<Created>(201)
                .problems(&[409])
        }),
        E::get(
            "/api/v1/instances",
            Access::READ,
            "List lablet instances",
            instances::list,
        )
        .doc(|d| {
            d.query::<instances::ListParams>()
                .waits_for_position()
                .answers::<DocumentPage>(200)
        }),
        E::get(
            "/api/v1/instances/{id}",
            Access::READ,
            "One lablet instance",
            instances::get_one,
        )
        .doc(|d| d.waits_for_position().answers::<Document>(200)),
        E::get(
            "/api/v1/instances/{id}/placement",
            Access::READ,
            "The scheduler's last placement decision for an instance, and why",
            instances::placement,
        )
        .doc(|d| d.waits_for_position().answers::<instances::PlacementView>(200)),
        E::post(
            "/api/v1/instances/{id}/transitions",
            Access::INSTANCES,
            "Move an instance to another state",
            instances::transition,
        )
        .doc(|d| {
            d.body::<instances::TransitionBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/instances/{id}/timeslot",
            Access::INSTANCES,
            "Extend an instance's timeslot",
            instances::extend_timeslot,
        )
        .doc(|d| {
            d.body::<instances::TimeslotBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/instances/{id}/score",
            Access::OPERATE,
            "Record an instance's grading score",
            instances::record_score,
        )
        .doc(|d| {
            d.body::<instances::ScoreBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/definitions",
            Access::OPERATE,
            "Create a lablet definition with its first version (pending until its artifact is synced)",
            definitions::create,
        )
        .doc(|d| {
            d.body::<definitions::CreateBody>()
                .answers::<Created>(201)
                .problems(&[409])
        }),
        E::get(
            "/api/v1/definitions",
            Access::READ,
            "List lablet definitions (by name, by the newest version's status)",
            definitions::list,
        )
        .doc(|d| {
            d.query::<definitions::ListParams>()
                .waits_for_position()
                .answers::<DocumentPage>(200)
        }),
        E::get(
            "/api/v1/definitions/{id}",
            Access::READ,
            "One lablet definition with its versions",
            definitions::get_one,
        )
        .doc(|d| d.waits_for_position().answers::<Document>(200)),
        E::post(
            "/api/v1/definitions/{id}/versions",
            Access::OPERATE,
            "Add the next version of a definition",
            definitions::add_version,
        )
        .doc(|d| {
            d.body::<definitions::VersionBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/definitions/{id}/versions/{version}/deprecate",
            Access::OPERATE,
            "Deprecate a version: no new instances, running ones go on",
            definitions::deprecate,
        )
        .doc(|d| {
            d.optional_body::<definitions::DeprecateBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/definitions/{id}/versions/{version}/archive",
            Access::OPERATE,
            "Archive a version that is not active",
            definitions::archive,
        )
        .doc(|d| d.answers::<CommandOutcome>(200).problems(&[409, 422])),
        E::post(
            "/api/v1/definitions/{id}/versions/{version}/deactivate",
            Access::OPERATE,
            "Take the active version out of service (no new instances) until it is reactivated",
            definitions::deactivate,
        )
        .doc(|d| d.answers::<CommandOutcome>(200).problems(&[409, 422])),
        E::post(
            "/api/v1/definitions/{id}/versions/{version}/reactivate",
            Access::OPERATE,
            "Put an inactive version back in service, if no other version is active",
            definitions::reactivate,
        )
        .doc(|d| d.answers::<CommandOutcome>(200).problems(&[409, 422])),
        E::post(
            "/api/v1/worker-templates",
            Access::ADMIN,
            "Define a worker template",
            worker_templates::define,
        )
        .doc(|d| {
            d.body::<worker_templates::DefineBody>()
                .answers::<Created>(201)
                .problems(&[409])
        }),
        E::get(
            "/api/v1/worker-templates",
            Access::READ,
            "List worker templates (by name, by license type)",
            worker_templates::list,
        )
        .doc(|d| {
            d.query::<worker_templates::ListParams>()
                .waits_for_position()
                .answers::<DocumentPage>(200)
        }),
        E::get(
            "/api/v1/worker-templates/{id}",
            Access::READ,
            "One worker template",
            worker_templates::get_one,
        )
        .doc(|d| d.waits_for_position().answers::<Document>(200)),
        E::post(
            "/api/v1/worker-templates/{id}/change",
            Access::ADMIN,
            "Change a worker template's content",
            worker_templates::change,
        )
        .doc(|d| {
            d.body::<lablet_domain::worker_template::TemplateSpec>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/worker-templates/{id}/enable",
            Access::ADMIN,
            "Enable a worker template",
            worker_templates::enable,
        )
        .doc(|d| d.answers::<CommandOutcome>(200).problems(&[409])),
        E::post(
            "/api/v1/worker-templates/{id}/disable",
            Access::ADMIN,
            "Disable a worker template (the autoscaler no longer uses it)",
            worker_templates::disable,
        )
        .doc(|d| d.answers::<CommandOutcome>(200).problems(&[409])),
        E::get(
            "/api/v1/audit/events",
            Access::AUDIT,
            "The event log, in order",
            audit::events,
        )
        .doc(|d| {
            d.query::<audit::LogParams>()
                .answers::<lablet_application::audit::LogPage>(200)
        }),
        E::get(
            "/api/v1/audit/streams/{stream}",
            Access::AUDIT,
            "One stream's events",
            audit::stream,
        )
        .doc(|d| {
            d.query::<audit::StreamParams>()
                .answers::<lablet_application::audit::StreamPage>(200)
        }),
        E::get(
            "/api/v1/audit/streams/{stream}/state",
            Access::AUDIT,
            "A stream's state replayed to a position",
            audit::stream_state,
        )
        .doc(|d| {
            d.query::<audit::StateParams>()
                .answers::<lablet_application::audit::StreamState>(200)
        }),
        E::get(
            "/api/v1/stream",
            Access::READ,
            "Live read-model changes (Server-Sent Events)",
            live::stream,
        )
        .doc(|d| d.query::<live::LiveParams>().answers_events()),
        E::post(
            "/api/v1/events",
            Access::INBOX,
            "Deliver CloudEvents to the inbox",
            inbox::receive,
        )
        .doc(|d| {
            d.body::<Map<String, Value>>()
                .body_media(&["application/cloudevents+json", "application/cloudevents-batch+json"])
                .answers::<Value>(202)
        }),
        E::get(
            "/api/v1/events/inbox/{source}/{id}",
            Access::INBOX,
            "What became of a delivered CloudEvent",
            inbox::status,
        )
        .doc(|d| d.answers::<lablet_application::inbox::InboxReceipt>(200)),
        E::get(
            "/api/v1/cluster",
            Access::OPERATE,
            "Replicas seen recently and the singleton roles each holds",
            cluster::view,
        )
        .doc(|d| d.answers::<cluster::ClusterView>(200)),
        E::get(
            "/api/v1/outbox",
            Access::OBSERVE,
            "Delivery to integrators: checkpoints, lag, parked events",
            outbox::overview,
        )
        .doc(|d| {
            d.query::<outbox::OverviewParams>()
                .answers::<lablet_application::outbox::OutboxOverview>(200)
        }),
        E::post(
            "/api/v1/outbox/parked/{event_id}/redrive",
            Access::OPERATE,
            "Redeliver a parked event",
            outbox::redrive,
        )
        .doc(|d| d.answers::<outbox::RedriveAnswer>(202)),
        E::post(
            "/api/v1/api-keys",
            Access::ADMIN,
            "Create an API key (shown once)",
            api_keys::create,
        )
        .doc(|d| d.body::<api_keys::CreateBody>().answers::<api_keys::CreatedKey>(201)),
        E::get("/api/v1/api-keys", Access::ADMIN, "List API keys", api_keys::list)
            .doc(|d| d.answers::<api_keys::KeyList>(200)),
        E::post(
            "/api/v1/api-keys/{id}/revoke",
            Access::ADMIN,
            "Revoke an API key",
            api_keys::revoke,
        )
        .doc(|d| d.answers::<lablet_application::ports::ApiKeyRecord>(200)),
    ];
    table.extend(work_order_endpoints());
    table
}
