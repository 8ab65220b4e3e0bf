//! Why a call to a service behind us failed, in the domain's terms. What each
//! failure means to the client is decided once, at the edge (`error.rs`).

use crate::wechat::WeChatError;

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
