//! What the fuzz targets share: a runtime, and a memory store holding one live
//! session whose token only the target knows.

use std::sync::Arc;

use wxauth::redact::SessionKey;
use wxauth::session::{MemorySessionStore, Session, epoch_seconds};

pub const OPENID: &str = "oFUZZ";

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime")
}

/// The store and the live session's token (random per run, so fuzzed input
/// cannot hold it).
pub fn store_with_live_session() -> (Arc<MemorySessionStore>, String) {
    let store = Arc::new(MemorySessionStore::new());
    let now = epoch_seconds();
    let session = Session {
        user_id: wxauth::account::UserId::generate().expect("OS random source"),
        openid: OPENID.into(),
        unionid: None,
        session_key: Some(SessionKey::new("AAAAAAAAAAAAAAAAAAAAAA==")),
        session_key_expires_at: None,
        family: None,
        created_at: now,
        expires_at: now + 86_400,
    };
    let token = store.insert_new(session).expect("OS random source");
    (store, token.expose().to_owned())
}
