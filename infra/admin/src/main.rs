//! `wxauth-admin`: the operator's tool for accounts and the login log, on the
//! tables `SESSION_TABLE` and `LOGIN_LOG_TABLE` name, with the operator's own
//! AWS credentials and the standard AWS variables (`AWS_PROFILE`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local). Prints one JSON document;
//! exits 0, or 1 for an unknown user, 2 for a bad command or a missing table,
//! 3 when the tables cannot be read or written (the message says how), 4 for a
//! deletion not confirmed, 5 for a merge its rules refuse (two people), with a
//! one-line message on stderr. `WECHAT_APPS` (or `WECHAT_APPID`), when set,
//! names the app of identities from before several apps and of a bare openid.

use std::io::{BufRead, IsTerminal, Write};

use wxauth::aws::{DynamoSessionStore, load_sdk_config};
use wxauth::runtime::config::{LoginLogConfig, ProcessEnv, optional_apps};
use wxauth::services::admin::{Outcome, Settings, USAGE, run};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
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
    let apps = match optional_apps(&ProcessEnv) {
        Ok(apps) => apps,
        Err(err) => {
            eprintln!("wxauth-admin: {err}");
            std::process::exit(2);
        }
    };
    let settings = Settings {
        retention_days: var("LOGIN_LOG_RETENTION_DAYS").map(|_| log.retention_days),
        has_log_table: log.table.is_some(),
        apps,
    };
    let sdk = load_sdk_config().await;
    let store = DynamoSessionStore::new(&sdk, table).with_login_log(log.table);
    let mut outcome = run(&store, &settings, &args).await;
    if let Outcome::Confirm { user_id, account } = &outcome {
        // Shown whatever happens next: the operator sees what would go.
        eprintln!("wxauth-admin: delete {user_id}: {account}");
        if confirmed_on_terminal(user_id.as_str()) {
            args.push("--yes".into());
            outcome = run(&store, &settings, &args).await;
        }
    }
    match &outcome {
        Outcome::Done(json) => println!("{json}"),
        Outcome::Unknown(message)
        | Outcome::Usage(message)
        | Outcome::Failed(message)
        | Outcome::Refused(message) => {
            eprintln!("wxauth-admin: {message}");
        }
        Outcome::Confirm { .. } => eprintln!(
            "wxauth-admin: nothing deleted: add --yes, or run it on a terminal and type the userId"
        ),
    }
    std::process::exit(outcome.exit_code());
}

/// On a terminal, asks the operator to type the userId; anything else is a no.
fn confirmed_on_terminal(user_id: &str) -> bool {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return false;
    }
    eprint!("type the userId to delete this account: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin.lock().read_line(&mut line).is_ok() && line.trim() == user_id
}
