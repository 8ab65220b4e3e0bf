//! Accounts: read (by userId, by one of their identities, by unionid), the
//! phone bound, deletion, the operator's status and merge.

use std::future::Future;

use crate::domain::account::{Account, AccountStatus, BoundPhone, UserId};
use crate::domain::app::AppId;
use crate::domain::login_log::LogEntry;
use crate::ports::errors::StoreError;

/// An identity to look an account up by.
#[derive(Debug, Clone, Copy)]
pub struct IdentityQuery<'a> {
    /// `None`: only an account written before several apps (a bare openid).
    pub appid: Option<&'a AppId>,
    pub openid: &'a str,
    /// `appid` is the default app: an account written before several apps
    /// may hold the identity too.
    pub default_app: bool,
}

/// What a merge came to. Nothing changed unless `Merged`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The surviving account, as it is now.
    Merged(Box<Account>),
    /// No account has this userId.
    Unknown(UserId),
    /// Both userIds are one account.
    Same,
    /// The two accounts hold different unionids: two people.
    DifferentUnionids,
    /// Together they would hold more identities than an account may.
    TooManyIdentities,
}

/// What the upgrade's claim of unionids did (`claim_legacy_unionids`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimReport {
    /// Accounts whose unionid is now theirs under the unionid's key.
    pub claimed: usize,
    /// Accounts whose unionid was claimed before (by a login or an earlier run).
    pub already: usize,
    /// Accounts whose unionid another account holds: a merge's to resolve.
    pub held_elsewhere: usize,
}

/// Where accounts are kept (beside the sessions: the same table in DynamoDB).
pub trait AccountStore: Send + Sync + 'static {
    /// The account with this userId, read consistently.
    fn account(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;

    /// The account holding an identity (the operator tool's `show`).
    fn account_by_identity(
        &self,
        identity: IdentityQuery<'_>,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;

    /// The account holding a unionid (the operator tool's `show`).
    fn account_by_unionid(
        &self,
        unionid: &str,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;

    /// Binds a phone number to the account, replacing an earlier one.
    /// `Ok(false)`: no such account.
    fn bind_phone(
        &self,
        user_id: &UserId,
        phone: &BoundPhone,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the account and everything kept for it: every identity, the
    /// unionid, its sessions (each with its session_key), refresh tokens, the
    /// phone number, the userId's index. `log` is written with it.
    /// `Ok(false)`: no such account.
    fn delete_account(
        &self,
        user_id: &UserId,
        log: Option<&LogEntry>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Disables or enables the account. Disabling revokes every session at once
    /// (they stay revoked after an enable). `Ok(false)`: no such account.
    fn set_status(
        &self,
        user_id: &UserId,
        status: AccountStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Moves every identity of `from` (its unionid, and its phone number when
    /// `keep` has none) to `keep`, revokes `from`'s sessions and refresh
    /// tokens and deletes it; `log` (an `account_merged` entry) is written to
    /// both accounts' logs, each naming the other.
    fn merge(
        &self,
        keep: &UserId,
        from: &UserId,
        log: Option<&LogEntry>,
    ) -> impl Future<Output = Result<MergeOutcome, StoreError>> + Send;

    /// The upgrade to several apps: every account written before them that
    /// holds a unionid claims it, so that the other apps' logins find the
    /// account instead of creating a second one. Idempotent.
    fn claim_legacy_unionids(&self)
    -> impl Future<Output = Result<ClaimReport, StoreError>> + Send;
}

impl<T: AccountStore> AccountStore for std::sync::Arc<T> {
    fn account(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send {
        (**self).account(user_id)
    }

    fn account_by_identity(
        &self,
        identity: IdentityQuery<'_>,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send {
        (**self).account_by_identity(identity)
    }

    fn account_by_unionid(
        &self,
        unionid: &str,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send {
        (**self).account_by_unionid(unionid)
    }

    fn bind_phone(
        &self,
        user_id: &UserId,
        phone: &BoundPhone,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).bind_phone(user_id, phone)
    }

    fn delete_account(
        &self,
        user_id: &UserId,
        log: Option<&LogEntry>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).delete_account(user_id, log)
    }

    fn set_status(
        &self,
        user_id: &UserId,
        status: AccountStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).set_status(user_id, status)
    }

    fn merge(
        &self,
        keep: &UserId,
        from: &UserId,
        log: Option<&LogEntry>,
    ) -> impl Future<Output = Result<MergeOutcome, StoreError>> + Send {
        (**self).merge(keep, from, log)
    }

    fn claim_legacy_unionids(
        &self,
    ) -> impl Future<Output = Result<ClaimReport, StoreError>> + Send {
        (**self).claim_legacy_unionids()
    }
}
