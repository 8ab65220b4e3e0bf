//! The operator's commands (`wxauth-admin`): show, disable, enable, delete
//! and merge accounts, read a user's login log, and claim the unionids of
//! accounts from before several apps (the upgrade). They run with the
//! operator's own AWS credentials on the tables; nothing here is reachable
//! over HTTP.

mod parse;

use parse::{Command, Who, parse};
pub use parse::{DEFAULT_LOG_LIMIT, MAX_LOG_LIMIT, USAGE};

use serde_json::{Value, json};

use crate::domain::account::{Account, AccountStatus, UserId};
use crate::domain::app::Apps;
use crate::domain::identity::MAX_IDENTITIES_PER_ACCOUNT;
use crate::domain::login_log::{LogEntry, LogEvent, Origin};
use crate::domain::time::epoch_millis;
use crate::ports::accounts::{AccountStore, IdentityQuery, MergeOutcome};
use crate::ports::errors::StoreError;
use crate::ports::login_log::LoginLog;

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
    /// Exit 5: the command is well-formed but its rules refuse it (a merge
    /// of two people): nothing changed.
    Refused(String),
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Done(_) => 0,
            Self::Unknown(_) => 1,
            Self::Usage(_) => 2,
            Self::Failed(_) => 3,
            Self::Confirm { .. } => 4,
            Self::Refused(_) => 5,
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
    /// `LOGIN_LOG_TABLE` is set: `delete`, `merge` and `log` need it (a
    /// deletion or merge without its entries, or an empty log, would mislead).
    pub has_log_table: bool,
    /// `WECHAT_APPS` (or `WECHAT_APPID`) when the operator set it: names the
    /// app of identities from before several apps, and a bare openid's app.
    pub apps: Option<Apps>,
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
    let needs_log = matches!(
        command,
        Command::Delete(..) | Command::Log(..) | Command::Merge { .. }
    );
    if needs_log && !settings.has_log_table {
        return Outcome::Usage(
            "set LOGIN_LOG_TABLE to the stack's login log table: delete and merge write their entries there, and log reads it".to_owned(),
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
        .account(user_id)
        .await?
        .ok_or_else(|| Outcome::Unknown(format!("no account has userId {user_id}"))))
}

/// The account `show` names: by userId, by an identity, by a bare openid
/// (the default app's, or an account's from before several apps), else by
/// unionid.
async fn find<S: AccountStore>(
    store: &S,
    who: &Who,
    settings: &Settings,
) -> Result<Option<Account>, StoreError> {
    let default_app = settings.apps.as_ref().map(|apps| &apps.default_app().id);
    match who {
        Who::User(user_id) => store.account(user_id).await,
        Who::Identity(appid, openid) => {
            let query = IdentityQuery {
                appid: Some(appid),
                openid,
                // Without the apps named, an account from before them may be the one.
                default_app: default_app.is_none_or(|default| default == appid),
            };
            store.account_by_identity(query).await
        }
        Who::OpenidOrUnionid(text) => {
            let query = IdentityQuery {
                appid: default_app,
                openid: text,
                default_app: true,
            };
            match store.account_by_identity(query).await? {
                Some(account) => Ok(Some(account)),
                None => store.account_by_unionid(text).await,
            }
        }
    }
}

/// An entry the tool writes: its event now, kept as the user's entries are.
async fn tool_entry<S: LoginLog>(
    store: &S,
    user_id: &UserId,
    event: LogEvent,
    settings: &Settings,
) -> Result<LogEntry, StoreError> {
    let retention_days = retention_days(store, user_id, settings).await?;
    Ok(
        LogEntry::new(user_id.clone(), event, "ok", epoch_millis(), retention_days)
            .map_err(|err| StoreError::Unavailable(err.to_string()))?
            .with_origin(&Origin {
                source_ip: None,
                user_agent: Some("wxauth-admin".into()),
            }),
    )
}

async fn run_command<S: AccountStore + LoginLog>(
    store: &S,
    command: Command,
    settings: &Settings,
) -> Result<Outcome, StoreError> {
    let default_app = settings.apps.as_ref().map(|apps| &apps.default_app().id);
    let view = |account: &Account| json!(account.operator_view(default_app));
    Ok(match command {
        Command::Show(who) => match find(store, &who, settings).await? {
            Some(account) => Outcome::Done(view(&account)),
            None => Outcome::Unknown(format!("no account for {}", describe(&who))),
        },
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
                    account: view(&account),
                });
            }
            let entry = tool_entry(store, &user_id, LogEvent::AccountDeleted, settings).await?;
            if store.delete_account(&user_id, Some(&entry)).await? {
                Outcome::Done(
                    json!({"userId": user_id, "deleted": true, "account": view(&account)}),
                )
            } else {
                Outcome::Unknown(format!("no account has userId {user_id}"))
            }
        }
        Command::Merge { keep, from } => {
            let entry = tool_entry(store, &keep, LogEvent::AccountMerged, settings).await?;
            match store.merge(&keep, &from, Some(&entry)).await? {
                MergeOutcome::Merged(account) => Outcome::Done(view(&account)),
                MergeOutcome::Unknown(user_id) => {
                    Outcome::Unknown(format!("no account has userId {user_id}"))
                }
                MergeOutcome::Same => Outcome::Usage(format!(
                    "{keep} and {from} are one account: nothing to merge"
                )),
                MergeOutcome::DifferentUnionids => Outcome::Refused(format!(
                    "{keep} and {from} hold different unionids: they are two people, and nothing was changed"
                )),
                MergeOutcome::TooManyIdentities => Outcome::Refused(format!(
                    "together {keep} and {from} would hold more than {MAX_IDENTITIES_PER_ACCOUNT} identities: nothing was changed"
                )),
            }
        }
        Command::Log(user_id, limit) => {
            let entries = store.entries(&user_id, limit).await?;
            Outcome::Done(json!(entries))
        }
        Command::ClaimUnionids => {
            let claimed = store.claim_legacy_unionids().await?;
            Outcome::Done(json!({
                "claimed": claimed.claimed,
                "alreadyClaimed": claimed.already,
                "heldByAnotherAccount": claimed.held_elsewhere,
            }))
        }
    })
}

fn describe(who: &Who) -> String {
    match who {
        Who::User(user_id) => user_id.to_string(),
        Who::Identity(appid, openid) => format!("{appid}:{openid}"),
        Who::OpenidOrUnionid(text) => text.clone(),
    }
}

async fn set_status<S: AccountStore>(
    store: &S,
    user_id: &UserId,
    status: AccountStatus,
) -> Result<Outcome, StoreError> {
    if existing(store, user_id).await?.is_err() {
        return Ok(Outcome::Unknown(format!("no account has userId {user_id}")));
    }
    Ok(if store.set_status(user_id, status).await? {
        Outcome::Done(json!({"userId": user_id, "status": status}))
    } else {
        Outcome::Unknown(format!("no account has userId {user_id}"))
    })
}

#[cfg(test)]
mod tests;
