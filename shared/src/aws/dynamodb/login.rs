//! A login in one transaction: its session, the account (created by the
//! first login of an openid, updated by every later one), its refresh family
//! and log entry, and whatever it revokes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::DynamoSessionStore;
use super::families::{FamilyMaps, RefreshItem, kept_key_pk};
use super::items::{AccountItem, account_pk, build_error, n, number_map_value, s, user_pk};
use super::table::{Attempt, Plan};
use crate::domain::account::{AccountStatus, UserId};
use crate::domain::login_log::{LogEntry, LogEvent};
use crate::domain::session::sessions_a_login_removes;
use crate::ports::errors::StoreError;
use crate::ports::login_log::LoginLog;
use crate::ports::sessions::{LoginOutcome, LoginStore, LoginWrite};

/// Expired sessions a login deletes at most (the rest go with later logins):
/// a transaction holds at most 100 items.
pub(super) const PRUNE_AT_MOST: usize = 40;

impl LoginStore for DynamoSessionStore {
    async fn login(&self, login: &LoginWrite<'_>) -> Result<LoginOutcome, StoreError> {
        self.with_rounds("login", |round| self.login_round(login, round))
            .await
    }
}

impl DynamoSessionStore {
    pub(super) async fn login_round(
        &self,
        login: &LoginWrite<'_>,
        round: u32,
    ) -> Result<Attempt<LoginOutcome>, StoreError> {
        let wx = login.session;
        let found = self.read_account(&wx.openid).await?;
        // Idempotent per round: a request the SDK sends again after a lost
        // answer is not applied twice (each round's items differ, so each
        // round has its own token).
        let request_token = Some(format!("{}-{round:03}", &login.key.as_str()[..32]));
        match found {
            None => {
                let outcome = LoginOutcome::LoggedIn {
                    user_id: wx.user_id.clone(),
                    new_user: true,
                    unionid: wx.unionid.clone(),
                };
                let items = self.first_login_items(login)?;
                Ok(self
                    .transact(items, request_token, true, &[1])
                    .await?
                    .answering(outcome))
            }
            Some(item) if item.account.status == AccountStatus::Disabled => {
                let user_id = item.account.user_id;
                if let Some(entry) = login.log {
                    let refusal = LogEntry {
                        user_id: user_id.clone(),
                        event: LogEvent::LoginRefused,
                        outcome: "account_disabled".into(),
                        ..entry.clone()
                    };
                    self.append(&refusal).await?;
                }
                Ok(Attempt::Done(LoginOutcome::Disabled { user_id }))
            }
            Some(item) => {
                let unionid = item.account.unionid.clone().or_else(|| wx.unionid.clone());
                let outcome = LoginOutcome::LoggedIn {
                    user_id: item.account.user_id.clone(),
                    new_user: false,
                    unionid,
                };
                let plan = self.later_login_items(login, &item)?;
                Ok(self
                    .run_plan(plan, request_token, true, &[1])
                    .await?
                    .answering(outcome))
            }
        }
    }

    /// The first login: the session, the account (only if none exists), the
    /// userId's index, the log entry.
    pub(super) fn first_login_items(
        &self,
        login: &LoginWrite<'_>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let wx = login.session;
        let session = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::session_item(login.key, wx)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let mut account = HashMap::from([
            ("pk".to_owned(), s(&account_pk(&wx.openid))),
            ("userId".to_owned(), s(wx.user_id.as_str())),
            ("openid".to_owned(), s(&wx.openid)),
            ("createdAt".to_owned(), n(wx.created_at)),
            ("lastLoginAt".to_owned(), n(wx.created_at)),
            ("status".to_owned(), s(AccountStatus::Active.as_str())),
            ("version".to_owned(), n(1)),
            (
                "sessions".to_owned(),
                AttributeValue::M(HashMap::from([(
                    login.key.as_str().to_owned(),
                    n(wx.expires_at),
                )])),
            ),
        ]);
        if let Some(unionid) = &wx.unionid {
            account.insert("unionid".to_owned(), s(unionid));
        }
        let family_maps = FamilyMaps::default().with_login(login);
        family_maps.write_into(&mut account);
        let account = Put::builder()
            .table_name(&self.table)
            .set_item(Some(account))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let index = Put::builder()
            .table_name(&self.table)
            .item("pk", s(&user_pk(&wx.user_id)))
            .item("openid", s(&wx.openid))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let mut items: Vec<TransactWriteItem> = [session, account, index]
            .into_iter()
            .map(|put| TransactWriteItem::builder().put(put).build())
            .collect();
        items.extend(self.refresh_issue_items(login, &wx.user_id)?);
        if let Some(entry) = login.log {
            let entry = LogEntry {
                user_id: wx.user_id.clone(),
                ..entry.clone()
            };
            items.extend(self.log_put(&entry)?);
        }
        Ok(items)
    }

