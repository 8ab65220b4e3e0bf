//! The authorizer on the Lambda Runtime API: API Gateway's authorizer events in,
//! its answers out.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::authorizer::Authorizer;
use crate::deadline::Deadline;
use crate::jwt::PublicKeyStore;
use crate::session::SessionStore;

/// Serves `authorizer` until the sandbox is shut down. A table that cannot be
/// read in time fails the invocation (API Gateway then answers 500): an outage
/// is not a reason to send the user back to log in.
pub async fn run<S: SessionStore + PublicKeyStore>(
    authorizer: Authorizer<S>,
) -> Result<(), lambda_runtime::Error> {
    let authorizer = Arc::new(authorizer);
    Box::pin(lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Value>| {
            let authorizer = Arc::clone(&authorizer);
            async move {
                let deadline = Deadline::for_request(Some(event.context.deadline));
                authorizer
                    .answer(event.payload, deadline)
                    .await
                    .map_err(lambda_runtime::Error::from)
            }
        },
    )))
    .await
}
