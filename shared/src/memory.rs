//! Sessions, accounts and the login log in process memory: the stores of the
//! unit tests and the local server, with the DynamoDB adapter's rules, lost on
//! restart.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::account::{Account, AccountStatus, AccountStore, BoundPhone, UserId};
use crate::jwt::{KeyVersion, PublicKeyStore, PublishedKey, merge_published};
use crate::login_log::{LogEntry, LogEvent, LoginLog};
use crate::refresh::{
    KeptSessionKey, RefreshFamily, RefreshKey, RefreshOutcome, RefreshWrite,
    families_a_login_revokes,
};
use crate::session::{
    LoginOutcome, LoginWrite, Session, SessionStore, StoreError, sessions_a_login_removes,
};
use crate::token::{SessionToken, TokenKey};

#[derive(Debug, Default)]
pub struct MemorySessionStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<TokenKey, Session>,
    /// By openid, as in the table.
    accounts: HashMap<String, Account>,
    log: Vec<LogEntry>,
    refresh_tokens: HashMap<RefreshKey, RefreshRecord>,
    /// Family → its user.
    families: HashMap<RefreshFamily, UserId>,
    kept_keys: HashMap<RefreshFamily, KeptSessionKey>,
    published: Vec<PublishedKey>,
}

#[derive(Debug, Clone)]
struct RefreshRecord {
    family: RefreshFamily,
    user_id: UserId,
    expires_at: i64,
    spent_at: Option<i64>,
    /// Once spent: the session its refresh made (a retry within the grace
    /// revokes it).
    successor_session: Option<TokenKey>,
}

impl State {
    fn openid_of(&self, user_id: &UserId) -> Option<String> {
        self.accounts
            .values()
            .find(|account| &account.user_id == user_id)
            .map(|account| account.openid.clone())
    }

    /// The account of `openid` if its userId is `user_id`.
    fn account_mut(&mut self, user_id: &UserId, openid: &str) -> Option<&mut Account> {
        self.accounts
            .get_mut(openid)
            .filter(|account| &account.user_id == user_id)
    }

