//! Sessions: what login learned from WeChat, kept under the token's key, and
//! who a live one belongs to.

use serde::Serialize;

use super::account::UserId;
use super::app::AppId;
use super::redact::SessionKey;
use super::refresh::RefreshFamily;

/// What login learned from WeChat, kept server-side under the token's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The account's id.
    pub user_id: UserId,
    /// The app of the login the session came from; `None`: written before
    /// several apps, by the default app.
    pub appid: Option<AppId>,
    /// That app's openid.
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
    /// Left out for a session written before several apps: the authorizer
    /// lists no apps, so it cannot name the default one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appid: Option<AppId>,
    pub openid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    pub expires_at: i64,
}

impl From<&Session> for Caller {
    fn from(session: &Session) -> Self {
        Self {
            user_id: session.user_id.clone(),
            appid: session.appid.clone(),
            openid: session.openid.clone(),
            unionid: session.unionid.clone(),
            expires_at: session.expires_at,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_at: i64) -> Session {
        Session {
            user_id: UserId::parse("u_AAAAAAAAAAAAAAAAAAAAAA").unwrap(),
            appid: None,
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
