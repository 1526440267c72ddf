//! `mlsec-monitor backup --out FILE`: asks the running daemon for a backup
//! (`POST /admin/backup`, as an admin) and writes it to `FILE`, checking it
//! whole as it arrives. It is written beside as `FILE.partial` and takes
//! its name only once checked and synced, so `FILE` is never a cut archive.

use super::archive::{Manifest, Reader};
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::Duration;

/// The longest the daemon may send nothing: it writes the whole archive
/// before it answers.
const READ_TIMEOUT: Duration = Duration::from_secs(600);

/// What has arrived: archive bytes, items, and the archive's size (its
/// `Content-Length`), if the daemon gave one.
pub type Tick<'a> = &'a mut dyn FnMut(u64, u64, Option<u64>);

/// Copies everything read into a file and counts it.
struct Tee<R> {
    inner: R,
    file: BufWriter<File>,
    bytes: u64,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.file.write_all(&buf[..n])?;
        self.bytes += n as u64;
        Ok(n)
    }
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Backup(e.to_string())
}

/// Takes a backup from the daemon at `url` with `admin`'s token into `out`.
pub fn fetch(url: &str, admin: &str, out: &Path, tick: Tick<'_>) -> Result<Manifest> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_per_read(Some(READ_TIMEOUT))
        .build()
        .into();
    let mut resp = agent
        .post(&format!("{url}/admin/backup"))
        .header("authorization", &format!("Bearer {admin}"))
        .send_empty()
        .map_err(|e| err(format!("{url}: {e}")))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let why = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        return Err(err(format!("{url}: {status}: {why}")));
    }
    let estimate = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let (partial, file) = super::partial_file(out)?;
    let received = (|| {
        let tee = Tee {
            inner: resp.body_mut().as_reader(),
            file: BufWriter::with_capacity(1 << 16, file),
            bytes: 0,
        };
        let mut r = Reader::open(tee).map_err(err)?;
        let mut n = 0u64;
        while r.next_item().map_err(err)?.is_some() {
            n += 1;
            if n.is_multiple_of(256) {
                tick(r.get_ref().bytes, r.items(), estimate);
            }
        }
        tick(r.get_ref().bytes, r.items(), estimate);
        let manifest = r.manifest().cloned().expect("read whole");
        // The reader checked that nothing follows the archive's checksum.
        let Tee { file, .. } = r.into_inner();
        let file = file.into_inner().map_err(|e| err(e.into_error()))?;
        super::commit(file, &partial, out)?;
        Ok(manifest)
    })();
    match received {
        Ok(manifest) => Ok(manifest),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}
