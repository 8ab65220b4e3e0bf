//! Where the apps' appsecrets come from.

use std::future::Future;

use crate::domain::app::AppId;
use crate::domain::redact::AppSecret;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
    /// The secret exists but holds none of the forms an appsecret comes in.
    #[error("secret value is not an appsecret: {0}")]
    Malformed(&'static str),
    /// The secret holds no appsecret for this app.
    #[error("the secret holds no appsecret for {0}")]
    Missing(AppId),
}

pub trait SecretSource: Send + Sync + 'static {
    /// The app's appsecret, from the process cache when there is one.
    fn appsecret(
        &self,
        appid: &AppId,
    ) -> impl Future<Output = Result<AppSecret, SecretError>> + Send;

    /// Fetches the appsecret again, bypassing the cache: WeChat refused the cached
    /// one, so it may have been rotated.
    fn refresh(&self, appid: &AppId)
    -> impl Future<Output = Result<AppSecret, SecretError>> + Send;
}

/// One source shared by several users (login's sign-ins and its access tokens).
impl<T: SecretSource> SecretSource for std::sync::Arc<T> {
    fn appsecret(
        &self,
        appid: &AppId,
    ) -> impl Future<Output = Result<AppSecret, SecretError>> + Send {
        (**self).appsecret(appid)
    }

    fn refresh(
        &self,
        appid: &AppId,
    ) -> impl Future<Output = Result<AppSecret, SecretError>> + Send {
        (**self).refresh(appid)
    }
}

/// What one secret holds: a single appsecret (the bare string, or
/// `{"appsecret": ".."}`), the default app's, or one per app
/// (`{"appsecrets": {"<appid>": ".."}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSecrets {
    Single(AppSecret),
    PerApp(Vec<(String, AppSecret)>),
}

impl AppSecrets {
    /// Reads a SecretString. Surrounding whitespace is dropped: a secret
    /// saved from a file often ends in a newline.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        if !text.starts_with('{') {
            if text.is_empty() {
                return Err(SecretError::Malformed("secret is empty"));
            }
            return Ok(Self::Single(AppSecret::new(text)));
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| SecretError::Malformed("looks like JSON but does not parse"))?;
        if let Some(per_app) = value.get("appsecrets") {
            let map = per_app.as_object().ok_or(SecretError::Malformed(
                "\"appsecrets\" is not an object of appid to appsecret",
            ))?;
            let mut secrets = Vec::with_capacity(map.len());
            for (appid, secret) in map {
                let secret = secret
                    .as_str()
                    .map(str::trim)
                    .filter(|secret| !secret.is_empty())
                    .ok_or(SecretError::Malformed(
                        "an appsecret in \"appsecrets\" is not a non-empty string",
                    ))?;
                secrets.push((appid.clone(), AppSecret::new(secret)));
            }
            return Ok(Self::PerApp(secrets));
        }
        let secret = value
            .get("appsecret")
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .ok_or(SecretError::Malformed(
                "JSON secret has neither \"appsecret\" nor \"appsecrets\"",
            ))?;
        if secret.is_empty() {
            return Err(SecretError::Malformed("\"appsecret\" is empty"));
        }
        Ok(Self::Single(AppSecret::new(secret)))
    }

    /// The appsecret of `appid`; a single one is the default app's.
    pub fn get(&self, appid: &AppId, default_app: &AppId) -> Result<AppSecret, SecretError> {
        let found = match self {
            Self::Single(secret) => (appid == default_app).then(|| secret.clone()),
            Self::PerApp(secrets) => secrets
                .iter()
                .find(|(listed, _)| listed == appid.as_str())
                .map(|(_, secret)| secret.clone()),
        };
        found.ok_or_else(|| SecretError::Missing(appid.clone()))
    }
}

/// Fixed appsecrets: for local runs and tests.
#[derive(Debug, Clone)]
pub struct StaticSecrets {
    secrets: AppSecrets,
    default_app: AppId,
}

impl StaticSecrets {
    /// One appsecret, the default app's.
    pub fn single(default_app: AppId, secret: AppSecret) -> Self {
        Self {
            secrets: AppSecrets::Single(secret),
            default_app,
        }
    }

    /// What a secret's text held (`AppSecrets::parse`).
    pub fn from_parsed(default_app: AppId, secrets: AppSecrets) -> Self {
        Self {
            secrets,
            default_app,
        }
    }

    /// One per app.
    pub fn per_app(default_app: AppId, secrets: Vec<(AppId, AppSecret)>) -> Self {
        Self {
            secrets: AppSecrets::PerApp(
                secrets
                    .into_iter()
                    .map(|(appid, secret)| (appid.as_str().to_owned(), secret))
                    .collect(),
            ),
            default_app,
        }
    }
}

impl SecretSource for StaticSecrets {
    async fn appsecret(&self, appid: &AppId) -> Result<AppSecret, SecretError> {
        self.secrets.get(appid, &self.default_app)
    }

    async fn refresh(&self, appid: &AppId) -> Result<AppSecret, SecretError> {
        self.secrets.get(appid, &self.default_app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(n: char) -> AppId {
        AppId::parse(&format!("wx{}", n.to_string().repeat(16))).unwrap()
    }

    #[test]
    fn the_three_forms_are_read() {
        let (a, b) = (app('1'), app('2'));
        for text in ["abc123\n", r#" {"appsecret": "abc123", "note": "x"} "#] {
            let secrets = AppSecrets::parse(text).unwrap();
            assert_eq!(secrets.get(&a, &a).unwrap().expose(), "abc123");
            // A single appsecret is the default app's only.
            assert_eq!(secrets.get(&b, &a), Err(SecretError::Missing(b.clone())));
        }
        let per_app = AppSecrets::parse(&format!(
            r#"{{"appsecrets": {{"{a}": "s1", "{b}": " s2 "}}}}"#
        ))
        .unwrap();
        assert_eq!(per_app.get(&a, &a).unwrap().expose(), "s1");
        assert_eq!(per_app.get(&b, &a).unwrap().expose(), "s2");
        let c = app('3');
        assert_eq!(per_app.get(&c, &a), Err(SecretError::Missing(c)));
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
            r#"{"appsecrets":"x"}"#,
            r#"{"appsecrets":{"wx1111111111111111":""}}"#,
            r#"{"appsecrets":{"wx1111111111111111":7}}"#,
        ] {
            assert!(
                matches!(AppSecrets::parse(text), Err(SecretError::Malformed(_))),
                "{text:?}"
            );
        }
    }
}
