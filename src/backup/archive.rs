//! The backup archive: one file, written as a stream and read as one.
//!
//! ```text
//! "MLSMBKUP" | format (u8) | header length (u32 LE) | header (JSON: format,
//!            created_at, daemon_version)                      -- plain
//! gzip of frames:
//!   'T' | database (u8 length, text) | tree (u16 length, bytes)  -- a tree starts
//!   'K' | key (u32 length, bytes) | value (u32 length, bytes)    -- one entry of it
//!   'F' | name (u8 length, text) | content (u64 length, bytes)   -- a file
//!   'M' | manifest (u32 length, JSON)                            -- what it holds, last
//! SHA-256 of every byte before it (32 bytes)                   -- plain
//! ```
//!
//! The header is plain so that a backup's creation time can be read without
//! decompressing it (`restore --at`). The checksum covers every byte of the
//! file, gzip's header and padding included, so any changed byte is found;
//! gzip's own CRC and length find a cut or a change inside the compressed
//! stream early. [`Reader`] checks all of it and the format: a reader of
//! items gets an error, never a short or altered archive taken as whole,
//! and a caller acts only once the last `next_item` said it was whole.

use flate2::Compression;
use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};

const MAGIC: &[u8; 8] = b"MLSMBKUP";
/// The archive format this release writes and reads.
pub const FORMAT: u8 = 1;
/// No header is near this.
const MAX_HEADER: u32 = 64 << 10;
/// No key or manifest is near this; a value (a block) is tens of kB.
const MAX_FIELD: u32 = 256 << 20;
/// gzip level: blocks are compressed already, keys and small records are
/// not. On the 53.9 MB content of 1,000 full series (examples/bench_backup.rs,
/// recompressed with zlib): level 1 keeps 84.8 %, level 6 83.8 % in 1.4x
/// the time, level 9 83.7 % in 3x.
const LEVEL: u32 = 1;

/// The plain part at the start: enough to pick a backup by time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: u8,
    /// RFC 3339.
    pub created_at: String,
    pub daemon_version: String,
}

/// What an archive holds, written after the content.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u8,
    pub created_at: String,
    pub daemon_version: String,
    /// Entries per tree, as `database/tree`.
    pub trees: BTreeMap<String, u64>,
    /// Bytes per file.
    pub files: BTreeMap<String, u64>,
    /// Entries and files in all.
    pub items: u64,
    /// Bytes of content before compression.
    pub content_bytes: u64,
}

/// One thing read from an archive.
#[derive(Debug, PartialEq)]
pub enum Item {
    Tree { db: String, tree: Vec<u8> },
    Entry { key: Vec<u8>, value: Vec<u8> },
    File { name: String, content: Vec<u8> },
}

/// The file as written: every byte hashed on its way out.
struct Hashed<W: Write> {
    out: W,
    hash: ring::digest::Context,
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The content stream: counted and compressed on its way out.
struct Sink<W: Write> {
    gz: GzEncoder<Hashed<W>>,
    bytes: u64,
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.gz.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.gz.flush()
    }
}

/// Writes an archive to `W` as it goes; nothing is held back but gzip's window.
pub struct Writer<W: Write> {
    sink: Sink<W>,
    manifest: Manifest,
    tree: Option<String>,
}

