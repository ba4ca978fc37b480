//! `--playground`: a page at `/` of the data listener (`playground.html`,
//! one file, no framework) that is a client of the session protocol, and
//! the example projects it offers (`/playground/examples.json`: the
//! repository's `examples/hello`, built into the binary).

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;

const PAGE: &str = include_str!("playground.html");

/// The examples: name, then each file's project-relative path and text.
const EXAMPLES: &[(&str, &[(&str, &str)])] = &[(
    "examples/hello",
    &[
        ("app.json", include_str!("../../../examples/hello/app.json")),
        ("app.js", include_str!("../../../examples/hello/app.js")),
        (
            "workers/request/index.js",
            include_str!("../../../examples/hello/workers/request/index.js"),
        ),
    ],
)];

/// The playground's routes.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/playground/examples.json", get(examples))
}

async fn examples() -> impl IntoResponse {
    let mut all = serde_json::Map::new();
    for (name, files) in EXAMPLES {
        let files: serde_json::Map<String, serde_json::Value> = files
            .iter()
            .map(|(path, text)| ((*path).to_owned(), (*text).into()))
            .collect();
        all.insert((*name).to_owned(), files.into());
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::Value::Object(all).to_string(),
    )
}
