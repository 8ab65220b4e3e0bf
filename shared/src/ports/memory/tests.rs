use super::*;
use crate::domain::account::AccountStatus;
use crate::domain::redact::SessionKey;
use crate::domain::wechat::RiskRank;
use crate::ports::accounts::{AccountStore, IdentityQuery, MergeOutcome};
use crate::ports::sessions::{LoginOutcome, LoginStore, LoginWrite, NewAccount, SessionStore};

const A: &str = "wx1111111111111111";
const B: &str = "wx2222222222222222";

fn app(appid: &str) -> AppId {
    AppId::parse(appid).unwrap()
}

fn session(appid: &str, openid: &str, unionid: Option<&str>) -> Session {
    Session {
        user_id: UserId::generate().unwrap(),
        appid: Some(app(appid)),
        openid: openid.into(),
        unionid: unionid.map(str::to_owned),
        session_key: Some(SessionKey::new("k")),
        session_key_expires_at: None,
        family: None,
        created_at: 100,
        expires_at: 700,
    }
}

fn write<'a>(key: &'a TokenKey, session: &'a Session, single: bool) -> LoginWrite<'a> {
    LoginWrite {
        key,
        session,
        default_app: session
            .appid
            .as_ref()
            .is_some_and(|appid| appid.as_str() == A),
        single_session: single,
        log: None,
        refresh: None,
        new_account: NewAccount::Create { risk_rank: None },
    }
}

async fn log_in_as(
    store: &MemorySessionStore,
    appid: &str,
    openid: &str,
    unionid: Option<&str>,
    single: bool,
) -> (TokenKey, LoginOutcome) {
    let key = SessionToken::generate().unwrap().key();
    let session = session(appid, openid, unionid);
    let outcome = store.login(&write(&key, &session, single)).await.unwrap();
    (key, outcome)
}

async fn log_in(
    store: &MemorySessionStore,
    openid: &str,
    single: bool,
) -> (TokenKey, LoginOutcome) {
    log_in_as(store, A, openid, None, single).await
}

fn user_of(outcome: &LoginOutcome) -> UserId {
    match outcome {
        LoginOutcome::LoggedIn { user_id, .. } => user_id.clone(),
        other => panic!("not logged in: {other:?}"),
    }
}

#[tokio::test]
async fn the_first_login_creates_the_account_and_later_ones_keep_it() {
    let store = MemorySessionStore::new();
    let (first, created) = log_in(&store, "o1", true).await;
    let (second, again) = log_in(&store, "o1", true).await;
    assert!(matches!(
        created,
        LoginOutcome::LoggedIn { new_user: true, .. }
    ));
    assert!(matches!(
        again,
        LoginOutcome::LoggedIn {
            new_user: false,
            ..
        }
    ));
    let a = user_of(&created);
    assert_eq!(a, user_of(&again));
    assert_eq!(store.get(&first).await.unwrap(), None, "revoked");
    assert_eq!(store.get(&second).await.unwrap().unwrap().user_id, a);
    let session = session(A, "o1", None);
    assert_eq!(
        store.login(&write(&second, &session, true)).await,
        Err(StoreError::AlreadyExists)
    );
}

/// The three cases of `domain::identity`, and one session per identity: a
/// login through one app leaves the person's session in another.
#[tokio::test]
async fn one_person_is_one_account_across_apps() {
    let store = MemorySessionStore::new();
    let (in_a, created) = log_in_as(&store, A, "oA", Some("U"), true).await;
    let (in_b, linked) = log_in_as(&store, B, "oB", Some("U"), true).await;
    let user = user_of(&created);
    assert_eq!(user_of(&linked), user);
    assert!(matches!(
        linked,
        LoginOutcome::LoggedIn {
            linked: true,
            new_user: false,
            ..
        }
    ));
    assert!(
        store.get(&in_a).await.unwrap().is_some(),
        "the other app's session stays"
    );
    assert_eq!(store.get(&in_b).await.unwrap().unwrap().appid, Some(app(B)));
    let account = store.account(&user).await.unwrap().unwrap();
    let openids: Vec<&str> = account
        .identities
        .iter()
        .map(|i| i.openid.as_str())
        .collect();
    assert_eq!(openids, ["oA", "oB"]);
    let found = store
        .account_by_identity(IdentityQuery {
            appid: Some(&app(B)),
            openid: "oB",
            default_app: false,
        })
        .await
        .unwrap();
    assert_eq!(found.map(|a| a.user_id), Some(user.clone()));
    assert_eq!(
        store
            .account_by_unionid("U")
            .await
            .unwrap()
            .map(|a| a.user_id),
        Some(user)
    );
}

