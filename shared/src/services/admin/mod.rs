//! The operator's commands (`wxauth-admin`): show, disable, enable and delete
//! an account, and read a user's login log. They run with the operator's own
//! AWS credentials on the tables; nothing here is reachable over HTTP.

use serde_json::{Value, json};

use crate::domain::account::{Account, AccountStatus, UserId};
use crate::domain::login_log::{LogEntry, LogEvent, Origin};
use crate::domain::time::epoch_millis;
use crate::ports::accounts::AccountStore;
use crate::ports::errors::StoreError;
use crate::ports::login_log::LoginLog;

pub const USAGE: &str = "usage: wxauth-admin show <userId|openid> | disable <userId> | enable <userId> | delete <userId> [--yes] | log <userId> [--limit N]";
pub const DEFAULT_LOG_LIMIT: usize = 50;
pub const MAX_LOG_LIMIT: usize = 1000;

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Exit 0: one JSON document on stdout.
    Done(Value),
    /// Exit 1: no such user.
    Unknown(String),
    /// Exit 2: a bad command or arguments.
    Usage(String),
    /// Exit 3: the tables could not be read or written (the message says
    /// what happened).
    Failed(String),
    /// Exit 4: `delete` without `--yes`: the account it would delete, for
    /// the operator to confirm (by typing its userId on a terminal).
    Confirm { user_id: UserId, account: Value },
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Done(_) => 0,
            Self::Unknown(_) => 1,
            Self::Usage(_) => 2,
            Self::Failed(_) => 3,
            Self::Confirm { .. } => 4,
        }
    }
}

/// What the operator's environment says about the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `LOGIN_LOG_RETENTION_DAYS` when the operator set it: otherwise a
    /// deletion's entry is kept as long as the user's newest entry was (the
    /// stack's own setting), or 180 days when there is none.
    pub retention_days: Option<i64>,
    /// `LOGIN_LOG_TABLE` is set: `delete` and `log` need it (a deletion
    /// without its `account_deleted` entry, or an empty log, would mislead).
    pub has_log_table: bool,
}

enum Command {
    Show(String),
    Disable(UserId),
    Enable(UserId),
    /// `--yes`: confirmed.
    Delete(UserId, bool),
    Log(UserId, usize),
}

fn parse(args: &[String]) -> Result<Command, String> {
    let user = |arg: Option<&String>| {
        let arg = arg.ok_or_else(|| USAGE.to_owned())?;
        UserId::parse(arg).ok_or_else(|| format!("{arg} is not a userId (u_ and 22 characters)"))
    };
    let args: Vec<&String> = args.iter().collect();
    match args.as_slice() {
        [command, who] if command.as_str() == "show" => Ok(Command::Show((*who).clone())),
        [command, who] if command.as_str() == "disable" => Ok(Command::Disable(user(Some(who))?)),
        [command, who] if command.as_str() == "enable" => Ok(Command::Enable(user(Some(who))?)),
        [command, who] if command.as_str() == "delete" => {
            Ok(Command::Delete(user(Some(who))?, false))
        }
        [command, who, yes] if command.as_str() == "delete" && yes.as_str() == "--yes" => {
            Ok(Command::Delete(user(Some(who))?, true))
        }
        [command, who] if command.as_str() == "log" => {
            Ok(Command::Log(user(Some(who))?, DEFAULT_LOG_LIMIT))
        }
        [command, who, flag, limit] if command.as_str() == "log" && flag.as_str() == "--limit" => {
            let limit = limit
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LOG_LIMIT).contains(n))
                .ok_or_else(|| format!("--limit takes a number from 1 to {MAX_LOG_LIMIT}"))?;
            Ok(Command::Log(user(Some(who))?, limit))
        }
        _ => Err(USAGE.to_owned()),
    }
}

/// What went wrong with the tables, in the operator's terms.
fn failed(err: StoreError) -> Outcome {
    Outcome::Failed(match err {
        StoreError::Unavailable(reason) => {
            format!("the tables could not be reached or did not answer: {reason}")
        }
        StoreError::Refused(reason) => format!(
            "DynamoDB refused the change and nothing was changed (a transaction was cancelled; try again): {reason}"
        ),
        StoreError::Malformed(reason) => {
            format!("an item in the tables is malformed, so the account cannot be read: {reason}")
        }
        StoreError::AlreadyExists => {
            "an item the change writes exists already: nothing was changed".to_owned()
        }
    })
}

/// Runs one command (the arguments after the program name).
pub async fn run<S: AccountStore + LoginLog>(
    store: &S,
    settings: &Settings,
    args: &[String],
) -> Outcome {
    let command = match parse(args) {
        Ok(command) => command,
        Err(message) => return Outcome::Usage(message),
    };
    let needs_log = matches!(command, Command::Delete(..) | Command::Log(..));
    if needs_log && !settings.has_log_table {
        return Outcome::Usage(
            "set LOGIN_LOG_TABLE to the stack's login log table: delete writes an account_deleted entry there, and log reads it".to_owned(),
        );
    }
    match run_command(store, command, settings).await {
        Ok(outcome) => outcome,
        Err(err) => failed(err),
    }
}

