//! Signing keys: the published public set (in the session table), the
//! private keys' secret as login reads it, and as the rotation changes it.

use std::collections::HashMap;
use std::future::Future;

use crate::domain::jwt::{KeyVersion, PublishedKey, Signer, SigningKey};
use crate::domain::rotation::RotationError;
use crate::ports::errors::StoreError;

/// Where the published set is kept.
pub trait PublicKeyStore: Send + Sync + 'static {
    /// The set, read consistently.
    fn published_keys(&self) -> impl Future<Output = Result<Vec<PublishedKey>, StoreError>> + Send;

    /// Adds `keys` (a key already there keeps its first `published_at`, and
    /// gains its version id if it had none) and answers the whole set.
    fn publish(
        &self,
        keys: &[KeyVersion],
        now: i64,
    ) -> impl Future<Output = Result<Vec<PublishedKey>, StoreError>> + Send;

    /// Drops every key but `kids` (the rotation's last step).
    fn unpublish_all_but(
        &self,
        kids: &[&str],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl<T: PublicKeyStore> PublicKeyStore for std::sync::Arc<T> {
    fn published_keys(&self) -> impl Future<Output = Result<Vec<PublishedKey>, StoreError>> + Send {
        (**self).published_keys()
    }

    fn publish(
        &self,
        keys: &[KeyVersion],
        now: i64,
    ) -> impl Future<Output = Result<Vec<PublishedKey>, StoreError>> + Send {
        (**self).publish(keys, now)
    }

    fn unpublish_all_but(
        &self,
        kids: &[&str],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).unpublish_all_but(kids)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeyError {
    /// The secret's current key is missing or malformed: a start-up error.
    #[error("the signing key secret is malformed: {0}")]
    Malformed(String),
    #[error("the signing key secret could not be read: {0}")]
    Unavailable(String),
    #[error("the public keys could not be published: {0}")]
    Publish(StoreError),
}

/// Where the signing keys come from: the secret's stages.
pub trait SigningKeySource: Send + Sync + 'static {
    /// `AWSCURRENT` (required and well-formed), `AWSPREVIOUS` and `AWSPENDING`
    /// (each only when present and well-formed), each with its version id.
    fn signing_keys(&self) -> impl Future<Output = Result<Signer, SigningKeyError>> + Send;

    /// The key of version `version_id`, which may hold no stage any more;
    /// `None` when there is no such version or it holds no key.
    fn key_of_version(
        &self,
        version_id: &str,
    ) -> impl Future<Output = Result<Option<SigningKey>, SigningKeyError>> + Send;
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

/// Keys already parsed (the local server's development key, tests).
impl SigningKeySource for Signer {
    async fn signing_keys(&self) -> Result<Signer, SigningKeyError> {
        Ok(self.clone())
    }

    async fn key_of_version(
        &self,
        version_id: &str,
    ) -> Result<Option<SigningKey>, SigningKeyError> {
        Ok(self
            .keys()
            .find(|key| key.version_id() == Some(version_id))
            .cloned())
    }
}
