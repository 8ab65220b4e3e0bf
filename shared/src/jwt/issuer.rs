//! `login`'s side of JWTs: the signing keys from their secret, published
//! before they sign, re-read every 5 minutes so a rotation reaches every
//! container, and the token a session gets.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use super::{
    Claims, JwtSettings, KeyError, PublicKeyStore, PublishedKey, Signer, choose_signer, sign,
};
use crate::session::{Session, StoreError};
use crate::token::SessionToken;

/// `login` re-reads the secret at least this often (ms).
pub const SECRET_REREAD_MS: i64 = 300_000;

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
    /// (each only when present and well-formed).
    fn signing_keys(&self) -> impl Future<Output = Result<Signer, SigningKeyError>> + Send;
}

/// Keys already parsed (the local server's development key, tests).
impl SigningKeySource for Signer {
    async fn signing_keys(&self) -> Result<Signer, SigningKeyError> {
        Ok(self.clone())
    }
}

/// Parses a stage's SecretString; a malformed one is logged by kid-less reason.
pub fn parse_stage(stage: &str, text: Option<&str>) -> Result<Option<super::SigningKey>, KeyError> {
    match text {
        None => Ok(None),
        Some(text) => super::SigningKey::from_secret_string(text)
            .map(Some)
            .map_err(|err| {
                warn!(stage, error = %err, "signing key stage is not a usable key");
                err
            }),
    }
}

/// Signs and verifies a throwaway token with `key`, on a blocking thread so
/// that init's I/O goes on meanwhile: a key that cannot sign stops start-up,
/// and the first signature's one-time cost (aws-lc seeds its random generator,
/// about 30 ms here) is paid at init, not by the first login.
async fn self_test(key: super::SigningKey) -> Result<(), SigningKeyError> {
    let tested = tokio::task::spawn_blocking(move || super::sign_and_verify(&key))
        .await
        .map_err(|err| SigningKeyError::Malformed(err.to_string()))?;
    tested.map_err(|reason| SigningKeyError::Malformed(format!("the key cannot sign: {reason}")))
}

#[derive(Debug, Clone)]
struct Loaded {
    signer: Arc<Signer>,
    published: Vec<PublishedKey>,
    loaded_at_ms: i64,
}

pub struct JwtIssuer<K> {
    source: K,
    settings: JwtSettings,
    appid: String,
    lead_seconds: i64,
    loaded: Mutex<Option<Loaded>>,
}

impl<K: SigningKeySource> JwtIssuer<K> {
    pub fn new(source: K, settings: JwtSettings, appid: String, lead_seconds: i64) -> Self {
        Self {
            source,
            settings,
            appid,
            lead_seconds,
            loaded: Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    #[cfg(test)]
    pub(super) fn source(&self) -> &K {
        &self.source
    }

    fn snapshot(&self) -> Option<Loaded> {
        self.loaded.lock().ok().and_then(|loaded| loaded.clone())
    }

    /// Reads the secret and publishes every accepted key's public half
    /// before anything is signed with it. Run at start-up (an error there is
    /// fatal) and whenever the copy is older than `SECRET_REREAD_MS`.
    pub async fn load(
        &self,
        store: &impl PublicKeyStore,
        now_ms: i64,
    ) -> Result<(), SigningKeyError> {
        let signer = self.source.signing_keys().await?;
        if self.snapshot().is_none() {
            if let Some(current) = signer.current.clone() {
                self_test(current).await?;
            }
        }
        let published = store
            .publish(&signer.public_keys(), now_ms / 1000)
            .await
            .map_err(SigningKeyError::Publish)?;
        if let Some(current) = &signer.current {
            info!(kid = current.kid(), "signing keys loaded and published");
        }
        if let Ok(mut loaded) = self.loaded.lock() {
            *loaded = Some(Loaded {
                signer: Arc::new(signer),
                published,
                loaded_at_ms: now_ms,
            });
        }
        Ok(())
    }

    /// Re-reads the secret when the copy is `SECRET_REREAD_MS` old. Run beside
    /// the request's own I/O (WeChat, the refresh transaction), so that the
    /// re-read adds no latency; a failure keeps the keys loaded.
    pub async fn reload_if_due(&self, store: &impl PublicKeyStore, now_ms: i64) {
        let due = self
            .snapshot()
            .is_none_or(|loaded| now_ms - loaded.loaded_at_ms >= SECRET_REREAD_MS);
        if due {
            if let Err(err) = self.load(store, now_ms).await {
                warn!(error = %err, "re-reading the signing key failed; keeping the keys loaded");
            }
        }
    }

    /// The key that signs now (re-reading the secret first if nothing ran
    /// `reload_if_due` in time).
    async fn signing_key(
        &self,
        store: &impl PublicKeyStore,
        now_ms: i64,
    ) -> Result<super::SigningKey, SigningKeyError> {
        self.reload_if_due(store, now_ms).await;
        let loaded = self
            .snapshot()
            .ok_or_else(|| SigningKeyError::Unavailable("no signing key loaded yet".into()))?;
        let current_published_at = loaded.signer.current.as_ref().and_then(|current| {
            loaded
                .published
                .iter()
                .find(|p| p.key.kid == current.kid())
                .map(|p| p.published_at)
        });
        choose_signer(
            &loaded.signer,
            current_published_at,
            self.lead_seconds,
            now_ms / 1000,
        )
        .cloned()
        .ok_or_else(|| SigningKeyError::Malformed("no AWSCURRENT key".into()))
    }

    /// The JWT of `session`, whose id is `sid`.
    pub async fn token(
        &self,
        store: &impl PublicKeyStore,
        session: &Session,
        sid: &SessionToken,
        now_ms: i64,
    ) -> Result<String, SigningKeyError> {
        let key = self.signing_key(store, now_ms).await?;
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: session.user_id.as_str().to_owned(),
            openid: session.openid.clone(),
            unionid: session.unionid.clone(),
            appid: self.appid.clone(),
            sid: sid.expose().to_owned(),
            iat: session.created_at,
            exp: session.expires_at,
        };
        sign(&key, &claims).map_err(|err| SigningKeyError::Malformed(err.to_string()))
    }
}
