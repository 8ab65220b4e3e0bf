//! The login log in memory.

use super::MemorySessionStore;
use crate::domain::account::UserId;
use crate::domain::login_log::LogEntry;
use crate::ports::errors::StoreError;
use crate::ports::login_log::LoginLog;

impl LoginLog for MemorySessionStore {
    async fn append(&self, entry: &LogEntry) -> Result<(), StoreError> {
        self.lock().log.push(entry.clone());
        Ok(())
    }

    async fn entries(&self, user_id: &UserId, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        let state = self.lock();
        let mut entries: Vec<LogEntry> = state
            .log
            .iter()
            .filter(|entry| &entry.user_id == user_id)
            .cloned()
            .collect();
        entries.sort_by(|a, b| b.at.cmp(&a.at));
        entries.truncate(limit);
        Ok(entries)
    }
}
