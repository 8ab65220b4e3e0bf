//! `SecretSource` on Secrets Manager: one secret holding the apps'
//! appsecrets, cached for the life of the process.

use std::sync::Mutex;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::domain::app::AppId;
use crate::domain::redact::AppSecret;
use crate::ports::secrets::{AppSecrets, SecretError, SecretSource};

#[derive(Debug)]
pub struct SecretsManagerSource {
    client: Client,
    secret_id: String,
    /// The app a single appsecret (bare, or `{"appsecret": ..}`) belongs to.
    default_app: AppId,
    cached: Mutex<Option<AppSecrets>>,
}

impl SecretsManagerSource {
    pub fn new(sdk: &aws_config::SdkConfig, secret_id: String, default_app: AppId) -> Self {
        Self::from_client(Client::new(sdk), secret_id, default_app)
    }

    pub fn from_client(client: Client, secret_id: String, default_app: AppId) -> Self {
        Self {
            client,
            secret_id,
            default_app,
            cached: Mutex::new(None),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<AppSecrets>> {
        // The cache holds a whole value or none: a poisoned lock is still consistent.
        self.cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the secret, bypassing the cache, and caches what it holds.
    pub async fn fetch(&self) -> Result<AppSecrets, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|err| SecretError::Unavailable(DisplayErrorContext(&err).to_string()))?;
        let text = output
            .secret_string()
            .ok_or(SecretError::Malformed("the secret has no SecretString"))?;
        let secrets = AppSecrets::parse(text)?;
        *self.cache() = Some(secrets.clone());
        Ok(secrets)
    }
}

impl SecretSource for SecretsManagerSource {
    async fn appsecret(&self, appid: &AppId) -> Result<AppSecret, SecretError> {
        let cached = self.cache().clone();
        match cached {
            Some(secrets) => secrets.get(appid, &self.default_app),
            None => self.refresh(appid).await,
        }
    }

    async fn refresh(&self, appid: &AppId) -> Result<AppSecret, SecretError> {
        self.fetch().await?.get(appid, &self.default_app)
    }
}
