//! Refresh families in memory: a refresh, a logout.

use super::{MemorySessionStore, RefreshRecord, State};
use crate::domain::account::AccountStatus;
use crate::domain::login_log::{LogEntry, LogEvent};
use crate::domain::session::Session;
use crate::domain::token::TokenKey;
use crate::ports::errors::StoreError;
use crate::ports::sessions::{RefreshOutcome, RefreshStore, RefreshWrite};

impl RefreshStore for MemorySessionStore {
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
        let Some(account) = state.accounts.get(&record.user_id).cloned() else {
            return refused(&mut state);
        };
        if account.status == AccountStatus::Disabled {
            state.log_as(
                refresh.log,
                &user_id,
                LogEvent::RefreshRefused,
                "account_disabled",
            );
            return Ok(RefreshOutcome::Disabled { user_id });
        }
        let Some(owner) = state.families.get(&record.family).cloned() else {
            return refused(&mut state);
        };
        if record.expires_at <= now {
            return refused(&mut state);
        }
        // The family's app names its entries (the template's is the default app).
        let template = refresh.log.map(|entry| LogEntry {
            appid: owner
                .appid
                .as_ref()
                .map(|appid| appid.as_str().to_owned())
                .or_else(|| entry.appid.clone()),
            ..entry.clone()
        });
        if let Some(spent_at) = record.spent_at {
            if now - spent_at >= refresh.grace_seconds {
                state.revoke_family(&record.family);
                state.log_as(
                    template.as_ref(),
                    &user_id,
                    LogEvent::RefreshReused,
                    "revoked",
                );
                return Ok(RefreshOutcome::Reused { user_id });
            }
        }
        if state.sessions.contains_key(refresh.session_key) {
            return Err(StoreError::AlreadyExists);
        }
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
            appid: owner.appid.clone(),
            openid: owner.openid.clone(),
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
        state.log_as(template.as_ref(), &user_id, LogEvent::Refresh, "ok");
        Ok(RefreshOutcome::Refreshed(session))
    }
}
