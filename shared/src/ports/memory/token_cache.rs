//! The token cache in process memory: for unit tests and the local server.

use std::sync::Mutex;

use crate::ports::errors::StoreError;
use crate::ports::token_cache::{CachedToken, TokenCache, utc_day};

/// The token and claims in process memory: for unit tests and local runs.
#[derive(Debug, Default)]
pub struct MemoryTokenCache {
    items: Mutex<MemoryItems>,
}

#[derive(Debug, Default)]
struct MemoryItems {
    tokens: std::collections::HashMap<String, CachedToken>,
    /// Per appid: when the fetch claim lapses.
    fetch_claims: std::collections::HashMap<String, i64>,
    /// Per appid: (UTC day, forced refreshes that day, end of the 30-s window).
    forced: std::collections::HashMap<String, (i64, i64, i64)>,
}

impl MemoryTokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryItems> {
        // Every write is one insert: a poisoned map is still consistent.
        self.items
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TokenCache for MemoryTokenCache {
    async fn load_token(&self, appid: &str) -> Result<Option<CachedToken>, StoreError> {
        Ok(self.lock().tokens.get(appid).cloned())
    }

    async fn save_token(
        &self,
        appid: &str,
        token: &CachedToken,
    ) -> Result<CachedToken, StoreError> {
        let mut items = self.lock();
        match items.tokens.get(appid) {
            Some(held) if held.expires_at > token.expires_at => Ok(held.clone()),
            _ => {
                items.tokens.insert(appid.to_owned(), token.clone());
                Ok(token.clone())
            }
        }
    }

    async fn try_claim_fetch(
        &self,
        appid: &str,
        now: i64,
        hold_seconds: i64,
    ) -> Result<bool, StoreError> {
        let mut items = self.lock();
        if items
            .fetch_claims
            .get(appid)
            .is_some_and(|&until| until > now)
        {
            return Ok(false);
        }
        items
            .fetch_claims
            .insert(appid.to_owned(), now + hold_seconds);
        Ok(true)
    }

    async fn try_claim_forced_refresh(
        &self,
        appid: &str,
        now: i64,
        interval_seconds: i64,
        per_day: i64,
    ) -> Result<bool, StoreError> {
        let mut items = self.lock();
        let today = utc_day(now);
        let (day, count, window_ends) = items.forced.get(appid).copied().unwrap_or((today, 0, 0));
        let count = if day == today { count } else { 0 };
        if window_ends > now || count >= per_day {
            return Ok(false);
        }
        items
            .forced
            .insert(appid.to_owned(), (today, count + 1, now + interval_seconds));
        Ok(true)
    }
}
