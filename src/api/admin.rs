//! `POST /admin/backup`: a backup of everything (`backup`), streamed to the
//! caller as it is written. 409 while another backup runs. The archive is
//! written on a blocking thread into a small bounded channel; a caller that
//! stops reading for `STALL` ends the backup (its locks must not wait on a
//! slow network), and so does one that goes away. A backup that fails part
//! way ends the stream with an error: the caller gets a cut archive, which
//! `restore` refuses.

use super::AppState;
use super::reject::fail;
use bytes::Bytes;
use std::io::{self, Write};
use std::time::Duration;
use warp::Reply;
use warp::reply::Response;

/// Bytes per chunk sent.
const CHUNK: usize = 64 << 10;
/// Chunks waiting for the caller at most.
const QUEUED: usize = 8;
/// The longest a caller may leave a chunk unread.
const STALL: Duration = Duration::from_secs(60);

type Chunk = io::Result<Bytes>;

/// A `Write` that sends what is written, `CHUNK` at a time, to the reply.
struct ToReply {
    tx: tokio::sync::mpsc::Sender<Chunk>,
    buf: Vec<u8>,
    runtime: tokio::runtime::Handle,
}

impl ToReply {
    fn send(&mut self, chunk: Chunk) -> io::Result<()> {
        let tx = self.tx.clone();
        match self
            .runtime
            .block_on(tokio::time::timeout(STALL, tx.send(chunk)))
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the caller went away",
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the caller read nothing for {} s", STALL.as_secs()),
            )),
        }
    }
}

impl Write for ToReply {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
            self.send(Ok(chunk))?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.send(Ok(chunk))?;
        }
        Ok(())
    }
}

pub async fn backup(state: AppState) -> Result<Response, warp::Rejection> {
    let running = state.backups.start().map_err(fail)?;
    let now = chrono::Utc::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(QUEUED);
    let mut out = ToReply {
        tx: tx.clone(),
        buf: Vec::with_capacity(CHUNK),
        runtime: tokio::runtime::Handle::current(),
    };
    tokio::task::spawn_blocking(move || {
        // The archive's end flushes what is left.
        let result = running.take(&mut out, now, false).map(|_| ());
        if let Err(e) = result {
            let _ = out.send(Err(io::Error::other(e.to_string())));
        }
    });
    drop(tx);
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut r = warp::reply::stream(body).into_response();
    let h = r.headers_mut();
    let value = |s: String| warp::http::HeaderValue::from_str(&s).expect("plain text");
    h.insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        warp::http::header::CONTENT_DISPOSITION,
        value(format!(
            "attachment; filename=\"{}\"",
            crate::backup::schedule::file_name(now)
        )),
    );
    h.insert(
        "x-backup-estimate-bytes",
        value(state.backups.estimate_bytes().to_string()),
    );
    Ok(r)
}
