//! The audit trail's hash chain: tamper evidence without a secret.
//!
//! Each record is stored sealed: a format byte, the SHA-256 of the record's
//! encoded bytes, then those bytes. The record itself holds the hash of the
//! record before it (`prev_hash`). So a changed byte shows in the record's
//! own hash, and a record removed, inserted or moved shows as a link that
//! does not hold. Two fixed keys close the ends: `chain:head` is the last
//! record's sequence number and hash (so removing the newest records shows),
//! and `chain:anchor` is where a retention purge cut the oldest ones off (so
//! the first kept record has something to point at). Both are written in the
//! same sled batch as the records they describe.
//!
//! Without a secret anyone who can write the database can rebuild a chain;
//! an exported copy (`GET /audit/export`) or a noted head hash is what such
//! a rewrite would have to match.

use super::AuditRecord;
use crate::store::codec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// What the first record of a trail that was never purged points at.
pub const GENESIS: Hash = [0; 32];

/// The first byte of a sealed record (a plain encoded value starts with
/// the codec's version, 1).
const SEALED: u8 = 2;
const HEAD: &[u8] = b"chain:head";
const ANCHOR: &[u8] = b"chain:anchor";

/// One end of the chain: a record's sequence number and hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub seq: u64,
    pub hash: Hash,
}

impl Link {
    /// Where an empty trail that was never purged stands.
    pub const START: Link = Link {
        seq: 0,
        hash: GENESIS,
    };
}

pub use crate::digest::{hex, sha256};

/// Whether a key of the audit tree is a record's (the rest are the ends).
pub fn is_record_key(k: &[u8]) -> bool {
    k.len() == 8
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Seals `rec` (its `prev_hash` already set) and adds it and the new head
/// to `batch`; returns the record with its `hash` filled in.
pub fn append(batch: &mut crate::store::vault::Batch, mut rec: AuditRecord) -> AuditRecord {
    let body = codec::encode(&rec);
    rec.hash = sha256(&body);
    let mut value = Vec::with_capacity(1 + 32 + body.len());
    value.push(SEALED);
    value.extend_from_slice(&rec.hash);
    value.extend_from_slice(&body);
    batch.insert(&key(rec.seq), value);
    let head = Link {
        seq: rec.seq,
        hash: rec.hash,
    };
    batch.insert(HEAD, codec::encode(&head));
    rec
}

/// Adds the removal of `purged` (the oldest records, in order) to `batch`
/// and moves the anchor to the last of them; returns the new anchor.
pub fn cut(batch: &mut crate::store::vault::Batch, purged: &[AuditRecord]) -> Option<Link> {
    let last = purged.last()?;
    for r in purged {
        batch.remove(&key(r.seq));
    }
    let anchor = Link {
        seq: last.seq,
        hash: last.hash,
    };
    batch.insert(ANCHOR, codec::encode(&anchor));
    Some(anchor)
}

/// A stored record: its claimed hash checked against its bytes.
fn unseal(v: &[u8]) -> Result<AuditRecord, String> {
    match v.split_first() {
        Some((&SEALED, rest)) if rest.len() > 32 => {
            let (claimed, body) = rest.split_at(32);
            if sha256(body) != claimed {
                return Err("its content does not match its hash (the record was altered)".into());
            }
            let mut rec: AuditRecord =
                codec::decode(body).map_err(|e| format!("hash holds but {e}"))?;
            rec.hash.copy_from_slice(claimed);
            Ok(rec)
        }
        _ => Err("not a sealed audit record (altered or from an unknown version)".into()),
    }
}

/// The audit record as it was stored before the chain (no `prev_hash`).
#[derive(Deserialize)]
struct Unchained {
    seq: u64,
    at: chrono::DateTime<chrono::Utc>,
    alert_id: Option<String>,
    action: String,
    actor: String,
    comment: Option<String>,
    details: BTreeMap<String, String>,
}

/// The trail as it is on disk: its records in order and its two ends.
pub struct Loaded {
    pub records: Vec<AuditRecord>,
    /// Where a purge cut off the oldest records (`Link::START` if none did).
    pub anchor: Link,
    /// The last record, or the anchor when there is none.
    pub head: Link,
}

fn link_at(tree: &crate::store::Vault, k: &[u8]) -> Result<Option<Link>, String> {
    match tree.get(k).map_err(|e| e.to_string())? {
        None => Ok(None),
        Some(v) => codec::decode(&v)
            .map(Some)
            .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(k))),
    }
}

