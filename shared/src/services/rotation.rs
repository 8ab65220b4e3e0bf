//! The signing key's rotation: Secrets Manager's four steps, each idempotent,
//! the new key published before anything signs with it.

use std::collections::HashMap;

use tracing::info;

use crate::domain::jwt::{KeyVersion, PublishedKey, SigningKey, generate_key, sign_and_verify};
use crate::domain::rotation::{
    CURRENT, KeyLifetimes, PENDING, RotationError, StageCheck, keys_to_keep, kid_for, stage_check,
    stage_holder,
};
use crate::ports::keys::{PublicKeyStore, RotationSecrets};

async fn key_of(secrets: &impl RotationSecrets, token: &str) -> Result<SigningKey, RotationError> {
    let text = secrets
        .secret_string(token)
        .await?
        .ok_or_else(|| RotationError::NoVersion(token.to_owned()))?;
    SigningKey::from_secret_string(&text)
        .map_err(|err| RotationError::BadKey(token.to_owned(), err.to_string()))
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
                .map_err(|err| RotationError::Publish(err.to_string()))?;
            info!(kid = key.kid(), "setSecret: public key published");
        }
        "testSecret" => {
            // Published (setSecret ran) and able to sign what checkers accept.
            let published = store
                .published_keys()
                .await
                .map_err(|err| RotationError::Publish(err.to_string()))?;
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
                .map_err(|err| RotationError::Publish(err.to_string()))?;
            finish(
                token, &key, &versions, secrets, store, &published, lifetimes, now,
            )
            .await?;
        }
    }
    Ok(())
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
        .map_err(|err| RotationError::Publish(err.to_string()))?;
    info!(
        kid = key.kid(),
        kept = kids.len(),
        "finishSecret: the new key is AWSCURRENT"
    );
    Ok(())
}

#[cfg(test)]
mod tests;
