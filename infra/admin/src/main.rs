//! `wxauth-admin`: the operator's tool for accounts and the login log, on the
//! tables `SESSION_TABLE` and `LOGIN_LOG_TABLE` name, with the operator's own
//! AWS credentials and the standard AWS variables (`AWS_PROFILE`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local). Prints one JSON document;
//! exits 0, or 1 for an unknown user, 2 for a bad command, 3 when the tables
//! cannot be reached, with a one-line message on stderr.

use wxauth::admin::{Outcome, USAGE, run};
use wxauth::aws::{DynamoSessionStore, load_sdk_config};
use wxauth::config::{LoginLogConfig, ProcessEnv};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let Some(table) = var("SESSION_TABLE") else {
        eprintln!(
            "wxauth-admin: set SESSION_TABLE (and LOGIN_LOG_TABLE for log and delete); {USAGE}"
        );
        std::process::exit(2);
    };
    let log = match LoginLogConfig::from_env(&ProcessEnv) {
        Ok(log) => log,
        Err(err) => {
            eprintln!("wxauth-admin: {err}");
            std::process::exit(2);
        }
    };
    let sdk = load_sdk_config().await;
    let store = DynamoSessionStore::new(&sdk, table).with_login_log(log.table);
    let outcome = run(&store, log.retention_days, &args).await;
    match &outcome {
        Outcome::Done(json) => println!("{json}"),
        Outcome::Unknown(message) | Outcome::Usage(message) | Outcome::Failed(message) => {
            eprintln!("wxauth-admin: {message}");
        }
    }
    std::process::exit(outcome.exit_code());
}
