//! The mediator: handlers found by request type, behaviours run in order, conflicts retried, a
//! missing handler an internal error.

use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

struct Double(i64);
impl Request for Double {
    type Output = i64;
    const NAME: &'static str = "double";
    const KIND: RequestKind = RequestKind::Command;
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        if self.0 < 0 {
            return Err(vec![FieldError::new("value", "must not be negative")]);
        }
        Ok(())
    }
}

/// Fails with a conflict `conflicts` times, then doubles.
struct Flaky {
    conflicts: u32,
    calls: AtomicU32,
}

#[async_trait]
impl Handler<Double> for Flaky {
    async fn handle(&self, request: &Double, _: &RequestContext) -> Result<i64, AppError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call < self.conflicts {
            return Err(AppError::Conflict("moved".into()));
        }
        Ok(request.0 * 2)
    }
}

fn flaky_mediator(conflicts: u32) -> (Mediator, Arc<Flaky>) {
    let handler = Arc::new(Flaky {
        conflicts,
        calls: AtomicU32::new(0),
    });
    let mut mediator = Mediator::with_standard_pipeline(3);
    mediator.register::<Double>(handler.clone());
    (mediator, handler)
}

#[tokio::test]
async fn sends_to_the_handler_and_returns_its_output() {
    let (mediator, _) = flaky_mediator(0);
    assert_eq!(mediator.send(Double(21), &RequestContext::system()).await, Ok(42));
}

#[tokio::test]
async fn invalid_input_never_reaches_the_handler() {
    let (mediator, handler) = flaky_mediator(0);
    let err = mediator.send(Double(-1), &RequestContext::system()).await.unwrap_err();
    assert_eq!(
        err,
        AppError::Validation(vec![FieldError::new("value", "must not be negative")])
    );
    assert_eq!(handler.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn conflicts_are_retried_up_to_the_bound() {
    let (mediator, handler) = flaky_mediator(2);
    assert_eq!(mediator.send(Double(1), &RequestContext::system()).await, Ok(2));
    assert_eq!(handler.calls.load(Ordering::SeqCst), 3);

    let (mediator, handler) = flaky_mediator(5);
    let err = mediator.send(Double(1), &RequestContext::system()).await.unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(handler.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_request_without_handler_is_an_internal_error_not_a_panic() {
    let mediator = Mediator::with_standard_pipeline(3);
    assert!(matches!(
        mediator.send(Double(1), &RequestContext::system()).await,
        Err(AppError::Internal(_))
    ));
}
