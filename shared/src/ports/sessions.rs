//! Sessions and what is written with them: a login (its session, the account,
//! its log entry, its refresh family), a refresh (a session from a refresh
//! token, the token rotated), a logout (the session and its family).

use std::future::Future;

use crate::domain::account::UserId;
use crate::domain::login_log::LogEntry;
use crate::domain::refresh::{RefreshFamily, RefreshKey};
use crate::domain::session::{Caller, Session};
use crate::domain::token::TokenKey;
use crate::domain::wechat::RiskRank;
use crate::ports::errors::{Access, StoreError};

/// Reading sessions, and deleting one.
pub trait SessionStore: Send + Sync + 'static {
    /// Opens the connection (TCP, TLS, credentials, endpoint) during init, so the
    /// first request does not pay for it. Best effort: failures are ignored.
    fn warm_up(&self, _access: Access) -> impl Future<Output = ()> + Send {
        async {}
    }

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

    /// Deletes a session; deleting a missing one is not an error.
    fn delete(&self, key: &TokenKey) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What one login writes: its session and, in the same atomic step, the
/// person's account (created by the first login, found by the login's
/// identity or its unionid, updated by every later one).
#[derive(Debug, Clone, Copy)]
pub struct LoginWrite<'a> {
    pub key: &'a TokenKey,
    /// The new session: its app and that app's openid are the login's
    /// identity, its unionid the one WeChat returned. Its `user_id` is the one
    /// a first login gives the new account; the store writes the existing
    /// account's instead, and its unionid (see `domain::identity`).
    pub session: &'a Session,
    /// The login's app is the default one, so an account written before
    /// several apps may hold its identity.
    pub default_app: bool,
    /// One active session per identity (`SINGLE_SESSION`): the login revokes
    /// the other sessions of this app's openid. WeChat keeps one valid
    /// session_key per user and app, so only the newest session can still
    /// decrypt; concurrent logins leave exactly one valid session. The
    /// person's sessions in other apps stay.
    pub single_session: bool,
    /// The login's log entry, written with it (the store fills in the userId);
    /// a session this login revokes gets a `revoked` entry like it, a linked
    /// app an `app_linked` one, a conflict an `account_conflict` in both
    /// accounts' logs. Written only where the store keeps a login log.
    pub log: Option<&'a LogEntry>,
    /// The refresh token this login issues (its family starts here, and keeps
    /// the session's session_key until the session's own expiry). With one
    /// session per identity, the identity's other families are revoked.
    pub refresh: Option<RefreshIssue<'a>>,
    pub new_account: NewAccount,
}

/// What a login that would create an account does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewAccount {
    /// Creates it, with WeChat's risk rank when one was read.
    Create { risk_rank: Option<RiskRank> },
    /// Writes nothing and answers `WouldCreate`: the caller asks WeChat for
    /// the risk rank first (`RISK_CONTROL`), then logs in again.
    AskFirst,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    LoggedIn {
        user_id: UserId,
        /// This login created the account.
        new_user: bool,
        /// The account's unionid after the login: never one another account holds.
        unionid: Option<String>,
        /// The login's identity joined the account by its unionid (case 2).
        linked: bool,
        /// Another account holds the unionid this login brought: nothing was linked.
        conflict_with: Option<UserId>,
    },
    /// The operator disabled the account: nothing was written but the
    /// refusal's log entry (`login_refused`).
    Disabled { user_id: UserId },
    /// `NewAccount::AskFirst`, and the login would create an account: nothing
    /// was written.
    WouldCreate,
}

/// The login's one write.
pub trait LoginStore: SessionStore {
    /// Writes a login: the new session (never over an existing key:
    /// `AlreadyExists`), the account, and the log entries. Concurrent first
    /// logins of one person (one identity, or one unionid from several apps)
    /// create exactly one account, and exactly one of them is `new_user`.
    fn login(
        &self,
        login: &LoginWrite<'_>,
    ) -> impl Future<Output = Result<LoginOutcome, StoreError>> + Send;
}

/// The refresh token a login issues, written with its session.
#[derive(Debug, Clone, Copy)]
pub struct RefreshIssue<'a> {
    pub key: &'a RefreshKey,
    pub family: &'a RefreshFamily,
    pub expires_at: i64,
}

/// One `POST /refresh`: spend `presented`, issue `next`, and make a session
/// under `session_key` for the family's user.
#[derive(Debug, Clone, Copy)]
pub struct RefreshWrite<'a> {
    pub presented: &'a RefreshKey,
    /// The family the presented token names (checked against its item).
    pub family: &'a RefreshFamily,
    pub next: &'a RefreshKey,
    pub session_key: &'a TokenKey,
    pub now: i64,
    pub session_expires_at: i64,
    pub refresh_expires_at: i64,
    pub grace_seconds: i64,
    /// The entry's template (the store fills in the user and the event).
    pub log: Option<&'a LogEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The new session, as stored (`session_key` the kept one while it lasts).
    Refreshed(Session),
    /// Unknown, expired, revoked: nothing changed.
    Invalid,
    /// Spent beyond the grace: the family was revoked.
    Reused { user_id: UserId },
    /// The account is disabled: nothing changed but the refusal's log entry.
    Disabled { user_id: UserId },
}

/// Refresh families: a refresh, and a logout (which revokes its family).
pub trait RefreshStore: SessionStore {
    /// `POST /refresh`: spends a refresh token and makes a session (see
    /// `RefreshOutcome`). A spent token within the grace makes another pair
    /// that replaces the first; after it, the family is revoked.
    fn refresh(
        &self,
        refresh: &RefreshWrite<'_>,
    ) -> impl Future<Output = Result<RefreshOutcome, StoreError>> + Send;

    /// Logout: deletes the session and, when it has a refresh family, the
    /// whole family (its refresh tokens, its other sessions, its kept key).
    fn logout(
        &self,
        key: &TokenKey,
        session: &Session,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// One store shared by several handlers (the local server serves every route
/// from one process).
impl<T: SessionStore> SessionStore for std::sync::Arc<T> {
    fn warm_up(&self, access: Access) -> impl Future<Output = ()> + Send {
        (**self).warm_up(access)
    }

    fn get(
        &self,
        key: &TokenKey,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send {
        (**self).get(key)
    }

    fn caller(
        &self,
        key: &TokenKey,
    ) -> impl Future<Output = Result<Option<Caller>, StoreError>> + Send {
        (**self).caller(key)
    }

    fn delete(&self, key: &TokenKey) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete(key)
    }
}

impl<T: LoginStore> LoginStore for std::sync::Arc<T> {
    fn login(
        &self,
        login: &LoginWrite<'_>,
    ) -> impl Future<Output = Result<LoginOutcome, StoreError>> + Send {
        (**self).login(login)
    }
}

impl<T: RefreshStore> RefreshStore for std::sync::Arc<T> {
    fn refresh(
        &self,
        refresh: &RefreshWrite<'_>,
    ) -> impl Future<Output = Result<RefreshOutcome, StoreError>> + Send {
        (**self).refresh(refresh)
    }

    fn logout(
        &self,
        key: &TokenKey,
        session: &Session,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).logout(key, session)
    }
}
