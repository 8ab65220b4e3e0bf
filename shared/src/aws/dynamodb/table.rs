//! The table's operations every change shares: consistent reads, conditional
//! writes, transactions within DynamoDB's limits (a plan), and rounds for
//! contended accounts.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};

use super::DynamoSessionStore;
use super::items::{build_error, log_item, s};
use crate::domain::login_log::LogEntry;
use crate::domain::token::TokenKey;
use crate::ports::errors::StoreError;
use crate::ports::login_log::LoginLog;
use crate::runtime::backoff::full_jitter;

/// Concurrent changes of one account retry up to this many times (each round
/// lets one of them through); the request deadline bounds it too.
pub(super) const ATTEMPTS: u32 = 32;

pub(super) const CONTENTION_BACKOFF: std::time::Duration = std::time::Duration::from_millis(2);

pub(super) const CONTENTION_BACKOFF_CAP: std::time::Duration = std::time::Duration::from_millis(50);

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

/// An SDK error as the store reports it, with its whole cause chain.
pub(super) fn unavailable<E, R>(err: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(err).to_string())
}

/// Whether a write was refused by its condition expression (any operation).
pub(super) fn refused_by_condition<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

/// Runs a conditional put: `Ok(false)` when the condition refused it.
pub(super) async fn put_if(put: PutItemFluentBuilder) -> Result<bool, StoreError> {
    match put.send().await {
        Ok(_) => Ok(true),
        Err(err) if refused_by_condition(&err) => Ok(false),
        Err(err) => Err(unavailable(&err)),
    }
}

/// Runs a conditional update: `Ok(false)` when the condition refused it.
pub(super) async fn update_if(update: UpdateItemFluentBuilder) -> Result<bool, StoreError> {
    match update.send().await {
        Ok(_) => Ok(true),
        Err(err) if refused_by_condition(&err) => Ok(false),
        Err(err) => Err(unavailable(&err)),
    }
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
    /// The item under `pk`, read consistently (every read of the table is:
    /// what a write answered is visible to the very next request), whole or
    /// only the `projection`'s attributes.
    pub(super) async fn consistent_get(
        &self,
        pk: &str,
        projection: Option<&str>,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .set_projection_expression(projection.map(str::to_owned))
            .consistent_read(true)
            .send()
            .await
            .map(|output| output.item)
            .map_err(|err| unavailable(&err))
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

    pub(super) async fn delete_plain(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key.as_str()))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| unavailable(&err))
    }

    pub(super) fn put(
        &self,
        item: HashMap<String, AttributeValue>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A put that replaces whatever is there (an item whose owner the
    /// transaction's other conditions already decide).
    pub(super) fn put_over(
        &self,
        item: HashMap<String, AttributeValue>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
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
}
