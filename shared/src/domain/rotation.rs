//! The signing key's rotation, as rules: Secrets Manager's stages and steps,
//! the kid a version's key is named by, which version a step may run for, and
//! which keys stay published. The steps themselves are `services::rotation`.

use std::collections::HashMap;

use crate::domain::jwt::{PublishedKey, valid_kid};

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
    Publish(String),
    #[error(
        "version {0:?} is neither AWSPENDING nor AWSCURRENT: a step runs only for the version being rotated in"
    )]
    NotPending(String),
    #[error("the key {0:?} is not in the published set: run setSecret first")]
    NotPublished(String),
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

/// The version holding `stage`, if any.
pub fn stage_holder<'a>(
    versions: &'a HashMap<String, Vec<String>>,
    stage: &str,
) -> Option<&'a str> {
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
pub fn stage_check(
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

pub enum StageCheck {
    NoVersion,
    AlreadyCurrent,
    Pending,
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
