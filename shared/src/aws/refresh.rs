//! Refresh tokens in the session table.
//!
//! Items (prefixes distinct from session keys, which are SHA-256 hex or
//! base64url):
//! - `refresh#<SHA-256 hex of the token>`: `family`, `userId`, `expiresAt`,
//!   `spentAt` once used. No openid: a spent token's item outlives its family
//!   (reuse detection needs it) and must hold nothing about the person.
//! - `sessionkey#<family>`: the login's `sessionKey`, `expiresAt` = the end of
//!   the login's session.
//!
//! The account item lists what a family owns, so that revoking it (logout,
//! reuse, a later login, deletion, disabling) needs one read: `families`
//! (family → the `expiresAt` of its newest token), `refreshTokens` (live
//! token key → family) and `sessionFamilies` (session key → family). Every
//! change is conditioned on the account's version, as logins are.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::accounts::{
    AccountItem, Attempt, Plan, account_pk, build_error, n, number_map_value, s, text_map_value,
    user_pk,
};
use super::dynamodb::{DynamoSessionStore, Fields};
use crate::account::{AccountStatus, UserId};
use crate::login_log::{LogEntry, LogEvent};
use crate::redact::SessionKey;
use crate::refresh::{
    KEPT_KEY_PREFIX, REFRESH_PREFIX, RefreshFamily, RefreshKey, RefreshOutcome, RefreshWrite,
    families_a_login_revokes,
};
use crate::session::{LoginWrite, Session, StoreError, sessions_a_login_removes};
use crate::token::TokenKey;

/// Expired sessions a refresh deletes at most (a transaction holds 100 items).
const PRUNE_AT_MOST: usize = 40;

pub(super) fn refresh_pk(key: &RefreshKey) -> String {
    format!("{REFRESH_PREFIX}{}", key.as_str())
}

pub(super) fn kept_key_pk(family: &str) -> String {
    format!("{KEPT_KEY_PREFIX}{family}")
}

/// What an account lists about its refresh families.
#[derive(Debug, Clone, Default)]
pub(super) struct FamilyMaps {
    families: Vec<(String, i64)>,
    refresh_tokens: Vec<(String, String)>,
    session_families: Vec<(String, String)>,
}

impl FamilyMaps {
    pub(super) const SET_CLAUSE: &'static str = ", families = :families, refreshTokens = :refreshTokens, sessionFamilies = :sessionFamilies";

    pub(super) fn of(item: &AccountItem) -> Self {
        Self {
            families: item.families.clone(),
            refresh_tokens: item.refresh_tokens.clone(),
            session_families: item.session_families.clone(),
        }
    }

    /// Forgets sessions that are being deleted anyway.
    pub(super) fn without_sessions(self, gone: &[(String, i64)]) -> Self {
        let keys: Vec<String> = gone.iter().map(|(key, _)| key.clone()).collect();
        self.without_session_keys(&keys)
    }

    pub(super) fn without_session_keys(mut self, gone: &[String]) -> Self {
        self.session_families.retain(|(key, _)| !gone.contains(key));
        self
    }

    /// The live (unspent) refresh tokens of `family`: one, unless an older
    /// version of wxauth forked it.
    fn live_tokens_of(&self, family: &str) -> Vec<String> {
        self.refresh_tokens
            .iter()
            .filter(|(_, f)| f == family)
            .map(|(key, _)| key.clone())
            .collect()
    }

    fn split(self, revoke: impl Fn(&str, i64) -> bool) -> (Self, Self) {
        let (revoked, kept): (Vec<_>, Vec<_>) = self
            .families
            .into_iter()
            .partition(|(family, expires_at)| revoke(family, *expires_at));
        let is_revoked = |family: &str| revoked.iter().any(|(f, _)| f == family);
        // A token whose family is no longer listed (a disabled account's) is
        // dead already: it goes with the revoked ones.
        let is_kept = |family: &str| kept.iter().any(|(f, _)| f == family);
        let (gone_tokens, tokens): (Vec<_>, Vec<_>) = self
            .refresh_tokens
            .into_iter()
            .partition(|(_, family)| !is_kept(family));
        let (gone_sessions, sessions): (Vec<_>, Vec<_>) = self
            .session_families
            .into_iter()
            .partition(|(_, family)| is_revoked(family));
        (
            Self {
                families: kept,
                refresh_tokens: tokens,
                session_families: sessions,
            },
            Self {
                families: revoked,
                refresh_tokens: gone_tokens,
                session_families: gone_sessions,
            },
        )
    }

    /// (kept, revoked): every family revoked.
    pub(super) fn revoke_all(self) -> (Self, Self) {
        self.split(|_, _| true)
    }

    /// (kept, revoked): what `families_a_login_revokes` picks.
    pub(super) fn revoke_expired_and_over(self, now: i64) -> (Self, Self) {
        let revoked = families_a_login_revokes(&self.families, now);
        self.split(|family, _| revoked.iter().any(|(f, _)| f == family))
    }