    fn revoke_sessions_of(&mut self, user_id: &UserId) -> Vec<TokenKey> {
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
    fn family_expires_at(&self, family: &RefreshFamily) -> i64 {
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
    fn revoke_family(&mut self, family: &RefreshFamily) {
        self.families.remove(family);
        self.kept_keys.remove(family);
        self.sessions
            .retain(|_, session| session.family.as_ref() != Some(family));
    }

    fn log_as(
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

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned state is still consistent: every change completes under
        // the lock before anything can panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SessionStore for MemorySessionStore {
    async fn login(&self, login: &LoginWrite<'_>) -> Result<LoginOutcome, StoreError> {
        let mut state = self.lock();
        if state.sessions.contains_key(login.key) {
            return Err(StoreError::AlreadyExists);
        }
        let wx = login.session;
        let now = wx.created_at;
        let (user_id, new_user) = match state.accounts.get_mut(&wx.openid) {
            Some(account) if account.status == AccountStatus::Disabled => {
                let user_id = account.user_id.clone();
                if let Some(entry) = login.log {
                    state.log.push(LogEntry {
                        user_id: user_id.clone(),
                        event: LogEvent::LoginRefused,
                        outcome: "account_disabled".into(),
                        ..entry.clone()
                    });
                }
                return Ok(LoginOutcome::Disabled { user_id });
            }
            Some(account) => {
                account.last_login_at = now;
                if account.unionid.is_none() {
                    account.unionid.clone_from(&wx.unionid);
                }
                (account.user_id.clone(), false)
            }
            None => {
                let account = Account {
                    user_id: wx.user_id.clone(),
                    openid: wx.openid.clone(),
                    unionid: wx.unionid.clone(),
                    created_at: now,
                    last_login_at: now,
                    status: AccountStatus::Active,
                    phone: None,
                };
                state.accounts.insert(wx.openid.clone(), account);
                (wx.user_id.clone(), true)
            }
        };
        // As in the table: several sessions per user keep a bounded number of
        // refresh families, and a revoked family's live sessions are revoked
        // (and logged) with it.
        let mut revoked: Vec<TokenKey> = Vec::new();
        if !login.single_session {
            let held_families: Vec<(RefreshFamily, i64)> = state
                .families
                .iter()
                .filter(|(_, owner)| **owner == user_id)
                .map(|(family, _)| (family.clone(), state.family_expires_at(family)))
                .collect();
            for (family, _) in families_a_login_revokes(&held_families, now) {
                revoked.extend(
                    state
                        .sessions
                        .iter()
                        .filter(|(_, s)| s.family.as_ref() == Some(&family) && s.expires_at > now)
                        .map(|(key, _)| key.clone()),
                );
                state.revoke_family(&family);
            }
        }
        let held: Vec<(TokenKey, i64)> = state
            .sessions
            .iter()
            .filter(|(_, session)| session.user_id == user_id)
            .map(|(key, session)| (key.clone(), session.expires_at))
            .collect();
        revoked.extend(
            sessions_a_login_removes(&held, now, login.single_session)
                .into_iter()
                .filter(|(_, expires_at)| *expires_at > now)
                .map(|(key, _)| key),
        );
        for (key, _) in sessions_a_login_removes(&held, now, login.single_session) {
            state.sessions.remove(&key);
        }
        if login.single_session {
            state.revoke_sessions_of(&user_id);
        }
        let mut session = Session {
            user_id: user_id.clone(),
            ..wx.clone()
        };
        if let Some(issue) = login.refresh {
            session.family = Some(issue.family.clone());
            state.families.insert(issue.family.clone(), user_id.clone());
            state.refresh_tokens.insert(
                issue.key.clone(),
                RefreshRecord {
                    family: issue.family.clone(),
                    user_id: user_id.clone(),
                    expires_at: issue.expires_at,
                    spent_at: None,
                    successor_session: None,
                },
            );
            if let Some(session_key) = &wx.session_key {
                state.kept_keys.insert(
                    issue.family.clone(),
                    KeptSessionKey {
                        session_key: session_key.clone(),
                        expires_at: wx.expires_at,
                    },
                );
            }
        }
        state.sessions.insert(login.key.clone(), session);
        if let Some(entry) = login.log {
            let entry = LogEntry {
                user_id: user_id.clone(),
                ..entry.clone()
            };
            for _ in &revoked {
                state.log.push(LogEntry {
                    event: LogEvent::Revoked,
                    ..entry.clone()
                });
            }
            state.log.push(entry);
        }
        let unionid = state
            .accounts
            .get(&wx.openid)
            .and_then(|account| account.unionid.clone());
        Ok(LoginOutcome::LoggedIn {
            user_id,
            new_user,
            unionid,
        })
    }

    async fn get(&self, key: &TokenKey) -> Result<Option<Session>, StoreError> {
        Ok(self.lock().sessions.get(key).cloned())
    }

    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.lock().sessions.remove(key);
        Ok(())
    }

    async fn logout(&self, key: &TokenKey, session: &Session) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.sessions.remove(key);
        if let Some(family) = &session.family {
            state.revoke_family(family);
        }
        Ok(())
    }

    async fn refresh(&self, refresh: &RefreshWrite<'_>) -> Result<RefreshOutcome, StoreError> {
        let mut state = self.lock();
        let now = refresh.now;
        let Some(record) = state.refresh_tokens.get(refresh.presented).cloned() else {
            return Ok(RefreshOutcome::Invalid);
        };
        if &record.family != refresh.family {
            return Ok(RefreshOutcome::Invalid);
        }
        let user_id = record.user_id.clone();
        let refused = |state: &mut State| {
            let reason = "invalid_refresh_token";
            state.log_as(refresh.log, &user_id, LogEvent::RefreshRefused, reason);
            Ok(RefreshOutcome::Invalid)
        };
        let Some(openid) = state.openid_of(&record.user_id) else {
            return refused(&mut state);
        };
        if state
            .accounts
            .get(&openid)
            .is_some_and(|account| account.status == AccountStatus::Disabled)
        {
            state.log_as(
                refresh.log,
                &user_id,
                LogEvent::RefreshRefused,
                "account_disabled",
            );
            return Ok(RefreshOutcome::Disabled { user_id });
        }
        if !state.families.contains_key(&record.family) || record.expires_at <= now {
            return refused(&mut state);
        }
        if let Some(spent_at) = record.spent_at {
            if now - spent_at >= refresh.grace_seconds {
                state.revoke_family(&record.family);
                state.log_as(refresh.log, &user_id, LogEvent::RefreshReused, "revoked");
                return Ok(RefreshOutcome::Reused { user_id });
            }
        }
        if state.sessions.contains_key(refresh.session_key) {
            return Err(StoreError::AlreadyExists);
        }
        let account = state
            .accounts
            .get(&openid)
            .cloned()
            .ok_or_else(|| StoreError::Malformed("account vanished".into()))?;
        // A retry within the grace replaces what the first use made: the
        // family's live token and that use's session (as in the table).
        if record.spent_at.is_some() {
            state
                .refresh_tokens
                .retain(|_, held| held.family != record.family || held.spent_at.is_some());
            if let Some(replaced) = &record.successor_session {
                state.sessions.remove(replaced);
            }
        }
        let kept = state
            .kept_keys
            .get(&record.family)
            .filter(|kept| kept.expires_at > now)
            .cloned();
        let session = Session {
            user_id: user_id.clone(),
            openid: account.openid.clone(),
            unionid: account.unionid.clone(),
            session_key_expires_at: kept.as_ref().map(|kept| kept.expires_at),
            session_key: kept.map(|kept| kept.session_key),
            family: Some(record.family.clone()),
            created_at: now,
            expires_at: refresh.session_expires_at,
        };
        state
            .sessions
            .retain(|_, held| held.user_id != user_id || held.expires_at > now);
        state
            .sessions
            .insert(refresh.session_key.clone(), session.clone());
        if let Some(spent) = state.refresh_tokens.get_mut(refresh.presented) {
            spent.spent_at.get_or_insert(now);
            spent.successor_session = Some(refresh.session_key.clone());
        }
        state.refresh_tokens.insert(
            refresh.next.clone(),
            RefreshRecord {
                family: record.family,
                user_id: user_id.clone(),
                expires_at: refresh.refresh_expires_at,
                spent_at: None,
                successor_session: None,
            },
        );
        state.log_as(refresh.log, &user_id, LogEvent::Refresh, "ok");
        Ok(RefreshOutcome::Refreshed(session))
    }
}

impl PublicKeyStore for MemorySessionStore {
    async fn published_keys(&self) -> Result<Vec<PublishedKey>, StoreError> {
        Ok(self.lock().published.clone())
    }

