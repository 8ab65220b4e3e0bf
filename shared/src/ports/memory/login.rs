//! A login, in memory, by the DynamoDB adapter's rules.

use super::{MemorySessionStore, RefreshRecord};
use crate::domain::account::{Account, AccountStatus};
use crate::domain::login_log::{LogEntry, LogEvent};
use crate::domain::refresh::{KeptSessionKey, RefreshFamily, families_a_login_revokes};
use crate::domain::session::{Session, sessions_a_login_removes};
use crate::domain::token::TokenKey;
use crate::ports::errors::StoreError;
use crate::ports::sessions::{LoginOutcome, LoginStore, LoginWrite};

impl LoginStore for MemorySessionStore {
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
}
