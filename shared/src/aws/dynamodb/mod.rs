//! The session table on DynamoDB, and the login log table: one file for the
//! table's item shapes (`items`), one for the operations every change shares
//! (`table`), then one per port it implements (`sessions`, `login`,
//! `refresh`, `accounts`, `log`, `keys`, `access_token`), none importing
//! another.
//!
//! Items (the session table's `pk` prefixes; a session key is a SHA-256, hex
//! or base64url): sessions; `identity#<appid>#<openid>` (an identity: its
//! version and lists of sessions and refresh families; the account's own
//! data in its home, the identity that created it); `account#<openid>` (an
//! account written before several apps: the default app's identity and its
//! home); `unionid#<unionid>` and `user#<userId>` (where an account's home
//! is); `refresh#<SHA-256>` (a refresh token); `sessionkey#<family>` (a
//! login's kept session_key); `signingkeys#published`;
//! `wxauth#access-token#<appid>` and its claims.

mod access_token;
mod accounts;
mod families;
mod identities;
mod items;
mod keys;
mod log;
mod login;
mod refresh;
mod sessions;
mod table;

use aws_sdk_dynamodb::Client;

pub use access_token::ACCESS_TOKEN_PREFIX;
pub use items::{ACCOUNT_PREFIX, CALLER_ATTRIBUTES, IDENTITY_PREFIX, UNIONID_PREFIX, USER_PREFIX};
pub use keys::{PUBLISHED_KEYS_ATTRIBUTE, PUBLISHED_KEYS_PK};

#[derive(Debug, Clone)]
pub struct DynamoSessionStore {
    pub(super) client: Client,
    pub(super) table: String,
    /// The login log table (`LOGIN_LOG_TABLE`), when one is kept.
    pub(super) log_table: Option<String>,
}

impl DynamoSessionStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: String) -> Self {
        Self::from_client(Client::new(sdk), table)
    }

    pub fn from_client(client: Client, table: String) -> Self {
        Self {
            client,
            table,
            log_table: None,
        }
    }

    /// Writes login log entries to `log_table` (none when `None`).
    pub fn with_login_log(mut self, log_table: Option<String>) -> Self {
        self.log_table = log_table;
        self
    }
}