/// How long a deletion's entry is kept: the operator's setting, else what
/// the stack's functions used for the user's newest entry.
async fn retention_days<S: LoginLog>(
    store: &S,
    user_id: &UserId,
    settings: &Settings,
) -> Result<i64, StoreError> {
    if let Some(days) = settings.retention_days {
        return Ok(days);
    }
    let newest = store.entries(user_id, 1).await?;
    Ok(newest
        .first()
        .and_then(LogEntry::retention_days)
        .unwrap_or(crate::domain::login_log::DEFAULT_RETENTION_DAYS))
}

async fn existing<S: AccountStore>(
    store: &S,
    user_id: &UserId,
) -> Result<Result<Account, Outcome>, StoreError> {
    Ok(store
        .account_of(user_id)
        .await?
        .ok_or_else(|| Outcome::Unknown(format!("no account has userId {user_id}"))))
}

async fn run_command<S: AccountStore + LoginLog>(
    store: &S,
    command: Command,
    settings: &Settings,
) -> Result<Outcome, StoreError> {
    Ok(match command {
        Command::Show(who) => {
            let account = match UserId::parse(&who) {
                Some(user_id) => store.account_of(&user_id).await?,
                None => store.account(&who).await?,
            };
            match account {
                Some(account) => Outcome::Done(json!(account.operator_view())),
                None => Outcome::Unknown(format!("no account for {who}")),
            }
        }
        Command::Disable(user_id) => set_status(store, &user_id, AccountStatus::Disabled).await?,
        Command::Enable(user_id) => set_status(store, &user_id, AccountStatus::Active).await?,
        Command::Delete(user_id, confirmed) => {
            let account = match existing(store, &user_id).await? {
                Ok(account) => account,
                Err(unknown) => return Ok(unknown),
            };
            if !confirmed {
                return Ok(Outcome::Confirm {
                    user_id,
                    account: json!(account.operator_view()),
                });
            }
            let retention_days = retention_days(store, &user_id, settings).await?;
            let entry = LogEntry::new(
                user_id.clone(),
                LogEvent::AccountDeleted,
                "ok",
                epoch_millis(),
                retention_days,
            )
            .map_err(|err| StoreError::Unavailable(err.to_string()))?
            .with_origin(&Origin {
                source_ip: None,
                user_agent: Some("wxauth-admin".into()),
            });
            if store
                .delete_account(&user_id, &account.openid, Some(&entry))
                .await?
            {
                Outcome::Done(
                    json!({"userId": user_id, "deleted": true, "account": account.operator_view()}),
                )
            } else {
                Outcome::Unknown(format!("no account has userId {user_id}"))
            }
        }
        Command::Log(user_id, limit) => {
            let entries = store.entries(&user_id, limit).await?;
            Outcome::Done(json!(entries))
        }
    })
}

