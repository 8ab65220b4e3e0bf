//! The login log table: appends, and a user's newest entries.

use super::DynamoSessionStore;
use super::items::{log_entry_from_item, log_item, s};
use super::table::unavailable;
use crate::domain::account::UserId;
use crate::domain::login_log::LogEntry;
use crate::ports::errors::StoreError;
use crate::ports::login_log::LoginLog;

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
