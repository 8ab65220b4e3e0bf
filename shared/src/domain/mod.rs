//! The domain, in plain Rust: no AWS, no HTTP. Tokens and the keys the table
//! holds for them, sessions, accounts, refresh families, the login log's
//! entries, phone numbers, WeChat's open-data crypto and what its answers
//! mean, JWT claims and keys, the signing key's rotation rules, the secret
//! types that never print, and the clock.

pub mod account;
pub mod app;
pub mod crypto;
pub mod identity;
pub mod jwt;
pub mod login_log;
pub mod phone;
pub mod redact;
pub mod refresh;
pub mod risk;
pub mod rotation;
pub mod session;
pub mod time;
pub mod token;
pub mod wechat;
