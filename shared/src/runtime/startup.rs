//! What every binary does before it serves: logging, and a clear exit when its
//! configuration is unusable.

use std::fmt::Display;
use std::str::FromStr;

use lambda_runtime::tracing::subscriber;
use subscriber::Layer;
use subscriber::filter::{LevelFilter, Targets};
use subscriber::layer::SubscriberExt;
use subscriber::util::SubscriberInitExt;

/// The crates the requested level applies to: ours. Every other crate is capped
/// at INFO, whatever level is asked for, because below INFO they write what must
/// never reach a log: lambda_runtime the raw event (login codes, the
/// Authorization header), the AWS SDK's smithy runtime request and response
/// bodies and headers (`sessionKey`, the WeChat access token, the security
/// token), hyper and reqwest the URLs that carry the access token.
const OWN_TARGETS: [&str; 6] = [
    "wxauth",
    "login",
    "decrypt_phone",
    "check_session",
    "authorizer",
    "rotate_signing_key",
];

/// Logs the Lambda way, as lambda_runtime's default subscriber does: to stdout,
/// no colours or timestamps (CloudWatch adds its own); one JSON object per line
/// carrying the level, the message and the invocation's `requestId` when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`, plain text otherwise; the level from
/// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else info, for our own crates only
/// (see [`log_filter`]).
pub fn init_logging() {
    let var = |name| std::env::var(name).ok();
    let filter = log_filter(requested_level(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
    ));
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let lines = subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(std::io::stdout);
    // A second init (a test binary that already has a subscriber) keeps the first.
    let _ = if json {
        subscriber::registry()
            .with(lines.json().with_filter(filter))
            .try_init()
    } else {
        subscriber::registry()
            .with(lines.with_filter(filter))
            .try_init()
    };
}

/// `AWS_LAMBDA_LOG_LEVEL` wins over `RUST_LOG` (Lambda's advanced logging
/// controls set the first); each is one level name in any case. Anything else,
/// per-crate directives included, means info: no setting can open a
/// third-party crate's debug output (see [`OWN_TARGETS`]).
pub fn requested_level(aws_lambda_log_level: Option<&str>, rust_log: Option<&str>) -> LevelFilter {
    aws_lambda_log_level
        .or(rust_log)
        .and_then(|level| LevelFilter::from_str(level.trim()).ok())
        .unwrap_or(LevelFilter::INFO)
}

/// `level` for our own crates; for every other crate `level`, but never more
/// verbose than INFO.
pub fn log_filter(level: LevelFilter) -> Targets {
    OWN_TARGETS.iter().fold(
        Targets::new().with_default(level.min(LevelFilter::INFO)),
        |targets, own| targets.with_target(*own, level),
    )
}

/// What every function does first: AWS-LC's random generator starts seeding
/// on a thread of its own (see `start_entropy_seeding`), logging is set up,
/// and `AWS_CA_BUNDLE` is checked (a bad bundle stops start-up, naming it).
pub fn begin(function: &str) {
    start_entropy_seeding();
    init_logging();
    or_exit(function, crate::runtime::tls::check_ca_bundle());
}

/// AWS-LC seeds its random generator at the process's first draw, from CPU
/// jitter (tens of milliseconds of busy work) and the OS; every TLS handshake
/// draws, so the first ClientHello would wait for it. Drawn here, on a thread
/// of its own, the seeding overlaps reading the configuration, DNS and TCP.
/// Jitter entropy stays on (`AWS_LC_SYS_NO_JITTER_ENTROPY` is not set): it is
/// one of the two sources, and dropping it to save milliseconds would leave
/// the OS alone.
pub fn start_entropy_seeding() {
    let spawned = std::thread::Builder::new()
        .name("entropy-seeding".into())
        .spawn(|| {
            let mut byte = [0u8; 1];
            if aws_lc_rs::rand::fill(&mut byte).is_err() {
                tracing::warn!("AWS-LC's random generator failed its first draw");
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "no thread for early entropy seeding; the first handshake seeds");
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn the_level_comes_from_lambda_then_rust_log_then_info() {
        assert_eq!(
            requested_level(Some("TRACE"), Some("warn")),
            LevelFilter::TRACE
        );
        assert_eq!(requested_level(None, Some("debug")), LevelFilter::DEBUG);
        assert_eq!(requested_level(None, None), LevelFilter::INFO);
        // A directive list is not a level: it cannot open another crate's output.
        assert_eq!(
            requested_level(None, Some("info,aws_smithy_runtime=trace")),
            LevelFilter::INFO
        );
    }

    #[test]
    fn third_party_crates_never_log_below_info() {
        let filter = log_filter(LevelFilter::TRACE);
        for own in ["wxauth::handlers::login", "check_session", "authorizer"] {
            assert!(filter.would_enable(own, &Level::TRACE), "{own}");
        }
        for other in [
            "lambda_runtime::layers::trace",
            "lambda_runtime_api_client",
            "lambda_http",
            "aws_smithy_runtime::client::http",
            "aws_smithy_runtime_api",
            "aws_sdk_dynamodb",
            "aws_config",
            "hyper_util::client",
            "reqwest::connect",
            "rustls::client",
            "h2::codec",
        ] {
            assert!(!filter.would_enable(other, &Level::DEBUG), "{other}");
            assert!(filter.would_enable(other, &Level::INFO), "{other}");
        }
        // A quieter level applies to every crate.
        let quiet = log_filter(LevelFilter::WARN);
        assert!(!quiet.would_enable("wxauth", &Level::INFO));
        assert!(!quiet.would_enable("lambda_runtime", &Level::INFO));
        assert!(quiet.would_enable("lambda_runtime", &Level::WARN));
    }
}