    fn revoke_family(self, family: &str) -> (Self, Self) {
        self.split(|f, _| f == family)
    }

    fn has_family(&self, family: &str) -> bool {
        self.families.iter().any(|(f, _)| f == family)
    }

    /// Adds the family a login starts: its token and its first session.
    pub(super) fn with_login(mut self, login: &LoginWrite<'_>) -> Self {
        if let Some(issue) = login.refresh {
            let family = issue.family.as_str().to_owned();
            self.families.push((family.clone(), issue.expires_at));
            self.refresh_tokens
                .push((issue.key.as_str().to_owned(), family.clone()));
            self.session_families
                .push((login.key.as_str().to_owned(), family));
        }
        self
    }

    /// The items of these families' live tokens and kept session_keys.
    pub(super) fn keys_to_delete(&self) -> Vec<String> {
        let tokens = self
            .refresh_tokens
            .iter()
            .map(|(key, _)| refresh_pk(&RefreshKey::from_stored(key.clone())));
        let kept = self.families.iter().map(|(family, _)| kept_key_pk(family));
        tokens.chain(kept).collect()
    }

    pub(super) fn session_keys(&self) -> impl Iterator<Item = &str> {
        self.session_families.iter().map(|(key, _)| key.as_str())
    }

    fn values(&self) -> [(&'static str, AttributeValue); 3] {
        [
            (":families", number_map_value(&self.families)),
            (":refreshTokens", text_map_value(&self.refresh_tokens)),
            (":sessionFamilies", text_map_value(&self.session_families)),
        ]
    }

    /// Binds `SET_CLAUSE`'s values.
    pub(super) fn bind(&self, mut update: UpdateBuilder) -> UpdateBuilder {
        for (name, value) in self.values() {
            update = update.expression_attribute_values(name, value);
        }
        update
    }

    pub(super) fn write_into(&self, item: &mut HashMap<String, AttributeValue>) {
        for (name, value) in self.values() {
            item.insert(name.trim_start_matches(':').to_owned(), value);
        }
    }
}

fn kept_key_from(
    item: Option<&HashMap<String, AttributeValue>>,
    now: i64,
) -> Option<(SessionKey, i64)> {
    let fields = Fields(item?);
    let expires_at = fields.number("expiresAt").ok()?;
    (expires_at > now).then_some(())?;
    Some((SessionKey::new(fields.text("sessionKey").ok()?), expires_at))
}

struct RefreshItem {
    family: String,
    user_id: UserId,
    expires_at: i64,
    spent_at: Option<i64>,
    /// While the token is live: its account (the fast path's one write
    /// addresses it without a read). Removed when it is spent.
    openid: Option<String>,
    unionid: Option<String>,
    /// How many refreshes led to this token (the login's is 1).
    generation: i64,
    /// Once spent: the session its refresh made, which a retry within the
    /// grace revokes (its answer is taken to be lost).
    successor_session: Option<String>,
}

fn refresh_from_item(item: &HashMap<String, AttributeValue>) -> Result<RefreshItem, StoreError> {
    let fields = Fields(item);
    Ok(RefreshItem {
        family: fields.text("family")?,
        user_id: fields.user_id()?,
        expires_at: fields.number("expiresAt")?,
        spent_at: fields.number("spentAt").ok(),
        openid: fields.text("openid").ok(),
        unionid: fields.text("unionid").ok(),
        generation: fields.number("generation").unwrap_or(0),
        successor_session: fields.text("successorSession").ok(),
    })
}

/// Every this many refreshes of a family, a refresh takes the full path
/// (reads the account, prunes its expired sessions): the fast path cannot
/// see them, and the account's list must stay bounded.
const PRUNE_EVERY: i64 = 8;

impl DynamoSessionStore {
    fn put(&self, item: HashMap<String, AttributeValue>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A live refresh token's item: its family, user and account (openid,
    /// unionid: removed when the token is spent, and the item deleted with
    /// the account while live).
    fn refresh_item(
        &self,
        key: &RefreshKey,
        token: &RefreshItem,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = HashMap::from([
            ("pk".to_owned(), s(&refresh_pk(key))),
            ("family".to_owned(), s(&token.family)),
            ("userId".to_owned(), s(token.user_id.as_str())),
            ("expiresAt".to_owned(), n(token.expires_at)),
            ("generation".to_owned(), n(token.generation)),
        ]);
        if let Some(openid) = &token.openid {
            item.insert("openid".to_owned(), s(openid));
        }
        if let Some(unionid) = &token.unionid {
            item.insert("unionid".to_owned(), s(unionid));
        }
        self.put(item)
    }

    /// Marks the presented token spent (the first use is what the grace
    /// counts from), records the session this refresh makes (a retry within
    /// the grace revokes it) and drops what it held about the person. Fresh:
    /// only an unspent token; else only one spent within the grace.
    fn spend(
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
                "SET spentAt = if_not_exists(spentAt, :now), successorSession = :session REMOVE openid, unionid",
            )
            .condition_expression(condition)
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

    /// Everything that revokes `revoked` (the account's update first, the
    /// one conditioned on its version); `also` deletes more session keys;
    /// `log` is written with it.
    fn revocation_plan(
        &self,
        account: &AccountItem,
        kept: &FamilyMaps,
        revoked: &FamilyMaps,
        also: &[&str],
        log: Option<&LogEntry>,
    ) -> Result<Plan, StoreError> {
        let mut doomed: Vec<String> = revoked.session_keys().map(str::to_owned).collect();
        for key in also {
            if !doomed.iter().any(|d| d == key) {
                doomed.push((*key).to_owned());
            }
        }
        let sessions: Vec<(String, i64)> = account
            .sessions
            .iter()
            .filter(|(key, _)| !doomed.contains(key))
            .cloned()
            .collect();
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&account_pk(&account.account.openid)))
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#sessions", "sessions")
            .expression_attribute_values(":version", n(account.version))
            .expression_attribute_values(":next", n(account.version + 1))
            .expression_attribute_values(":sessions", number_map_value(&sessions));
        update = kept.bind(update);
        let update = update
            .update_expression(format!(
                "SET #version = :next, #sessions = :sessions{}",
                FamilyMaps::SET_CLAUSE
            ))
            .build()
            .map_err(build_error)?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if let Some(entry) = log {
            items.extend(self.log_put(entry)?);
        }
        doomed.extend(revoked.keys_to_delete());
        self.plan(items, doomed, Vec::new())
    }

