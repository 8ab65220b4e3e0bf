//! The rotation function on the Lambda Runtime API: Secrets Manager's
//! rotation events in, each step run, an error failing the invocation (which
//! Secrets Manager retries).

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use tracing::{info, warn};

use crate::aws::{DynamoSessionStore, SecretsManagerSigningKeys};
use crate::rotation::{KeyLifetimes, RotationError, RotationEvent, rotate};
use crate::session::epoch_seconds;

/// Whether the event's `SecretId` (Secrets Manager sends the ARN) names the
/// configured secret (an ARN or a name).
pub fn same_secret(configured: &str, got: &str) -> bool {
    if configured == got {
        return true;
    }
    // arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random>
    got.split(":secret:")
        .nth(1)
        .and_then(|name| name.rsplit_once('-'))
        .is_some_and(|(name, suffix)| name == configured && suffix.len() == 6)
}

pub async fn run(
    sdk: aws_config::SdkConfig,
    store: DynamoSessionStore,
    only: Option<String>,
    lifetimes: KeyLifetimes,
) -> Result<(), lambda_runtime::Error> {
    let shared = Arc::new((sdk, store, only));
    Box::pin(lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Value>| {
            let shared = Arc::clone(&shared);
            async move {
                let (sdk, store, only) = &*shared;
                let event: RotationEvent =
                    serde_json::from_value(event.payload).map_err(|err| {
                        warn!(error = %err, "not a Secrets Manager rotation event");
                        lambda_runtime::Error::from(format!(
                            "not a rotation event {{Step, SecretId, ClientRequestToken}}: {err}"
                        ))
                    })?;
                if let Some(configured) = only.as_deref() {
                    if !same_secret(configured, &event.secret_id) {
                        let err = RotationError::WrongSecret {
                            expected: configured.to_owned(),
                            got: event.secret_id.clone(),
                        };
                        warn!(error = %err, "rotation refused");
                        return Err(lambda_runtime::Error::from(err.to_string()));
                    }
                }
                let secrets = SecretsManagerSigningKeys::new(sdk, event.secret_id.clone());
                info!(step = %event.step, "rotation step");
                rotate(
                    &event.step,
                    &event.token,
                    &secrets,
                    store,
                    lifetimes,
                    epoch_seconds(),
                )
                .await
                .map_err(|err| {
                    warn!(step = %event.step, error = %err, "rotation step failed");
                    lambda_runtime::Error::from(err.to_string())
                })?;
                Ok::<Value, lambda_runtime::Error>(Value::Null)
            }
        },
    )))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_secret_matches_by_arn_or_name() {
        let arn = "arn:aws:secretsmanager:cn-north-1:123456789012:secret:wxauth-signing-AbCdEf";
        assert!(same_secret(arn, arn));
        assert!(same_secret("wxauth-signing", arn));
        assert!(!same_secret("wxauth", arn));
        assert!(!same_secret("other", arn));
        assert!(same_secret("name", "name"));
    }
}
