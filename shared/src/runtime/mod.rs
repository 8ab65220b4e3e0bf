//! What a function runs on, beside its domain: configuration from the
//! environment, start-up (logging, the CA bundle, entropy), metrics, the
//! answer budget, backoff, trusted roots.

pub mod backoff;
pub mod config;
pub mod deadline;
pub mod metrics;
#[cfg(feature = "aws")]
pub mod startup;
pub mod tls;