    /// Logout of a session with a family: the family goes with it.
    async fn logout_round(
        &self,
        key: &TokenKey,
        session: &Session,
        family: &RefreshFamily,
    ) -> Result<Attempt<()>, StoreError> {
        let account = self
            .read_account(&session.openid)
            .await?
            .filter(|item| item.account.user_id == session.user_id);
        let Some(account) = account else {
            self.delete_plain(key).await?;
            return Ok(Attempt::Done(()));
        };
        let (kept, revoked) = FamilyMaps::of(&account).revoke_family(family.as_str());
        let plan = self.revocation_plan(&account, &kept, &revoked, &[key.as_str()], None)?;
        self.run_plan(plan, None, false, &[0]).await
    }

    pub(super) async fn delete_plain(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key.as_str()))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| super::dynamodb::unavailable(&err))
    }

    async fn refresh_round(
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
                ..entry.clone()
            })
        };
        // A token we issued, refused: its user's log says so.
        let refused = || async {
            if let Some(refusal) = entry(LogEvent::RefreshRefused, "invalid_refresh_token") {
                crate::login_log::LoginLog::append(self, &refusal).await?;
            }
            Ok::<_, StoreError>(Attempt::Done(RefreshOutcome::Invalid))
        };
        let Some(openid) = self
            .consistent_get(&user_pk(&token.user_id), None)
            .await?
            .as_ref()
            .and_then(|item| Fields(item).text("openid").ok())
        else {
            return refused().await;
        };
        let Some(account) = self
            .read_account(&openid)
            .await?
            .filter(|item| item.account.user_id == token.user_id)
        else {
            return refused().await;
        };
        if account.account.status == AccountStatus::Disabled {
            if let Some(refusal) = entry(LogEvent::RefreshRefused, "account_disabled") {
                crate::login_log::LoginLog::append(self, &refusal).await?;
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
            openid: account.account.openid.clone(),
            unionid: account.account.unionid.clone(),
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
            .key("pk", s(&account_pk(&openid)))
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
                    openid: Some(openid.clone()),
                    unionid: account.account.unionid.clone(),
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
}

impl DynamoSessionStore {
    /// The common refresh, in one transaction and no account read: the live
    /// token's item names the account, and the account's update is
    /// conditioned on what the read would have checked (active, this user,
    /// the family still listed). `None`: a condition failed (disabled,
    /// revoked, spent meanwhile): the full path decides what to answer.
    async fn fast_refresh(
        &self,
        write: &RefreshWrite<'_>,
        token: &RefreshItem,
        kept_key: Option<(SessionKey, i64)>,
        round: u32,
    ) -> Result<Option<RefreshOutcome>, StoreError> {
        let Some(openid) = &token.openid else {
            return Ok(None);
        };
        let now = write.now;
        let session = Session {
            user_id: token.user_id.clone(),
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
            .key("pk", s(&account_pk(openid)))
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
}

pub(super) async fn refresh(
    store: &DynamoSessionStore,
    write: &RefreshWrite<'_>,
) -> Result<RefreshOutcome, StoreError> {
    store
        .with_rounds("refresh", |round| store.refresh_round(write, round))
        .await
}

pub(super) async fn logout(
    store: &DynamoSessionStore,
    key: &TokenKey,
    session: &Session,
) -> Result<(), StoreError> {
    let Some(family) = &session.family else {
        return store.delete_plain(key).await;
    };
    store
        .with_rounds("logout", |_| store.logout_round(key, session, family))
        .await
}
