//! The token cache in process memory: for unit tests and the local server.

use std::sync::Mutex;

use super::{CachedToken, Claim, TokenCache};
use crate::session::StoreError;

/// The token and claims in process memory: for unit tests and local runs.
#[derive(Debug, Default)]
pub struct MemoryTokenCache {
    items: Mutex<MemoryItems>,
}

#[derive(Debug, Default)]
struct MemoryItems {
    tokens: std::collections::HashMap<String, CachedToken>,
    claims: std::collections::HashMap<(String, &'static str), i64>,
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

    async fn save_token(&self, appid: &str, token: &CachedToken) -> Result<(), StoreError> {
        let mut items = self.lock();
        let keep = items
            .tokens
            .get(appid)
            .is_some_and(|held| held.expires_at > token.expires_at);
        if !keep {
            items.tokens.insert(appid.to_owned(), token.clone());
        }
        Ok(())
    }

    async fn try_claim(
        &self,
        appid: &str,
        claim: Claim,
        now: i64,
        hold_seconds: i64,
    ) -> Result<bool, StoreError> {
        let mut items = self.lock();
        let key = (appid.to_owned(), claim.as_str());
        if items.claims.get(&key).is_some_and(|&until| until > now) {
            return Ok(false);
        }
        items.claims.insert(key, now + hold_seconds);
        Ok(true)
    }
}
