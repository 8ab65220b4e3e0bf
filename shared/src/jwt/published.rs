//! The published key set: the public half of every accepted signing key, kept
//! in the session table, so that checkers never read the private key.

use std::future::Future;
use std::sync::Mutex;

use super::PublicKey;
use crate::session::StoreError;

/// How long a checker trusts its copy of the set.
pub const KEYS_TTL: i64 = 300_000;
/// A token naming an unknown kid reloads the set at most this often (ms), so
/// forged kids cannot turn every request into a table read.
pub const RELOAD_AT_MOST_EVERY: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub key: PublicKey,
    /// Epoch seconds of its first publication: what the lead time counts from.
    pub published_at: i64,
    /// The signing key secret's version that holds the private half, when
    /// known: `login` reads it by id when the key must still sign after its
    /// version lost every stage (two rotations within the lead).
    pub version_id: Option<String>,
}

/// A public key to publish, with the secret version of its private half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersion {
    pub key: PublicKey,
    pub version_id: Option<String>,
}

impl From<PublicKey> for KeyVersion {
    fn from(key: PublicKey) -> Self {
        Self {
            key,
            version_id: None,
        }
    }
}

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

#[derive(Debug, Default)]
struct Cached {
    keys: Vec<PublishedKey>,
    /// Epoch ms of the last load.
    loaded_at: Option<i64>,
}

/// A checker's copy of the published set: at most `KEYS_TTL` old, reloaded at
/// once (rate-limited) for a kid it does not know.
#[derive(Debug, Default)]
pub struct PublishedKeys {
    cached: Mutex<Cached>,
}

impl PublishedKeys {
    pub fn new() -> Self {
        Self::default()
    }

    fn snapshot(&self) -> (Vec<PublishedKey>, Option<i64>) {
        match self.cached.lock() {
            Ok(cached) => (cached.keys.clone(), cached.loaded_at),
            Err(_) => (Vec::new(), None),
        }
    }

    async fn reload(
        &self,
        store: &impl PublicKeyStore,
        now_ms: i64,
    ) -> Result<Vec<PublishedKey>, StoreError> {
        let keys = store.published_keys().await?;
        if let Ok(mut cached) = self.cached.lock() {
            cached.keys = keys.clone();
            cached.loaded_at = Some(now_ms);
        }
        Ok(keys)
    }

    /// The whole set, at most `KEYS_TTL` old (the JWKS).
    pub async fn all(
        &self,
        store: &impl PublicKeyStore,
        now_ms: i64,
    ) -> Result<Vec<PublishedKey>, StoreError> {
        let (keys, loaded_at) = self.snapshot();
        match loaded_at {
            Some(at) if now_ms - at < KEYS_TTL => Ok(keys),
            _ => self.reload(store, now_ms).await,
        }
    }

    /// The published key named `kid`, if any.
    pub async fn key(
        &self,
        store: &impl PublicKeyStore,
        kid: &str,
        now_ms: i64,
    ) -> Result<Option<PublicKey>, StoreError> {
        let find = |keys: &[PublishedKey]| {
            keys.iter()
                .find(|k| k.key.kid == kid)
                .map(|k| k.key.clone())
        };
        let (keys, loaded_at) = self.snapshot();
        let keys = match loaded_at {
            Some(at) if now_ms - at < KEYS_TTL => {
                if let Some(key) = find(&keys) {
                    return Ok(Some(key));
                }
                if now_ms - at < RELOAD_AT_MOST_EVERY {
                    return Ok(None);
                }
                self.reload(store, now_ms).await?
            }
            _ => self.reload(store, now_ms).await?,
        };
        Ok(find(&keys))
    }
}

/// Merges `keys` into `published` at `now`: new keys are added with `now` as
/// their first publication; known ones keep it and gain a missing version id.
/// The one rule for every store.
pub fn merge_published(
    mut published: Vec<PublishedKey>,
    keys: &[KeyVersion],
    now: i64,
) -> Vec<PublishedKey> {
    for key in keys {
        match published.iter_mut().find(|p| p.key.kid == key.key.kid) {
            Some(known) => {
                if known.version_id.is_none() {
                    known.version_id.clone_from(&key.version_id);
                }
            }
            None => published.push(PublishedKey {
                key: key.key.clone(),
                published_at: now,
                version_id: key.version_id.clone(),
            }),
        }
    }
    published.sort_by(|a, b| a.key.kid.cmp(&b.key.kid));
    published
}
