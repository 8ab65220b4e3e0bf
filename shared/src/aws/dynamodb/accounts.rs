//! Accounts: read by openid or userId, the phone bound, deletion (everything
//! kept for the user) and the operator's disable and enable.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};

use super::DynamoSessionStore;
use super::families::FamilyMaps;
use super::items::{AccountItem, Fields, account_pk, build_error, n, s, user_pk};
use super::table::{Attempt, update_if};
use crate::domain::account::{Account, AccountStatus, BoundPhone, UserId};
use crate::domain::login_log::LogEntry;
use crate::domain::refresh::REFRESH_PREFIX;
use crate::ports::accounts::AccountStore;
use crate::ports::errors::StoreError;

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

impl DynamoSessionStore {
    pub(super) async fn delete_account_round(
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
    pub(super) async fn revoke_every_session(
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

    pub(super) async fn disable_round(
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
