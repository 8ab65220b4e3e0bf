use super::*;
use crate::domain::redact::SessionKey;
use crate::domain::session::Session;
use crate::domain::token::SessionToken;
use crate::ports::memory::MemorySessionStore;
use crate::ports::sessions::{LoginOutcome, LoginStore, LoginWrite, NewAccount, SessionStore};

const APP: &str = "wx1111111111111111";

fn apps() -> Option<Apps> {
    Apps::parse(APP).ok()
}

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

async fn user(store: &MemorySessionStore) -> (UserId, SessionToken) {
    let token = SessionToken::generate().unwrap();
    let key = token.key();
    let session = Session {
        user_id: UserId::generate().unwrap(),
        appid: crate::domain::app::AppId::parse(APP),
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
        default_app: true,
        single_session: true,
        log: None,
        refresh: None,
        new_account: NewAccount::Create { risk_rank: None },
    };
    let LoginOutcome::LoggedIn { user_id, .. } = store.login(&login).await.unwrap() else {
        panic!("logged in");
    };
    (user_id, token)
}

fn settings() -> Settings {
    Settings {
        retention_days: Some(180),
        has_log_table: true,
        apps: apps(),
    }
}

#[tokio::test]
async fn every_command_prints_json_and_exits_meaningfully() {
    let store = MemorySessionStore::new();
    let (user_id, token) = user(&store).await;
    let id = user_id.as_str();
    let run = |line: String| {
        let store = &store;
        async move { run(store, &settings(), &args(&line)).await }
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
        apps: apps(),
    };
    for line in [format!("delete {user_id} --yes"), format!("log {user_id}")] {
        let outcome = run(&store, &settings, &args(&line)).await;
        assert_eq!(outcome.exit_code(), 2, "{line}");
        let Outcome::Usage(message) = outcome else {
            panic!()
        };
        assert!(message.contains("LOGIN_LOG_TABLE"), "{message}");
    }
    assert!(store.account(&user_id).await.unwrap().is_some());
}

/// Without LOGIN_LOG_RETENTION_DAYS, a deletion's entry is kept as long as
/// the stack keeps the user's entries.
#[tokio::test]
async fn a_deletion_is_kept_as_long_as_the_stack_keeps_entries() {
    let store = MemorySessionStore::new();
    let (user_id, _) = user(&store).await;
    let now = epoch_millis();
    let login = LogEntry::new(user_id.clone(), LogEvent::Login, "ok", now - 60_000, 365).unwrap();
    store.append(&login).await.unwrap();
    let settings = Settings {
        retention_days: None,
        has_log_table: true,
        apps: apps(),
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
    assert!(message(StoreError::Unavailable("timeout".into())).contains("could not be reached"));
    assert!(
        message(StoreError::Refused("[ConditionalCheckFailed]".into()))
            .contains("nothing was changed")
    );
    assert!(message(StoreError::Malformed("status is unknown".into())).contains("malformed"));
}
