//! wxauth: a WeChat mini-program login backend for AWS Lambda.
//!
//! The domain (tokens, sessions, crypto, errors, handlers) is plain Rust; the
//! adapters to AWS, WeChat's HTTP API and the Lambda Runtime sit at the edges
//! behind `SessionStore`, `TokenCache`, `SecretSource` and `WeChatApi`.

pub mod access;
pub mod access_token;
pub mod account;
pub mod admin;
pub mod api;
pub mod authorizer;
#[cfg(feature = "aws")]
pub mod aws;
pub mod backoff;
pub mod config;
pub mod crypto;
pub mod deadline;
pub mod edge;
pub mod error;
pub mod handlers;
pub mod jwt;
pub mod login_log;
pub mod memory;
pub mod metrics;
pub mod phone;
pub mod redact;
pub mod refresh;
pub mod rotation;
pub mod secret;
pub mod session;
pub mod tls;
pub mod token;
pub mod upstream;
pub mod wechat;
