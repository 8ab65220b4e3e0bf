//! The ports: what the domain needs from the world, as traits grouped by what
//! is written together (a login writes its session, the account and its log
//! entry in one step: `LoginStore` owns that step), and their in-memory
//! adapter (`memory`), which the unit tests and the local server run on. The
//! DynamoDB and Secrets Manager adapters are in `crate::aws`, the WeChat
//! client in `crate::wechat`.

pub mod accounts;
pub mod errors;
pub mod keys;
pub mod login_log;
pub mod memory;
pub mod secrets;
pub mod sessions;
pub mod token_cache;
pub mod wechat;

pub use errors::{Access, StoreError, Upstream, UpstreamError};

/// Every store port at once: what the local server's one in-memory store and
/// the DynamoDB adapter both are.
pub trait Store:
    sessions::SessionStore
    + sessions::LoginStore
    + sessions::RefreshStore
    + accounts::AccountStore
    + login_log::LoginLog
    + keys::PublicKeyStore
{
}

impl<T> Store for T where
    T: sessions::SessionStore
        + sessions::LoginStore
        + sessions::RefreshStore
        + accounts::AccountStore
        + login_log::LoginLog
        + keys::PublicKeyStore
{
}
