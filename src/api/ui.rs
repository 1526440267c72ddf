//! The web dashboard at `/ui`: plain HTML, CSS and JavaScript from `assets/`,
//! compiled into the binary so the appliance works offline.

use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use warp::reply::{Reply, Response};

const INDEX: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const STYLE: &str = include_str!("../../assets/style.css");

fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut r = Response::new(body.into());
    r.headers_mut()
        .insert(CONTENT_TYPE, content_type.parse().expect("static header"));
    r.headers_mut()
        .insert(CACHE_CONTROL, "no-cache".parse().expect("static header"));
    r
}

pub fn page() -> Response {
    file(INDEX, "text/html; charset=utf-8")
}

pub fn asset(name: String) -> Response {
    match name.as_str() {
        "app.js" => file(APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => file(STYLE, "text/css; charset=utf-8"),
        _ => super::reject::error_response(
            warp::http::StatusCode::NOT_FOUND,
            "no such dashboard file",
        )
        .into_response(),
    }
}
