//! A login in one read and one transaction. The read takes, in one request,
//! the login's identity (under both of its keys for the default app) and
//! the unionid it brought; `domain::identity` decides which account the
//! login goes to; the transaction writes the session, the identity's item
//! (its sessions and refresh families), the account's home when the
//! identity is not it, the unionid's item when it changes hands, the
//! refresh family and the log entries, and deletes whatever it revokes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::DynamoSessionStore;
use super::families::{FamilyMaps, RefreshItem, kept_key_pk};
use super::identities::WholeAccount;
use super::items::{
    IdentityItem, UnionidHolder, build_error, identity_keys, identity_pk, n, number_map_value, s,
    unionid_holder_from, unionid_pk, user_pk,
};
use super::table::{Attempt, Plan};
use crate::domain::account::{AccountStatus, UserId};
use crate::domain::app::AppId;
use crate::domain::identity::{AccountChoice, IdentityHolder, UnionidChange, choose_account};
use crate::domain::login_log::{LogEntry, LogEvent};
use crate::domain::session::{Session, sessions_a_login_removes};
use crate::ports::errors::StoreError;
use crate::ports::login_log::LoginLog;
use crate::ports::sessions::{LoginOutcome, LoginStore, LoginWrite, NewAccount};

/// Expired sessions a login deletes at most (the rest go with later logins):
/// a transaction holds at most 100 items.
pub(super) const PRUNE_AT_MOST: usize = 40;

impl LoginStore for DynamoSessionStore {
    async fn login(&self, login: &LoginWrite<'_>) -> Result<LoginOutcome, StoreError> {
        self.with_rounds("login", |round| self.login_round(login, round))
            .await
    }
}

/// What a login's transaction is built from.
struct Login<'a> {
    write: &'a LoginWrite<'a>,
    appid: &'a AppId,
    /// The session as written: the account's userId and unionid.
    session: Session,
    /// The login's own log entry (the account's userId).
    entry: Option<LogEntry>,
}

