//! Sessions and where they are kept.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tracing::{error, warn};

pub use crate::memory::MemorySessionStore;

use crate::account::UserId;
use crate::deadline::Deadline;
use crate::login_log::LogEntry;
use crate::redact::SessionKey;
use crate::refresh::{RefreshFamily, RefreshIssue, RefreshOutcome, RefreshWrite};
use crate::token::TokenKey;
use crate::upstream::{Upstream, UpstreamError};

/// What login learned from WeChat, kept server-side under the token's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The account's id.
    pub user_id: UserId,
    pub openid: String,
    pub unionid: Option<String>,
    /// WeChat's session_key: a login's own, or the one its family keeps (a
    /// session made by `POST /refresh`), or none once that is gone.
    pub session_key: Option<SessionKey>,
    /// When the kept session_key a refreshed session carries stops being
    /// usable (epoch seconds); `None`: it lives as long as the session.
    pub session_key_expires_at: Option<i64>,
    /// The refresh family this session belongs to, when refresh tokens are on.
    pub family: Option<RefreshFamily>,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds; the session is refused from this instant on.
    pub expires_at: i64,
}

impl Session {
    /// Decided on every read: the table's TTL deletes lazily, so presence proves nothing.
    pub fn is_live(&self, now: i64) -> bool {
        now < self.expires_at
    }

    pub fn seconds_left(&self, now: i64) -> i64 {
        (self.expires_at - now).max(0)
    }

    /// The session_key the routes that decrypt or verify may use at `now`.
    pub fn usable_session_key(&self, now: i64) -> Option<&SessionKey> {
        match self.session_key_expires_at {
            Some(until) if now >= until => None,
            _ => self.session_key.as_ref(),
        }
    }
}

/// Who a live session belongs to: what `GET /me` answers and the authorizer
/// hands API Gateway as its context (`expiresAt` in epoch seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    pub user_id: UserId,
    pub openid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    pub expires_at: i64,
}

impl From<&Session> for Caller {
    fn from(session: &Session) -> Self {
        Self {
            user_id: session.user_id.clone(),
            openid: session.openid.clone(),
            unionid: session.unionid.clone(),
            expires_at: session.expires_at,
        }
    }
}

/// The session behind `token` if it is live: read consistently, expiry decided
/// here (the table deletes lazily), logged-out and revoked sessions are gone.
/// `Ok(None)` is a refusal; `Err` means the table could not tell in time.
pub async fn live_session(
    store: &impl SessionStore,
    key: &TokenKey,
    deadline: Deadline,
) -> Result<Option<Session>, UpstreamError> {
    let read = deadline.run(store.get(key)).await;
    Ok(refused_unless_read(read)?.filter(|session| session.is_live(epoch_seconds())))
}

/// Who holds `token`, if its session is live, by the same rules as
/// `live_session`, from a read that leaves the session_key in the table: what
/// the authorizer needs, and all its IAM policy lets it read.
pub async fn live_caller(
    store: &impl SessionStore,
    key: &TokenKey,
    deadline: Deadline,
) -> Result<Option<Caller>, UpstreamError> {
    let read = deadline.run(store.caller(key)).await;
    Ok(refused_unless_read(read)?.filter(|caller| epoch_seconds() < caller.expires_at))
}

/// A read's outcome as a decision: what was read, `None` for an unreadable
/// item (refused, not an outage), `Err` when the table did not answer in time.
fn refused_unless_read<T>(
    read: Option<Result<Option<T>, StoreError>>,
) -> Result<Option<T>, UpstreamError> {
    match read {
        Some(Ok(found)) => Ok(found),
        Some(Err(StoreError::Malformed(reason))) => {
            error!(%reason, "session item unreadable; treating it as unknown");
            Ok(None)
        }
        Some(Err(err)) => {
            warn!(error = %err, "session read failed");
            Err(UpstreamError::Unavailable(Upstream::SessionTable))
        }
        None => {
            warn!("session read ran out of time");
            Err(UpstreamError::Unavailable(Upstream::SessionTable))
        }
    }
}