/// Loads the trail, sealing it first if it was written before the chain
/// existed (records without a head: one atomic batch).
pub fn load(tree: &crate::store::Vault) -> Result<Loaded, String> {
    let anchor = link_at(tree, ANCHOR)?.unwrap_or(Link::START);
    let head = link_at(tree, HEAD)?;
    let mut records = Vec::new();
    let mut unchained = Vec::new();
    for kv in tree.iter() {
        let (k, v) = kv.map_err(|e| e.to_string())?;
        if !is_record_key(&k) {
            continue;
        }
        if head.is_none() {
            let old: Unchained = codec::decode(&v).map_err(|e| format!("audit record: {e}"))?;
            unchained.push(old);
        } else {
            let seq = u64::from_be_bytes(k.as_ref().try_into().unwrap_or_default());
            records.push(unseal(&v).map_err(|e| format!("audit record {seq}: {e}"))?);
        }
    }
    if unchained.is_empty() {
        let head = head.unwrap_or(anchor);
        return Ok(Loaded {
            records,
            anchor,
            head,
        });
    }
    // A trail from before the chain: seal every record, oldest first.
    let mut batch = crate::store::vault::Batch::default();
    let mut prev = anchor;
    for u in unchained {
        let rec = append(
            &mut batch,
            AuditRecord {
                seq: u.seq,
                at: u.at,
                alert_id: u.alert_id,
                action: u.action,
                actor: u.actor,
                comment: u.comment,
                details: u.details,
                prev_hash: prev.hash,
                hash: GENESIS,
            },
        );
        prev = Link {
            seq: rec.seq,
            hash: rec.hash,
        };
        records.push(rec);
    }
    tree.apply_batch(batch).map_err(|e| e.to_string())?;
    Ok(Loaded {
        records,
        anchor,
        head: prev,
    })
}

/// Verifies the trail of the database in data directory `dir`, offline
/// (the daemon holds the database while it runs).
pub fn verify_dir(
    dir: &std::path::Path,
    cipher: Option<&std::sync::Arc<crate::store::cipher::Cipher>>,
) -> crate::error::Result<Result<Intact, Broken>> {
    let db = crate::store::open_state_db(dir)?;
    let tree = crate::store::state_tree(&db, dir, "audit", cipher)?;
    Ok(verify(&tree))
}

/// What a verification found.
#[derive(Debug, PartialEq, Eq)]
pub struct Intact {
    pub records: u64,
    /// The first and last sequence numbers (none when the trail is empty).
    pub span: Option<(u64, u64)>,
    pub anchor: Link,
    pub head: Link,
}

