//! The web dashboard at `/ui`: plain HTML, CSS and JavaScript from `assets/`,
//! with Chart.js and its time-axis adapter from `assets/vendor/` (the npm
//! releases pinned by its lockfile), compiled into the binary so the
//! appliance works offline.

use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use warp::reply::{Reply, Response};

const INDEX: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const STYLE: &str = include_str!("../../assets/style.css");
const CHART_JS: &str = include_str!("../../assets/vendor/chart.umd.min.js");
const CHART_ADAPTER: &str =
    include_str!("../../assets/vendor/chartjs-adapter-date-fns.bundle.min.js");

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
        "chart.js" => file(CHART_JS, "text/javascript; charset=utf-8"),
        "chart-adapter.js" => file(CHART_ADAPTER, "text/javascript; charset=utf-8"),
        _ => super::reject::error_response(
            warp::http::StatusCode::NOT_FOUND,
            "no such dashboard file",
        )
        .into_response(),
    }
}