    async fn publish(
        &self,
        keys: &[KeyVersion],
        now: i64,
    ) -> Result<Vec<PublishedKey>, StoreError> {
        let mut state = self.lock();
        let merged = merge_published(std::mem::take(&mut state.published), keys, now);
        state.published = merged;
        Ok(state.published.clone())
    }

    async fn unpublish_all_but(&self, kids: &[&str]) -> Result<(), StoreError> {
        self.lock()
            .published
            .retain(|p| kids.contains(&p.key.kid.as_str()));
        Ok(())
    }
}

impl AccountStore for MemorySessionStore {
    async fn account(&self, openid: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.lock().accounts.get(openid).cloned())
    }

    async fn account_of(&self, user_id: &UserId) -> Result<Option<Account>, StoreError> {
        let state = self.lock();
        let openid = state.openid_of(user_id);
        Ok(openid.and_then(|openid| state.accounts.get(&openid).cloned()))
    }

    async fn bind_phone(
        &self,
        user_id: &UserId,
        openid: &str,
        phone: &BoundPhone,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        Ok(match state.account_mut(user_id, openid) {
            Some(account) => {
                account.phone = Some(phone.clone());
                true
            }
            None => false,
        })
    }

    async fn delete_account(
        &self,
        user_id: &UserId,
        openid: &str,
        log: Option<&LogEntry>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if state.account_mut(user_id, openid).is_none() {
            return Ok(false);
        }
        state.accounts.remove(openid);
        state.revoke_sessions_of(user_id);
        state
            .refresh_tokens
            .retain(|_, record| &record.user_id != user_id);
        state.log.extend(log.cloned());
        Ok(true)
    }

    async fn set_status(
        &self,
        user_id: &UserId,
        openid: &str,
        status: AccountStatus,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(account) = state.account_mut(user_id, openid) else {
            return Ok(false);
        };
        account.status = status;
        if status == AccountStatus::Disabled {
            state.revoke_sessions_of(user_id);
        }
        Ok(true)
    }
}

impl LoginLog for MemorySessionStore {
    async fn append(&self, entry: &LogEntry) -> Result<(), StoreError> {
        self.lock().log.push(entry.clone());
        Ok(())
    }

