//! The rotation function on the Lambda Runtime API: Secrets Manager's
//! rotation events in, each step run, an error failing the invocation (which
//! Secrets Manager retries).

use serde_json::Value;
use tracing::{info, warn};

use crate::domain::rotation::{KeyLifetimes, RotationError, RotationEvent};
use crate::domain::time::epoch_seconds;
use crate::edge::events::EventHandler;
use crate::ports::keys::{PublicKeyStore, RotationSecrets};
use crate::runtime::deadline::Deadline;
use crate::services::rotation::rotate;

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

/// The rotation function: Secrets Manager's four steps for the signing key's
/// secret, on `store`'s published set. `secrets` makes the secret's client
/// for the event's `SecretId`; with `only` set, events for any other secret
/// fail.
pub struct Rotation<F, S> {
    secrets: F,
    store: S,
    only: Option<String>,
    lifetimes: KeyLifetimes,
}

impl<F, R, S> Rotation<F, S>
where
    F: Fn(String) -> R + Send + Sync + 'static,
    R: RotationSecrets,
    S: PublicKeyStore,
{
    pub fn new(secrets: F, store: S, only: Option<String>, lifetimes: KeyLifetimes) -> Self {
        Self {
            secrets,
            store,
            only,
            lifetimes,
        }
    }
}

impl<F, R, S> EventHandler for Rotation<F, S>
where
    F: Fn(String) -> R + Send + Sync + 'static,
    R: RotationSecrets,
    S: PublicKeyStore,
{
    async fn answer(&self, event: Value, _deadline: Deadline) -> Result<Value, String> {
        let event: RotationEvent = serde_json::from_value(event).map_err(|err| {
            warn!(error = %err, "not a Secrets Manager rotation event");
            format!("not a rotation event {{Step, SecretId, ClientRequestToken}}: {err}")
        })?;
        if let Some(configured) = self.only.as_deref() {
            if !same_secret(configured, &event.secret_id) {
                let err = RotationError::WrongSecret {
                    expected: configured.to_owned(),
                    got: event.secret_id.clone(),
                };
                warn!(error = %err, "rotation refused");
                return Err(err.to_string());
            }
        }
        let secrets = (self.secrets)(event.secret_id.clone());
        info!(step = %event.step, "rotation step");
        rotate(
            &event.step,
            &event.token,
            &secrets,
            &self.store,
            self.lifetimes,
            epoch_seconds(),
        )
        .await
        .map_err(|err| {
            warn!(step = %event.step, error = %err, "rotation step failed");
            err.to_string()
        })?;
        Ok(Value::Null)
    }
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
