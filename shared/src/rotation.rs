//! The signing key's rotation: Secrets Manager's four steps, each idempotent,
//! the new key published before anything signs with it.

use std::collections::HashMap;
use std::future::Future;

use tracing::info;

use crate::jwt::{
    KeyVersion, PublicKeyStore, PublishedKey, SigningKey, generate_key, sign_and_verify, valid_kid,
};
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
    #[error(
        "version {0:?} is neither AWSPENDING nor AWSCURRENT: a step runs only for the version being rotated in"
    )]
    NotPending(String),
    #[error("the key {0:?} is not in the published set: run setSecret first")]
    NotPublished(String),
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

/// How long keys stay public around a rotation: `SIGNING_KEY_LEAD_SECONDS`
/// (a new key is published this long before it signs) and
/// `SESSION_TTL_SECONDS` (a token signed with a key lives this long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLifetimes {
    pub lead_seconds: i64,
    pub session_ttl_seconds: i64,
}

/// Why the steps refuse a version, as AWS's own rotation templates do: a
/// version that is `AWSCURRENT` already is done (the step succeeds and changes
/// nothing); any other version must be `AWSPENDING`, so that a step run by
/// hand with an older version's token can never move `AWSCURRENT` back.
fn stage_check(
    versions: &HashMap<String, Vec<String>>,
    token: &str,
) -> Result<StageCheck, RotationError> {
    let Some(stages) = versions.get(token) else {
        return Ok(StageCheck::NoVersion);
    };
    if stages.iter().any(|s| s == CURRENT) {
        return Ok(StageCheck::AlreadyCurrent);
    }
    if !stages.iter().any(|s| s == PENDING) {
        return Err(RotationError::NotPending(token.to_owned()));
    }
    Ok(StageCheck::Pending)
}

enum StageCheck {
    NoVersion,
    AlreadyCurrent,
    Pending,
}

/// Runs one step for version `token` at `now` (epoch seconds).
pub async fn rotate(
    step: &str,
    token: &str,
    secrets: &impl RotationSecrets,
    store: &impl PublicKeyStore,
    lifetimes: KeyLifetimes,
    now: i64,
) -> Result<(), RotationError> {
    if !matches!(
        step,
        "createSecret" | "setSecret" | "testSecret" | "finishSecret"
    ) {
        return Err(RotationError::UnknownStep(step.to_owned()));
    }
    let versions = secrets.versions().await?;
    match stage_check(&versions, token)? {
        StageCheck::AlreadyCurrent => {
            info!(step, "the version is AWSCURRENT already: nothing to do");
            return Ok(());
        }
        StageCheck::NoVersion if step != "createSecret" => {
            return Err(RotationError::NoVersion(token.to_owned()));
        }
        StageCheck::NoVersion | StageCheck::Pending => {}
    }
    if step == "createSecret" {
        // Secrets Manager makes the AWSPENDING version before it calls this
        // step, with no value yet: the key is made unless it holds one.
        if let Some(text) = secrets.secret_string(token).await? {
            if SigningKey::from_secret_string(&text).is_ok() {
                info!("createSecret: the version holds its key already");
                return Ok(());
            }
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
    let key = key_of(secrets, token).await?;
    let version = KeyVersion {
        key: key.public_key().clone(),
        version_id: Some(token.to_owned()),
    };
    match step {
        "setSecret" => {
            store
                .publish(&[version], now)
                .await
                .map_err(RotationError::Publish)?;
            info!(kid = key.kid(), "setSecret: public key published");
        }
        "testSecret" => {
            // Published (setSecret ran) and able to sign what checkers accept.
            let published = store
                .published_keys()
                .await
                .map_err(RotationError::Publish)?;
            if !published.iter().any(|p| p.key == *key.public_key()) {
                return Err(RotationError::NotPublished(key.kid().to_owned()));
            }
            sign_and_verify(&key).map_err(|err| {
                RotationError::BadKey(token.to_owned(), format!("sign and verify: {err}"))
            })?;
            info!(
                kid = key.kid(),
                "testSecret: published, signed and verified"
            );
        }
        _ => {
            // Published before it can sign, even if setSecret was skipped.
            let published = store
                .publish(&[version], now)
                .await
                .map_err(RotationError::Publish)?;
            finish(
                token, &key, &versions, secrets, store, &published, lifetimes, now,
            )
            .await?;
        }
    }
    Ok(())
}

/// The keys the published set must keep at `now`: every key that may have
/// signed a token still alive. A key signs until a newer one has been public
/// for the lead, and its tokens live a session's lifetime after that, so a key
/// goes once the next newer one was published `lead + session TTL` ago.
pub fn keys_to_keep(published: &[PublishedKey], lifetimes: KeyLifetimes, now: i64) -> Vec<String> {
    let span = lifetimes.lead_seconds + lifetimes.session_ttl_seconds;
    published
        .iter()
        .filter(|key| {
            let next_newer = published
                .iter()
                .filter(|other| other.published_at > key.published_at)
                .map(|other| other.published_at)
                .min();
            next_newer.is_none_or(|at| now - at < span)
        })
        .map(|key| key.key.kid.clone())
        .collect()
}

/// `finishSecret`: the version becomes AWSCURRENT, and the published set keeps
/// every key that may still have signed a live token (`keys_to_keep`).
#[allow(clippy::too_many_arguments)]
async fn finish(
    token: &str,
    key: &SigningKey,
    versions: &HashMap<String, Vec<String>>,
    secrets: &impl RotationSecrets,
    store: &impl PublicKeyStore,
    published: &[PublishedKey],
    lifetimes: KeyLifetimes,
    now: i64,
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
    let mut keep = keys_to_keep(published, lifetimes, now);
    if !keep.iter().any(|kid| kid == key.kid()) {
        keep.push(key.kid().to_owned());
    }
    let kids: Vec<&str> = keep.iter().map(String::as_str).collect();
    store
        .unpublish_all_but(&kids)
        .await
        .map_err(RotationError::Publish)?;
    info!(
        kid = key.kid(),
        kept = kids.len(),
        "finishSecret: the new key is AWSCURRENT"
    );
    Ok(())
}

#[cfg(test)]
mod tests;
