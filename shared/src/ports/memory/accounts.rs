//! Accounts in memory.

use super::MemorySessionStore;
use crate::domain::account::{Account, AccountStatus, BoundPhone, UserId};
use crate::domain::login_log::LogEntry;
use crate::ports::accounts::AccountStore;
use crate::ports::errors::StoreError;

impl AccountStore for MemorySessionStore {
    async fn account(&self, openid: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.lock().accounts.get(openid).cloned())
    }

    async fn account_of(&self, user_id: &UserId) -> Result<Option<Account>, StoreError> {
        let state = self.lock();
        let openid = state.openid_of(user_id);
        Ok(openid.and_then(|openid| state.accounts.get(&openid).cloned()))
    }

    async fn bind_phone(
        &self,
        user_id: &UserId,
        openid: &str,
        phone: &BoundPhone,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        Ok(match state.account_mut(user_id, openid) {
            Some(account) => {
                account.phone = Some(phone.clone());
                true
            }
            None => false,
        })
    }

    async fn delete_account(
        &self,
        user_id: &UserId,
        openid: &str,
        log: Option<&LogEntry>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if state.account_mut(user_id, openid).is_none() {
            return Ok(false);
        }
        state.accounts.remove(openid);
        state.revoke_sessions_of(user_id);
        state
            .refresh_tokens
            .retain(|_, record| &record.user_id != user_id);
        state.log.extend(log.cloned());
        Ok(true)
    }

    async fn set_status(
        &self,
        user_id: &UserId,
        openid: &str,
        status: AccountStatus,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(account) = state.account_mut(user_id, openid) else {
            return Ok(false);
        };
        account.status = status;
        if status == AccountStatus::Disabled {
            state.revoke_sessions_of(user_id);
        }
        Ok(true)
    }
}
