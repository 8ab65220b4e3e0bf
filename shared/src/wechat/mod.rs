//! WeChat: the `ports::wechat::WeChatApi` port over HTTP (`http`), what its
//! answers mean (`answer`), how hard we try (`retry`), the appsecret's
//! refetch when WeChat refuses it (`appsecret`) and the access token every
//! container shares (`access_token`, `server_api`).

pub mod access_token;
mod answer;
pub mod appsecret;
mod http;
#[cfg(test)]
pub(crate) mod in_process;
mod retry;
pub mod server_api;

pub use access_token::AccessTokens;
pub use answer::{
    parse_check_session, parse_jscode2session, parse_phone_number, parse_stable_token,
};
pub use appsecret::with_appsecret;
pub use http::HttpWeChat;
pub use retry::{OneTimeCode, RetryPolicy, with_retry};
pub use server_api::{NoAccessToken, WeChatServerApi};
