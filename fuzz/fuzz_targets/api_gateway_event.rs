//! API Gateway event handling: arbitrary bytes as the Lambda event payload, as
//! the runtime would hand them to the function (JSON first, then the adapter).
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use wxauth::handlers::CheckSession;
use wxauth::lambda::handle_event;
use wxauth::session::MemorySessionStore;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime")
});
static CHECK: LazyLock<CheckSession<Arc<MemorySessionStore>>> =
    LazyLock::new(|| CheckSession::new(Arc::new(MemorySessionStore::new())));

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let response = RUNTIME.block_on(handle_event(&*CHECK, event, None));
    assert!((200..500).contains(&response.status_code), "status {}", response.status_code);
});
