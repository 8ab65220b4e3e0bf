//! A login, in memory, by the DynamoDB adapter's rules.

use super::{FamilyOwner, MemorySessionStore, RefreshRecord, State};
use crate::domain::account::{Account, AccountStatus, UserId};
use crate::domain::identity::{
    AccountChoice, IdentityHolder, LinkedIdentity, UnionidChange, choose_account,
};
use crate::domain::login_log::{LogEntry, LogEvent};
use crate::domain::refresh::{KeptSessionKey, RefreshFamily, families_a_login_revokes};
use crate::domain::session::{Session, sessions_a_login_removes};
use crate::domain::token::TokenKey;
use crate::ports::errors::StoreError;
use crate::ports::sessions::{LoginOutcome, LoginStore, LoginWrite, NewAccount};

impl LoginStore for MemorySessionStore {
    async fn login(&self, login: &LoginWrite<'_>) -> Result<LoginOutcome, StoreError> {
        let mut state = self.lock();
        if state.sessions.contains_key(login.key) {
            return Err(StoreError::AlreadyExists);
        }
        let wx = login.session;
        let appid = wx
            .appid
            .clone()
            .ok_or_else(|| StoreError::Malformed("a login names its app".into()))?;
        let now = wx.created_at;
        let identity = (appid.clone(), wx.openid.clone());
        let holder = state
            .identities
            .get(&identity)
            .and_then(|user_id| state.accounts.get(user_id));
        let choice = choose_account(
            holder.map(|account| IdentityHolder {
                user_id: &account.user_id,
                unionid: account.unionid.as_deref(),
            }),
            wx.unionid.as_deref(),
            wx.unionid
                .as_ref()
                .and_then(|unionid| state.unionids.get(unionid)),
        );
        let entry = |user_id: &UserId| {
            login.log.map(|entry| LogEntry {
                user_id: user_id.clone(),
                ..entry.clone()
            })
        };
        let (user_id, new_user, linked, conflict_with) = match choice {
            AccountChoice::Create => {
                let NewAccount::Create { risk_rank } = login.new_account else {
                    return Ok(LoginOutcome::WouldCreate);
                };
                let user_id = wx.user_id.clone();
                state.accounts.insert(
                    user_id.clone(),
                    Account {
                        user_id: user_id.clone(),
                        identities: vec![LinkedIdentity {
                            appid: Some(appid.clone()),
                            openid: wx.openid.clone(),
                            linked_at: now,
                        }],
                        unionid: wx.unionid.clone(),
                        created_at: now,
                        last_login_at: now,
                        status: AccountStatus::Active,
                        phone: None,
                        risk_rank: risk_rank.map(|rank| rank.get()),
                    },
                );
                state.identities.insert(identity, user_id.clone());
                if let Some(unionid) = &wx.unionid {
                    state.unionids.insert(unionid.clone(), user_id.clone());
                }
                (user_id, true, false, None)
            }
            AccountChoice::Own {
                unionid,
                conflict_with,
            } => {
                let user_id = holder_id(&state, &identity)?;
                if let Some(refused) = refused_if_disabled(&mut state, &user_id, login.log) {
                    return Ok(refused);
                }
                if let (UnionidChange::Add | UnionidChange::Claim, Some(brought)) =
                    (unionid, &wx.unionid)
                {
                    state.unionids.insert(brought.clone(), user_id.clone());
                    if let Some(account) = state.accounts.get_mut(&user_id) {
                        account.unionid = Some(brought.clone());
                    }
                }
                (user_id, false, false, conflict_with)
            }
            AccountChoice::Link { to } => {
                if let Some(refused) = refused_if_disabled(&mut state, &to, login.log) {
                    return Ok(refused);
                }
                let account = state
                    .accounts
                    .get_mut(&to)
                    .ok_or_else(|| StoreError::Malformed("a unionid names no account".into()))?;
                account.identities.push(LinkedIdentity {
                    appid: Some(appid.clone()),
                    openid: wx.openid.clone(),
                    linked_at: now,
                });
                state.identities.insert(identity, to.clone());
                (to, false, true, None)
            }
        };
        let account = state
            .accounts
            .get_mut(&user_id)
            .ok_or_else(|| StoreError::Malformed("account vanished".into()))?;
        account.last_login_at = now;
        let unionid = account.unionid.clone();
        let revoked = revoke_for_login(&mut state, login, &user_id, now);
        let mut session = Session {
            user_id: user_id.clone(),
            unionid: unionid.clone(),
            ..wx.clone()
        };
        if let Some(issue) = login.refresh {
            session.family = Some(issue.family.clone());
            state.families.insert(
                issue.family.clone(),
                FamilyOwner {
                    user_id: user_id.clone(),
                    appid: Some(appid.clone()),
                    openid: wx.openid.clone(),
                },
            );
            state.refresh_tokens.insert(
                issue.key.clone(),
                RefreshRecord {
                    family: issue.family.clone(),
                    user_id: user_id.clone(),
                    expires_at: issue.expires_at,
                    spent_at: None,
                    successor_session: None,
                },
            );
            if let Some(session_key) = &wx.session_key {
                state.kept_keys.insert(
                    issue.family.clone(),
                    KeptSessionKey {
                        session_key: session_key.clone(),
                        expires_at: wx.expires_at,
                    },
                );
            }
        }
        state.sessions.insert(login.key.clone(), session);
        if let Some(entry) = entry(&user_id) {
            for _ in &revoked {
                state.log.push(sibling(&entry, LogEvent::Revoked)?);
            }
            if linked {
                state.log.push(sibling(&entry, LogEvent::AppLinked)?);
            }
            if let Some(other) = &conflict_with {
                for (user, about) in [(&user_id, other), (other, &user_id)] {
                    let conflict = entry
                        .about_other(LogEvent::AccountConflict, user, about)
                        .map_err(random_failed)?;
                    state.log.push(conflict);
                }
            }
            state.log.push(LogEntry {
                risk_rank: entry.risk_rank.filter(|_| new_user),
                ..entry
            });
        }
        Ok(LoginOutcome::LoggedIn {
            user_id,
            new_user,
            unionid,
            linked,
            conflict_with,
        })
    }
}

