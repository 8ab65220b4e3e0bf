//! Where the appsecret comes from.

use std::future::Future;

use tracing::warn;

use crate::deadline::Deadline;
use crate::redact::AppSecret;
use crate::upstream::{Upstream, UpstreamError};
use crate::wechat::WeChatError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
    /// The secret exists but holds neither a bare appsecret nor `{"appsecret": ...}`.
    #[error("secret value is not an appsecret: {0}")]
    Malformed(&'static str),
}

pub trait SecretSource: Send + Sync + 'static {
    /// The appsecret, from the process cache when there is one.
    fn appsecret(&self) -> impl Future<Output = Result<AppSecret, SecretError>> + Send;

    /// Fetches the appsecret again, bypassing the cache: WeChat refused the cached
    /// one, so it may have been rotated.
    fn refresh(&self) -> impl Future<Output = Result<AppSecret, SecretError>> + Send;
}

/// Runs a WeChat call that needs the appsecret, with the cached one. If WeChat
/// refuses it (40001/40125), it may have been rotated: it is read again once and
/// the call runs once more. WeChat's failures come back as they are; the edge says what they mean.
pub async fn with_appsecret<T, F, Fut>(
    secrets: &impl SecretSource,
    deadline: Deadline,
    mut call: F,
) -> Result<T, UpstreamError>
where
    F: FnMut(AppSecret) -> Fut,
    Fut: Future<Output = Result<T, WeChatError>>,
{
    let secret = fetch_appsecret(secrets, deadline, false).await?;
    match call(secret).await {
        Err(WeChatError::BadCredential(errcode)) => {
            warn!(
                errcode,
                "WeChat refused the appsecret; fetching it again in case it was rotated"
            );
            let secret = fetch_appsecret(secrets, deadline, true).await?;
            call(secret).await.map_err(UpstreamError::WeChat)
        }
        result => result.map_err(UpstreamError::WeChat),
    }
}

/// The appsecret for a request (`refresh`: bypassing the cache), within the
/// deadline. Any failure is a 503 naming the secret store.
async fn fetch_appsecret(
    secrets: &impl SecretSource,
    deadline: Deadline,
    refresh: bool,
) -> Result<AppSecret, UpstreamError> {
    let fetched = if refresh {
        deadline.run(secrets.refresh()).await
    } else {
        deadline.run(secrets.appsecret()).await
    };
    match fetched {
        Some(Ok(secret)) => Ok(secret),
        Some(Err(err @ SecretError::Malformed(_))) => {
            tracing::error!(error = %err, "the appsecret in Secrets Manager is unusable");
            Err(UpstreamError::Unavailable(Upstream::SecretStore))
        }
        Some(Err(err)) => {
            warn!(error = %err, "appsecret fetch failed");
            Err(UpstreamError::Unavailable(Upstream::SecretStore))
        }
        None => {
            warn!("appsecret fetch ran out of time");
            Err(UpstreamError::Unavailable(Upstream::SecretStore))
        }
    }
}

/// Reads a SecretString: either the bare appsecret or JSON `{"appsecret": "..."}`.
/// Surrounding whitespace is dropped: a secret saved from a file often ends in a newline.
pub fn parse_secret_string(text: &str) -> Result<AppSecret, SecretError> {
    let text = text.trim();
    if text.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| SecretError::Malformed("looks like JSON but does not parse"))?;
        let secret = value
            .get("appsecret")
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .ok_or(SecretError::Malformed(
                "JSON secret has no string field \"appsecret\"",
            ))?;
        if secret.is_empty() {
            return Err(SecretError::Malformed("\"appsecret\" is empty"));
        }
        return Ok(AppSecret::new(secret));
    }
    if text.is_empty() {
        return Err(SecretError::Malformed("secret is empty"));
    }
    Ok(AppSecret::new(text))
}

/// A fixed appsecret: for local runs and tests.
#[derive(Debug, Clone)]
pub struct StaticSecret(AppSecret);

impl StaticSecret {
    pub fn new(secret: AppSecret) -> Self {
        Self(secret)
    }
}

impl SecretSource for StaticSecret {
    async fn appsecret(&self) -> Result<AppSecret, SecretError> {
        Ok(self.0.clone())
    }

    async fn refresh(&self) -> Result<AppSecret, SecretError> {
        Ok(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_and_json_secrets_are_read() {
        assert_eq!(parse_secret_string("abc123\n").unwrap().expose(), "abc123");
        assert_eq!(
            parse_secret_string(r#" {"appsecret": "abc123", "note": "x"} "#)
                .unwrap()
                .expose(),
            "abc123"
        );
    }

    #[test]
    fn unusable_secrets_are_refused() {
        for text in [
            "",
            "  \n",
            "{",
            r#"{"secret":"x"}"#,
            r#"{"appsecret":""}"#,
            r#"{"appsecret":1}"#,
        ] {
            assert!(parse_secret_string(text).is_err(), "{text:?}");
        }
    }
}