    /// A later login: the session (under the account's userId), the account's
    /// update (conditioned on the version read), the sessions and families it
    /// revokes or prunes, the log entries. What leaves the account's lists is
    /// deleted in the transaction or, beyond its 100 items, just before it.
    pub(super) fn later_login_items(
        &self,
        login: &LoginWrite<'_>,
        item: &AccountItem,
    ) -> Result<Plan, StoreError> {
        let wx = login.session;
        let user_id = &item.account.user_id;
        let now = wx.created_at;
        let session = crate::domain::session::Session {
            user_id: user_id.clone(),
            ..wx.clone()
        };
        let session = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::session_item(login.key, &session)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        // One session per user: every other session and refresh family goes.
        // Otherwise the expired families and the oldest beyond what one user
        // keeps go, each with its sessions; then the expired sessions (their
        // items may still be present, TTL being lazy, and hold the openid,
        // which a deletion must not leave behind) and those ending soonest
        // beyond MAX_SESSIONS_PER_USER, at most PRUNE_AT_MOST of them (the
        // rest stay listed for a later login).
        let (kept, revoked_families) = if login.single_session {
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
        let pruned = sessions_a_login_removes(&others, now, login.single_session);
        if login.single_session {
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
            .chain([(login.key.as_str().to_owned(), wx.expires_at)])
            .collect();

        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&account_pk(&wx.openid)))
            .condition_expression("#version = :version AND #status = :active")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#sessions", "sessions")
            .expression_attribute_values(":version", n(item.version))
            .expression_attribute_values(":next", n(item.version + 1))
            .expression_attribute_values(":active", s(AccountStatus::Active.as_str()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":sessions", number_map_value(&sessions));
        let family_maps = kept.without_sessions(&gone).with_login(login);
        // The whole map, not a REMOVE per key: an expression holds at most 4 KB,
        // and the version condition makes the rewrite safe.
        let mut set = "lastLoginAt = :now, #version = :next, #sessions = :sessions".to_owned();
        update = family_maps.bind(update);
        set.push_str(FamilyMaps::SET_CLAUSE);
        if let (None, Some(unionid)) = (&item.account.unionid, &wx.unionid) {
            set.push_str(", unionid = :unionid");
            update = update.expression_attribute_values(":unionid", s(unionid));
        }
        let update = update
            .update_expression(format!("SET {set}"))
            .build()
            .map_err(build_error)?;
        let mut items = vec![
            TransactWriteItem::builder().put(session).build(),
            TransactWriteItem::builder().update(update).build(),
        ];
        items.extend(self.refresh_issue_items(login, user_id)?);
        let mut logs = Vec::new();
        if let Some(entry) = login.log {
            let entry = LogEntry {
                user_id: user_id.clone(),
                ..entry.clone()
            };
            for _ in 0..revoked {
                logs.push(entry.sibling(LogEvent::Revoked).map_err(build_error)?);
            }
            items.extend(self.log_put(&entry)?);
        }
        let doomed: Vec<String> = gone
            .into_iter()
            .map(|(key, _)| key)
            .chain(revoked_families.keys_to_delete())
            .collect();
        self.plan(items, doomed, logs)
    }

    /// A login's refresh token and kept session_key.
    pub(super) fn refresh_issue_items(
        &self,
        login: &LoginWrite<'_>,
        user_id: &UserId,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let Some(issue) = login.refresh else {
            return Ok(Vec::new());
        };
        let family = issue.family.as_str();
        let token = RefreshItem {
            family: family.to_owned(),
            user_id: user_id.clone(),
            expires_at: issue.expires_at,
            spent_at: None,
            openid: Some(login.session.openid.clone()),
            unionid: login.session.unionid.clone(),
            generation: 1,
            successor_session: None,
        };
        let mut items = vec![self.refresh_item(issue.key, &token)?];
        if let Some(session_key) = &login.session.session_key {
            items.push(self.put(HashMap::from([
                ("pk".to_owned(), s(&kept_key_pk(family))),
                ("sessionKey".to_owned(), s(session_key.expose())),
                ("expiresAt".to_owned(), n(login.session.expires_at)),
            ]))?);
        }
        Ok(items)
    }
}
