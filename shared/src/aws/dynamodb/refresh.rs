//! Refresh families: a refresh (the fast path's one transaction, the full
//! path's read of the account), a retry within the grace, reuse detection,
//! and logout.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};

use super::DynamoSessionStore;
use super::families::{
    FamilyMaps, RefreshItem, kept_key_from, kept_key_pk, refresh_from_item, refresh_pk,
};
use super::items::{IdentityItem, build_error, identity_keys, n, number_map_value, s};
use super::table::Attempt;
use crate::domain::account::AccountStatus;
use crate::domain::login_log::{LogEntry, LogEvent};
use crate::domain::redact::SessionKey;
use crate::domain::refresh::{RefreshFamily, RefreshKey};
use crate::domain::session::{Session, sessions_a_login_removes};
use crate::domain::token::TokenKey;
use crate::ports::errors::StoreError;
use crate::ports::sessions::{RefreshOutcome, RefreshStore, RefreshWrite};

/// Expired sessions a refresh deletes at most (a transaction holds 100 items).
pub(super) const PRUNE_AT_MOST: usize = 40;

/// Every this many refreshes of a family, a refresh takes the full path
/// (reads the account, prunes its expired sessions): the fast path cannot
/// see them, and the account's list must stay bounded.
pub(super) const PRUNE_EVERY: i64 = 8;

impl RefreshStore for DynamoSessionStore {
    async fn refresh(&self, write: &RefreshWrite<'_>) -> Result<RefreshOutcome, StoreError> {
        self.with_rounds("refresh", |round| self.refresh_round(write, round))
            .await
    }

    async fn logout(&self, key: &TokenKey, session: &Session) -> Result<(), StoreError> {
        let Some(family) = &session.family else {
            return self.delete_plain(key).await;
        };
        self.with_rounds("logout", |_| self.logout_round(key, session, family))
            .await
    }
}

