//! `login`'s side of JWTs: the signing keys from their secret, published
//! before they sign, re-read every 5 minutes so a rotation reaches every
//! container, and the token a session gets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{info, warn};

use crate::domain::app::AppId;
use crate::domain::jwt::{
    Claims, JwtSettings, PublishedKey, Signer, SigningKey, choose_signer, preferred_key, sign,
    sign_and_verify,
};
use crate::domain::session::Session;
use crate::domain::token::SessionToken;
use crate::ports::keys::{PublicKeyStore, SigningKeyError, SigningKeySource};
use crate::runtime::deadline::Deadline;

/// `login` re-reads the secret at least this often (ms), by default.
pub const SECRET_REREAD_MS: i64 = 300_000;
/// What a re-read may take of a request, at most: the request's own work
/// (WeChat, a transaction) takes tens of milliseconds, and a slow Secrets
/// Manager must not hold it much longer.
pub const RELOAD_BUDGET: Duration = Duration::from_secs(1);
/// After a failed re-read, the next try waits this long (ms, jittered up to
/// twice as long): the keys already loaded keep signing meanwhile, so an
/// outage of Secrets Manager costs one request per container a
/// `RELOAD_BUDGET` every half minute or so, not every request its timeout.
pub const RELOAD_RETRY_AFTER_MS: i64 = 30_000;

/// Signs and verifies a throwaway token with `key`, on a blocking thread so
/// that init's I/O goes on meanwhile: a key that cannot sign stops start-up,
/// and the first signature's one-time cost (aws-lc seeds its random generator,
/// about 30 ms here) is paid at init, not by the first login.
async fn self_test(key: SigningKey) -> Result<(), SigningKeyError> {
    let tested = tokio::task::spawn_blocking(move || sign_and_verify(&key))
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
    /// The app a session without one belongs to (written before several apps).
    default_app: AppId,
    lead_seconds: i64,
    reread_ms: i64,
    loaded: Mutex<Option<Loaded>>,
    /// After a failed re-read: no other try before this (epoch ms).
    retry_at_ms: Mutex<i64>,
}

impl<K: SigningKeySource> JwtIssuer<K> {
    pub fn new(source: K, settings: JwtSettings, default_app: AppId, lead_seconds: i64) -> Self {
        Self {
            source,
            settings,
            default_app,
            lead_seconds,
            reread_ms: SECRET_REREAD_MS,
            loaded: Mutex::new(None),
            retry_at_ms: Mutex::new(0),
        }
    }

