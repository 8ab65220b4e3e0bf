//! Accounts: read by userId, identity or unionid; the phone bound; deletion
//! (every identity and everything kept for the person); the operator's
//! disable, enable and merge; and the upgrade's claim of the unionids of
//! accounts written before several apps.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::DynamoSessionStore;
use super::families::FamilyMaps;
use super::identities::WholeAccount;
use super::items::{
    ACCOUNT_PREFIX, Fields, IdentityItem, build_error, identity_from_item, identity_keys, n,
    number_map_value, phone_attributes, s, unionid_holder_from, unionid_pk, user_pk,
};
use super::table::{Attempt, unavailable, update_if};
use crate::domain::account::{Account, AccountStatus, BoundPhone, UserId};
use crate::domain::identity::MAX_IDENTITIES_PER_ACCOUNT;
use crate::domain::login_log::{LogEntry, LogEvent};
use crate::domain::refresh::REFRESH_PREFIX;
use crate::ports::accounts::{AccountStore, ClaimReport, IdentityQuery, MergeOutcome};
use crate::ports::errors::StoreError;

impl AccountStore for DynamoSessionStore {
    async fn account(&self, user_id: &UserId) -> Result<Option<Account>, StoreError> {
        Ok(self
            .read_home_of(user_id)
            .await?
            .and_then(|home| home.to_account()))
    }

    async fn account_by_identity(
        &self,
        identity: IdentityQuery<'_>,
    ) -> Result<Option<Account>, StoreError> {
        let keys = identity_keys(identity.appid, identity.openid, identity.default_app);
        let Some(item) = self.read_identity(&keys).await? else {
            return Ok(None);
        };
        if item.is_home() {
            return Ok(item.to_account());
        }
        Ok(self
            .read_home(item.home_pk(), &item.user_id)
            .await?
            .and_then(|home| home.to_account()))
    }

    async fn account_by_unionid(&self, unionid: &str) -> Result<Option<Account>, StoreError> {
        let Some(item) = self.consistent_get(&unionid_pk(unionid), None).await? else {
            return Ok(None);
        };
        let holder = unionid_holder_from(&item)?;
        Ok(self
            .read_home(&holder.home, &holder.user_id)
            .await?
            .and_then(|home| home.to_account()))
    }

    async fn bind_phone(&self, user_id: &UserId, phone: &BoundPhone) -> Result<bool, StoreError> {
        let Some(home) = self.home_key_of(user_id).await? else {
            return Ok(false);
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&home))
            .update_expression(
                "SET phoneNumber = :phoneNumber, purePhoneNumber = :purePhoneNumber, countryCode = :countryCode, phoneBoundAt = :phoneBoundAt",
            )
            .condition_expression("userId = :user")
            .expression_attribute_values(":user", s(user_id.as_str()));
        for (name, value) in phone_attributes(phone) {
            update = update.expression_attribute_values(format!(":{name}"), value);
        }
        update_if(update).await
    }

    async fn delete_account(
        &self,
        user_id: &UserId,
        log: Option<&LogEntry>,
    ) -> Result<bool, StoreError> {
        self.with_rounds("delete", |_| self.delete_account_round(user_id, log))
            .await
    }

    async fn set_status(
        &self,
        user_id: &UserId,
        status: AccountStatus,
    ) -> Result<bool, StoreError> {
        self.with_rounds("status", |_| self.set_status_round(user_id, status))
            .await
    }

    async fn merge(
        &self,
        keep: &UserId,
        from: &UserId,
        log: Option<&LogEntry>,
    ) -> Result<MergeOutcome, StoreError> {
        if keep == from {
            return Ok(MergeOutcome::Same);
        }
        self.with_rounds("merge", |_| self.merge_round(keep, from, log))
            .await
    }

    async fn claim_legacy_unionids(&self) -> Result<ClaimReport, StoreError> {
        self.claim_round().await
    }
}

