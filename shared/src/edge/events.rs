//! Lambda events that are not HTTP requests (API Gateway's authorizer
//! events, Secrets Manager's rotation steps), in and out as JSON: one loop
//! for both, around a handler that answers an event or fails the invocation.

use std::future::Future;
use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::runtime::deadline::Deadline;

/// A function whose events are JSON: it answers one, or fails the invocation
/// with a message (Lambda reports it; the caller retries or answers 500).
pub trait EventHandler: Send + Sync + 'static {
    fn answer(
        &self,
        event: Value,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Value, String>> + Send;
}

/// Serves `handler` until the sandbox is shut down.
pub async fn run(handler: impl EventHandler) -> Result<(), lambda_runtime::Error> {
    let handler = Arc::new(handler);
    Box::pin(lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Value>| {
            let handler = Arc::clone(&handler);
            async move {
                let deadline = Deadline::for_request(Some(event.context.deadline));
                handler
                    .answer(event.payload, deadline)
                    .await
                    .map_err(lambda_runtime::Error::from)
            }
        },
    )))
    .await
}
