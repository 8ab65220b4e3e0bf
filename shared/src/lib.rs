//! wxauth: a WeChat login backend for AWS Lambda, in layers. Imports point
//! down this list only (`tests/tests/architecture.rs` keeps it so):
//!
//! - `domain`: plain Rust, no AWS or HTTP types;
//! - `runtime`: configuration, start-up, metrics, deadlines, TLS roots;
//! - `ports`: what the domain needs from the world, and its in-memory adapter;
//! - `wechat`: WeChat's API over HTTP, retries, the appsecret, the shared access token;
//! - `services`: the use cases over the ports; `aws`: the DynamoDB and
//!   Secrets Manager adapters (siblings: neither imports the other);
//! - `edge`: HTTP in and out (requests, routes, errors to status, Lambda);
//! - `handlers`: one per function.

#[cfg(feature = "aws")]
pub mod aws;
pub mod domain;
pub mod edge;
pub mod handlers;
pub mod ports;
pub mod runtime;
pub mod services;
pub mod wechat;
