//! Accounts: read, phone binding, deletion and the operator's status.

use std::future::Future;

use crate::domain::account::{Account, AccountStatus, BoundPhone, UserId};
use crate::domain::login_log::LogEntry;
use crate::ports::errors::StoreError;

/// Where accounts are kept (beside the sessions: the same table in DynamoDB).
/// Every operation takes the openid and the userId together: a userId that is
/// not the openid's account's (deleted, and the openid logged in again) finds
/// nothing.
pub trait AccountStore: Send + Sync + 'static {
    /// The openid's account, read consistently.
    fn account(
        &self,
        openid: &str,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;

    /// The account with this userId, read consistently (the operator tool).
    fn account_of(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;

    /// Binds a phone number to the account, replacing an earlier one.
    /// `Ok(false)`: no such account.
    fn bind_phone(
        &self,
        user_id: &UserId,
        openid: &str,
        phone: &BoundPhone,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes the account and everything kept for it: its sessions (each with
    /// its session_key), the phone number, the userId's index. `log` is written
    /// with it. `Ok(false)`: no such account.
    fn delete_account(
        &self,
        user_id: &UserId,
        openid: &str,
        log: Option<&LogEntry>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Disables or enables the account. Disabling revokes every session at once
    /// (they stay revoked after an enable). `Ok(false)`: no such account.
    fn set_status(
        &self,
        user_id: &UserId,
        openid: &str,
        status: AccountStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<T: AccountStore> AccountStore for std::sync::Arc<T> {
    fn account(
        &self,
        openid: &str,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send {
        (**self).account(openid)
    }

    fn account_of(
        &self,
        user_id: &UserId,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send {
        (**self).account_of(user_id)
    }

    fn bind_phone(
        &self,
        user_id: &UserId,
        openid: &str,
        phone: &BoundPhone,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).bind_phone(user_id, openid, phone)
    }

    fn delete_account(
        &self,
        user_id: &UserId,
        openid: &str,
        log: Option<&LogEntry>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).delete_account(user_id, openid, log)
    }

    fn set_status(
        &self,
        user_id: &UserId,
        openid: &str,
        status: AccountStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).set_status(user_id, openid, status)
    }
}
