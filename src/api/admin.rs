//! `POST /admin/backup`: a backup of everything (`backup`). 409 while
//! another backup runs. The archive is first written whole, at disk speed,
//! to a private file in the data directory that is unlinked as soon as it
//! is created: the backup holds the store still (no flush) only that long,
//! never while a slow caller reads. A backup that fails is a 500 naming
//! why, before any byte is sent. The file is then streamed from a blocking
//! thread through a small bounded channel, with its length; a caller that
//! stops reading for `STALL`, or goes away, ends the stream and the file
//! is gone with it.

use super::AppState;
use super::reject::fail;
use crate::error::Error;
use bytes::Bytes;
use std::io::{self, Read, Seek};
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

/// Sends chunks to the reply, waiting at most `STALL` for each.
struct ToReply {
    tx: tokio::sync::mpsc::Sender<Chunk>,
    runtime: tokio::runtime::Handle,
}

impl ToReply {
    fn send(&self, chunk: Chunk) -> io::Result<()> {
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

pub async fn backup(state: AppState) -> Result<Response, warp::Rejection> {
    let running = state.backups.start().map_err(fail)?;
    let now = chrono::Utc::now();
    let dir = state.store.dir().to_path_buf();
    let written = tokio::task::spawn_blocking(move || -> crate::error::Result<std::fs::File> {
        let io =
            |e: io::Error| Error::Internal(format!("backup: cannot write its spool file: {e}"));
        // Unnamed (O_TMPFILE where it can), mode 0600: gone when closed.
        let file = tempfile::tempfile_in(&dir).map_err(io)?;
        let (out, _) = running.take(io::BufWriter::new(file), now, false)?;
        let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.rewind().map_err(io)?;
        Ok(file)
    })
    .await
    .map_err(|e| fail(Error::Internal(format!("backup: {e}"))))?;
    let mut file = written.map_err(fail)?;
    let len = file
        .metadata()
        .map_err(|e| fail(Error::Internal(format!("backup: {e}"))))?
        .len();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(QUEUED);
    let out = ToReply {
        tx,
        runtime: tokio::runtime::Handle::current(),
    };
    tokio::task::spawn_blocking(move || {
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let sent = match file.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => out.send(Ok(Bytes::copy_from_slice(&chunk[..n]))),
                Err(e) => out.send(Err(e)),
            };
            if sent.is_err() {
                return;
            }
        }
    });
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
    h.insert(warp::http::header::CONTENT_LENGTH, value(len.to_string()));
    Ok(r)
}
