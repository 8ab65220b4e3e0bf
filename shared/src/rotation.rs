//! The signing key's rotation: Secrets Manager's four steps, each idempotent,
//! the new key published before anything signs with it.

use std::collections::HashMap;
use std::future::Future;

use tracing::info;

use crate::jwt::{PublicKeyStore, SigningKey, generate_key, sign_and_verify, valid_kid};
use crate::session::StoreError;

pub const CURRENT: &str = "AWSCURRENT";
pub const PENDING: &str = "AWSPENDING";
pub const PREVIOUS: &str = "AWSPREVIOUS";

/// Secrets Manager's rotation event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RotationEvent {
    #[serde(rename = "Step")]
    pub step: String,
    #[serde(rename = "SecretId")]
    pub secret_id: String,
    #[serde(rename = "ClientRequestToken")]
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationError {
    #[error(
        "unknown rotation step {0:?}: expected createSecret, setSecret, testSecret or finishSecret"
    )]
    UnknownStep(String),
    #[error("the secret has no version {0:?}")]
    NoVersion(String),
    #[error("version {0:?} does not hold a usable signing key: {1}")]
    BadKey(String, String),
    #[error("this function rotates {expected:?} only, not {got:?}")]
    WrongSecret { expected: String, got: String },
    #[error("secrets manager: {0}")]
    Secrets(String),
    #[error("publishing the public key failed: {0}")]
    Publish(StoreError),
}

/// What the rotation needs of Secrets Manager.
pub trait RotationSecrets: Send + Sync {
    /// Version id → its stages.
    fn versions(
        &self,
    ) -> impl Future<Output = Result<HashMap<String, Vec<String>>, RotationError>> + Send;
    fn secret_string(
        &self,
        version_id: &str,
    ) -> impl Future<Output = Result<Option<String>, RotationError>> + Send;
    /// Creates version `token` under `AWSPENDING`.
    fn put_pending(
        &self,
        token: &str,
        secret_string: &str,
    ) -> impl Future<Output = Result<(), RotationError>> + Send;
    /// Moves `stage` to `to` (from `from`, if any).
    fn move_stage(
        &self,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> impl Future<Output = Result<(), RotationError>> + Send;
}

/// The kid a rotation names its key by: derived from its token, so a step
/// run twice names the same key.
pub fn kid_for(token: &str) -> String {
    let clean: String = token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(57)
        .collect();
    let kid = format!("wxauth-{clean}");
    if valid_kid(&kid) {
        kid
    } else {
        "wxauth-key".into()
    }
}

async fn key_of(secrets: &impl RotationSecrets, token: &str) -> Result<SigningKey, RotationError> {
    let text = secrets
        .secret_string(token)
        .await?
        .ok_or_else(|| RotationError::NoVersion(token.to_owned()))?;
    SigningKey::from_secret_string(&text)
        .map_err(|err| RotationError::BadKey(token.to_owned(), err.to_string()))
}

fn stage_holder<'a>(versions: &'a HashMap<String, Vec<String>>, stage: &str) -> Option<&'a str> {
    versions
        .iter()
        .find(|(_, stages)| stages.iter().any(|s| s == stage))
        .map(|(id, _)| id.as_str())
}

/// Runs one step for version `token` at `now` (epoch seconds).
pub async fn rotate(
    step: &str,
    token: &str,
    secrets: &impl RotationSecrets,
    store: &impl PublicKeyStore,
    now: i64,
) -> Result<(), RotationError> {
    let versions = secrets.versions().await?;
    if step == "createSecret" {
        if versions.contains_key(token) {
            info!("createSecret: the version exists already");
            return Ok(());
        }
        let secret = generate_key(&kid_for(token))
            .map_err(|err| RotationError::BadKey(token.to_owned(), err.to_string()))?;
        let text = serde_json::to_string(&secret)
            .map_err(|err| RotationError::BadKey(token.to_owned(), err.to_string()))?;
        secrets.put_pending(token, &text).await?;
        info!(
            kid = secret.kid,
            "createSecret: new RSA-2048 key under AWSPENDING"
        );
        return Ok(());
    }
    if !matches!(step, "setSecret" | "testSecret" | "finishSecret") {
        return Err(RotationError::UnknownStep(step.to_owned()));
    }
    if !versions.contains_key(token) {
        return Err(RotationError::NoVersion(token.to_owned()));
    }
    let key = key_of(secrets, token).await?;
    if step != "testSecret" {
        // finishSecret publishes too: the key is public before it can sign,
        // even if setSecret was skipped.
        store
            .publish(std::slice::from_ref(key.public_key()), now)
            .await
            .map_err(RotationError::Publish)?;
    }
    match step {
        "setSecret" => info!(kid = key.kid(), "setSecret: public key published"),
        "testSecret" => {
            sign_and_verify(&key).map_err(|err| {
                RotationError::BadKey(token.to_owned(), format!("sign and verify: {err}"))
            })?;
            info!(kid = key.kid(), "testSecret: signed and verified");
        }
        _ => finish(token, &key, &versions, secrets, store).await?,
    }
    Ok(())
}

/// `finishSecret`: the version becomes AWSCURRENT, and the published set keeps
/// only the new key and the one it replaces.
async fn finish(
    token: &str,
    key: &SigningKey,
    versions: &HashMap<String, Vec<String>>,
    secrets: &impl RotationSecrets,
    store: &impl PublicKeyStore,
) -> Result<(), RotationError> {
    let current = stage_holder(versions, CURRENT);
    if current != Some(token) {
        secrets.move_stage(CURRENT, Some(token), current).await?;
    }
    if versions
        .get(token)
        .is_some_and(|stages| stages.iter().any(|s| s == PENDING))
    {
        secrets.move_stage(PENDING, None, Some(token)).await?;
    }
    // Accepted from now on: the new key and the one it replaces.
    let mut keep = vec![key.kid().to_owned()];
    let replaced = match current {
        Some(id) if id != token => Some(id),
        // Run again after it finished: the one it replaced is AWSPREVIOUS.
        _ => stage_holder(versions, PREVIOUS),
    };
    if let Some(previous) = replaced {
        if let Ok(old) = key_of(secrets, previous).await {
            keep.push(old.kid().to_owned());
        }
    }
    let kids: Vec<&str> = keep.iter().map(String::as_str).collect();
    store
        .unpublish_all_but(&kids)
        .await
        .map_err(RotationError::Publish)?;
    info!(kid = key.kid(), "finishSecret: the new key is AWSCURRENT");
    Ok(())
}

#[cfg(test)]
mod tests;
