//! The durable queue of one remote-write destination: compressed batches in
//! a sled tree at fixed ring keys (sled never gives back the space of
//! deleted keys, so positions wrap and overwrite; nothing is ever removed),
//! with the positions of the next batch to write (`head`) and to send
//! (`tail`) at two fixed keys. Bounded by bytes (the oldest batches go
//! first) and by age (a batch older than the limit is dropped unsent);
//! both are counted in samples.

use std::time::Duration;

/// Ring positions: more batches than this wait only if each is tiny.
const SLOTS: u64 = 65_536;
const HEAD: &[u8] = b"head";
const TAIL: &[u8] = b"tail";
/// A batch's header: when it was made (ms) and how many samples it holds.
const HEADER: usize = 12;

/// Samples dropped, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub age: u64,
    pub full: u64,
    pub rejected: u64,
}

pub struct Queue {
    tree: crate::store::Vault,
    head: u64,
    tail: u64,
    bytes: u64,
    max_bytes: u64,
    max_age_ms: i64,
    pub dropped: Dropped,
}

fn slot(pos: u64) -> [u8; 8] {
    (pos % SLOTS).to_be_bytes()
}

fn position(tree: &crate::store::Vault, key: &[u8]) -> sled::Result<u64> {
    Ok(tree
        .get(key)?
        .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0))
}

/// A batch waiting: its position, age and content.
pub struct Batch {
    pub pos: u64,
    pub samples: u64,
    pub body: Vec<u8>,
}

impl Queue {
    pub fn open(
        tree: crate::store::Vault,
        max_bytes: u64,
        max_age: Duration,
    ) -> sled::Result<Queue> {
        let head = position(&tree, HEAD)?;
        let tail = position(&tree, TAIL)?.min(head);
        let mut bytes = 0;
        for pos in tail..head {
            if let Some(v) = tree.get(slot(pos))? {
                bytes += v.len() as u64;
            }
        }
        Ok(Queue {
            tree,
            head,
            tail,
            bytes,
            max_bytes,
            max_age_ms: max_age.as_millis() as i64,
            dropped: Dropped::default(),
        })
    }

    /// Batches and bytes waiting.
    pub fn waiting(&self) -> (u64, u64) {
        (self.head - self.tail, self.bytes)
    }

    fn samples_at(&self, pos: u64) -> sled::Result<(u64, u64, i64)> {
        Ok(match self.tree.get(slot(pos))? {
            Some(v) if v.len() >= HEADER => {
                let made = i64::from_be_bytes(v[..8].try_into().unwrap_or_default());
                let n = u32::from_be_bytes(v[8..12].try_into().unwrap_or_default());
                (n as u64, v.len() as u64, made)
            }
            Some(v) => (0, v.len() as u64, 0),
            None => (0, 0, 0),
        })
    }

    /// Moves the tail past the oldest batch (written with the next change).
    fn drop_oldest(&mut self) -> sled::Result<u64> {
        let (n, size, _) = self.samples_at(self.tail)?;
        self.bytes = self.bytes.saturating_sub(size);
        self.tail += 1;
        Ok(n)
    }

    /// Adds a batch of `samples` made at `now_ms`, dropping the oldest to
    /// stay within the bounds. Durable once the tree's database is flushed.
    pub fn push(&mut self, body: &[u8], samples: u64, now_ms: i64) -> sled::Result<()> {
        let size = (HEADER + body.len()) as u64;
        while self.tail < self.head
            && (self.bytes + size > self.max_bytes || self.head - self.tail >= SLOTS)
        {
            self.dropped.full += self.drop_oldest()?;
        }
        let mut value = Vec::with_capacity(size as usize);
        value.extend_from_slice(&now_ms.to_be_bytes());
        value.extend_from_slice(&u32::try_from(samples).unwrap_or(u32::MAX).to_be_bytes());
        value.extend_from_slice(body);
        let mut b = crate::store::vault::Batch::default();
        b.insert(&slot(self.head), value);
        b.insert(HEAD, &(self.head + 1).to_be_bytes());
        b.insert(TAIL, &self.tail.to_be_bytes());
        self.tree.apply_batch(b)?;
        self.head += 1;
        self.bytes += size;
        Ok(())
    }

