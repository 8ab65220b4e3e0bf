//! `SecretSource` on Secrets Manager, cached for the life of the process.

use std::sync::Mutex;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::domain::redact::AppSecret;
use crate::ports::secrets::{SecretError, SecretSource, parse_secret_string};

#[derive(Debug)]
pub struct SecretsManagerSource {
    client: Client,
    secret_id: String,
    cached: Mutex<Option<AppSecret>>,
}

impl SecretsManagerSource {
    pub fn new(sdk: &aws_config::SdkConfig, secret_id: String) -> Self {
        Self::from_client(Client::new(sdk), secret_id)
    }

    pub fn from_client(client: Client, secret_id: String) -> Self {
        Self {
            client,
            secret_id,
            cached: Mutex::new(None),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<AppSecret>> {
        // The cache holds a whole value or none: a poisoned lock is still consistent.
        self.cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SecretSource for SecretsManagerSource {
    async fn appsecret(&self) -> Result<AppSecret, SecretError> {
        let cached = self.cache().clone();
        match cached {
            Some(secret) => Ok(secret),
            None => self.refresh().await,
        }
    }

    async fn refresh(&self) -> Result<AppSecret, SecretError> {
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
        let secret = parse_secret_string(text)?;
        *self.cache() = Some(secret.clone());
        Ok(secret)
    }
}
