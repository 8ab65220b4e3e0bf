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
use crate::domain::app::AppId;
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
    pub(super) accounts: HashMap<UserId, Account>,
    /// (appid, openid) → the account holding it.
    pub(super) identities: HashMap<(AppId, String), UserId>,
    /// unionid → the account holding it.
    pub(super) unionids: HashMap<String, UserId>,
    pub(super) log: Vec<LogEntry>,
    pub(super) refresh_tokens: HashMap<RefreshKey, RefreshRecord>,
    /// Family → the identity whose login started it.
    pub(super) families: HashMap<RefreshFamily, FamilyOwner>,
    pub(super) kept_keys: HashMap<RefreshFamily, KeptSessionKey>,
    pub(super) published: Vec<PublishedKey>,
}

/// Whose a refresh family is: the account, and the identity it logged in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FamilyOwner {
    pub(super) user_id: UserId,
    pub(super) appid: Option<AppId>,
    pub(super) openid: String,
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
    /// Every session and family of the account goes (deletion, disabling,
    /// a merge's losing side); their refresh tokens stay known but refused.
    pub(super) fn revoke_sessions_of(&mut self, user_id: &UserId) -> Vec<TokenKey> {
        self.revoke_where(|owner_user, _, _| owner_user == user_id)
    }

    /// The sessions and families of one identity (a login with one session per identity).
    pub(super) fn revoke_identity(
        &mut self,
        user_id: &UserId,
        appid: Option<&AppId>,
        openid: &str,
    ) -> Vec<TokenKey> {
        self.revoke_where(|owner_user, owner_app, owner_openid| {
            owner_user == user_id && owner_app == appid && owner_openid == openid
        })
    }

    fn revoke_where(
        &mut self,
        owned: impl Fn(&UserId, Option<&AppId>, &str) -> bool,
    ) -> Vec<TokenKey> {
        let keys: Vec<TokenKey> = self
            .sessions
            .iter()
            .filter(|(_, s)| owned(&s.user_id, s.appid.as_ref(), &s.openid))
            .map(|(key, _)| key.clone())
            .collect();
        for key in &keys {
            self.sessions.remove(key);
        }
        let families: Vec<RefreshFamily> = self
            .families
            .iter()
            .filter(|(_, o)| owned(&o.user_id, o.appid.as_ref(), &o.openid))
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

    /// Forgets an account: its identities, its unionid, its sessions and
    /// families, its refresh tokens.
    pub(super) fn remove_account(&mut self, user_id: &UserId) -> Option<Account> {
        let account = self.accounts.remove(user_id)?;
        self.identities.retain(|_, holder| holder != user_id);
        self.unionids.retain(|_, holder| holder != user_id);
        self.revoke_sessions_of(user_id);
        self.refresh_tokens
            .retain(|_, record| &record.user_id != user_id);
        Some(account)
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
