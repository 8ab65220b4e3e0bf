//! POST /refresh bodies: arbitrary bytes through the real login handler with
//! refresh tokens on. Any panic, or an answer other than 400/401 (the body is
//! never a live refresh token), is a finding.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wxauth::edge::request::ApiRequest;
use wxauth::runtime::deadline::Deadline;
use wxauth::edge::dispatch;
use wxauth::handlers::{Login, LoginSettings};
use wxauth::domain::redact::AppSecret;
use wxauth::domain::risk::RiskPolicy;
use wxauth::domain::refresh::RefreshSettings;
use wxauth::ports::secrets::StaticSecrets;
use wxauth::ports::memory::MemorySessionStore;
use wxauth::wechat::RetryPolicy;
use wxauth_fuzz::{Stub, apps, runtime};

struct World {
    runtime: tokio::runtime::Runtime,
    login: Login<Arc<MemorySessionStore>, Stub, StaticSecrets>,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let login = Login::new(
        Arc::new(MemorySessionStore::new()),
        Stub,
        StaticSecrets::single(apps().default_app().id.clone(), AppSecret::new("s")),
        LoginSettings {
            apps: apps(),
            session_ttl_seconds: 600,
            retry: RetryPolicy::default(),
            log_retention_days: 180,
            risk: RiskPolicy::default(),
        },
    )
    .with_refresh(RefreshSettings::default());
    World { runtime: runtime(), login }
});

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    let request = ApiRequest::new("POST", "/refresh", Deadline::after(Duration::from_secs(8)))
        .with_body(data.to_vec());
    let response = world.runtime.block_on(dispatch(&world.login, request));
    assert!(
        matches!(response.status, 400 | 401 | 413),
        "POST /refresh answered {} to a client's body",
        response.status
    );
});
