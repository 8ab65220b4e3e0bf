use super::*;
use crate::domain::account::AccountStatus;
use crate::domain::redact::SessionKey;
use crate::ports::accounts::AccountStore;
use crate::ports::sessions::{LoginOutcome, LoginStore, LoginWrite, SessionStore};

fn session(openid: &str) -> Session {
    Session {
        user_id: UserId::generate().unwrap(),
        openid: openid.into(),
        unionid: None,
        session_key: Some(SessionKey::new("k")),
        session_key_expires_at: None,
        family: None,
        created_at: 100,
        expires_at: 700,
    }
}

async fn log_in(
    store: &MemorySessionStore,
    openid: &str,
    single: bool,
) -> (TokenKey, LoginOutcome) {
    let key = SessionToken::generate().unwrap().key();
    let session = session(openid);
    let outcome = store
        .login(&LoginWrite {
            key: &key,
            session: &session,
            single_session: single,
            log: None,
            refresh: None,
        })
        .await
        .unwrap();
    (key, outcome)
}

#[tokio::test]
async fn the_first_login_creates_the_account_and_later_ones_keep_it() {
    let store = MemorySessionStore::new();
    let (first, created) = log_in(&store, "o1", true).await;
    let (second, again) = log_in(&store, "o1", true).await;
    let (
        LoginOutcome::LoggedIn {
            user_id: a,
            new_user: true,
            ..
        },
        LoginOutcome::LoggedIn {
            user_id: b,
            new_user: false,
            ..
        },
    ) = (created, again)
    else {
        panic!("unexpected outcomes");
    };
    assert_eq!(a, b);
    assert_eq!(store.get(&first).await.unwrap(), None, "revoked");
    assert_eq!(store.get(&second).await.unwrap().unwrap().user_id, a);
    let session = session("o1");
    assert_eq!(
        store
            .login(&LoginWrite {
                key: &second,
                session: &session,
                single_session: true,
                log: None,
                refresh: None,
            })
            .await,
        Err(StoreError::AlreadyExists)
    );
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
    let session = session("o1");
    let mut keys = Vec::new();
    for i in 0..=MAX_SESSIONS_PER_USER {
        let key = SessionToken::generate().unwrap().key();
        let family = RefreshFamily::generate().unwrap();
        let refresh = RefreshToken::issue(&family).unwrap().key();
        let outcome = store
            .login(&LoginWrite {
                key: &key,
                session: &session,
                single_session: false,
                log: None,
                refresh: Some(RefreshIssue {
                    key: &refresh,
                    family: &family,
                    // The first login's family ends soonest.
                    expires_at: 10_000 + i as i64,
                }),
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
async fn deleting_or_disabling_revokes_every_session() {
    let store = MemorySessionStore::new();
    let (one, outcome) = log_in(&store, "o1", false).await;
    let (two, _) = log_in(&store, "o1", false).await;
    let LoginOutcome::LoggedIn { user_id, .. } = outcome else {
        panic!()
    };
    assert!(
        store
            .set_status(&user_id, "o1", AccountStatus::Disabled)
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
    let (_, refused) = log_in(&store, "o1", false).await;
    assert_eq!(
        refused,
        LoginOutcome::Disabled {
            user_id: user_id.clone()
        }
    );
    assert!(
        store
            .set_status(&user_id, "o1", AccountStatus::Active)
            .await
            .unwrap()
    );
    let (three, _) = log_in(&store, "o1", false).await;
    assert!(store.delete_account(&user_id, "o1", None).await.unwrap());
    assert_eq!(store.get(&three).await.unwrap(), None);
    assert_eq!(store.account("o1").await.unwrap(), None);
    assert!(!store.delete_account(&user_id, "o1", None).await.unwrap());
    let (_, reborn) = log_in(&store, "o1", false).await;
    assert!(
        matches!(reborn, LoginOutcome::LoggedIn { new_user: true, user_id: new, .. } if new != user_id)
    );
}
