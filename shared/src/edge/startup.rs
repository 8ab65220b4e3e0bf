//! What every binary does before it serves: logging, and a clear exit when its
//! configuration is unusable.

use std::fmt::Display;

/// Logs the Lambda way (lambda_runtime's subscriber): to stdout, no colours or
/// timestamps (CloudWatch adds its own); one JSON object per line carrying the
/// level, the message and the invocation's `requestId` when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`, plain text otherwise; the level from
/// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else info.
pub fn init_logging() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// Ends start-up with a message naming what is wrong: a function that cannot
/// serve correctly should not serve at all.
pub fn or_exit<T, E: Display>(function: &str, result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => {
            eprintln!("{function}: {err}");
            tracing::error!("{function}: {err}");
            std::process::exit(1);
        }
    }
}
