//! The login log, as written and read.

use std::future::Future;

use crate::domain::account::UserId;
use crate::domain::login_log::LogEntry;
use crate::ports::errors::StoreError;

/// Where login log entries go. A store without a log table keeps none.
pub trait LoginLog: Send + Sync + 'static {
    /// Appends one entry (a no-op where no log is kept).
    fn append(&self, entry: &LogEntry) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A user's newest entries first, at most `limit` (the operator tool).
    fn entries(
        &self,
        user_id: &UserId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LogEntry>, StoreError>> + Send;
}

impl<T: LoginLog> LoginLog for std::sync::Arc<T> {
    fn append(&self, entry: &LogEntry) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).append(entry)
    }

    fn entries(
        &self,
        user_id: &UserId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<LogEntry>, StoreError>> + Send {
        (**self).entries(user_id, limit)
    }
}
