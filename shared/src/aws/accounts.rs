//! Accounts in the session table, and the login log table.
//!
//! Items (the session table's `pk` prefixes; a session key is 64 hex digits):
//! - `account#<openid>`: the account. `userId`, `openid`, `unionid`,
//!   `createdAt`, `lastLoginAt`, `status`, the phone fields, `version` (bumped
//!   by every change, the condition of every transaction) and `sessions`, a map
//!   of the user's session keys to their `expiresAt`. The map is what lets a
//!   deletion or a disable revoke every session without any read on the
//!   request path: sessions carry their `userId`, and nothing checks the
//!   account per request.
//! - `user#<userId>`: `openid`, so that the operator can find an account by
//!   its userId.
//!
//! Every change to an account is one transaction conditioned on the version it
//! read, so a login racing a deletion or a disable either lands before it (and
//! its session is revoked with the others) or sees its outcome.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use serde_json::{Map, Value};

use super::dynamodb::{DynamoSessionStore, Fields, unavailable, update_if};
use crate::account::{Account, AccountStatus, AccountStore, BoundPhone, UserId};
use crate::backoff::full_jitter;
use crate::login_log::{LogEntry, LogEvent, LoginLog, Origin};
use crate::phone::PhoneNumber;
use crate::session::{LoginOutcome, LoginWrite, StoreError, sessions_a_login_removes};

use super::refresh::FamilyMaps;
use crate::refresh::REFRESH_PREFIX;

pub const ACCOUNT_PREFIX: &str = "account#";
pub const USER_PREFIX: &str = "user#";

/// Concurrent changes of one account retry up to this many times (each round
/// lets one of them through); the request deadline bounds it too.
const ATTEMPTS: u32 = 32;
const CONTENTION_BACKOFF: std::time::Duration = std::time::Duration::from_millis(2);
const CONTENTION_BACKOFF_CAP: std::time::Duration = std::time::Duration::from_millis(50);
/// Expired sessions a login deletes at most (the rest go with later logins):
/// a transaction holds at most 100 items.
const PRUNE_AT_MOST: usize = 40;
/// DynamoDB's limit on the items of one transaction: what does not fit is
/// deleted just before it (see `plan`).
pub(super) const MAX_TRANSACTION_ITEMS: usize = 100;

/// One change of an account, within DynamoDB's limits: the transaction, the
/// deletes done before it, the log entries written after it.
pub(super) struct Plan {
    pub(super) items: Vec<TransactWriteItem>,
    pub(super) delete_first: Vec<String>,
    pub(super) log_after: Vec<LogEntry>,
}

pub(super) fn account_pk(openid: &str) -> String {
    format!("{ACCOUNT_PREFIX}{openid}")
}

pub(super) fn user_pk(user_id: &UserId) -> String {
    format!("{USER_PREFIX}{user_id}")
}

pub(super) fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