/// A user keeps at most this many live sessions (`SINGLE_SESSION=false`): a
/// login beyond it revokes those ending soonest, so that what is kept per user (the
/// account's list of sessions) stays bounded however often someone logs in.
pub const MAX_SESSIONS_PER_USER: usize = 20;

/// Which of a user's sessions (`(key, expiresAt)`) a new login removes: every
/// one with one session per user; otherwise the expired ones (their items may
/// linger, TTL being lazy) and the live ones ending soonest beyond
/// `MAX_SESSIONS_PER_USER - 1`. Soonest ending first.
pub fn sessions_a_login_removes<K: Clone>(
    sessions: &[(K, i64)],
    now: i64,
    single_session: bool,
) -> Vec<(K, i64)> {
    let mut sorted = sessions.to_vec();
    sorted.sort_by_key(|(_, expires_at)| *expires_at);
    if single_session {
        return sorted;
    }
    let live = sorted
        .iter()
        .filter(|(_, expires_at)| *expires_at > now)
        .count();
    let over = live.saturating_sub(MAX_SESSIONS_PER_USER - 1);
    let expired = sorted.len() - live;
    sorted.truncate(expired + over);
    sorted
}

/// Seconds since the Unix epoch.
pub fn epoch_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The key is taken: only a token collision can cause it, and login retries.
    #[error("an item with this key already exists")]
    AlreadyExists,
    /// The store could not be reached or refused the call; worth a retry later.
    /// For a write, whether it took effect is unknown.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// The store refused a write as a whole (a cancelled transaction): nothing
    /// was written; worth a retry later.
    #[error("session write refused: {0}")]
    Refused(String),
    /// An item exists but cannot be read as a session.
    #[error("session item is malformed: {0}")]
    Malformed(String),
}

/// What a function is allowed to do with the table (its IAM policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// What one login writes: its session and, in the same atomic step, the
/// user's account (created by the first login, updated by every later one).
#[derive(Debug, Clone, Copy)]
pub struct LoginWrite<'a> {
    pub key: &'a TokenKey,
    /// The new session. Its `user_id` is the one a first login gives the new
    /// account; the store writes the existing account's instead.
    pub session: &'a Session,
    /// One active session per user (`SINGLE_SESSION`): the login revokes the
    /// user's other sessions. WeChat keeps one valid session_key per user, so
    /// only the newest session can still decrypt; concurrent logins of one user
    /// leave exactly one valid session.
    pub single_session: bool,
    /// The login's log entry, written with it (the store fills in the userId);
    /// a session this login revokes gets a `revoked` entry like it. Written
    /// only where the store keeps a login log.
    pub log: Option<&'a LogEntry>,
    /// The refresh token this login issues (its family starts here, and keeps
    /// the session's session_key until the session's own expiry). With one
    /// session per user, the user's other families are revoked.
    pub refresh: Option<RefreshIssue<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    LoggedIn {
        user_id: UserId,
        /// This login created the account.
        new_user: bool,
        /// The account's unionid after the login.
        unionid: Option<String>,
    },
    /// The operator disabled the account: nothing was written but the
    /// refusal's log entry (`login_refused`).
    Disabled { user_id: UserId },
}

