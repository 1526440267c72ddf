//! JSON bodies computed once and sent to many (the dashboard snapshot, cached
//! charts). Their gzip encoding is made once, the first time a client asks
//! for it, and kept with the body; so these endpoints sit outside the
//! per-response compression layer of the others.

use bytes::Bytes;
use std::sync::{Arc, OnceLock};
use warp::http::{HeaderValue, header};
use warp::reply::Response;

pub struct Encoded {
    plain: Bytes,
    gzip: OnceLock<Bytes>,
}

impl Encoded {
    pub fn new(plain: Bytes) -> Arc<Encoded> {
        Arc::new(Encoded {
            plain,
            gzip: OnceLock::new(),
        })
    }

    /// Serializes `value` (on the caller's thread).
    pub fn json(value: &impl serde::Serialize) -> crate::error::Result<Arc<Encoded>> {
        serde_json::to_vec(value)
            .map(|v| Encoded::new(Bytes::from(v)))
            .map_err(|e| crate::error::Error::Internal(e.to_string()))
    }

    /// Makes the gzip encoding if it is not made yet. CPU work: `reply` calls
    /// it on a blocking thread.
    pub fn make_gzip(&self) -> &Bytes {
        self.gzip.get_or_init(|| {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(self.plain.len() / 4),
                flate2::Compression::default(),
            );
            // Writing to a Vec cannot fail.
            let _ = enc.write_all(&self.plain);
            Bytes::from(enc.finish().unwrap_or_default())
        })
    }

    /// The response for a client that takes gzip or not; gzip must be made.
    fn response(&self, gzip: bool) -> Response {
        let mut r = match self.gzip.get().filter(|_| gzip) {
            Some(gz) => {
                let mut r = Response::new(gz.clone().into());
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            None => Response::new(self.plain.clone().into()),
        };
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        r
    }
}

/// Answers with `body`, gzip-encoded when the client takes it (the encoding
/// made on a blocking thread the first time).
pub async fn reply(body: Arc<Encoded>, gzip: bool) -> Result<Response, warp::Rejection> {
    if gzip && body.gzip.get().is_none() {
        let b = body.clone();
        super::blocking(move || {
            b.make_gzip();
            Ok(())
        })
        .await?;
    }
    Ok(body.response(gzip))
}

/// True when the client takes gzip (from `Accept-Encoding`).
pub fn wants_gzip(accept_encoding: Option<String>) -> bool {
    accept_encoding.is_some_and(|v| v.contains("gzip"))
}