pub(super) fn n(number: i64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

pub(super) fn build_error(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

/// An account as read, with what its next change is conditioned on.
pub(super) struct AccountItem {
    pub(super) account: Account,
    pub(super) version: i64,
    /// Session key → its `expiresAt`.
    pub(super) sessions: Vec<(String, i64)>,
    /// The refresh families: family → the `expiresAt` of its newest token.
    pub(super) families: Vec<(String, i64)>,
    /// Live (unspent) refresh tokens: key → family.
    pub(super) refresh_tokens: Vec<(String, String)>,
    /// Sessions made with a refresh family: session key → family.
    pub(super) session_families: Vec<(String, String)>,
}

fn number_map(item: &HashMap<String, AttributeValue>, name: &str) -> Vec<(String, i64)> {
    match item.get(name) {
        Some(AttributeValue::M(map)) => map
            .iter()
            .filter_map(|(key, value)| Some((key.clone(), value.as_n().ok()?.parse().ok()?)))
            .collect(),
        _ => Vec::new(),
    }
}

fn text_map(item: &HashMap<String, AttributeValue>, name: &str) -> Vec<(String, String)> {
    match item.get(name) {
        Some(AttributeValue::M(map)) => map
            .iter()
            .filter_map(|(key, value)| Some((key.clone(), value.as_s().ok()?.clone())))
            .collect(),
        _ => Vec::new(),
    }
}

pub(super) fn number_map_value(entries: &[(String, i64)]) -> AttributeValue {
    AttributeValue::M(entries.iter().map(|(k, v)| (k.clone(), n(*v))).collect())
}

pub(super) fn text_map_value(entries: &[(String, String)]) -> AttributeValue {
    AttributeValue::M(entries.iter().map(|(k, v)| (k.clone(), s(v))).collect())
}

fn account_from_item(item: &HashMap<String, AttributeValue>) -> Result<AccountItem, StoreError> {
    let fields = Fields(item);
    let phone = match (
        fields.text("phoneNumber"),
        fields.text("purePhoneNumber"),
        fields.text("countryCode"),
    ) {
        (Ok(phone_number), Ok(pure_phone_number), Ok(country_code)) => Some(BoundPhone {
            number: PhoneNumber {
                phone_number,
                pure_phone_number,
                country_code,
            },
            bound_at: fields.number("phoneBoundAt").unwrap_or_default(),
        }),
        _ => None,
    };
    let sessions = number_map(item, "sessions");
    Ok(AccountItem {
        account: Account {
            user_id: fields.user_id()?,
            openid: fields.text("openid")?,
            unionid: fields.text("unionid").ok(),
            created_at: fields.number("createdAt")?,
            last_login_at: fields.number("lastLoginAt")?,
            status: AccountStatus::parse(&fields.text("status")?)
                .ok_or_else(|| StoreError::Malformed("status is unknown".into()))?,
            phone,
        },
        version: fields.number("version")?,
        sessions,
        families: number_map(item, "families"),
        refresh_tokens: text_map(item, "refreshTokens"),
        session_families: text_map(item, "sessionFamilies"),
    })
}

fn log_item(entry: &LogEntry) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("userId".to_owned(), s(entry.user_id.as_str())),
        ("at".to_owned(), s(&entry.at)),
        ("event".to_owned(), s(entry.event.as_str())),
        ("outcome".to_owned(), s(&entry.outcome)),
        ("expiresAt".to_owned(), n(entry.expires_at)),
    ]);
    let optional = [
        ("appid", &entry.appid),
        ("sourceIp", &entry.origin.source_ip),
        ("userAgent", &entry.origin.user_agent),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            item.insert(name.to_owned(), s(value));
        }
    }
    if let Some(device) = &entry.device {
        let fields = device
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), s(value.as_str()?))))
            .collect();
        item.insert("device".to_owned(), AttributeValue::M(fields));
    }
    item
}

fn log_entry_from_item(item: &HashMap<String, AttributeValue>) -> Result<LogEntry, StoreError> {
    let fields = Fields(item);
    let device = match item.get("device") {
        Some(AttributeValue::M(map)) => Some(
            map.iter()
                .filter_map(|(name, value)| {
                    Some((name.clone(), Value::String(value.as_s().ok()?.clone())))
                })
                .collect::<Map<String, Value>>(),
        ),
        _ => None,
    };
    Ok(LogEntry {
        user_id: fields.user_id()?,
        at: fields.text("at")?,
        event: LogEvent::parse(&fields.text("event")?)
            .ok_or_else(|| StoreError::Malformed("event is unknown".into()))?,
        outcome: fields.text("outcome")?,
        appid: fields.text("appid").ok(),
        origin: Origin {
            source_ip: fields.text("sourceIp").ok(),
            user_agent: fields.text("userAgent").ok(),
        },
        device,
        expires_at: fields.number("expiresAt")?,
    })
}

/// What one attempt at a transaction came to.
pub(super) enum Attempt<T> {
    Done(T),
    /// Another change of the same items came first: read again and retry.
    Contended,
}