async fn set_status<S: AccountStore>(
    store: &S,
    user_id: &UserId,
    status: AccountStatus,
) -> Result<Outcome, StoreError> {
    let account = match existing(store, user_id).await? {
        Ok(account) => account,
        Err(unknown) => return Ok(unknown),
    };
    Ok(
        if store.set_status(user_id, &account.openid, status).await? {
            Outcome::Done(json!({"userId": user_id, "status": status}))
        } else {
            Outcome::Unknown(format!("no account has userId {user_id}"))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::redact::SessionKey;
    use crate::domain::session::Session;
    use crate::domain::token::SessionToken;
    use crate::ports::memory::MemorySessionStore;
    use crate::ports::sessions::{LoginOutcome, LoginStore, LoginWrite, SessionStore};

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    async fn user(store: &MemorySessionStore) -> (UserId, SessionToken) {
        let token = SessionToken::generate().unwrap();
        let key = token.key();
        let session = Session {
            user_id: UserId::generate().unwrap(),
            openid: "oADMIN".into(),
            unionid: None,
            session_key: Some(SessionKey::new("k")),
            session_key_expires_at: None,
            family: None,
            created_at: 100,
            expires_at: crate::domain::time::epoch_seconds() + 600,
        };
        let login = LoginWrite {
            key: &key,
            session: &session,
            single_session: true,
            log: None,
            refresh: None,
        };
        let LoginOutcome::LoggedIn { user_id, .. } = store.login(&login).await.unwrap() else {
            panic!("logged in");
        };
        (user_id, token)
    }

    const SETTINGS: Settings = Settings {
        retention_days: Some(180),
        has_log_table: true,
    };

    #[tokio::test]
    async fn every_command_prints_json_and_exits_meaningfully() {
        let store = MemorySessionStore::new();
        let (user_id, token) = user(&store).await;
        let id = user_id.as_str();
        let run = |line: String| {
            let store = &store;
            async move { run(store, &SETTINGS, &args(&line)).await }
        };

        let Outcome::Done(shown) = run(format!("show {id}")).await else {
            panic!()
        };
        assert_eq!(shown["status"], "active");
        assert_eq!(shown["openid"], "oADMIN");
        assert_eq!(
            run("show oADMIN".into()).await,
            Outcome::Done(shown.clone())
        );
        assert!(!shown.to_string().contains(token.expose()));

        let disabled = run(format!("disable {id}")).await;
        assert_eq!(
            disabled,
            Outcome::Done(json!({"userId": id, "status": "disabled"}))
        );
        assert_eq!(
            store.get(&token.key()).await.unwrap(),
            None,
            "sessions revoked"
        );
        let enabled = run(format!("enable {id}")).await;
        assert_eq!(enabled.exit_code(), 0);

        // delete asks first: it shows what it would delete and deletes nothing.
        let asked = run(format!("delete {id}")).await;
        assert_eq!(asked.exit_code(), 4);
        let Outcome::Confirm { account, .. } = asked else {
            panic!()
        };
        assert_eq!(account["openid"], "oADMIN");
        assert_eq!(run(format!("show {id}")).await.exit_code(), 0);

        let Outcome::Done(deleted) = run(format!("delete {id} --yes")).await else {
            panic!()
        };
        assert_eq!(
            (deleted["userId"].as_str(), &deleted["deleted"]),
            (Some(id), &json!(true))
        );
        assert_eq!(deleted["account"]["openid"], "oADMIN");
        assert_eq!(run(format!("show {id}")).await.exit_code(), 1);
        assert_eq!(run(format!("delete {id} --yes")).await.exit_code(), 1);
        // The log outlives the account.
        let Outcome::Done(log) = run(format!("log {id} --limit 5")).await else {
            panic!()
        };
        assert_eq!(log[0]["event"], "account_deleted");
        assert_eq!(log[0]["userAgent"], "wxauth-admin");

        for bad in [
            "",
            "show",
            "drop u_AAAAAAAAAAAAAAAAAAAAAA",
            "disable oOPENID",
            "log u_AAAAAAAAAAAAAAAAAAAAAA --limit 0",
            "log u_AAAAAAAAAAAAAAAAAAAAAA --limit x",
            "delete u_AAAAAAAAAAAAAAAAAAAAAA --force",
            "show a b",
        ] {
            assert_eq!(run(bad.into()).await.exit_code(), 2, "{bad}");
        }
    }

    /// Without the log table, delete and log refuse to run: a deletion with
    /// no `account_deleted` entry, or an empty log, would mislead.
    #[tokio::test]
    async fn delete_and_log_need_the_log_table() {
        let store = MemorySessionStore::new();
        let (user_id, _) = user(&store).await;
        let settings = Settings {
            retention_days: None,
            has_log_table: false,
        };
        for line in [format!("delete {user_id} --yes"), format!("log {user_id}")] {
            let outcome = run(&store, &settings, &args(&line)).await;
            assert_eq!(outcome.exit_code(), 2, "{line}");
            let Outcome::Usage(message) = outcome else {
                panic!()
            };
            assert!(message.contains("LOGIN_LOG_TABLE"), "{message}");
        }
        assert!(store.account_of(&user_id).await.unwrap().is_some());
    }

    /// Without LOGIN_LOG_RETENTION_DAYS, a deletion's entry is kept as long as
    /// the stack keeps the user's entries.
    #[tokio::test]
    async fn a_deletion_is_kept_as_long_as_the_stack_keeps_entries() {
        let store = MemorySessionStore::new();
        let (user_id, _) = user(&store).await;
        let now = epoch_millis();
        let login =
            LogEntry::new(user_id.clone(), LogEvent::Login, "ok", now - 60_000, 365).unwrap();
        store.append(&login).await.unwrap();
        let settings = Settings {
            retention_days: None,
            has_log_table: true,
        };
        let deleted = run(&store, &settings, &args(&format!("delete {user_id} --yes"))).await;
        assert_eq!(deleted.exit_code(), 0);
        let entries = store.entries(&user_id, 1).await.unwrap();
        assert_eq!(entries[0].event, LogEvent::AccountDeleted);
        assert_eq!(entries[0].retention_days(), Some(365));
    }

    #[test]
    fn store_failures_say_what_happened() {
        let message = |err| match failed(err) {
            Outcome::Failed(message) => message,
            _ => unreachable!(),
        };
        assert!(
            message(StoreError::Unavailable("timeout".into())).contains("could not be reached")
        );
        assert!(
            message(StoreError::Refused("[ConditionalCheckFailed]".into()))
                .contains("nothing was changed")
        );
        assert!(message(StoreError::Malformed("status is unknown".into())).contains("malformed"));
    }
}