impl DynamoSessionStore {
    /// Marks the presented token spent (the first use is what the grace
    /// counts from), records the session this refresh makes (a retry within
    /// the grace revokes it) and drops what it held about the person. Fresh:
    /// only an unspent token; else only one spent within the grace.
    pub(super) fn spend(
        &self,
        write: &RefreshWrite<'_>,
        fresh: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let condition = if fresh {
            "attribute_exists(pk) AND attribute_not_exists(spentAt)"
        } else {
            "attribute_exists(pk) AND spentAt > :graceStart"
        };
        let mut spend = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&refresh_pk(write.presented)))
            .update_expression(
                "SET spentAt = if_not_exists(spentAt, :now), successorSession = :session REMOVE openid, unionid, #identity",
            )
            .condition_expression(condition)
            .expression_attribute_names("#identity", "identity")
            .expression_attribute_values(":now", n(write.now))
            .expression_attribute_values(":session", s(write.session_key.as_str()));
        if !fresh {
            spend = spend
                .expression_attribute_values(":graceStart", n(write.now - write.grace_seconds));
        }
        Ok(TransactWriteItem::builder()
            .update(spend.build().map_err(build_error)?)
            .build())
    }

    /// Logout of a session with a family: the family goes with it.
    pub(super) async fn logout_round(
        &self,
        key: &TokenKey,
        session: &Session,
        family: &RefreshFamily,
    ) -> Result<Attempt<()>, StoreError> {
        // The identity's item lists the family; a session of the default app
        // may belong to an account written before several apps.
        let keys = identity_keys(session.appid.as_ref(), &session.openid, true);
        let account = self
            .batch_get(&keys)
            .await?
            .into_values()
            .filter_map(|item| super::items::identity_from_item(&item).ok())
            .find(|item| {
                item.user_id == session.user_id && FamilyMaps::of(item).has_family(family.as_str())
            });
        let Some(account) = account else {
            self.delete_plain(key).await?;
            return Ok(Attempt::Done(()));
        };
        let (kept, revoked) = FamilyMaps::of(&account).revoke_family(family.as_str());
        let plan = self.revocation_plan(&account, &kept, &revoked, &[key.as_str()], None)?;
        self.run_plan(plan, None, false, &[0]).await
    }

    pub(super) async fn refresh_round(
        &self,
        write: &RefreshWrite<'_>,
        round: u32,
    ) -> Result<Attempt<RefreshOutcome>, StoreError> {
        let now = write.now;
        // The token names its family, so its kept session_key is read with it.
        let (presented_pk, kept_pk) = (
            refresh_pk(write.presented),
            kept_key_pk(write.family.as_str()),
        );
        let (item, kept_key) = tokio::join!(
            self.consistent_get(&presented_pk, None),
            self.consistent_get(&kept_pk, None),
        );
        let Some(item) = item? else {
            return Ok(Attempt::Done(RefreshOutcome::Invalid));
        };
        let token = refresh_from_item(&item)?;
        if token.family != write.family.as_str() {
            return Ok(Attempt::Done(RefreshOutcome::Invalid));
        }
        let kept_key = kept_key_from(kept_key?.as_ref(), now);
        let fast = token.spent_at.is_none()
            && token.openid.is_some()
            && token.expires_at > now
            && token.generation % PRUNE_EVERY != 0;
        if fast {
            if let Some(outcome) = self
                .fast_refresh(write, &token, kept_key.clone(), round)
                .await?
            {
                return Ok(Attempt::Done(outcome));
            }
        }
        let user_id = token.user_id.clone();
        let entry = |event: LogEvent, outcome: &str| {
            write.log.map(|entry| LogEntry {
                user_id: user_id.clone(),
                event,
                outcome: outcome.to_owned(),
                appid: app_of(token.appid.as_ref(), entry),
                ..entry.clone()
            })
        };
        // A token we issued, refused: its user's log says so.
        let refused = || async {
            if let Some(refusal) = entry(LogEvent::RefreshRefused, "invalid_refresh_token") {
                crate::ports::login_log::LoginLog::append(self, &refusal).await?;
            }
            Ok::<_, StoreError>(Attempt::Done(RefreshOutcome::Invalid))
        };
        let Some(account) = self.identity_of_family(&token).await? else {
            return refused().await;
        };
        if account.status == AccountStatus::Disabled {
            if let Some(refusal) = entry(LogEvent::RefreshRefused, "account_disabled") {
                crate::ports::login_log::LoginLog::append(self, &refusal).await?;
            }
            return Ok(Attempt::Done(RefreshOutcome::Disabled { user_id }));
        }
        let maps = FamilyMaps::of(&account);
        if !maps.has_family(&token.family) || token.expires_at <= now {
            return refused().await;
        }
        if token
            .spent_at
            .is_some_and(|spent_at| now - spent_at >= write.grace_seconds)
        {
            let (kept, revoked) = maps.revoke_family(&token.family);
            let reuse = entry(LogEvent::RefreshReused, "revoked");
            let plan = self.revocation_plan(&account, &kept, &revoked, &[], reuse.as_ref())?;
            return Ok(self
                .run_plan(plan, None, false, &[0])
                .await?
                .answering(RefreshOutcome::Reused { user_id }));
        }

        // A retry within the grace (the first answer taken to be lost): the
        // new pair replaces what the first use made, so that a family never
        // holds two live tokens: its live token goes, and the session that
        // use made.
        let retry = token.spent_at.is_some();
        let (replaced_tokens, replaced_session) = match retry {
            true => (
                maps.live_tokens_of(&token.family),
                token.successor_session.clone(),
            ),
            false => (Vec::new(), None),
        };
        let family = RefreshFamily::from_stored(token.family.clone());
        let session = Session {
            user_id: user_id.clone(),
            appid: token.appid.clone(),
            openid: account.openid.clone(),
            unionid: account.unionid.clone(),
            session_key: kept_key.as_ref().map(|(key, _)| key.clone()),
            session_key_expires_at: kept_key.as_ref().map(|(_, until)| *until),
            family: Some(family),
            created_at: now,
            expires_at: write.session_expires_at,
        };
        let mut gone: Vec<String> = sessions_a_login_removes(&account.sessions, now, false)
            .into_iter()
            .take(PRUNE_AT_MOST)
            .map(|(key, _)| key)
            .collect();
        gone.extend(replaced_session);
        let mut maps = maps.without_session_keys(&gone);
        maps.families.retain(|(f, _)| *f != token.family);
        maps.families
            .push((token.family.clone(), write.refresh_expires_at));
        maps.refresh_tokens
            .retain(|(key, _)| key != write.presented.as_str() && !replaced_tokens.contains(key));
        maps.refresh_tokens
            .push((write.next.as_str().to_owned(), token.family.clone()));
        maps.session_families
            .push((write.session_key.as_str().to_owned(), token.family.clone()));
        let sessions: Vec<(String, i64)> = account
            .sessions
            .iter()
            .filter(|(key, _)| !gone.contains(key))
            .cloned()
            .chain([(
                write.session_key.as_str().to_owned(),
                write.session_expires_at,
            )])
            .collect();

        let session_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::session_item(write.session_key, &session)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&account.pk))
            .condition_expression("#version = :version AND #status = :active")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#sessions", "sessions")
            .expression_attribute_values(":version", n(account.version))
            .expression_attribute_values(":next", n(account.version + 1))
            .expression_attribute_values(":active", s(AccountStatus::Active.as_str()))
            .expression_attribute_values(":sessions", number_map_value(&sessions));
        update = maps.bind(update);
        let update = update
            .update_expression(format!(
                "SET #version = :next, #sessions = :sessions{}",
                FamilyMaps::SET_CLAUSE
            ))
            .build()
            .map_err(build_error)?;
        // Idempotent per round, as a login's (see `login_round`).
        let request_token = format!("{}-{round:03}", &write.session_key.as_str()[..32]);
        let mut items = vec![
            TransactWriteItem::builder().put(session_put).build(),
            TransactWriteItem::builder().update(update).build(),
            self.spend(write, !retry)?,
            self.refresh_item(
                write.next,
                &RefreshItem {
                    family: token.family.clone(),
                    user_id: user_id.clone(),
                    expires_at: write.refresh_expires_at,
                    spent_at: None,
                    appid: token.appid.clone(),
                    identity: Some(account.pk.clone()),
                    openid: Some(account.openid.clone()),
                    unionid: account.unionid.clone(),
                    generation: token.generation + 1,
                    successor_session: None,
                },
            )?,
        ];
        if let Some(refreshed) = entry(LogEvent::Refresh, "ok") {
            items.extend(self.log_put(&refreshed)?);
        }
        let doomed = gone
            .into_iter()
            .chain(
                replaced_tokens
                    .iter()
                    .map(|key| refresh_pk(&RefreshKey::from_stored(key.clone()))),
            )
            .collect();
        let plan = self.plan(items, doomed, Vec::new())?;
        Ok(self
            .run_plan(plan, Some(request_token), true, &[1, 2])
            .await?
            .answering(RefreshOutcome::Refreshed(session)))
    }

    /// The common refresh, in one transaction and no account read: the live
    /// token's item names the account, and the account's update is
    /// conditioned on what the read would have checked (active, this user,
    /// the family still listed). `None`: a condition failed (disabled,
    /// revoked, spent meanwhile): the full path decides what to answer.
    pub(super) async fn fast_refresh(
        &self,
        write: &RefreshWrite<'_>,
        token: &RefreshItem,
        kept_key: Option<(SessionKey, i64)>,
        round: u32,
    ) -> Result<Option<RefreshOutcome>, StoreError> {
        let (Some(openid), Some(identity)) = (&token.openid, token.identity_pk()) else {
            return Ok(None);
        };
        let now = write.now;
        let session = Session {
            user_id: token.user_id.clone(),
            appid: token.appid.clone(),
            openid: openid.clone(),
            unionid: token.unionid.clone(),
            session_key: kept_key.as_ref().map(|(key, _)| key.clone()),
            session_key_expires_at: kept_key.as_ref().map(|(_, until)| *until),
            family: Some(RefreshFamily::from_stored(token.family.clone())),
            created_at: now,
            expires_at: write.session_expires_at,
        };
        let session_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(Self::session_item(write.session_key, &session)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let account = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&identity))
            .condition_expression(
                "#status = :active AND userId = :user AND attribute_exists(#families.#f)",
            )
            .update_expression(
                "SET #version = #version + :one, #sessions.#new = :expires, #families.#f = :refreshExpires, #tokens.#next = :family, #sessionFamilies.#new = :family REMOVE #tokens.#presented",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#sessions", "sessions")
            .expression_attribute_names("#families", "families")
            .expression_attribute_names("#tokens", "refreshTokens")
            .expression_attribute_names("#sessionFamilies", "sessionFamilies")
            .expression_attribute_names("#new", write.session_key.as_str())
            .expression_attribute_names("#f", &token.family)
            .expression_attribute_names("#next", write.next.as_str())
            .expression_attribute_names("#presented", write.presented.as_str())
            .expression_attribute_values(":active", s(AccountStatus::Active.as_str()))
            .expression_attribute_values(":user", s(token.user_id.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(write.session_expires_at))
            .expression_attribute_values(":refreshExpires", n(write.refresh_expires_at))
            .expression_attribute_values(":family", s(&token.family))
            .build()
            .map_err(build_error)?;
        let next = RefreshItem {
            expires_at: write.refresh_expires_at,
            spent_at: None,
            generation: token.generation + 1,
            successor_session: None,
            family: token.family.clone(),
            user_id: token.user_id.clone(),
            appid: token.appid.clone(),
            identity: Some(identity.clone()),
            openid: token.openid.clone(),
            unionid: token.unionid.clone(),
        };
        let mut items = vec![
            TransactWriteItem::builder().put(session_put).build(),
            TransactWriteItem::builder().update(account).build(),
            self.spend(write, true)?,
            self.refresh_item(write.next, &next)?,
        ];
        if let Some(entry) = write.log {
            let entry = LogEntry {
                user_id: token.user_id.clone(),
                event: LogEvent::Refresh,
                outcome: "ok".into(),
                appid: app_of(token.appid.as_ref(), entry),
                ..entry.clone()
            };
            items.extend(self.log_put(&entry)?);
        }
        let request_token = format!("{}-f{round:02}", &write.session_key.as_str()[..32]);
        Ok(
            match self
                .transact(items, Some(request_token), true, &[1, 2])
                .await?
            {
                Attempt::Done(()) => Some(RefreshOutcome::Refreshed(session)),
                Attempt::Contended => None,
            },
        )
    }

    /// The identity item listing `token`'s family, of the token's user: the
    /// one a live token names, else (a spent token holds no identity) found
    /// through its account. `None`: the account or the family is gone.
    pub(super) async fn identity_of_family(
        &self,
        token: &RefreshItem,
    ) -> Result<Option<IdentityItem>, StoreError> {
        let lists_family = |item: &IdentityItem| {
            item.user_id == token.user_id && FamilyMaps::of(item).has_family(&token.family)
        };
        if let Some(pk) = token.identity_pk() {
            return Ok(self
                .read_identity(&[pk])
                .await?
                .filter(|item| item.user_id == token.user_id));
        }
        let Some(whole) = self.read_whole_account(&token.user_id).await? else {
            return Ok(None);
        };
        let home = whole.home.clone();
        Ok(whole
            .items()
            .find(|item| lists_family(item))
            .cloned()
            .or(Some(home)))
    }
}

/// The app a refresh's log entry names: the family's, else (a family from
/// before several apps) the template's, the default app.
fn app_of(family_app: Option<&crate::domain::app::AppId>, template: &LogEntry) -> Option<String> {
    family_app
        .map(|appid| appid.as_str().to_owned())
        .or_else(|| template.appid.clone())
}
