//! What is shared between containers: the token with its expiry, and the claims
//! that keep them from fetching or forcing all at once.

use std::future::Future;

use crate::domain::redact::AccessToken;
use crate::domain::wechat::FetchedToken;
use crate::ports::errors::StoreError;

/// A token is renewed this long before WeChat's expiry (WeChat itself issues the
/// next stable token in the last 5 minutes, while the old one still works).
const EXPIRY_MARGIN_SECONDS: i64 = 300;

/// A token and the instant (epoch seconds) we stop using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedToken {
    pub token: AccessToken,
    pub expires_at: i64,
}

impl CachedToken {
    /// Renewed `EXPIRY_MARGIN_SECONDS` early, or halfway for a short-lived token.
    pub fn from_fetched(fetched: FetchedToken, now: i64) -> Self {
        let margin = EXPIRY_MARGIN_SECONDS.min(fetched.expires_in / 2);
        Self {
            token: fetched.token,
            expires_at: now + fetched.expires_in - margin,
        }
    }

    pub fn is_live(&self, now: i64) -> bool {
        now < self.expires_at
    }
}

/// The UTC day of an epoch second, as a day number.
pub fn utc_day(now: i64) -> i64 {
    now.div_euclid(86_400)
}

/// The table side: one token item per appid, plus claim items that expire.
pub trait TokenCache: Send + Sync + 'static {
    /// The shared token, strongly consistent; expiry is the caller's to check.
    fn load_token(
        &self,
        appid: &str,
    ) -> impl Future<Output = Result<Option<CachedToken>, StoreError>> + Send;

    /// Shares a fetched token and returns the one the table holds afterwards.
    /// A token that expires later is never replaced by one that expires sooner
    /// (a slow normal fetch must not undo a forced one): then that one comes back.
    fn save_token(
        &self,
        appid: &str,
        token: &CachedToken,
    ) -> impl Future<Output = Result<CachedToken, StoreError>> + Send;

    /// Takes the right to fetch a missing or expired token for `hold_seconds`,
    /// while the others wait, unless another caller holds it at `now`.
    /// `Ok(false)`: someone else does.
    fn try_claim_fetch(
        &self,
        appid: &str,
        now: i64,
        hold_seconds: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Takes the right to force a refresh at `now`, unless one was taken less
    /// than `interval_seconds` ago or `per_day` were taken this UTC day, by any
    /// caller. Atomic in the store: one counter per appid.
    fn try_claim_forced_refresh(
        &self,
        appid: &str,
        now: i64,
        interval_seconds: i64,
        per_day: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<T: TokenCache> TokenCache for std::sync::Arc<T> {
    fn load_token(
        &self,
        appid: &str,
    ) -> impl Future<Output = Result<Option<CachedToken>, StoreError>> + Send {
        (**self).load_token(appid)
    }

    fn save_token(
        &self,
        appid: &str,
        token: &CachedToken,
    ) -> impl Future<Output = Result<CachedToken, StoreError>> + Send {
        (**self).save_token(appid, token)
    }

    fn try_claim_fetch(
        &self,
        appid: &str,
        now: i64,
        hold_seconds: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).try_claim_fetch(appid, now, hold_seconds)
    }

    fn try_claim_forced_refresh(
        &self,
        appid: &str,
        now: i64,
        interval_seconds: i64,
        per_day: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).try_claim_forced_refresh(appid, now, interval_seconds, per_day)
    }
}
