//! Test harness: the real stand-ins (DynamoDB Local, moto's Secrets Manager),
//! the WeChat simulator (`wechat_sim`, which the local server runs too) and a
//! Lambda Runtime API emulator, all over real HTTP on loopback.
//!
//! `infra/test.sh` installs and starts DynamoDB Local and moto and exports
//! their endpoints; the tests here refuse to run without them rather than
//! silently skipping.

pub mod admin;
pub mod docker;
pub mod events;
pub mod fixture;
pub mod invoke;
pub mod logs;
pub mod proxy;
pub mod rotation;
pub mod runtime;
pub mod server;
pub mod stack;
pub mod standins;
pub mod template;
pub mod tls;

/// A fresh random suffix for table, secret and code names.
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("OS random source");
    format!("{prefix}-{}", hex::encode(bytes))
}
pub mod world;