fn random_failed(err: getrandom::Error) -> StoreError {
    StoreError::Unavailable(format!("the OS random source failed: {err}"))
}

fn sibling(entry: &LogEntry, event: LogEvent) -> Result<LogEntry, StoreError> {
    entry.sibling(event).map_err(random_failed)
}

fn holder_id(
    state: &State,
    identity: &(crate::domain::app::AppId, String),
) -> Result<UserId, StoreError> {
    state
        .identities
        .get(identity)
        .cloned()
        .ok_or_else(|| StoreError::Malformed("identity vanished".into()))
}

/// A disabled account refuses the login: only its `login_refused` entry is written.
fn refused_if_disabled(
    state: &mut State,
    user_id: &UserId,
    log: Option<&LogEntry>,
) -> Option<LoginOutcome> {
    let disabled = state
        .accounts
        .get(user_id)
        .is_some_and(|account| account.status == AccountStatus::Disabled);
    if !disabled {
        return None;
    }
    state.log_as(log, user_id, LogEvent::LoginRefused, "account_disabled");
    Some(LoginOutcome::Disabled {
        user_id: user_id.clone(),
    })
}

/// What a login of this identity revokes, as in the table: with one session
/// per identity, its every session and family; otherwise the families beyond
/// what one identity keeps (with their live sessions) and the expired and
/// oldest sessions beyond the cap. The person's other apps keep theirs.
/// Returns the live sessions revoked.
fn revoke_for_login(
    state: &mut State,
    login: &LoginWrite<'_>,
    user_id: &UserId,
    now: i64,
) -> Vec<TokenKey> {
    let wx = login.session;
    let (appid, openid) = (wx.appid.as_ref(), wx.openid.as_str());
    let mine =
        |s: &Session| &s.user_id == user_id && s.appid.as_ref() == appid && s.openid == openid;
    let live: Vec<TokenKey> = state
        .sessions
        .iter()
        .filter(|(_, s)| mine(s) && s.expires_at > now)
        .map(|(key, _)| key.clone())
        .collect();
    if login.single_session {
        state.revoke_identity(user_id, appid, openid);
        return live;
    }
    let mut revoked: Vec<TokenKey> = Vec::new();
    let held_families: Vec<(RefreshFamily, i64)> = state
        .families
        .iter()
        .filter(|(_, o)| &o.user_id == user_id && o.appid.as_ref() == appid && o.openid == openid)
        .map(|(family, _)| (family.clone(), state.family_expires_at(family)))
        .collect();
    for (family, _) in families_a_login_revokes(&held_families, now) {
        revoked.extend(
            state
                .sessions
                .iter()
                .filter(|(_, s)| s.family.as_ref() == Some(&family) && s.expires_at > now)
                .map(|(key, _)| key.clone()),
        );
        state.revoke_family(&family);
    }
    let held: Vec<(TokenKey, i64)> = state
        .sessions
        .iter()
        .filter(|(_, s)| mine(s))
        .map(|(key, s)| (key.clone(), s.expires_at))
        .collect();
    for (key, expires_at) in sessions_a_login_removes(&held, now, false) {
        if expires_at > now {
            revoked.push(key.clone());
        }
        state.sessions.remove(&key);
    }
    revoked
}