/// The app was used before it was bound: its identity keeps its own
/// account, nothing is linked, both logs say so, and the answer never
/// carries the other account's unionid.
#[tokio::test]
async fn a_unionid_held_elsewhere_is_a_conflict() {
    let store = MemorySessionStore::new();
    let (_, early) = log_in_as(&store, B, "oB", None, true).await;
    let (_, owner) = log_in_as(&store, A, "oA", Some("U"), true).await;
    let key = SessionToken::generate().unwrap().key();
    let session = session(B, "oB", Some("U"));
    let entry = crate::domain::login_log::LogEntry::new(
        session.user_id.clone(),
        LogEvent::Login,
        "ok",
        100_000,
        180,
    )
    .unwrap();
    let conflicted = store
        .login(&LoginWrite {
            log: Some(&entry),
            ..write(&key, &session, true)
        })
        .await
        .unwrap();
    let (early, owner) = (user_of(&early), user_of(&owner));
    assert_eq!(
        conflicted,
        LoginOutcome::LoggedIn {
            user_id: early.clone(),
            new_user: false,
            unionid: None,
            linked: false,
            conflict_with: Some(owner.clone()),
        }
    );
    assert_eq!(store.get(&key).await.unwrap().unwrap().unionid, None);
    let conflicts: Vec<(UserId, Option<UserId>)> = store
        .log()
        .into_iter()
        .filter(|e| e.event == LogEvent::AccountConflict)
        .map(|e| (e.user_id, e.other_user_id))
        .collect();
    assert_eq!(
        conflicts,
        [
            (early.clone(), Some(owner.clone())),
            (owner.clone(), Some(early.clone()))
        ]
    );
    // The operator's merge resolves it: one account, the other's sessions gone.
    let merged = store.merge(&owner, &early, Some(&entry)).await.unwrap();
    let MergeOutcome::Merged(account) = merged else {
        panic!("{merged:?}")
    };
    assert_eq!(account.identities.len(), 2);
    assert_eq!(store.get(&key).await.unwrap(), None);
    let (_, after) = log_in_as(&store, B, "oB", Some("U"), true).await;
    assert_eq!(user_of(&after), owner);
}

#[tokio::test]
async fn a_merge_refuses_two_people_and_itself() {
    let store = MemorySessionStore::new();
    let (_, x) = log_in_as(&store, A, "oX", Some("U1"), true).await;
    let (_, y) = log_in_as(&store, A, "oY", Some("U2"), true).await;
    let (x, y) = (user_of(&x), user_of(&y));
    assert_eq!(
        store.merge(&x, &y, None).await.unwrap(),
        MergeOutcome::DifferentUnionids
    );
    assert_eq!(store.merge(&x, &x, None).await.unwrap(), MergeOutcome::Same);
    let nobody = UserId::generate().unwrap();
    assert_eq!(
        store.merge(&x, &nobody, None).await.unwrap(),
        MergeOutcome::Unknown(nobody)
    );
    assert!(
        store.account(&y).await.unwrap().is_some(),
        "nothing changed"
    );
}

