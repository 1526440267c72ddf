//! Answers computed once and served to many until what they are computed
//! from changes: the charts (fingerprint: the grid and the write version of
//! every series read) and the alert listings (fingerprint: the alert
//! state's version).

use super::AppState;
use super::encoded::{self, Encoded};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use warp::reply::Response;

/// Answers kept until the data behind them changes. An entry is served only
/// while its fingerprint is the same, so a cached answer is never stale, and
/// a wall of screens polling one chart or one alert list costs one
/// computation (and one compression) per change.
#[derive(Default)]
pub struct AnswerCache {
    entries: Mutex<HashMap<String, Cached>>,
}

/// An answer's fingerprint and its body.
type Cached = (Vec<i64>, Arc<Encoded>);

/// Distinct answers (endpoint and parameters) kept; the cache is emptied
/// when a new one would exceed it.
const CACHE_ENTRIES: usize = 256;

impl AnswerCache {
    fn get(&self, key: &str, fingerprint: &[i64]) -> Option<Arc<Encoded>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(f, _)| f.as_slice() == fingerprint)
            .map(|(_, body)| body.clone())
    }

    fn put(&self, key: String, fingerprint: Vec<i64>, body: Arc<Encoded>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_ENTRIES && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, (fingerprint, body));
    }
}

/// The cached answer for `key` when its fingerprint still matches, else the
/// body `build` computes (on a blocking thread), cached for the next caller;
/// gzip-encoded when the client asks for it.
pub async fn cached<T: serde::Serialize>(
    state: &AppState,
    want_gzip: bool,
    key: String,
    fingerprint: Vec<i64>,
    build: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Result<Response, warp::Rejection> {
    let body = match state.answers.get(&key, &fingerprint) {
        Some(body) => body,
        None => {
            let body = super::blocking(move || {
                let body = Encoded::json(&build()?)?;
                if want_gzip {
                    body.make_gzip();
                }
                Ok(body)
            })
            .await?;
            state.answers.put(key, fingerprint, body.clone());
            body
        }
    };
    encoded::reply(body, want_gzip).await
}
