//! The work-order endpoints of the table: submission and queries, the executor's claim, start,
//! renew, complete and fail, and the operator's lease, cancel and requeue.

use super::table::Endpoint;
use super::*;

pub(super) fn work_order_endpoints() -> Vec<Endpoint> {
    use Endpoint as E;
    vec![
        E::post(
            "/api/v1/work-orders",
            Access::OPERATE,
            "Submit a work order",
            work_orders::submit,
        )
        .doc(|d| {
            d.body::<lablet_domain::work_order::Submission>()
                .answers::<Created>(201)
                .or_answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/work-orders/claim",
            Access::OPERATE,
            "Claim the next work order an executor can run, waiting up to wait_ms for one",
            work_orders::claim,
        )
        .doc(|d| {
            d.body::<lablet_application::work_orders::ClaimWorkOrder>()
                .answers::<work_orders::ClaimAnswer>(200)
        }),
        E::get(
            "/api/v1/work-orders",
            Access::READ,
            "List work orders",
            work_orders::list,
        )
        .doc(|d| {
            d.query::<work_orders::ListParams>()
                .waits_for_position()
                .answers::<DocumentPage>(200)
        }),
        E::get(
            "/api/v1/work-orders/{id}",
            Access::READ,
            "One work order",
            work_orders::get_one,
        )
        .doc(|d| d.waits_for_position().answers::<Document>(200)),
        E::post(
            "/api/v1/work-orders/{id}/cancel",
            Access::OPERATE,
            "Cancel a work order",
            work_orders::cancel,
        )
        .doc(|d| {
            d.optional_body::<work_orders::CancelBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/work-orders/{id}/lease",
            Access::OPERATE,
            "Lease a work order to an executor",
            work_orders::lease,
        )
        .doc(|d| {
            d.body::<lablet_domain::work_order::LeaseTerms>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/work-orders/{id}/start",
            Access::OPERATE,
            "Start a leased work order",
            work_orders::start,
        )
        .doc(|d| {
            d.body::<work_orders::StartBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/work-orders/{id}/complete",
            Access::OPERATE,
            "Complete a work order",
            work_orders::complete,
        )
        .doc(|d| {
            d.body::<work_orders::CompleteBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/work-orders/{id}/renew",
            Access::OPERATE,
            "Renew the lease on a work order (the holder's heartbeat)",
            work_orders::renew,
        )
        .doc(|d| {
            d.body::<work_orders::RenewBody>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/work-orders/{id}/fail",
            Access::OPERATE,
            "Report a failed attempt",
            work_orders::fail,
        )
        .doc(|d| {
            d.body::<lablet_domain::work_order::Failure>()
                .answers::<CommandOutcome>(200)
                .problems(&[409])
        }),
        E::post(
            "/api/v1/work-orders/{id}/requeue",
            Access::OPERATE,
            "Requeue a work order",
            work_orders::requeue,
        )
        .doc(|d| d.answers::<CommandOutcome>(200).problems(&[409])),
    ]
}
