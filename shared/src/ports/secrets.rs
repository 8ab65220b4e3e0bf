//! Where the appsecret comes from.

use std::future::Future;

use crate::domain::redact::AppSecret;

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
