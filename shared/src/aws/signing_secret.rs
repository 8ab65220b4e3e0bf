//! The signing key's secret in Secrets Manager: its stages for `login`, and
//! the version operations of the rotation.

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};

use crate::domain::jwt::{KeyError, Signer, SigningKey, parse_stage};
use crate::domain::rotation::{CURRENT, PENDING, PREVIOUS, RotationError};
use crate::ports::keys::RotationSecrets;
use crate::ports::keys::{SigningKeyError, SigningKeySource};

#[derive(Debug, Clone)]
pub struct SecretsManagerSigningKeys {
    client: Client,
    secret_id: String,
}

impl SecretsManagerSigningKeys {
    pub fn new(sdk: &aws_config::SdkConfig, secret_id: String) -> Self {
        Self {
            client: Client::new(sdk),
            secret_id,
        }
    }

    /// A stage's SecretString and version id; `None` when no version holds
    /// the stage.
    async fn stage(&self, stage: &str) -> Result<Option<(String, Option<String>)>, String> {
        match self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await
        {
            Ok(output) => Ok(output
                .secret_string()
                .map(|text| (text.to_owned(), output.version_id().map(str::to_owned)))),
            Err(err)
                if err.as_service_error().and_then(ProvideErrorMetadata::code)
                    == Some("ResourceNotFoundException")
                    && stage != CURRENT =>
            {
                Ok(None)
            }
            Err(err) => Err(DisplayErrorContext(&err).to_string()),
        }
    }
}

/// A stage's key, with its version id.
fn keyed(
    stage: &str,
    read: Option<(String, Option<String>)>,
) -> Result<Option<SigningKey>, KeyError> {
    let Some((text, version_id)) = read else {
        return Ok(None);
    };
    Ok(parse_stage(stage, Some(&text))?.map(|key| key.with_version_id(version_id)))
}

impl SigningKeySource for SecretsManagerSigningKeys {
    async fn signing_keys(&self) -> Result<Signer, SigningKeyError> {
        let (current, previous, pending) = tokio::join!(
            self.stage(CURRENT),
            self.stage(PREVIOUS),
            self.stage(PENDING)
        );
        let current = current.map_err(SigningKeyError::Unavailable)?;
        let current = keyed(CURRENT, current)
            .map_err(|err| SigningKeyError::Malformed(err.to_string()))?
            .ok_or_else(|| SigningKeyError::Malformed("AWSCURRENT has no SecretString".into()))?;
        // A previous or pending stage that is no key (the placeholder the
        // template created the secret with) is simply not accepted.
        let optional = |stage, read: Result<Option<(String, Option<String>)>, String>| {
            read.ok().and_then(|read| keyed(stage, read).ok().flatten())
        };
        Ok(Signer {
            current: Some(current),
            previous: optional(PREVIOUS, previous),
            pending: optional(PENDING, pending),
            older: Vec::new(),
        })
    }

    async fn key_of_version(
        &self,
        version_id: &str,
    ) -> Result<Option<SigningKey>, SigningKeyError> {
        let text = match self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_id(version_id)
            .send()
            .await
        {
            Ok(output) => output.secret_string().map(str::to_owned),
            Err(err)
                if err.as_service_error().and_then(ProvideErrorMetadata::code)
                    == Some("ResourceNotFoundException") =>
            {
                None
            }
            Err(err) => {
                return Err(SigningKeyError::Unavailable(
                    DisplayErrorContext(&err).to_string(),
                ));
            }
        };
        Ok(text
            .and_then(|text| SigningKey::from_secret_string(&text).ok())
            .map(|key| key.with_version_id(Some(version_id.to_owned()))))
    }
}

fn secrets_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    err: &aws_sdk_secretsmanager::error::SdkError<E, R>,
) -> RotationError {
    RotationError::Secrets(DisplayErrorContext(err).to_string())
}

impl RotationSecrets for SecretsManagerSigningKeys {
    async fn versions(&self) -> Result<HashMap<String, Vec<String>>, RotationError> {
        let output = self
            .client
            .describe_secret()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|err| secrets_error(&err))?;
        Ok(output.version_ids_to_stages().cloned().unwrap_or_default())
    }

    async fn secret_string(&self, version_id: &str) -> Result<Option<String>, RotationError> {
        match self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_id(version_id)
            .send()
            .await
        {
            Ok(output) => Ok(output.secret_string().map(str::to_owned)),
            Err(err)
                if err.as_service_error().and_then(ProvideErrorMetadata::code)
                    == Some("ResourceNotFoundException") =>
            {
                Ok(None)
            }
            Err(err) => Err(secrets_error(&err)),
        }
    }

    async fn put_pending(&self, token: &str, secret_string: &str) -> Result<(), RotationError> {
        self.client
            .put_secret_value()
            .secret_id(&self.secret_id)
            .client_request_token(token)
            .secret_string(secret_string)
            .version_stages(PENDING)
            .send()
            .await
            .map(|_| ())
            .map_err(|err| secrets_error(&err))
    }

    async fn move_stage(
        &self,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), RotationError> {
        self.client
            .update_secret_version_stage()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .set_move_to_version_id(to.map(str::to_owned))
            .set_remove_from_version_id(from.map(str::to_owned))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| secrets_error(&err))
    }
}