impl Attempt<()> {
    /// A transaction that went through, answering `value`.
    pub(super) fn answering<T>(self, value: T) -> Attempt<T> {
        match self {
            Self::Done(()) => Attempt::Done(value),
            Self::Contended => Attempt::Contended,
        }
    }
}

impl DynamoSessionStore {
    pub(super) async fn read_account(
        &self,
        openid: &str,
    ) -> Result<Option<AccountItem>, StoreError> {
        let item = self.consistent_get(&account_pk(openid), None).await?;
        item.as_ref().map(account_from_item).transpose()
    }

    /// The account of `openid`, if its userId is `user_id`.
    async fn read_account_of(
        &self,
        user_id: &UserId,
        openid: &str,
    ) -> Result<Option<AccountItem>, StoreError> {
        Ok(self
            .read_account(openid)
            .await?
            .filter(|item| &item.account.user_id == user_id))
    }

    pub(super) fn log_put(
        &self,
        entry: &LogEntry,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        let Some(table) = &self.log_table else {
            return Ok(None);
        };
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(log_item(entry)))
            .condition_expression("attribute_not_exists(#at)")
            .expression_attribute_names("#at", "at")
            .build()
            .map_err(build_error)?;
        Ok(Some(TransactWriteItem::builder().put(put).build()))
    }

    pub(super) fn delete_key(&self, key: &str) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(key))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Runs a transaction. `conditioned` is the index of the item whose
    /// condition failing means contention; index 0's failing is `AlreadyExists`
    /// when `first_is_new` (a new session's key was taken).
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        request_token: Option<String>,
        first_is_new: bool,
        conditioned: &[usize],
    ) -> Result<Attempt<()>, StoreError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let outcome = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .set_client_request_token(request_token)
            .send()
            .await;
        let err = match outcome {
            Ok(_) => return Ok(Attempt::Done(())),
            Err(err) => err,
        };
        let reasons: Vec<Option<String>> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().map(str::to_owned))
                .collect(),
            // The request token, derived from the session's key, was used by
            // another transaction: the key is taken, draw another token.
            Some(e) if first_is_new && e.is_idempotent_parameter_mismatch_exception() => {
                return Err(StoreError::AlreadyExists);
            }
            _ => return Err(unavailable(&err)),
        };
        let code = |i: usize| reasons.get(i).and_then(|r| r.as_deref());
        if first_is_new && code(0) == Some("ConditionalCheckFailed") {
            Err(StoreError::AlreadyExists)
        } else if conditioned
            .iter()
            .any(|&i| code(i) == Some("ConditionalCheckFailed"))
            || reasons
                .iter()
                .any(|r| r.as_deref() == Some("TransactionConflict"))
        {
            Ok(Attempt::Contended)
        } else {
            // Throttling and anything else: the SDK retried already.
            Err(StoreError::Refused(format!(
                "transaction cancelled: {reasons:?}"
            )))
        }
    }

    /// Retries `attempt` while it is contended, spreading the contenders out.
    pub(super) async fn with_rounds<T, F, Fut>(
        &self,
        what: &str,
        mut attempt: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<Attempt<T>, StoreError>>,
    {
        for round in 0..ATTEMPTS {
            match attempt(round).await? {
                Attempt::Done(value) => return Ok(value),
                Attempt::Contended => {
                    let pause = full_jitter(CONTENTION_BACKOFF, round, CONTENTION_BACKOFF_CAP);
                    tokio::time::sleep(pause).await;
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "{ATTEMPTS} concurrent changes of one account kept conflicting ({what})"
        )))
    }

    async fn login_round(
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
    fn first_login_items(
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
    fn later_login_items(
        &self,
        login: &LoginWrite<'_>,
        item: &AccountItem,
    ) -> Result<Plan, StoreError> {
        let wx = login.session;
        let user_id = &item.account.user_id;
        let now = wx.created_at;
        let session = crate::session::Session {
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

    /// `items` (the changes, conditioned first) with the deletion of `doomed`
    /// and the entries `logs`, within DynamoDB's 100 items per transaction:
    /// deletes that do not fit are done first (the account still lists them,
    /// so a transaction that fails leaves nothing unlisted), entries that do
    /// not fit are written once the transaction has committed.
    pub(super) fn plan(
        &self,
        mut items: Vec<TransactWriteItem>,
        doomed: Vec<String>,
        logs: Vec<LogEntry>,
    ) -> Result<Plan, StoreError> {
        let room = MAX_TRANSACTION_ITEMS.saturating_sub(items.len());
        let (delete_first, delete_inside) = doomed.split_at(doomed.len().saturating_sub(room));
        let delete_first = delete_first.to_vec();
        for key in delete_inside {
            items.push(self.delete_key(key)?);
        }
        let mut log_after = Vec::new();
        for entry in logs {
            if items.len() < MAX_TRANSACTION_ITEMS && self.log_table.is_some() {
                items.extend(self.log_put(&entry)?);
            } else {
                log_after.push(entry);
            }
        }
        Ok(Plan {
            items,
            delete_first,
            log_after,
        })
    }

    /// Runs a plan: its first deletes, its transaction, and once that has
    /// committed, its remaining log entries (best effort: the change is done).
    pub(super) async fn run_plan(
        &self,
        plan: Plan,
        request_token: Option<String>,
        first_is_new: bool,
        conditioned: &[usize],
    ) -> Result<Attempt<()>, StoreError> {
        self.delete_keys(&plan.delete_first).await?;
        let attempt = self
            .transact(plan.items, request_token, first_is_new, conditioned)
            .await?;
        if matches!(attempt, Attempt::Done(())) {
            for entry in &plan.log_after {
                if let Err(err) = self.append(entry).await {
                    tracing::warn!(error = %err, "a revocation's log entry was not written");
                }
            }
        }
        Ok(attempt)
    }

    /// Deletes items one by one (beyond what fits a transaction).
    pub(super) async fn delete_keys(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(key))
                .send()
                .await
                .map_err(|err| unavailable(&err))?;
        }
        Ok(())
    }

    async fn delete_account_round(
        &self,
        user_id: &UserId,
        openid: &str,
        log: Option<&LogEntry>,
    ) -> Result<Attempt<bool>, StoreError> {
        let Some(item) = self.read_account_of(user_id, openid).await? else {
            return Ok(Attempt::Done(false));
        };
        let account = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(&account_pk(openid)))
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", n(item.version))
            .build()
            .map_err(build_error)?;
        let index = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(&user_pk(user_id)))
            .build()
            .map_err(build_error)?;
        let changes = vec![
            TransactWriteItem::builder().delete(account).build(),
            TransactWriteItem::builder().delete(index).build(),
        ];
        self.revoke_every_session(&item, changes, log, true).await
    }

    /// `changes` to an account (first: the one conditioned on its version),
    /// with every session it lists deleted and `log` written, in one
    /// transaction; sessions beyond what a transaction holds are deleted first.
    async fn revoke_every_session(
        &self,
        item: &AccountItem,
        mut changes: Vec<TransactWriteItem>,
        log: Option<&LogEntry>,
        delete_refresh_tokens: bool,
    ) -> Result<Attempt<bool>, StoreError> {
        // Sessions, live refresh tokens, kept session_keys: everything that
        // holds a token's power or the user's data.
        let mut keys: Vec<(String, i64)> = item.sessions.clone();
        let family_keys = FamilyMaps::of(item).keys_to_delete();
        // A disabled account's refresh tokens stay, listed (their families
        // are gone, so they never refresh again), so that they are answered
        // `account_disabled` and a later deletion still finds them; a deleted
        // account's go.
        keys.extend(
            family_keys
                .into_iter()
                .filter(|key| delete_refresh_tokens || !key.starts_with(REFRESH_PREFIX))
                .map(|key| (key, 0)),
        );
        // The log entry first: it must be in the transaction.
        if let Some(entry) = log {
            changes.extend(self.log_put(entry)?);
        }
        let doomed = keys.into_iter().map(|(key, _)| key).collect();
        let plan = self.plan(changes, doomed, Vec::new())?;
        Ok(self
            .run_plan(plan, None, false, &[0])
            .await?
            .answering(true))
    }

    async fn disable_round(
        &self,
        user_id: &UserId,
        openid: &str,
    ) -> Result<Attempt<bool>, StoreError> {
        let Some(item) = self.read_account_of(user_id, openid).await? else {
            return Ok(Attempt::Done(false));
        };
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&account_pk(openid)))
            .update_expression("SET #status = :disabled, #version = :next, #sessions = :none, families = :none, sessionFamilies = :none")
            .condition_expression("#version = :version")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#sessions", "sessions")
            .expression_attribute_values(":disabled", s(AccountStatus::Disabled.as_str()))
            .expression_attribute_values(":version", n(item.version))
            .expression_attribute_values(":next", n(item.version + 1))
            .expression_attribute_values(":none", AttributeValue::M(HashMap::new()))
            .build()
            .map_err(build_error)?;
        let changes = vec![TransactWriteItem::builder().update(update).build()];
        self.revoke_every_session(&item, changes, None, false).await
    }
}