/// `RISK_CONTROL`: a login that would create an account can ask first, and
/// a later one carries the rank onto the account.
#[tokio::test]
async fn a_sign_up_can_be_asked_about_first() {
    let store = MemorySessionStore::new();
    let key = SessionToken::generate().unwrap().key();
    let session = session(A, "oNew", None);
    let ask = LoginWrite {
        new_account: NewAccount::AskFirst,
        ..write(&key, &session, true)
    };
    assert_eq!(store.login(&ask).await.unwrap(), LoginOutcome::WouldCreate);
    assert!(store.get(&key).await.unwrap().is_none(), "nothing written");
    let create = LoginWrite {
        new_account: NewAccount::Create {
            risk_rank: RiskRank::new(2),
        },
        ..write(&key, &session, true)
    };
    let user = user_of(&store.login(&create).await.unwrap());
    assert_eq!(
        store.account(&user).await.unwrap().unwrap().risk_rank,
        Some(2)
    );
    // A returning user is never asked about.
    let (_, again) = log_in(&store, "oNew", true).await;
    assert_eq!(user_of(&again), user);
}

/// Several sessions per user: each login starts a refresh family, and
/// the one beyond the bound revokes the family ending soonest with its
/// sessions, so what a user holds stays bounded.
#[tokio::test]
async fn a_user_keeps_a_bounded_number_of_refresh_families() {
    use crate::domain::refresh::RefreshToken;
    use crate::domain::session::MAX_SESSIONS_PER_USER;
    use crate::ports::sessions::RefreshIssue;
    let store = MemorySessionStore::new();
    let session = session(A, "o1", None);
    let mut keys = Vec::new();
    for i in 0..=MAX_SESSIONS_PER_USER {
        let key = SessionToken::generate().unwrap().key();
        let family = RefreshFamily::generate().unwrap();
        let refresh = RefreshToken::issue(&family).unwrap().key();
        let outcome = store
            .login(&LoginWrite {
                refresh: Some(RefreshIssue {
                    key: &refresh,
                    family: &family,
                    // The first login's family ends soonest.
                    expires_at: 10_000 + i as i64,
                }),
                ..write(&key, &session, false)
            })
            .await
            .unwrap();
        assert!(matches!(outcome, LoginOutcome::LoggedIn { .. }));
        keys.push(key);
    }
    let state = store.state.lock().unwrap();
    assert_eq!(state.families.len(), MAX_SESSIONS_PER_USER);
    assert!(
        !state.sessions.contains_key(&keys[0]),
        "revoked with its family"
    );
    assert!(keys[1..].iter().all(|key| state.sessions.contains_key(key)));
}

#[tokio::test]
async fn deleting_or_disabling_revokes_every_session_of_every_app() {
    let store = MemorySessionStore::new();
    let (one, outcome) = log_in_as(&store, A, "o1", Some("U"), false).await;
    let (two, _) = log_in_as(&store, B, "o2", Some("U"), false).await;
    let user_id = user_of(&outcome);
    assert!(
        store
            .set_status(&user_id, AccountStatus::Disabled)
            .await
            .unwrap()
    );
    assert_eq!(
        (
            store.get(&one).await.unwrap(),
            store.get(&two).await.unwrap()
        ),
        (None, None)
    );
    let (_, refused) = log_in_as(&store, B, "o2", Some("U"), false).await;
    assert_eq!(
        refused,
        LoginOutcome::Disabled {
            user_id: user_id.clone()
        }
    );
    assert!(
        store
            .set_status(&user_id, AccountStatus::Active)
            .await
            .unwrap()
    );
    let (three, _) = log_in(&store, "o1", false).await;
    assert!(store.delete_account(&user_id, None).await.unwrap());
    assert_eq!(store.get(&three).await.unwrap(), None);
    assert_eq!(store.account(&user_id).await.unwrap(), None);
    assert_eq!(store.account_by_unionid("U").await.unwrap(), None);
    assert!(!store.delete_account(&user_id, None).await.unwrap());
    // Every app's next login makes a new account.
    let (_, reborn) = log_in_as(&store, B, "o2", Some("U"), false).await;
    assert!(
        matches!(reborn, LoginOutcome::LoggedIn { new_user: true, user_id: new, .. } if new != user_id)
    );
}