pub trait SessionStore: Send + Sync + 'static {
    /// Opens the connection (TCP, TLS, credentials, endpoint) during init, so the
    /// first request does not pay for it. Best effort: failures are ignored.
    fn warm_up(&self, _access: Access) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Writes a login: the new session (never over an existing key:
    /// `AlreadyExists`), the account, and the log entry. Concurrent first logins
    /// of one openid create exactly one account, and exactly one of them is
    /// `new_user`.
    fn login(
        &self,
        login: &LoginWrite<'_>,
    ) -> impl Future<Output = Result<LoginOutcome, StoreError>> + Send;

    /// Deletes a session; deleting a missing one is not an error.
    fn delete(&self, key: &TokenKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Logout: deletes the session and, when it has a refresh family, the
    /// whole family (its refresh tokens, its other sessions, its kept key).
    fn logout(
        &self,
        key: &TokenKey,
        session: &Session,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// `POST /refresh`: spends a refresh token and makes a session (see
    /// `RefreshOutcome`). A spent token within the grace makes another pair;
    /// after it, the family is revoked.
    fn refresh(
        &self,
        refresh: &RefreshWrite<'_>,
    ) -> impl Future<Output = Result<RefreshOutcome, StoreError>> + Send;

    /// Reads a session, strongly consistent: a session answered 200 at login is
    /// visible to the very next request. Expiry is the caller's to check.
    fn get(
        &self,
        key: &TokenKey,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Who a session belongs to and until when, read as `get` reads, without
    /// its session_key: the authorizer's read. A store that can read only some
    /// attributes (DynamoDB's projection) reads only these.
    fn caller(
        &self,
        key: &TokenKey,
    ) -> impl Future<Output = Result<Option<Caller>, StoreError>> + Send {
        async move { Ok(self.get(key).await?.as_ref().map(Caller::from)) }
    }
}

/// One store shared by several handlers (the local server serves every route
/// from one process).
impl<T: SessionStore> SessionStore for std::sync::Arc<T> {
    fn warm_up(&self, access: Access) -> impl Future<Output = ()> + Send {
        (**self).warm_up(access)
    }

    fn login(
        &self,
        login: &LoginWrite<'_>,
    ) -> impl Future<Output = Result<LoginOutcome, StoreError>> + Send {
        (**self).login(login)
    }

    fn get(
        &self,
        key: &TokenKey,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send {
        (**self).get(key)
    }

    fn delete(&self, key: &TokenKey) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete(key)
    }

    fn logout(
        &self,
        key: &TokenKey,
        session: &Session,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).logout(key, session)
    }

    fn refresh(
        &self,
        refresh: &RefreshWrite<'_>,
    ) -> impl Future<Output = Result<RefreshOutcome, StoreError>> + Send {
        (**self).refresh(refresh)
    }

    fn caller(
        &self,
        key: &TokenKey,
    ) -> impl Future<Output = Result<Option<Caller>, StoreError>> + Send {
        (**self).caller(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_at: i64) -> Session {
        Session {
            user_id: UserId::parse("u_AAAAAAAAAAAAAAAAAAAAAA").unwrap(),
            openid: "o1".into(),
            unionid: None,
            session_key: Some(SessionKey::new("k")),
            session_key_expires_at: None,
            family: None,
            created_at: 0,
            expires_at,
        }
    }

    #[test]
    fn a_login_removes_the_expired_and_the_soonest_ending_beyond_the_cap() {
        let now = 1000;
        let sessions: Vec<(usize, i64)> = (0..MAX_SESSIONS_PER_USER + 3)
            .map(|i| (i, now - 2 + i as i64))
            .collect();
        // 0, 1 and 2 expired (expiresAt <= now); 20 live; the newest 19 stay.
        let removed = sessions_a_login_removes(&sessions, now, false);
        let keys: Vec<usize> = removed.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [0, 1, 2, 3]);
        assert_eq!(sessions.len() - removed.len(), MAX_SESSIONS_PER_USER - 1);
        assert_eq!(
            sessions_a_login_removes(&sessions, now, true).len(),
            sessions.len()
        );
        assert!(sessions_a_login_removes(&[(0, now + 5)], now, false).is_empty());
    }

    #[test]
    fn liveness_is_decided_by_expires_at() {
        let s = session(100);
        assert!(s.is_live(99));
        assert!(!s.is_live(100));
        assert_eq!(s.seconds_left(40), 60);
        assert_eq!(s.seconds_left(400), 0);
    }

    #[test]
    fn a_kept_session_key_is_usable_until_its_own_expiry() {
        let mut s = session(1000);
        assert!(s.usable_session_key(999).is_some());
        s.session_key_expires_at = Some(600);
        assert!(s.usable_session_key(599).is_some());
        assert!(s.usable_session_key(600).is_none());
        s.session_key = None;
        s.session_key_expires_at = None;
        assert!(s.usable_session_key(0).is_none());
    }
}