/// An item's deletion conditioned on the version read.
fn versioned_delete(table: &str, item: &IdentityItem) -> Result<TransactWriteItem, StoreError> {
    let delete = Delete::builder()
        .table_name(table)
        .key("pk", s(&item.pk))
        .condition_expression("#version = :version")
        .expression_attribute_names("#version", "version")
        .expression_attribute_values(":version", n(item.version))
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

impl DynamoSessionStore {
    pub(super) async fn delete_account_round(
        &self,
        user_id: &UserId,
        log: Option<&LogEntry>,
    ) -> Result<Attempt<bool>, StoreError> {
        let Some(whole) = self.read_whole_account(user_id).await? else {
            return Ok(Attempt::Done(false));
        };
        let mut changes = Vec::new();
        for item in whole.items() {
            changes.push(versioned_delete(&self.table, item)?);
        }
        let conditioned: Vec<usize> = (0..changes.len()).collect();
        changes.push(self.delete_key(&user_pk(user_id))?);
        if let Some(unionid) = &whole.home.unionid {
            let pointer = Delete::builder()
                .table_name(&self.table)
                .key("pk", s(&unionid_pk(unionid)))
                .condition_expression("attribute_not_exists(pk) OR userId = :user")
                .expression_attribute_values(":user", s(user_id.as_str()))
                .build()
                .map_err(build_error)?;
            changes.push(TransactWriteItem::builder().delete(pointer).build());
        }
        self.revoke_every_session(&whole, changes, log, true, &conditioned)
            .await
    }

    /// `changes` to an account (first: those conditioned on what was read,
    /// at `conditioned`), with every session of every identity deleted and
    /// `log` written, in one transaction; sessions beyond what a transaction
    /// holds are deleted first.
    pub(super) async fn revoke_every_session(
        &self,
        whole: &WholeAccount,
        mut changes: Vec<TransactWriteItem>,
        log: Option<&LogEntry>,
        delete_refresh_tokens: bool,
        conditioned: &[usize],
    ) -> Result<Attempt<bool>, StoreError> {
        // Sessions, live refresh tokens, kept session_keys: everything that
        // holds a token's power or the user's data.
        let mut keys: Vec<String> = Vec::new();
        for item in whole.items() {
            keys.extend(item.sessions.iter().map(|(key, _)| key.clone()));
            // A disabled account's refresh tokens stay, listed (their families
            // are gone, so they never refresh again), so that they are answered
            // `account_disabled` and a later deletion still finds them; a
            // deleted account's go.
            keys.extend(
                FamilyMaps::of(item)
                    .keys_to_delete()
                    .into_iter()
                    .filter(|key| delete_refresh_tokens || !key.starts_with(REFRESH_PREFIX)),
            );
        }
        // The log entry first: it must be in the transaction.
        if let Some(entry) = log {
            changes.extend(self.log_put(entry)?);
        }
        let plan = self.plan(changes, keys, Vec::new())?;
        Ok(self
            .run_plan(plan, None, false, conditioned)
            .await?
            .answering(true))
    }

    /// Disabling revokes every session of every identity and writes the
    /// status on each (the home's is the account's, the others' copies);
    /// enabling writes it back. Each item is conditioned on its version.
    pub(super) async fn set_status_round(
        &self,
        user_id: &UserId,
        status: AccountStatus,
    ) -> Result<Attempt<bool>, StoreError> {
        let Some(whole) = self.read_whole_account(user_id).await? else {
            return Ok(Attempt::Done(false));
        };
        let disable = status == AccountStatus::Disabled;
        let mut changes = Vec::new();
        for item in whole.items() {
            let mut update = Update::builder()
                .table_name(&self.table)
                .key("pk", s(&item.pk))
                .condition_expression("#version = :version")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":status", s(status.as_str()))
                .expression_attribute_values(":version", n(item.version))
                .expression_attribute_values(":next", n(item.version + 1));
            let set = if disable {
                update = update
                    .expression_attribute_names("#sessions", "sessions")
                    .expression_attribute_values(":none", AttributeValue::M(HashMap::new()));
                "SET #status = :status, #version = :next, #sessions = :none, families = :none, sessionFamilies = :none"
            } else {
                "SET #status = :status, #version = :next"
            };
            let update = update.update_expression(set).build().map_err(build_error)?;
            changes.push(TransactWriteItem::builder().update(update).build());
        }
        let conditioned: Vec<usize> = (0..changes.len()).collect();
        if !disable {
            let plan = self.plan(changes, Vec::new(), Vec::new())?;
            return Ok(self
                .run_plan(plan, None, false, &conditioned)
                .await?
                .answering(true));
        }
        self.revoke_every_session(&whole, changes, None, false, &conditioned)
            .await
    }

    /// A merge: `from`'s identities become `keep`'s (their items rewritten
    /// as identities linked to `keep`'s home, their sessions and families
    /// revoked), `keep`'s home lists them and takes `from`'s unionid and
    /// phone number when it has none, `from`'s home data, index and unionid
    /// item go. One transaction, every item conditioned on what was read.
    pub(super) async fn merge_round(
        &self,
        keep: &UserId,
        from: &UserId,
        log: Option<&LogEntry>,
    ) -> Result<Attempt<MergeOutcome>, StoreError> {
        let Some(kept) = self.read_whole_account(keep).await? else {
            return Ok(Attempt::Done(MergeOutcome::Unknown(keep.clone())));
        };
        let Some(merged) = self.read_whole_account(from).await? else {
            return Ok(Attempt::Done(MergeOutcome::Unknown(from.clone())));
        };
        if let (Some(a), Some(b)) = (&kept.home.unionid, &merged.home.unionid) {
            if a != b {
                return Ok(Attempt::Done(MergeOutcome::DifferentUnionids));
            }
        }
        let total = kept.items().count() + merged.items().count();
        if total > MAX_IDENTITIES_PER_ACCOUNT {
            return Ok(Attempt::Done(MergeOutcome::TooManyIdentities));
        }
        let now = crate::domain::time::epoch_seconds();
        let unionid = kept.home.unionid.clone().or(merged.home.unionid.clone());
        let (Some(kept_home), Some(merged_home)) = (&kept.home.account, &merged.home.account)
        else {
            return Ok(Attempt::Contended);
        };
        let phone = kept_home.phone.clone().or(merged_home.phone.clone());
        let home_pk = kept.home.pk.clone();

        let mut changes = Vec::new();
        // `from`'s identities, rewritten as `keep`'s linked ones.
        let mut linked: Vec<(String, i64)> = kept_home.linked.clone();
        for item in merged.items() {
            let mut moved = HashMap::from([
                ("pk".to_owned(), s(&item.pk)),
                ("userId".to_owned(), s(keep.as_str())),
                ("openid".to_owned(), s(&item.openid)),
                ("home".to_owned(), s(&home_pk)),
                ("linkedAt".to_owned(), n(now)),
                ("status".to_owned(), s(kept.home.status.as_str())),
                ("version".to_owned(), n(item.version + 1)),
            ]);
            if let Some(appid) = &item.appid {
                moved.insert("appid".to_owned(), s(appid.as_str()));
            }
            if let Some(unionid) = &unionid {
                moved.insert("unionid".to_owned(), s(unionid));
            }
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(moved))
                .condition_expression("#version = :version AND userId = :from")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":version", n(item.version))
                .expression_attribute_values(":from", s(from.as_str()))
                .build()
                .map_err(build_error)?;
            changes.push(TransactWriteItem::builder().put(put).build());
            linked.push((item.pk.clone(), now));
        }
        // `keep`'s home: the list, the unionid and phone it takes.
        let mut set = vec!["#version = :next", "#identities = :identities"];
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&home_pk))
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#identities", "identities")
            .expression_attribute_values(":version", n(kept.home.version))
            .expression_attribute_values(":next", n(kept.home.version + 1))
            .expression_attribute_values(":identities", number_map_value(&linked));
        if kept.home.unionid.is_none() {
            if let Some(unionid) = &unionid {
                set.push("unionid = :unionid");
                update = update.expression_attribute_values(":unionid", s(unionid));
            }
        }
        if kept_home.phone.is_none() {
            if let Some(phone) = &phone {
                for (name, value) in phone_attributes(phone) {
                    update = update.expression_attribute_values(format!(":{name}"), value);
                }
                set.extend([
                    "phoneNumber = :phoneNumber",
                    "purePhoneNumber = :purePhoneNumber",
                    "countryCode = :countryCode",
                    "phoneBoundAt = :phoneBoundAt",
                ]);
            }
        }
        let update = update
            .update_expression(format!("SET {}", set.join(", ")))
            .build()
            .map_err(build_error)?;
        changes.push(TransactWriteItem::builder().update(update).build());
        // `keep`'s other identities: the unionid's copy.
        if kept.home.unionid.is_none() {
            if let Some(unionid) = &unionid {
                for item in &kept.linked {
                    let copy = Update::builder()
                        .table_name(&self.table)
                        .key("pk", s(&item.pk))
                        .update_expression("SET unionid = :unionid")
                        .condition_expression("userId = :user")
                        .expression_attribute_values(":unionid", s(unionid))
                        .expression_attribute_values(":user", s(keep.as_str()))
                        .build()
                        .map_err(build_error)?;
                    changes.push(TransactWriteItem::builder().update(copy).build());
                }
            }
        }
        let conditioned: Vec<usize> = (0..changes.len()).collect();
        changes.push(self.delete_key(&user_pk(from))?);
        if let Some(unionid) = &unionid {
            changes.push(self.put_over(HashMap::from([
                ("pk".to_owned(), s(&unionid_pk(unionid))),
                ("userId".to_owned(), s(keep.as_str())),
                ("home".to_owned(), s(&home_pk)),
            ]))?);
        }
        if let Some(entry) = log {
            for (user, other) in [(keep, from), (from, keep)] {
                let merged_entry = entry
                    .about_other(LogEvent::AccountMerged, user, other)
                    .map_err(build_error)?;
                changes.extend(self.log_put(&merged_entry)?);
            }
        }
        let outcome = self
            .revoke_every_session(&merged, changes, None, true, &conditioned)
            .await?;
        if matches!(outcome, Attempt::Contended) {
            return Ok(Attempt::Contended);
        }
        Ok(match self.account(keep).await? {
            Some(account) => Attempt::Done(MergeOutcome::Merged(Box::new(account))),
            None => Attempt::Done(MergeOutcome::Unknown(keep.clone())),
        })
    }

    /// The upgrade to several apps: every account written before them that
    /// holds a unionid gets the unionid's item (and an empty list of
    /// identities). A unionid another account holds already is counted and
    /// left. A scan: run once, by the operator.
    pub(super) async fn claim_round(&self) -> Result<ClaimReport, StoreError> {
        let (mut claimed, mut held, mut conflicts) = (0, 0, 0);
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :prefix) AND attribute_exists(unionid) AND attribute_not_exists(home)")
                .expression_attribute_values(":prefix", s(ACCOUNT_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| unavailable(&err))?;
            for item in page.items() {
                let home = identity_from_item(item)?;
                let Some(unionid) = &home.unionid else {
                    continue;
                };
                match self.consistent_get(&unionid_pk(unionid), None).await? {
                    Some(pointer)
                        if Fields(&pointer).user_id().ok() == Some(home.user_id.clone()) =>
                    {
                        held += 1;
                        continue;
                    }
                    Some(_) => {
                        conflicts += 1;
                        continue;
                    }
                    None => {}
                }
                let pointer = self.put(HashMap::from([
                    ("pk".to_owned(), s(&unionid_pk(unionid))),
                    ("userId".to_owned(), s(home.user_id.as_str())),
                    ("home".to_owned(), s(&home.pk)),
                ]))?;
                let list = Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(&home.pk))
                    .update_expression("SET #identities = if_not_exists(#identities, :none)")
                    .condition_expression("userId = :user")
                    .expression_attribute_names("#identities", "identities")
                    .expression_attribute_values(":none", AttributeValue::M(HashMap::new()))
                    .expression_attribute_values(":user", s(home.user_id.as_str()))
                    .build()
                    .map_err(build_error)?;
                let items = vec![pointer, TransactWriteItem::builder().update(list).build()];
                match self.transact(items, None, false, &[0, 1]).await? {
                    Attempt::Done(()) => claimed += 1,
                    Attempt::Contended => conflicts += 1,
                }
            }
            match page.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => {
                    return Ok(ClaimReport {
                        claimed,
                        already: held,
                        held_elsewhere: conflicts,
                    });
                }
            }
        }
    }
}
