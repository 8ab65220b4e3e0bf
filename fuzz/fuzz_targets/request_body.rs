//! Request-body parsing through the real handlers: arbitrary bytes as the body
//! of POST /login, /phone (ciphertext or code) and /session, with and without a
//! live session. Any
//! panic, or an answer outside 2xx-4xx for a client mistake, is a finding.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wxauth::wechat::access_token::AccessTokens;
use wxauth::ports::memory::MemoryTokenCache;
use wxauth::edge::request::ApiRequest;
use wxauth::edge::dispatch;
use wxauth::runtime::deadline::Deadline;
use wxauth::handlers::{CheckSession, DecryptPhone, Login, LoginSettings};
use wxauth::domain::redact::AppSecret;
use wxauth::domain::risk::RiskPolicy;
use wxauth::ports::secrets::StaticSecrets;
use wxauth::ports::memory::MemorySessionStore;
use wxauth_fuzz::{Stub, apps, runtime, store_with_live_session};
use wxauth::wechat::RetryPolicy;

type Tokens = AccessTokens<MemoryTokenCache, Stub, StaticSecrets>;

struct World {
    runtime: tokio::runtime::Runtime,
    token: String,
    login: Login<Arc<MemorySessionStore>, Stub, StaticSecrets>,
    phone: DecryptPhone<Arc<MemorySessionStore>, Tokens>,
    check: CheckSession<Arc<MemorySessionStore>>,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let (store, token) = store_with_live_session();
    let settings = LoginSettings {
        apps: apps(),
        session_ttl_seconds: 600,
        retry: RetryPolicy::default(),
        log_retention_days: 180,
        risk: RiskPolicy::default(),
    };
    let secret = StaticSecrets::single(apps().default_app().id.clone(), AppSecret::new("s"));
    let tokens = AccessTokens::new(MemoryTokenCache::new(), Stub, secret.clone(), RetryPolicy::default());
    World {
        login: Login::new(Arc::clone(&store), Stub, secret, settings),
        phone: DecryptPhone::new(Arc::clone(&store), apps()).with_wechat(tokens),
        check: CheckSession::new(store),
        token,
        runtime: runtime(),
    }
});

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    let request = |path: &str, token: bool| {
        let request = ApiRequest::new("POST", path, Deadline::after(Duration::from_secs(5))).with_body(data.to_vec());
        if token { request.with_bearer(&world.token) } else { request }
    };
    for token in [false, true] {
        for response in [
            world.runtime.block_on(dispatch(&world.login, request("/login", token))),
            world.runtime.block_on(dispatch(&world.phone, request("/phone", token))),
            world.runtime.block_on(dispatch(&world.phone, request("/open-data", token))),
            world.runtime.block_on(dispatch(&world.check, request("/session", token))),
        ] {
            assert!((200..500).contains(&response.status), "status {}", response.status);
        }
    }
});
