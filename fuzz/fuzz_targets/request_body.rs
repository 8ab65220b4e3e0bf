//! Request-body parsing through the real handlers: arbitrary bytes as the body
//! of POST /login, /phone and /session, with and without a live session. Any
//! panic, or an answer outside 2xx-4xx for a client mistake, is a finding.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wxauth::api::{ApiRequest, Handler};
use wxauth::deadline::Deadline;
use wxauth::handlers::{CheckSession, DecryptPhone, Login, LoginSettings};
use wxauth::redact::{AppSecret, SessionKey};
use wxauth::secret::StaticSecret;
use wxauth::session::{MemorySessionStore, Session, SessionStore, epoch_seconds};
use wxauth::token::SessionToken;
use wxauth::wechat::{RetryPolicy, WeChatApi, WeChatError, WxSession};

struct Stub;

impl WeChatApi for Stub {
    async fn jscode2session(&self, _: &str, _: &AppSecret, code: &str, _: Duration) -> Result<WxSession, WeChatError> {
        if code.len() % 2 == 0 {
            Ok(WxSession { openid: "oFUZZ".into(), unionid: None, session_key: SessionKey::new("AAAAAAAAAAAAAAAAAAAAAA==") })
        } else {
            Err(WeChatError::InvalidCode(40029))
        }
    }
}

struct World {
    runtime: tokio::runtime::Runtime,
    token: String,
    login: Login<Arc<MemorySessionStore>, Stub, StaticSecret>,
    phone: DecryptPhone<Arc<MemorySessionStore>>,
    check: CheckSession<Arc<MemorySessionStore>>,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    let store = Arc::new(MemorySessionStore::new());
    let token = SessionToken::generate().expect("token");
    let now = epoch_seconds();
    let session = Session {
        openid: "oFUZZ".into(),
        unionid: None,
        session_key: SessionKey::new("AAAAAAAAAAAAAAAAAAAAAA=="),
        created_at: now,
        expires_at: now + 86_400,
    };
    runtime.block_on(store.create(&token.key(), &session)).expect("session");
    let settings = LoginSettings { appid: "wx".into(), session_ttl_seconds: 600, retry: RetryPolicy::default() };
    World {
        login: Login::new(Arc::clone(&store), Stub, StaticSecret::new(AppSecret::new("s")), settings),
        phone: DecryptPhone::new(Arc::clone(&store), "wx".into()),
        check: CheckSession::new(store),
        token: token.expose().to_owned(),
        runtime,
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
            world.runtime.block_on(world.login.handle(request("/login", token))),
            world.runtime.block_on(world.phone.handle(request("/phone", token))),
            world.runtime.block_on(world.check.handle(request("/session", token))),
        ] {
            assert!((200..500).contains(&response.status), "status {}", response.status);
        }
    }
});
