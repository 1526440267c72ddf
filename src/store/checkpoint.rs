//! The checkpoint file: every open block as of one log sequence number,
//! written whole to `<DATA_DIR>/checkpoint.tmp`, fsynced and renamed over
//! `<DATA_DIR>/checkpoint` (so a crash leaves the old one or the new one,
//! never half of either), the way Prometheus writes its head checkpoints.
//!
//! It is a file rather than a sled tree because it is rewritten whole at
//! every checkpoint: in sled, each checkpoint of 50,000 series inserted
//! 150,000 values, and sled kept the tree's nodes in memory far beyond its
//! cache size (a heap profile at 20,000 series: 110 MB of leaves, more than
//! all other memory of the store together) and wrote every value twice.
//!
//! ```text
//! header: "MLSMCKPT" | version 1 | seq (u64 LE) | entries (u64 LE) | CRC-32 of the header
//! entry:  series (u32 LE) | tier (u8) | length (u32 LE) | CRC-32 of those 9 bytes
//!         | the block (`block_codec`, with its own checksum)
//! ```
//!
//! A damaged entry frame ends the read (what follows cannot be found); a
//! damaged block is counted and skipped. Both are reported like damaged
//! blocks in sled.

use super::keys::SeriesId;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"MLSMCKPT";
const VERSION: u8 = 1;
const HEADER: usize = 8 + 1 + 8 + 8 + 4;
const FRAME: usize = 4 + 1 + 4 + 4;
/// No block is near this (a histogram block is tens of kB).
const MAX_ENTRY: u32 = 64 << 20;

/// The checkpoint's file name in the data directory.
pub const FILE: &str = "checkpoint";
/// The file a checkpoint is written to before it takes `FILE`'s name.
pub const TMP_FILE: &str = "checkpoint.tmp";

pub(super) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// One entry read back.
pub(super) struct Entry {
    pub series: SeriesId,
    pub tier: u8,
    pub bytes: Vec<u8>,
}

/// A checkpoint read back: its sequence number and its entries, or the
/// problem that ended the read early.
pub(super) struct Checkpoint {
    pub seq: u64,
    pub entries: Vec<Entry>,
    pub damage: Option<&'static str>,
}

/// Writes a checkpoint of `entries` (series, tier, encoded block) at `seq`
/// and makes it the current one. Returns the bytes written.
pub(super) fn write(
    dir: &Path,
    seq: u64,
    count: usize,
    entries: impl Iterator<Item = (SeriesId, u8, Vec<u8>)>,
) -> io::Result<u64> {
    let tmp = dir.join(TMP_FILE);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.push(VERSION);
    header.extend_from_slice(&seq.to_le_bytes());
    header.extend_from_slice(&(count as u64).to_le_bytes());
    header.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
    out.write_all(&header)?;
    let mut written = HEADER as u64;
    let mut n = 0;
    for (series, tier, bytes) in entries {
        let mut frame = [0u8; FRAME];
        frame[..4].copy_from_slice(&series.to_le_bytes());
        frame[4] = tier;
        frame[5..9].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        let crc = crc32fast::hash(&frame[..9]);
        frame[9..].copy_from_slice(&crc.to_le_bytes());
        out.write_all(&frame)?;
        out.write_all(&bytes)?;
        written += (FRAME + bytes.len()) as u64;
        n += 1;
    }
    if n != count {
        return Err(io::Error::other(
            "checkpoint entry count changed while writing",
        ));
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path(dir))?;
    super::sync_dir(dir)?;
    Ok(written)
}

/// Reads the current checkpoint; `None` when there is none.
pub(super) fn read(dir: &Path) -> io::Result<Option<Checkpoint>> {
    let file = match File::open(path(dir)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut input = BufReader::with_capacity(1 << 16, file);
    let mut header = [0u8; HEADER];
    if input.read_exact(&mut header).is_err()
        || &header[..8] != MAGIC
        || header[8] != VERSION
        || crc32fast::hash(&header[..HEADER - 4]).to_le_bytes() != header[HEADER - 4..]
    {
        return Ok(Some(Checkpoint {
            seq: 0,
            entries: Vec::new(),
            damage: Some("damaged checkpoint header"),
        }));
    }
    let seq = u64::from_le_bytes(header[9..17].try_into().expect("8 bytes"));
    let count = u64::from_le_bytes(header[17..25].try_into().expect("8 bytes"));
    let mut entries = Vec::new();
    let mut damage = None;
    for _ in 0..count {
        let mut frame = [0u8; FRAME];
        if input.read_exact(&mut frame).is_err() {
            damage = Some("checkpoint ends early");
            break;
        }
        let len = u32::from_le_bytes(frame[5..9].try_into().expect("4 bytes"));
        if crc32fast::hash(&frame[..9]).to_le_bytes() != frame[9..] || len > MAX_ENTRY {
            damage = Some("damaged checkpoint entry: the entries after it are lost");
            break;
        }
        let mut bytes = vec![0u8; len as usize];
        if input.read_exact(&mut bytes).is_err() {
            damage = Some("checkpoint ends early");
            break;
        }
        entries.push(Entry {
            series: u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")),
            tier: frame[4],
            bytes,
        });
    }
    Ok(Some(Checkpoint {
        seq,
        entries,
        damage,
    }))
}

/// Where each entry's block starts and how long it is (tests damage them).
#[cfg(test)]
pub(super) fn block_spans(dir: &Path) -> Vec<(usize, usize)> {
    let bytes = std::fs::read(path(dir)).expect("checkpoint");
    let mut at = HEADER;
    let mut out = Vec::new();
    while at + FRAME <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 5..at + 9].try_into().unwrap()) as usize;
        out.push((at + FRAME, len));
        at += FRAME + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_and_damage_is_found() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_none());
        let blocks = vec![(1, 0, vec![1, 2, 3]), (7, 2, vec![9; 100])];
        let n = write(dir.path(), 42, 2, blocks.clone().into_iter()).unwrap();
        assert_eq!(n, std::fs::metadata(path(dir.path())).unwrap().len());
        let r = read(dir.path()).unwrap().unwrap();
        assert_eq!((r.seq, r.damage), (42, None));
        let back: Vec<_> = r
            .entries
            .into_iter()
            .map(|e| (e.series, e.tier, e.bytes))
            .collect();
        assert_eq!(back, blocks);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "private to the daemon's user");

        // A damaged second frame keeps the first entry.
        let mut bytes = std::fs::read(path(dir.path())).unwrap();
        let second = HEADER + FRAME + 3;
        bytes[second + 2] ^= 1;
        std::fs::write(path(dir.path()), &bytes).unwrap();
        let r = read(dir.path()).unwrap().unwrap();
        assert_eq!(r.entries.len(), 1);
        assert!(r.damage.is_some());
        // A damaged header loses it all, without a panic.
        bytes[10] ^= 1;
        std::fs::write(path(dir.path()), &bytes).unwrap();
        let r = read(dir.path()).unwrap().unwrap();
        assert!(r.entries.is_empty() && r.damage.is_some());
    }
}