    /// Re-reads the secret this often instead (`SIGNING_KEY_REREAD_SECONDS`).
    pub fn with_reread_ms(mut self, reread_ms: i64) -> Self {
        self.reread_ms = reread_ms;
        self
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

    /// Reads the secret and publishes every stage's public half before
    /// anything is signed with it; reads by version id the older key that
    /// must still sign, if any. Run at start-up (an error there is fatal) and
    /// whenever the copy is older than the re-read interval.
    pub async fn load(
        &self,
        store: &impl PublicKeyStore,
        now_ms: i64,
    ) -> Result<(), SigningKeyError> {
        let mut signer = self.source.signing_keys().await?;
        let now = now_ms / 1000;
        // The first load tests the key beside the publication (a blocking
        // thread and the table's round trips): start-up waits for the longer.
        let first = self.snapshot().is_none();
        let test = async {
            match (first, signer.current.clone()) {
                (true, Some(current)) => self_test(current).await,
                _ => Ok(()),
            }
        };
        let versions = signer.key_versions();
        let (tested, published) = tokio::join!(test, store.publish(&versions, now));
        tested?;
        let published = published.map_err(SigningKeyError::Publish)?;
        // The key that should sign may be one the stages no longer hold: the
        // newer keys are not yet public long enough. Read it by its version,
        // and keep what the last load read so, unless it is unpublished.
        let kept_older = self
            .snapshot()
            .map(|loaded| loaded.signer.older.clone())
            .unwrap_or_default();
        signer.older = kept_older
            .into_iter()
            .filter(|key| published.iter().any(|p| p.key.kid == key.kid()))
            .filter(|key| signer.key(key.kid()).is_none())
            .collect();
        if let Some(wanted) = preferred_key(&published, self.lead_seconds, now) {
            if let (None, Some(version_id)) = (signer.key(&wanted.key.kid), &wanted.version_id) {
                match self.source.key_of_version(version_id).await? {
                    Some(key) if key.kid() == wanted.key.kid => signer.older.push(key),
                    _ => warn!(
                        kid = wanted.key.kid,
                        "the key that should sign has no readable version; signing with the next best"
                    ),
                }
            }
        }
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

    /// Re-reads the secret when the copy is due, within `deadline` and at
    /// most `RELOAD_BUDGET`. Run beside the request's own I/O (WeChat, the
    /// refresh transaction), never after it. A failure keeps the keys loaded
    /// signing and puts the next try off by `RELOAD_RETRY_AFTER_MS` or more:
    /// an outage of Secrets Manager breaks no login and no refresh.
    pub async fn reload_if_due(
        &self,
        store: &impl PublicKeyStore,
        now_ms: i64,
        deadline: Deadline,
    ) {
        let due = self
            .snapshot()
            .is_none_or(|loaded| now_ms - loaded.loaded_at_ms >= self.reread_ms);
        let waiting = self
            .retry_at_ms
            .lock()
            .is_ok_and(|retry_at| now_ms < *retry_at);
        if !due || waiting {
            return;
        }
        let budget = Deadline::after(deadline.remaining().min(RELOAD_BUDGET));
        let failure = match budget.run(self.load(store, now_ms)).await {
            Some(Ok(())) => return,
            Some(Err(err)) => err.to_string(),
            None => "it took longer than the request allows".to_owned(),
        };
        let pause = RELOAD_RETRY_AFTER_MS
            + crate::runtime::backoff::full_jitter(
                Duration::from_millis(RELOAD_RETRY_AFTER_MS as u64),
                0,
                Duration::from_millis(RELOAD_RETRY_AFTER_MS as u64),
            )
            .as_millis() as i64;
        if let Ok(mut retry_at) = self.retry_at_ms.lock() {
            *retry_at = now_ms + pause;
        }
        warn!(
            error = %failure,
            retry_in_ms = pause,
            "re-reading the signing key failed; the keys loaded keep signing"
        );
    }

    /// The key that signs at `now_ms`, from what is loaded: no I/O, so that
    /// nothing slow runs between a committed session and its answer.
    fn signing_key(&self, now_ms: i64) -> Result<SigningKey, SigningKeyError> {
        let loaded = self
            .snapshot()
            .ok_or_else(|| SigningKeyError::Unavailable("no signing key loaded yet".into()))?;
        choose_signer(
            &loaded.signer,
            &loaded.published,
            self.lead_seconds,
            now_ms / 1000,
        )
        .cloned()
        .ok_or_else(|| SigningKeyError::Malformed("no AWSCURRENT key".into()))
    }

    /// The JWT of `session`, whose id is `sid`.
    pub fn token(
        &self,
        session: &Session,
        sid: &SessionToken,
        now_ms: i64,
    ) -> Result<String, SigningKeyError> {
        let key = self.signing_key(now_ms)?;
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: session.user_id.as_str().to_owned(),
            openid: session.openid.clone(),
            unionid: session.unionid.clone(),
            appid: session
                .appid
                .as_ref()
                .unwrap_or(&self.default_app)
                .as_str()
                .to_owned(),
            sid: sid.expose().to_owned(),
            iat: session.created_at,
            exp: session.expires_at,
        };
        sign(&key, &claims).map_err(|err| SigningKeyError::Malformed(err.to_string()))
    }
}

#[cfg(test)]
mod tests;