/// The first place the chain does not hold.
#[derive(Debug, PartialEq, Eq)]
pub struct Broken {
    /// The first broken record (none: the chain's ends themselves).
    pub seq: Option<u64>,
    pub reason: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(s) => write!(f, "record {s}: {}", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// Checks the whole trail in `tree`: every record against its own hash, each
/// link to the one before (from the anchor), and the head against the last.
pub fn verify(tree: &crate::store::Vault) -> Result<Intact, Broken> {
    let ends = |e: String| Broken {
        seq: None,
        reason: e,
    };
    let anchor = link_at(tree, ANCHOR).map_err(ends)?.unwrap_or(Link::START);
    let head = link_at(tree, HEAD).map_err(ends)?;
    let mut prev = anchor;
    let mut count = 0u64;
    let mut first = None;
    for kv in tree.iter() {
        let (k, v) = kv.map_err(|e| ends(e.to_string()))?;
        if !is_record_key(&k) {
            continue;
        }
        let seq = u64::from_be_bytes(k.as_ref().try_into().unwrap_or_default());
        let broken = |reason: String| Broken {
            seq: Some(seq),
            reason,
        };
        let rec = unseal(&v).map_err(broken)?;
        if rec.seq != seq {
            return Err(broken(format!(
                "stored under {seq} but says it is {} (moved)",
                rec.seq
            )));
        }
        if rec.prev_hash != prev.hash {
            let after = if prev == anchor && count == 0 {
                if anchor == Link::START {
                    "the start of the trail".to_string()
                } else {
                    format!("the purge anchor (record {})", anchor.seq)
                }
            } else {
                format!("record {}", prev.seq)
            };
            return Err(broken(format!(
                "does not follow {after}: a record before it was removed, inserted or replaced"
            )));
        }
        first.get_or_insert(seq);
        count += 1;
        prev = Link {
            seq,
            hash: rec.hash,
        };
    }
    match head {
        Some(h) if h == prev => Ok(Intact {
            records: count,
            span: first.map(|f| (f, prev.seq)),
            anchor,
            head: h,
        }),
        None if count == 0 => Ok(Intact {
            records: 0,
            span: None,
            anchor,
            head: anchor,
        }),
        Some(h) => Err(Broken {
            seq: Some(prev.seq.max(h.seq)),
            reason: format!(
                "the head says the last record is {} but the chain ends at {}: records at the end were removed or the head altered",
                h.seq, prev.seq
            ),
        }),
        None => Err(ends("records without a head: the head was removed".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rec(seq: u64, prev: Hash) -> AuditRecord {
        AuditRecord {
            seq,
            at: chrono::Utc
                .timestamp_opt(1_700_000_000 + seq as i64, 0)
                .unwrap(),
            alert_id: Some(format!("a{seq}")),
            action: "fired".into(),
            actor: "system".into(),
            comment: None,
            details: BTreeMap::new(),
            prev_hash: prev,
            hash: GENESIS,
        }
    }

    fn audit_tree(db: &sled::Db) -> crate::store::Vault {
        crate::store::Vault::new(db.open_tree("audit").unwrap(), "db/audit", None)
    }

    fn trail(n: u64) -> (sled::Db, crate::store::Vault, Vec<AuditRecord>) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = audit_tree(&db);
        let mut prev = GENESIS;
        let mut out = Vec::new();
        for seq in 1..=n {
            let mut b = crate::store::vault::Batch::default();
            let r = append(&mut b, rec(seq, prev));
            tree.apply_batch(b).unwrap();
            prev = r.hash;
            out.push(r);
        }
        (db, tree, out)
    }

    #[test]
    fn an_untouched_chain_verifies_and_loads() {
        let (_db, tree, recs) = trail(5);
        let ok = verify(&tree).unwrap();
        assert_eq!(ok.records, 5);
        assert_eq!(ok.span, Some((1, 5)));
        assert_eq!(ok.head.hash, recs[4].hash);
        let loaded = load(&tree).unwrap();
        assert_eq!(loaded.records, recs);
        assert_eq!(loaded.head, ok.head);
    }

    #[test]
    fn every_single_byte_change_is_found_at_that_record() {
        let (_db, tree, _) = trail(4);
        let original = tree.get(key(3)).unwrap().unwrap().to_vec();
        for i in 0..original.len() {
            let mut v = original.clone();
            v[i] ^= 0x01;
            tree.insert(key(3), v).unwrap();
            let err = verify(&tree).unwrap_err();
            assert_eq!(err.seq, Some(3), "byte {i}: {err}");
        }
        tree.insert(key(3), original).unwrap();
        assert!(verify(&tree).is_ok());
    }

    #[test]
    fn removed_records_are_found_at_the_start_middle_and_end() {
        let (_db, tree, _) = trail(4);
        tree.remove(key(2)).unwrap();
        assert_eq!(verify(&tree).unwrap_err().seq, Some(3));

        let (_db, tree, _) = trail(4);
        tree.remove(key(1)).unwrap();
        let err = verify(&tree).unwrap_err();
        assert_eq!(err.seq, Some(2));
        assert!(err.reason.contains("start of the trail"), "{err}");

        let (_db, tree, _) = trail(4);
        tree.remove(key(4)).unwrap();
        let err = verify(&tree).unwrap_err();
        assert!(err.reason.contains("head"), "{err}");
    }

    #[test]
    fn a_purge_keeps_the_rest_verifiable_from_its_anchor() {
        let (_db, tree, recs) = trail(5);
        let mut b = crate::store::vault::Batch::default();
        let anchor = cut(&mut b, &recs[..2]).unwrap();
        tree.apply_batch(b).unwrap();
        let ok = verify(&tree).unwrap();
        assert_eq!((ok.records, ok.span, ok.anchor), (3, Some((3, 5)), anchor));
        // Removing the first kept record as well is not a purge.
        tree.remove(key(3)).unwrap();
        let err = verify(&tree).unwrap_err();
        assert!(err.reason.contains("purge anchor (record 2)"), "{err}");
    }

    #[test]
    fn a_trail_from_before_the_chain_is_sealed_on_load() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = audit_tree(&db);
        #[derive(Serialize)]
        struct Old<'a> {
            seq: u64,
            at: chrono::DateTime<chrono::Utc>,
            alert_id: Option<String>,
            action: &'a str,
            actor: &'a str,
            comment: Option<String>,
            details: BTreeMap<String, String>,
        }
        for seq in 1..=3u64 {
            let old = Old {
                seq,
                at: chrono::Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
                alert_id: None,
                action: "purged",
                actor: "system",
                comment: Some(format!("c{seq}")),
                details: BTreeMap::new(),
            };
            tree.insert(key(seq), codec::encode(&old)).unwrap();
        }
        let loaded = load(&tree).unwrap();
        assert_eq!(loaded.records.len(), 3);
        assert_eq!(loaded.records[2].comment.as_deref(), Some("c3"));
        assert_eq!(loaded.records[1].prev_hash, loaded.records[0].hash);
        assert_eq!(verify(&tree).unwrap().records, 3);
        // Loading again reads the sealed records as they are.
        assert_eq!(load(&tree).unwrap().records, loaded.records);
    }
}