    async fn entries(&self, user_id: &UserId, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        let state = self.lock();
        let mut entries: Vec<LogEntry> = state
            .log
            .iter()
            .filter(|entry| &entry.user_id == user_id)
            .cloned()
            .collect();
        entries.sort_by(|a, b| b.at.cmp(&a.at));
        entries.truncate(limit);
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::SessionKey;

    fn session(openid: &str) -> Session {
        Session {
            user_id: UserId::generate().unwrap(),
            openid: openid.into(),
            unionid: None,
            session_key: Some(SessionKey::new("k")),
            session_key_expires_at: None,
            family: None,
            created_at: 100,
            expires_at: 700,
        }
    }

    async fn log_in(
        store: &MemorySessionStore,
        openid: &str,
        single: bool,
    ) -> (TokenKey, LoginOutcome) {
        let key = SessionToken::generate().unwrap().key();
        let session = session(openid);
        let outcome = store
            .login(&LoginWrite {
                key: &key,
                session: &session,
                single_session: single,
                log: None,
                refresh: None,
            })
            .await
            .unwrap();
        (key, outcome)
    }

    #[tokio::test]
    async fn the_first_login_creates_the_account_and_later_ones_keep_it() {
        let store = MemorySessionStore::new();
        let (first, created) = log_in(&store, "o1", true).await;
        let (second, again) = log_in(&store, "o1", true).await;
        let (
            LoginOutcome::LoggedIn {
                user_id: a,
                new_user: true,
                ..
            },
            LoginOutcome::LoggedIn {
                user_id: b,
                new_user: false,
                ..
            },
        ) = (created, again)
        else {
            panic!("unexpected outcomes");
        };
        assert_eq!(a, b);
        assert_eq!(store.get(&first).await.unwrap(), None, "revoked");
        assert_eq!(store.get(&second).await.unwrap().unwrap().user_id, a);
        let session = session("o1");
        assert_eq!(
            store
                .login(&LoginWrite {
                    key: &second,
                    session: &session,
                    single_session: true,
                    log: None,
                    refresh: None,
                })
                .await,
            Err(StoreError::AlreadyExists)
        );
    }

    /// Several sessions per user: each login starts a refresh family, and
    /// the one beyond the bound revokes the family ending soonest with its
    /// sessions, so what a user holds stays bounded.
    #[tokio::test]
    async fn a_user_keeps_a_bounded_number_of_refresh_families() {
        use crate::refresh::{RefreshIssue, RefreshToken};
        use crate::session::MAX_SESSIONS_PER_USER;
        let store = MemorySessionStore::new();
        let session = session("o1");
        let mut keys = Vec::new();
        for i in 0..=MAX_SESSIONS_PER_USER {
            let key = SessionToken::generate().unwrap().key();
            let family = RefreshFamily::generate().unwrap();
            let refresh = RefreshToken::issue(&family).unwrap().key();
            let outcome = store
                .login(&LoginWrite {
                    key: &key,
                    session: &session,
                    single_session: false,
                    log: None,
                    refresh: Some(RefreshIssue {
                        key: &refresh,
                        family: &family,
                        // The first login's family ends soonest.
                        expires_at: 10_000 + i as i64,
                    }),
                })
                .await
                .unwrap();
            assert!(matches!(outcome, LoginOutcome::LoggedIn { .. }));
            keys.push(key);
        }
        let state = store.state.lock().unwrap();
        assert_eq!(state.families.len(), MAX_SESSIONS_PER_USER);
        assert!(
            !state.sessions.contains_key(&keys[0]),
            "revoked with its family"
        );
        assert!(keys[1..].iter().all(|key| state.sessions.contains_key(key)));
    }

    #[tokio::test]
    async fn deleting_or_disabling_revokes_every_session() {
        let store = MemorySessionStore::new();
        let (one, outcome) = log_in(&store, "o1", false).await;
        let (two, _) = log_in(&store, "o1", false).await;
        let LoginOutcome::LoggedIn { user_id, .. } = outcome else {
            panic!()
        };
        assert!(
            store
                .set_status(&user_id, "o1", AccountStatus::Disabled)
                .await
                .unwrap()
        );
        assert_eq!(
            (
                store.get(&one).await.unwrap(),
                store.get(&two).await.unwrap()
            ),
            (None, None)
        );
        let (_, refused) = log_in(&store, "o1", false).await;
        assert_eq!(
            refused,
            LoginOutcome::Disabled {
                user_id: user_id.clone()
            }
        );
        assert!(
            store
                .set_status(&user_id, "o1", AccountStatus::Active)
                .await
                .unwrap()
        );
        let (three, _) = log_in(&store, "o1", false).await;
        assert!(store.delete_account(&user_id, "o1", None).await.unwrap());
        assert_eq!(store.get(&three).await.unwrap(), None);
        assert_eq!(store.account("o1").await.unwrap(), None);
        assert!(!store.delete_account(&user_id, "o1", None).await.unwrap());
        let (_, reborn) = log_in(&store, "o1", false).await;
        assert!(
            matches!(reborn, LoginOutcome::LoggedIn { new_user: true, user_id: new, .. } if new != user_id)
        );
    }
}
