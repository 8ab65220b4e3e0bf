//! Sessions, accounts, refresh families, the login log and the published
//! keys in process memory: the stores of the unit tests and the local server,
//! with the DynamoDB adapter's rules, lost on restart. One file per port.

mod accounts;
mod keys;
mod log;
mod login;
mod refresh;
mod token_cache;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

pub use token_cache::MemoryTokenCache;

use crate::domain::account::{Account, UserId};
use crate::domain::jwt::PublishedKey;
use crate::domain::login_log::{LogEntry, LogEvent};
use crate::domain::refresh::{KeptSessionKey, RefreshFamily, RefreshKey};
use crate::domain::session::Session;
use crate::domain::token::{SessionToken, TokenKey};
use crate::ports::errors::StoreError;
use crate::ports::sessions::SessionStore;

#[derive(Debug, Default)]
pub struct MemorySessionStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) sessions: HashMap<TokenKey, Session>,
    /// By openid, as in the table.
    pub(super) accounts: HashMap<String, Account>,
    pub(super) log: Vec<LogEntry>,
    pub(super) refresh_tokens: HashMap<RefreshKey, RefreshRecord>,
    /// Family → its user.
    pub(super) families: HashMap<RefreshFamily, UserId>,
    pub(super) kept_keys: HashMap<RefreshFamily, KeptSessionKey>,
    pub(super) published: Vec<PublishedKey>,
}

#[derive(Debug, Clone)]
pub(super) struct RefreshRecord {
    pub(super) family: RefreshFamily,
    pub(super) user_id: UserId,
    pub(super) expires_at: i64,
    pub(super) spent_at: Option<i64>,
    /// Once spent: the session its refresh made (a retry within the grace
    /// revokes it).
    pub(super) successor_session: Option<TokenKey>,
}

impl State {
    pub(super) fn openid_of(&self, user_id: &UserId) -> Option<String> {
        self.accounts
            .values()
            .find(|account| &account.user_id == user_id)
            .map(|account| account.openid.clone())
    }

    /// The account of `openid` if its userId is `user_id`.
    pub(super) fn account_mut(&mut self, user_id: &UserId, openid: &str) -> Option<&mut Account> {
        self.accounts
            .get_mut(openid)
            .filter(|account| &account.user_id == user_id)
    }

    pub(super) fn revoke_sessions_of(&mut self, user_id: &UserId) -> Vec<TokenKey> {
        let keys: Vec<TokenKey> = self
            .sessions
            .iter()
            .filter(|(_, session)| &session.user_id == user_id)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &keys {
            self.sessions.remove(key);
        }
        let families: Vec<RefreshFamily> = self
            .families
            .iter()
            .filter(|(_, owner)| *owner == user_id)
            .map(|(family, _)| family.clone())
            .collect();
        for family in &families {
            self.revoke_family(family);
        }
        keys
    }

    /// When a family's newest refresh token expires.
    pub(super) fn family_expires_at(&self, family: &RefreshFamily) -> i64 {
        self.refresh_tokens
            .values()
            .filter(|record| &record.family == family)
            .map(|record| record.expires_at)
            .max()
            .unwrap_or_default()
    }

    /// The family, its sessions and its kept key. Its refresh tokens are
    /// refused from now on (their family is gone); they stay known, so that a
    /// disabled account's token is answered `account_disabled`.
    pub(super) fn revoke_family(&mut self, family: &RefreshFamily) {
        self.families.remove(family);
        self.kept_keys.remove(family);
        self.sessions
            .retain(|_, session| session.family.as_ref() != Some(family));
    }

    pub(super) fn log_as(
        &mut self,
        template: Option<&LogEntry>,
        user_id: &UserId,
        event: LogEvent,
        outcome: &str,
    ) {
        if let Some(entry) = template {
            self.log.push(LogEntry {
                user_id: user_id.clone(),
                event,
                outcome: outcome.to_owned(),
                ..entry.clone()
            });
        }
    }
}

impl MemorySessionStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `session` under a fresh token and returns the token: a live
    /// session without a login, for benchmarks, fuzzing and tests.
    pub fn insert_new(&self, session: Session) -> Result<SessionToken, getrandom::Error> {
        let token = SessionToken::generate()?;
        self.lock().sessions.insert(token.key(), session);
        Ok(token)
    }

    /// Every log entry, oldest first (tests and the local server).
    pub fn log(&self) -> Vec<LogEntry> {
        self.lock().log.clone()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned state is still consistent: every change completes under
        // the lock before anything can panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SessionStore for MemorySessionStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<Session>, StoreError> {
        Ok(self.lock().sessions.get(key).cloned())
    }

    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.lock().sessions.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
