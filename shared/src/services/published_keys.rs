//! A checker's copy of the published key set: at most `KEYS_TTL` old,
//! reloaded at once (rate-limited) for a kid it does not know.

use std::sync::Mutex;

use crate::domain::jwt::{PublicKey, PublishedKey};
use crate::ports::errors::StoreError;
use crate::ports::keys::PublicKeyStore;

/// How long a checker trusts its copy of the set.
pub const KEYS_TTL: i64 = 300_000;
/// A token naming an unknown kid reloads the set at most this often (ms), so
/// forged kids cannot turn every request into a table read.
pub const RELOAD_AT_MOST_EVERY: i64 = 10_000;

#[derive(Debug, Default)]
struct Cached {
    keys: Vec<PublishedKey>,
    /// Epoch ms of the last load.
    loaded_at: Option<i64>,
}

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
