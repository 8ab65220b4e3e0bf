//! The H5 example (`examples/h5`), served as a team would serve it, from the
//! API's own origin here: an official account's page that signs in through
//! WeChat's OAuth redirect (the simulator's authorize page, locally).

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("../../../examples/h5/index.html");
const SCRIPT: &str = include_str!("../../../examples/h5/wxauth-h5.js");

/// The page's settings: this server's own API, the `oauth` app, and the
/// simulator's authorize page in place of open.weixin.qq.com's.
pub struct H5Example {
    pub appid: String,
    pub authorize_url: String,
}

impl H5Example {
    fn config(&self) -> String {
        let config = serde_json::json!({
            "apiBase": "",
            "appid": self.appid,
            "authorizeUrl": self.authorize_url,
        });
        format!("window.WXAUTH_H5 = {config};\n")
    }
}

/// `/examples/h5/`: the page, its script, and its settings.
pub fn routes(router: Router, example: H5Example) -> Router {
    let config = example.config();
    router
        .route(
            "/examples/h5/",
            get(|| async { ([(CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response() }),
        )
        .route(
            "/examples/h5/wxauth-h5.js",
            get(|| async {
                ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
            }),
        )
        .route(
            "/examples/h5/config.js",
            get(move || {
                let config = config.clone();
                async move {
                    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], config).into_response()
                }
            }),
        )
}