    /// The oldest batch young enough to send at `now_ms` (older ones are
    /// dropped and counted).
    pub fn peek(&mut self, now_ms: i64) -> sled::Result<Option<Batch>> {
        while self.tail < self.head {
            let (n, _, made) = self.samples_at(self.tail)?;
            if now_ms - made > self.max_age_ms {
                self.dropped.age += self.drop_oldest()?;
                self.tree.insert(TAIL, self.tail.to_be_bytes())?;
                continue;
            }
            let Some(v) = self.tree.get(slot(self.tail))? else {
                self.drop_oldest()?;
                continue;
            };
            return Ok(Some(Batch {
                pos: self.tail,
                samples: n,
                body: v.get(HEADER..).unwrap_or_default().to_vec(),
            }));
        }
        Ok(None)
    }

    /// The batch at `pos` is done with (delivered, or refused for good).
    pub fn ack(&mut self, pos: u64) -> sled::Result<()> {
        if pos == self.tail && self.tail < self.head {
            self.drop_oldest()?;
            self.tree.insert(TAIL, self.tail.to_be_bytes())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (sled::Db, crate::store::Vault) {
        let db = sled::Config::new().temporary(true).open().expect("db");
        let t = crate::store::Vault::new(db.open_tree("q").expect("tree"), "db/q", None);
        (db, t)
    }

    #[test]
    fn batches_come_out_in_order_and_survive_a_reopen() {
        let (_db, t) = tree();
        let mut q = Queue::open(t.clone(), 1 << 20, Duration::from_secs(60)).unwrap();
        q.push(b"one", 1, 1_000).unwrap();
        q.push(b"two", 2, 2_000).unwrap();
        let b = q.peek(2_000).unwrap().unwrap();
        assert_eq!((b.body.as_slice(), b.samples), (&b"one"[..], 1));
        q.ack(b.pos).unwrap();
        let mut q = Queue::open(t, 1 << 20, Duration::from_secs(60)).unwrap();
        assert_eq!(q.waiting(), (1, (HEADER + 3) as u64));
        assert_eq!(q.peek(2_000).unwrap().unwrap().body, b"two");
    }

    #[test]
    fn too_old_and_too_many_bytes_are_dropped_and_counted() {
        let (_db, t) = tree();
        let mut q = Queue::open(t, 110, Duration::from_secs(10)).unwrap();
        q.push(&[0; 40], 4, 0).unwrap();
        q.push(&[0; 40], 5, 5_000).unwrap();
        // A third would pass 110 bytes (52 each with its header): the oldest goes.
        q.push(&[0; 40], 6, 6_000).unwrap();
        assert_eq!(q.dropped.full, 4);
        assert_eq!(q.waiting().0, 2);
        // At 15.5 s the batch made at 5 s is past 10 s old.
        let b = q.peek(15_500).unwrap().unwrap();
        assert_eq!((q.dropped.age, b.samples), (5, 6));
    }

    #[test]
    fn positions_wrap_onto_fixed_keys() {
        let (_db, t) = tree();
        let mut q = Queue::open(t.clone(), 1 << 30, Duration::from_secs(60)).unwrap();
        q.head = SLOTS - 1;
        q.tail = SLOTS - 1;
        q.push(b"a", 1, 0).unwrap();
        q.push(b"b", 1, 0).unwrap();
        assert_eq!(t.get(slot(0)).unwrap().unwrap()[HEADER..], *b"b");
        assert_eq!(q.peek(0).unwrap().unwrap().body, b"a");
        // Two positions and two batches: nothing else is ever written.
        assert_eq!(t.raw().len(), 4);
    }
}