fn too_long(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what} is too long"))
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, header: &Header) -> io::Result<Writer<W>> {
        let json = serde_json::to_vec(header)?;
        let mut plain = Vec::with_capacity(13 + json.len());
        plain.extend_from_slice(MAGIC);
        plain.push(header.format);
        plain.extend_from_slice(&(json.len() as u32).to_le_bytes());
        plain.extend_from_slice(&json);
        let mut out = Hashed {
            out,
            hash: ring::digest::Context::new(&ring::digest::SHA256),
        };
        out.write_all(&plain)?;
        Ok(Writer {
            sink: Sink {
                gz: GzEncoder::new(out, Compression::new(LEVEL)),
                bytes: 0,
            },
            manifest: Manifest {
                format: header.format,
                created_at: header.created_at.clone(),
                daemon_version: header.daemon_version.clone(),
                ..Manifest::default()
            },
            tree: None,
        })
    }

    /// Starts tree `tree` of database `db`: the entries that follow are its.
    pub fn tree(&mut self, db: &str, tree: &[u8]) -> io::Result<()> {
        let db_len = u8::try_from(db.len()).map_err(|_| too_long("a database name"))?;
        let tree_len = u16::try_from(tree.len()).map_err(|_| too_long("a tree name"))?;
        self.sink.write_all(b"T")?;
        self.sink.write_all(&[db_len])?;
        self.sink.write_all(db.as_bytes())?;
        self.sink.write_all(&tree_len.to_le_bytes())?;
        self.sink.write_all(tree)?;
        let name = format!("{db}/{}", String::from_utf8_lossy(tree));
        self.manifest.trees.entry(name.clone()).or_insert(0);
        self.tree = Some(name);
        Ok(())
    }

    /// One entry of the current tree.
    pub fn entry(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let Some(tree) = &self.tree else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an entry before any tree",
            ));
        };
        let field = |b: &[u8]| {
            u32::try_from(b.len())
                .ok()
                .filter(|n| *n <= MAX_FIELD)
                .ok_or_else(|| too_long("an entry"))
        };
        let (k, v) = (field(key)?, field(value)?);
        self.sink.write_all(b"K")?;
        self.sink.write_all(&k.to_le_bytes())?;
        self.sink.write_all(key)?;
        self.sink.write_all(&v.to_le_bytes())?;
        self.sink.write_all(value)?;
        if let Some(n) = self.manifest.trees.get_mut(tree) {
            *n += 1;
        }
        self.manifest.items += 1;
        Ok(())
    }

    /// A file of `len` bytes read from `content`.
    pub fn file(&mut self, name: &str, len: u64, content: impl Read) -> io::Result<()> {
        let name_len = u8::try_from(name.len()).map_err(|_| too_long("a file name"))?;
        self.sink.write_all(b"F")?;
        self.sink.write_all(&[name_len])?;
        self.sink.write_all(name.as_bytes())?;
        self.sink.write_all(&len.to_le_bytes())?;
        let copied = io::copy(&mut content.take(len), &mut self.sink)?;
        if copied != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name} changed while it was read ({copied} of {len} bytes)"),
            ));
        }
        self.manifest.files.insert(name.to_string(), len);
        self.manifest.items += 1;
        self.tree = None;
        Ok(())
    }

    /// Entries and files written so far, and content bytes.
    pub fn done(&self) -> (u64, u64) {
        (self.manifest.items, self.sink.bytes)
    }

    /// Writes the manifest, ends the gzip stream, writes the checksum and
    /// returns the output and the manifest.
    pub fn finish(mut self) -> io::Result<(W, Manifest)> {
        self.manifest.content_bytes = self.sink.bytes;
        let json = serde_json::to_vec(&self.manifest)?;
        self.sink.write_all(b"M")?;
        self.sink.write_all(&(json.len() as u32).to_le_bytes())?;
        self.sink.write_all(&json)?;
        let Hashed { mut out, hash } = self.sink.gz.finish()?;
        out.write_all(hash.finish().as_ref())?;
        out.flush()?;
        Ok((out, self.manifest))
    }
}

/// Why an archive cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Bad(pub String);

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(what: impl Into<String>) -> Bad {
    Bad(what.into())
}

/// What reading the compressed stream failed on, in words.
fn read_err(e: io::Error) -> Bad {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => bad("the archive is cut short (truncated)"),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            bad(format!("the archive is damaged (its compressed data: {e})"))
        }
        _ => bad(format!("cannot read the archive: {e}")),
    }
}

/// Reads the plain header of an archive.
pub fn read_header(r: &mut impl Read) -> Result<(Header, Vec<u8>), Bad> {
    let mut fixed = [0u8; 13];
    r.read_exact(&mut fixed).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => bad("not a backup archive (too short)"),
        _ => bad(format!("cannot read the archive: {e}")),
    })?;
    if &fixed[..8] != MAGIC {
        return Err(bad("not a backup archive (no MLSMBKUP signature)"));
    }
    if fixed[8] != FORMAT {
        return Err(bad(format!(
            "archive format {} is not one this release reads (format {FORMAT})",
            fixed[8]
        )));
    }
    let len = u32::from_le_bytes(fixed[9..13].try_into().expect("4 bytes"));
    if len > MAX_HEADER {
        return Err(bad("the archive's header is damaged (its length)"));
    }
    let mut json = vec![0u8; len as usize];
    r.read_exact(&mut json)
        .map_err(|_| bad("the archive is cut short (truncated) in its header"))?;
    let header: Header = serde_json::from_slice(&json)
        .map_err(|e| bad(format!("the archive's header is damaged: {e}")))?;
    if header.format != FORMAT {
        return Err(bad("the archive's header is damaged (its format)"));
    }
    let mut plain = fixed.to_vec();
    plain.extend_from_slice(&json);
    Ok((header, plain))
}