impl DynamoSessionStore {
    pub(super) async fn login_round(
        &self,
        write: &LoginWrite<'_>,
        round: u32,
    ) -> Result<Attempt<LoginOutcome>, StoreError> {
        let wx = write.session;
        let appid = wx
            .appid
            .as_ref()
            .ok_or_else(|| StoreError::Malformed("a login names its app".into()))?;
        let own_keys = identity_keys(Some(appid), &wx.openid, write.default_app);
        let mut keys = own_keys.clone();
        keys.extend(wx.unionid.as_deref().map(unionid_pk));
        let found = self.batch_get(&keys).await?;
        let identity = Self::first_identity(&own_keys, &found)?;
        let holder = match wx
            .unionid
            .as_deref()
            .and_then(|u| found.get(&unionid_pk(u)))
        {
            Some(item) => Some(unionid_holder_from(item)?),
            None => None,
        };
        let choice = choose_account(
            identity.as_ref().map(|item| IdentityHolder {
                user_id: &item.user_id,
                unionid: item.unionid.as_deref(),
            }),
            wx.unionid.as_deref(),
            holder.as_ref().map(|holder| &holder.user_id),
        );
        // Idempotent per round: a request the SDK sends again after a lost
        // answer is not applied twice (each round's items differ, so each
        // round has its own token).
        let request_token = Some(format!("{}-{round:03}", &write.key.as_str()[..32]));
        let login = |user_id: &UserId, unionid: Option<String>| Login {
            write,
            appid,
            session: Session {
                user_id: user_id.clone(),
                unionid,
                ..wx.clone()
            },
            entry: write.log.map(|entry| LogEntry {
                user_id: user_id.clone(),
                ..entry.clone()
            }),
        };
        match (choice, identity, holder) {
            (AccountChoice::Create, _, _) => {
                let NewAccount::Create { risk_rank } = write.new_account else {
                    return Ok(Attempt::Done(LoginOutcome::WouldCreate));
                };
                let login = login(&wx.user_id, wx.unionid.clone());
                let items = self.first_login_items(&login, risk_rank.map(|rank| rank.get()))?;
                let pointer_at = 3;
                Ok(self
                    .transact(items, request_token, true, &[1, pointer_at])
                    .await?
                    .answering(LoginOutcome::LoggedIn {
                        user_id: wx.user_id.clone(),
                        new_user: true,
                        unionid: wx.unionid.clone(),
                        linked: false,
                        conflict_with: None,
                    }))
            }
            (AccountChoice::Own { .. }, Some(item), _)
                if item.status == AccountStatus::Disabled =>
            {
                self.refuse_disabled(write.log, &item.user_id).await
            }
            (
                AccountChoice::Own {
                    unionid,
                    conflict_with,
                },
                Some(item),
                _,
            ) => {
                let account_unionid = match unionid {
                    UnionidChange::Add => wx.unionid.clone(),
                    _ => item.unionid.clone(),
                };
                let login = login(&item.user_id, account_unionid.clone());
                // Adding a unionid to an account of several identities writes
                // it on each (their copies): they are read for it, once in
                // the account's life.
                let siblings = match unionid {
                    UnionidChange::Add if !item.is_home() || has_linked(&item) => {
                        match self.read_home(item.home_pk(), &item.user_id).await? {
                            Some(home) => Some(self.whole_account_from(home).await?),
                            None => return Ok(Attempt::Contended),
                        }
                    }
                    _ => None,
                };
                let (plan, conditioned) = self.own_login_plan(
                    &login,
                    &item,
                    unionid,
                    conflict_with.as_ref(),
                    siblings.as_ref(),
                )?;
                Ok(self
                    .run_plan(plan, request_token, true, &conditioned)
                    .await?
                    .answering(LoginOutcome::LoggedIn {
                        user_id: item.user_id.clone(),
                        new_user: false,
                        unionid: account_unionid,
                        linked: false,
                        conflict_with,
                    }))
            }
            (AccountChoice::Link { to }, _, Some(holder)) => {
                let login = login(&to, wx.unionid.clone());
                let items = self.link_items(&login, &holder)?;
                match self.transact(items, request_token, true, &[1, 2]).await? {
                    Attempt::Done(()) => Ok(Attempt::Done(LoginOutcome::LoggedIn {
                        user_id: to,
                        new_user: false,
                        unionid: wx.unionid.clone(),
                        linked: true,
                        conflict_with: None,
                    })),
                    // The home refused: deleted or merged (read again), or disabled.
                    Attempt::Contended => match self.read_home(&holder.home, &to).await? {
                        Some(home) if home.status == AccountStatus::Disabled => {
                            self.refuse_disabled(write.log, &to).await
                        }
                        _ => Ok(Attempt::Contended),
                    },
                }
            }
            // The rule never answers these (Own without an identity, Link
            // without a holder): a changing table, read again.
            _ => Ok(Attempt::Contended),
        }
    }

    /// A disabled account: nothing is written but the refusal's log entry.
    async fn refuse_disabled(
        &self,
        log: Option<&LogEntry>,
        user_id: &UserId,
    ) -> Result<Attempt<LoginOutcome>, StoreError> {
        if let Some(entry) = log {
            let refusal = LogEntry {
                user_id: user_id.clone(),
                event: LogEvent::LoginRefused,
                outcome: "account_disabled".into(),
                risk_rank: None,
                ..entry.clone()
            };
            self.append(&refusal).await?;
        }
        Ok(Attempt::Done(LoginOutcome::Disabled {
            user_id: user_id.clone(),
        }))
    }

