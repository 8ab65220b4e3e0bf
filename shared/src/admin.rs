//! The operator's commands (`wxauth-admin`): show, disable, enable and delete
//! an account, and read a user's login log. They run with the operator's own
//! AWS credentials on the tables; nothing here is reachable over HTTP.

use serde_json::{Value, json};

use crate::account::{Account, AccountStatus, AccountStore, UserId};
use crate::login_log::{LogEntry, LogEvent, LoginLog, Origin, epoch_millis};
use crate::session::StoreError;

pub const USAGE: &str = "usage: wxauth-admin show <userId|openid> | disable <userId> | enable <userId> | delete <userId> | log <userId> [--limit N]";
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
    /// Exit 3: the tables could not be read or written.
    Failed(String),
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Done(_) => 0,
            Self::Unknown(_) => 1,
            Self::Usage(_) => 2,
            Self::Failed(_) => 3,
        }
    }
}

enum Command {
    Show(String),
    Disable(UserId),
    Enable(UserId),
    Delete(UserId),
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
        [command, who] if command.as_str() == "delete" => Ok(Command::Delete(user(Some(who))?)),
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

fn failed(err: StoreError) -> Outcome {
    Outcome::Failed(format!("the tables could not be reached: {err}"))
}

/// Runs one command (the arguments after the program name). A deletion's log
/// entry is kept `retention_days` (`LOGIN_LOG_RETENTION_DAYS`).
pub async fn run<S: AccountStore + LoginLog>(
    store: &S,
    retention_days: i64,
    args: &[String],
) -> Outcome {
    let command = match parse(args) {
        Ok(command) => command,
        Err(message) => return Outcome::Usage(message),
    };
    match run_command(store, command, retention_days).await {
        Ok(outcome) => outcome,
        Err(err) => failed(err),
    }
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
    retention_days: i64,
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
        Command::Delete(user_id) => {
            let account = match existing(store, &user_id).await? {
                Ok(account) => account,
                Err(unknown) => return Ok(unknown),
            };
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
                Outcome::Done(json!({"userId": user_id, "deleted": true}))
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
    use crate::memory::MemorySessionStore;
    use crate::redact::SessionKey;
    use crate::session::{LoginOutcome, LoginWrite, Session, SessionStore};
    use crate::token::SessionToken;

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
            expires_at: crate::session::epoch_seconds() + 600,
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

    #[tokio::test]
    async fn every_command_prints_json_and_exits_meaningfully() {
        let store = MemorySessionStore::new();
        let (user_id, token) = user(&store).await;
        let id = user_id.as_str();

        let Outcome::Done(shown) = run(&store, 180, &args(&format!("show {id}"))).await else {
            panic!()
        };
        assert_eq!(shown["status"], "active");
        assert_eq!(shown["openid"], "oADMIN");
        assert_eq!(
            run(&store, 180, &args("show oADMIN")).await,
            Outcome::Done(shown.clone())
        );
        assert!(!shown.to_string().contains(token.expose()));

        let disabled = run(&store, 180, &args(&format!("disable {id}"))).await;
        assert_eq!(
            disabled,
            Outcome::Done(json!({"userId": id, "status": "disabled"}))
        );
        assert_eq!(
            store.get(&token.key()).await.unwrap(),
            None,
            "sessions revoked"
        );
        let enabled = run(&store, 180, &args(&format!("enable {id}"))).await;
        assert_eq!(enabled.exit_code(), 0);

        let deleted = run(&store, 180, &args(&format!("delete {id}"))).await;
        assert_eq!(
            deleted,
            Outcome::Done(json!({"userId": id, "deleted": true}))
        );
        assert_eq!(
            run(&store, 180, &args(&format!("show {id}")))
                .await
                .exit_code(),
            1
        );
        assert_eq!(
            run(&store, 180, &args(&format!("delete {id}")))
                .await
                .exit_code(),
            1
        );
        // The log outlives the account.
        let Outcome::Done(log) = run(&store, 180, &args(&format!("log {id} --limit 5"))).await
        else {
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
            "show a b",
        ] {
            assert_eq!(run(&store, 180, &args(bad)).await.exit_code(), 2, "{bad}");
        }
    }
}