pub(super) async fn login(
    store: &DynamoSessionStore,
    login: &LoginWrite<'_>,
) -> Result<LoginOutcome, StoreError> {
    store
        .with_rounds("login", |round| store.login_round(login, round))
        .await
}

impl AccountStore for DynamoSessionStore {
    async fn account(&self, openid: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.read_account(openid).await?.map(|item| item.account))
    }

    async fn account_of(&self, user_id: &UserId) -> Result<Option<Account>, StoreError> {
        let index = self.consistent_get(&user_pk(user_id), None).await?;
        let Some(openid) = index
            .as_ref()
            .and_then(|item| Fields(item).text("openid").ok())
        else {
            return Ok(None);
        };
        Ok(self
            .read_account_of(user_id, &openid)
            .await?
            .map(|item| item.account))
    }

    async fn bind_phone(
        &self,
        user_id: &UserId,
        openid: &str,
        phone: &BoundPhone,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&account_pk(openid)))
            .update_expression(
                "SET phoneNumber = :phone, purePhoneNumber = :pure, countryCode = :country, phoneBoundAt = :at",
            )
            .condition_expression("userId = :user")
            .expression_attribute_values(":phone", s(&phone.number.phone_number))
            .expression_attribute_values(":pure", s(&phone.number.pure_phone_number))
            .expression_attribute_values(":country", s(&phone.number.country_code))
            .expression_attribute_values(":at", n(phone.bound_at))
            .expression_attribute_values(":user", s(user_id.as_str()));
        update_if(update).await
    }

    async fn delete_account(
        &self,
        user_id: &UserId,
        openid: &str,
        log: Option<&LogEntry>,
    ) -> Result<bool, StoreError> {
        self.with_rounds("delete", |_| {
            self.delete_account_round(user_id, openid, log)
        })
        .await
    }

    async fn set_status(
        &self,
        user_id: &UserId,
        openid: &str,
        status: AccountStatus,
    ) -> Result<bool, StoreError> {
        if status == AccountStatus::Disabled {
            return self
                .with_rounds("disable", |_| self.disable_round(user_id, openid))
                .await;
        }
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&account_pk(openid)))
            .update_expression("SET #status = :active ADD #version :one")
            .condition_expression("userId = :user")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":active", s(AccountStatus::Active.as_str()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":user", s(user_id.as_str()));
        update_if(update).await
    }
}

impl LoginLog for DynamoSessionStore {
    async fn append(&self, entry: &LogEntry) -> Result<(), StoreError> {
        let Some(table) = &self.log_table else {
            return Ok(());
        };
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(log_item(entry)))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| unavailable(&err))
    }

    async fn entries(&self, user_id: &UserId, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        let Some(table) = &self.log_table else {
            return Ok(Vec::new());
        };
        let output = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("userId = :user")
            .expression_attribute_values(":user", s(user_id.as_str()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|err| unavailable(&err))?;
        output.items().iter().map(log_entry_from_item).collect()
    }
}
