//! Why a call to a service behind us failed, in the domain's terms. What each
//! failure means to the client is decided once, at the edge (`edge::error`).

use crate::domain::wechat::WeChatError;

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

/// The services wxauth depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    WeChat,
    SessionTable,
    SecretStore,
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::WeChat => "WeChat",
            Self::SessionTable => "the session table",
            Self::SecretStore => "the secret store",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// WeChat's answer after our retries, or why it could not be had.
    #[error("WeChat: {0}")]
    WeChat(#[from] WeChatError),
    /// A service did not answer in time, or not usably (named, never its error text).
    #[error("{0} unavailable")]
    Unavailable(Upstream),
}