    fn session_put(&self, login: &Login<'_>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::session_item(login.write.key, &login.session)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The unionid's item: `user_id`'s account holds it, from now on.
    fn unionid_put(
        &self,
        unionid: &str,
        user_id: &UserId,
        home: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        self.put(HashMap::from([
            ("pk".to_owned(), s(&unionid_pk(unionid))),
            ("userId".to_owned(), s(user_id.as_str())),
            ("home".to_owned(), s(home)),
        ]))
    }

    /// The first login: the session, the account's home (its first
    /// identity), the userId's index, the unionid's item, the log entry.
    /// Items 1 and 3 (the home, the unionid) failing their condition means
    /// another login created them first.
    fn first_login_items(
        &self,
        login: &Login<'_>,
        risk_rank: Option<u8>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let wx = &login.session;
        let home_pk = identity_pk(login.appid, &wx.openid);
        let mut home = HashMap::from([
            ("pk".to_owned(), s(&home_pk)),
            ("userId".to_owned(), s(wx.user_id.as_str())),
            ("appid".to_owned(), s(login.appid.as_str())),
            ("openid".to_owned(), s(&wx.openid)),
            ("createdAt".to_owned(), n(wx.created_at)),
            ("lastLoginAt".to_owned(), n(wx.created_at)),
            ("status".to_owned(), s(AccountStatus::Active.as_str())),
            ("version".to_owned(), n(1)),
            ("identities".to_owned(), AttributeValue::M(HashMap::new())),
            (
                "sessions".to_owned(),
                AttributeValue::M(HashMap::from([(
                    login.write.key.as_str().to_owned(),
                    n(wx.expires_at),
                )])),
            ),
        ]);
        if let Some(unionid) = &wx.unionid {
            home.insert("unionid".to_owned(), s(unionid));
        }
        if let Some(rank) = risk_rank {
            home.insert("riskRank".to_owned(), n(i64::from(rank)));
        }
        FamilyMaps::default()
            .with_login(login.write)
            .write_into(&mut home);
        let index = HashMap::from([
            ("pk".to_owned(), s(&user_pk(&wx.user_id))),
            ("home".to_owned(), s(&home_pk)),
        ]);
        let mut items = vec![self.session_put(login)?, self.put(home)?, self.put(index)?];
        if let Some(unionid) = &wx.unionid {
            items.push(self.unionid_put(unionid, &wx.user_id, &home_pk)?);
        }
        items.extend(self.refresh_issue_items(login, &home_pk)?);
        if let Some(entry) = &login.entry {
            items.extend(self.log_put(entry)?);
        }
        Ok(items)
    }

    /// Case 2: the identity joins the account holding its unionid. Its item
    /// is new (item 1); the home lists it, conditioned on the account being
    /// the one the unionid names and active (item 2). A home a unionid's item
    /// names always has its list of identities (see `own_login_plan`).
    fn link_items(
        &self,
        login: &Login<'_>,
        holder: &UnionidHolder,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let wx = &login.session;
        let now = wx.created_at;
        let pk = identity_pk(login.appid, &wx.openid);
        let mut identity = HashMap::from([
            ("pk".to_owned(), s(&pk)),
            ("userId".to_owned(), s(wx.user_id.as_str())),
            ("appid".to_owned(), s(login.appid.as_str())),
            ("openid".to_owned(), s(&wx.openid)),
            ("home".to_owned(), s(&holder.home)),
            ("linkedAt".to_owned(), n(now)),
            ("status".to_owned(), s(AccountStatus::Active.as_str())),
            ("version".to_owned(), n(1)),
            (
                "sessions".to_owned(),
                AttributeValue::M(HashMap::from([(
                    login.write.key.as_str().to_owned(),
                    n(wx.expires_at),
                )])),
            ),
        ]);
        if let Some(unionid) = &wx.unionid {
            identity.insert("unionid".to_owned(), s(unionid));
        }
        FamilyMaps::default()
            .with_login(login.write)
            .write_into(&mut identity);
        let home = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&holder.home))
            .update_expression("SET #identities.#linked = :now, lastLoginAt = :now")
            .condition_expression("userId = :user AND #status = :active")
            .expression_attribute_names("#identities", "identities")
            .expression_attribute_names("#linked", &pk)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":user", s(wx.user_id.as_str()))
            .expression_attribute_values(":active", s(AccountStatus::Active.as_str()))
            .build()
            .map_err(build_error)?;
        let mut items = vec![
            self.session_put(login)?,
            self.put(identity)?,
            TransactWriteItem::builder().update(home).build(),
        ];
        items.extend(self.refresh_issue_items(login, &pk)?);
        if let Some(entry) = &login.entry {
            items.extend(self.log_put(&entry.sibling(LogEvent::AppLinked).map_err(build_error)?)?);
            items.extend(self.log_put(entry)?);
        }
        Ok(items)
    }

    /// Case 1: a later login of a known identity. The identity's update is
    /// item 1, conditioned on the version read and an active account; then
    /// the home's (when the identity is not it), the unionid's item when it
    /// is added or claimed, the other identities' copies of an added
    /// unionid. What leaves the identity's lists is deleted in the
    /// transaction or, beyond its 100 items, just before it. Returns the
    /// plan and which items' conditions failing mean "read again".
    fn own_login_plan(
        &self,
        login: &Login<'_>,
        item: &IdentityItem,
        unionid: UnionidChange,
        conflict_with: Option<&UserId>,
        siblings: Option<&WholeAccount>,
    ) -> Result<(Plan, Vec<usize>), StoreError> {
        let wx = &login.session;
        let user_id = &item.user_id;
        let now = wx.created_at;
        // One session per identity: its every other session and refresh
        // family goes. Otherwise the expired families and the oldest beyond
        // what one identity keeps go, each with its sessions; then the
        // expired sessions (their items may still be present, TTL being
        // lazy, and hold the openid, which a deletion must not leave behind)
        // and those ending soonest beyond MAX_SESSIONS_PER_USER, at most
        // PRUNE_AT_MOST of them (the rest stay listed for a later login).
        let (kept, revoked_families) = if login.write.single_session {
            FamilyMaps::of(item).revoke_all()
        } else {
            FamilyMaps::of(item).revoke_expired_and_over(now)
        };
        let (mut gone, others): (Vec<_>, Vec<_>) =
            item.sessions.iter().cloned().partition(|(key, _)| {
                revoked_families
                    .session_keys()
                    .any(|family_session| family_session == key)
            });
        let pruned = sessions_a_login_removes(&others, now, login.write.single_session);
        if login.write.single_session {
            gone.extend(pruned);
        } else {
            gone.extend(pruned.into_iter().take(PRUNE_AT_MOST));
        }
        let revoked = gone
            .iter()
            .filter(|(_, expires_at)| *expires_at > now)
            .count();
        let sessions: Vec<(String, i64)> = item
            .sessions
            .iter()
            .filter(|(key, _)| !gone.iter().any(|(g, _)| g == key))
            .cloned()
            .chain([(login.write.key.as_str().to_owned(), wx.expires_at)])
            .collect();

        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&item.pk))
            .condition_expression("#version = :version AND #status = :active")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#sessions", "sessions")
            .expression_attribute_values(":version", n(item.version))
            .expression_attribute_values(":next", n(item.version + 1))
            .expression_attribute_values(":active", s(AccountStatus::Active.as_str()))
            .expression_attribute_values(":sessions", number_map_value(&sessions));
        let family_maps = kept.without_sessions(&gone).with_login(login.write);
        // The whole map, not a REMOVE per key: an expression holds at most 4 KB,
        // and the version condition makes the rewrite safe.
        let mut set = "#version = :next, #sessions = :sessions".to_owned();
        if item.is_home() {
            set.push_str(", lastLoginAt = :now");
            update = update.expression_attribute_values(":now", n(now));
        }
        update = family_maps.bind(update);
        set.push_str(FamilyMaps::SET_CLAUSE);
        let added = match (unionid, &wx.unionid) {
            (UnionidChange::Add, Some(added)) => Some(added.as_str()),
            _ => None,
        };
        if let Some(added) = added {
            set.push_str(", unionid = :unionid");
            update = update.expression_attribute_values(":unionid", s(added));
        }
        // The unionid's item will name this home, and a login through another
        // app then lists its identity there: a home written before several
        // apps gets its (empty) list now.
        if item.is_home() && matches!(unionid, UnionidChange::Add | UnionidChange::Claim) {
            set.push_str(", #identities = if_not_exists(#identities, :none)");
            update = update
                .expression_attribute_names("#identities", "identities")
                .expression_attribute_values(":none", AttributeValue::M(HashMap::new()));
        }
        let update = update
            .update_expression(format!("SET {set}"))
            .build()
            .map_err(build_error)?;
        let mut items = vec![
            self.session_put(login)?,
            TransactWriteItem::builder().update(update).build(),
        ];
        let mut conditioned = vec![1];
        // Every other identity of the account: the account's last login
        // (its home) and the unionid added (each one's copy).
        let others: Vec<(&str, bool)> = match siblings {
            Some(whole) => whole
                .items()
                .filter(|other| other.pk != item.pk)
                .map(|other| (other.pk.as_str(), other.is_home()))
                .collect(),
            None if item.is_home() => Vec::new(),
            None => vec![(item.home_pk(), true)],
        };
        for (pk, is_home) in others {
            let mut set = Vec::new();
            let mut other = Update::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .condition_expression("userId = :user")
                .expression_attribute_values(":user", s(user_id.as_str()));
            if is_home {
                set.push("lastLoginAt = :now");
                other = other.expression_attribute_values(":now", n(now));
            }
            if let Some(added) = added {
                set.push("unionid = :unionid");
                other = other.expression_attribute_values(":unionid", s(added));
            }
            let other = other
                .update_expression(format!("SET {}", set.join(", ")))
                .build()
                .map_err(build_error)?;
            conditioned.push(items.len());
            items.push(TransactWriteItem::builder().update(other).build());
        }
        if let (UnionidChange::Add | UnionidChange::Claim, Some(brought)) = (unionid, &wx.unionid) {
            conditioned.push(items.len());
            items.push(self.unionid_put(brought, user_id, item.home_pk())?);
        }
        items.extend(self.refresh_issue_items(login, &item.pk)?);
        let mut logs = Vec::new();
        if let Some(entry) = &login.entry {
            for _ in 0..revoked {
                logs.push(entry.sibling(LogEvent::Revoked).map_err(build_error)?);
            }
            if let Some(other) = conflict_with {
                for (user, about) in [(user_id, other), (other, user_id)] {
                    let conflict = entry
                        .about_other(LogEvent::AccountConflict, user, about)
                        .map_err(build_error)?;
                    items.extend(self.log_put(&conflict)?);
                }
            }
            items.extend(self.log_put(entry)?);
        }
        let doomed: Vec<String> = gone
            .into_iter()
            .map(|(key, _)| key)
            .chain(revoked_families.keys_to_delete())
            .collect();
        Ok((self.plan(items, doomed, logs)?, conditioned))
    }

    /// A login's refresh token and kept session_key; the token names the
    /// identity item (`identity_pk`) that lists its family.
    fn refresh_issue_items(
        &self,
        login: &Login<'_>,
        identity_pk: &str,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let Some(issue) = login.write.refresh else {
            return Ok(Vec::new());
        };
        let wx = &login.session;
        let family = issue.family.as_str();
        let token = RefreshItem {
            family: family.to_owned(),
            user_id: wx.user_id.clone(),
            expires_at: issue.expires_at,
            spent_at: None,
            appid: Some(login.appid.clone()),
            identity: Some(identity_pk.to_owned()),
            openid: Some(wx.openid.clone()),
            unionid: wx.unionid.clone(),
            generation: 1,
            successor_session: None,
        };
        let mut items = vec![self.refresh_item(issue.key, &token)?];
        if let Some(session_key) = &wx.session_key {
            items.push(self.put(HashMap::from([
                ("pk".to_owned(), s(&kept_key_pk(family))),
                ("sessionKey".to_owned(), s(session_key.expose())),
                ("expiresAt".to_owned(), n(wx.expires_at)),
            ]))?);
        }
        Ok(items)
    }
}

fn has_linked(item: &IdentityItem) -> bool {
    item.account
        .as_ref()
        .is_some_and(|home| !home.linked.is_empty())
}