/// The file read back: every byte the decoder consumes is hashed (and
/// nothing it only looked at, so the checksum after the gzip stream stays
/// unread for the check).
struct Hashing<R: Read> {
    inner: BufReader<R>,
    hash: ring::digest::Context,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let have = self.fill_buf()?;
            let n = have.len().min(buf.len());
            buf[..n].copy_from_slice(&have[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Hashing<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.inner.buffer().len());
        self.hash.update(&self.inner.buffer()[..amt]);
        self.inner.consume(amt);
    }
}

/// The content stream read back.
struct Source<R: Read> {
    gz: BufReader<GzDecoder<Hashing<R>>>,
}

impl<R: Read> Source<R> {
    fn exact(&mut self, buf: &mut [u8]) -> Result<(), Bad> {
        self.gz.read_exact(buf).map_err(read_err)?;
        Ok(())
    }
    fn u8(&mut self) -> Result<u8, Bad> {
        let mut b = [0u8; 1];
        self.exact(&mut b)?;
        Ok(b[0])
    }
    fn u16(&mut self) -> Result<u16, Bad> {
        let mut b = [0u8; 2];
        self.exact(&mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    fn u32(&mut self) -> Result<u32, Bad> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, Bad> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    /// `len` bytes, read in steps so that a damaged length cannot ask for
    /// more memory than the stream holds.
    fn bytes(&mut self, len: u64) -> Result<Vec<u8>, Bad> {
        let mut out = Vec::with_capacity(len.min(1 << 20) as usize);
        let got = (&mut self.gz)
            .take(len)
            .read_to_end(&mut out)
            .map_err(read_err)?;
        if got as u64 != len {
            return Err(bad("the archive is cut short (truncated)"));
        }
        Ok(out)
    }
    fn field(&mut self) -> Result<Vec<u8>, Bad> {
        let len = self.u32()?;
        if len > MAX_FIELD {
            return Err(bad("the archive is damaged (an entry's length)"));
        }
        self.bytes(len.into())
    }
    fn text(&mut self, len: u64) -> Result<String, Bad> {
        String::from_utf8(self.bytes(len)?).map_err(|_| bad("the archive is damaged (a name)"))
    }
}

/// Reads an archive item by item. The last `next` (the one that returns
/// `Ok(None)`) checks the end of the stream, the manifest and the checksum:
/// only then has the archive been read whole and as written.
pub struct Reader<R: Read> {
    header: Header,
    src: Source<R>,
    manifest: Option<Manifest>,
    items: u64,
    in_tree: bool,
}

impl<R: Read> Reader<R> {
    pub fn open(mut r: R) -> Result<Reader<R>, Bad> {
        let (header, plain) = read_header(&mut r)?;
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        hash.update(&plain);
        let file = Hashing {
            inner: BufReader::with_capacity(1 << 16, r),
            hash,
        };
        Ok(Reader {
            header,
            src: Source {
                gz: BufReader::with_capacity(1 << 16, GzDecoder::new(file)),
            },
            manifest: None,
            items: 0,
            in_tree: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The manifest, once the whole archive has been read and checked.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// Entries and files read so far.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// The underlying reader (to see how far into the file it is).
    pub fn get_ref(&self) -> &R {
        self.src.gz.get_ref().get_ref().inner.get_ref()
    }

    /// The underlying reader, once done with.
    pub fn into_inner(self) -> R {
        self.src.gz.into_inner().into_inner().inner.into_inner()
    }

    pub fn next_item(&mut self) -> Result<Option<Item>, Bad> {
        if self.manifest.is_some() {
            return Ok(None);
        }
        let kind = self.src.u8()?;
        match kind {
            b'T' => {
                let n = self.src.u8()?;
                let db = self.src.text(n.into())?;
                let n = self.src.u16()?;
                let tree = self.src.bytes(n.into())?;
                self.in_tree = true;
                Ok(Some(Item::Tree { db, tree }))
            }
            b'K' if self.in_tree => {
                let key = self.src.field()?;
                let value = self.src.field()?;
                self.items += 1;
                Ok(Some(Item::Entry { key, value }))
            }
            b'F' => {
                let n = self.src.u8()?;
                let name = self.src.text(n.into())?;
                let len = self.src.u64()?;
                let content = self.src.bytes(len)?;
                self.items += 1;
                self.in_tree = false;
                Ok(Some(Item::File { name, content }))
            }
            b'M' => {
                let json = self.src.field()?;
                // gzip's CRC and length are checked when its end is read.
                let rest = self.src.gz.fill_buf().map_err(read_err)?;
                if !rest.is_empty() {
                    return Err(bad("the archive is damaged (content after its manifest)"));
                }
                let file = self.src.gz.get_mut().get_mut();
                let expected = file.hash.clone().finish();
                let mut sum = [0u8; 32];
                file.inner
                    .read_exact(&mut sum)
                    .map_err(|_| bad("the archive is cut short (truncated) in its checksum"))?;
                if sum != expected.as_ref() {
                    return Err(bad(
                        "the archive's checksum does not match its content: it was altered or damaged",
                    ));
                }
                let mut more = [0u8; 1];
                if file.inner.read(&mut more).map_err(read_err)? != 0 {
                    return Err(bad("the archive has data after its checksum"));
                }
                let manifest: Manifest = serde_json::from_slice(&json)
                    .map_err(|e| bad(format!("the archive's manifest is damaged: {e}")))?;
                if manifest.items != self.items {
                    return Err(bad(format!(
                        "the archive's manifest counts {} items, the archive holds {}",
                        manifest.items, self.items
                    )));
                }
                self.manifest = Some(manifest);
                Ok(None)
            }
            _ => Err(bad(format!(
                "the archive is damaged (unknown frame {kind:#04x} after {} items)",
                self.items
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT,
            created_at: "2026-12-04T10:00:00.000Z".into(),
            daemon_version: "test".into(),
        }
    }

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), &header()).unwrap();
        w.tree("db", b"alerts").unwrap();
        for i in 0u32..500 {
            w.entry(&i.to_be_bytes(), format!("value {i}").as_bytes())
                .unwrap();
        }
        w.tree("1m", b"blocks").unwrap();
        w.entry(b"", b"").unwrap();
        let content = vec![7u8; 100_000];
        w.file("checkpoint", content.len() as u64, &content[..])
            .unwrap();
        let (out, m) = w.finish().unwrap();
        assert_eq!(m.items, 502);
        assert_eq!(m.trees["db/alerts"], 500);
        assert_eq!(m.files["checkpoint"], 100_000);
        out
    }

    fn read_all(bytes: &[u8]) -> Result<(Vec<Item>, Manifest), Bad> {
        let mut r = Reader::open(bytes)?;
        let mut items = Vec::new();
        while let Some(i) = r.next_item()? {
            items.push(i);
        }
        Ok((items, r.manifest().cloned().expect("manifest")))
    }

    #[test]
    fn what_is_written_is_read_back() {
        let bytes = sample();
        let (items, manifest) = read_all(&bytes).unwrap();
        assert_eq!(items.len(), 504);
        assert_eq!(
            items[0],
            Item::Tree {
                db: "db".into(),
                tree: b"alerts".to_vec()
            }
        );
        assert_eq!(
            items[3],
            Item::Entry {
                key: 2u32.to_be_bytes().to_vec(),
                value: b"value 2".to_vec()
            }
        );
        assert!(
            matches!(&items[503], Item::File { name, content } if name == "checkpoint" && content.len() == 100_000)
        );
        assert_eq!(manifest.created_at, "2026-12-04T10:00:00.000Z");
        assert_eq!(manifest.items, 502);
    }

    #[test]
    fn every_cut_is_refused() {
        let bytes = sample();
        for len in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
            let e = read_all(&bytes[..len]).expect_err("a cut archive");
            assert!(
                e.0.contains("truncated") || e.0.contains("too short") || e.0.contains("damaged"),
                "cut at {len}: {e}"
            );
        }
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let bytes = sample();
        for at in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[at] ^= 0x20;
            assert!(read_all(&altered).is_err(), "byte {at} changed, still read");
        }
    }

    #[test]
    fn another_format_is_named() {
        let mut bytes = sample();
        bytes[8] = 9;
        let e = read_all(&bytes).unwrap_err();
        assert!(e.0.contains("format 9"), "{e}");
        let e = read_all(b"PK\x03\x04 something else").unwrap_err();
        assert!(e.0.contains("not a backup archive"), "{e}");
    }
}
