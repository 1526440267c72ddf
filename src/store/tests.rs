//! Unit tests of the store against a real sled database in a temp directory.

use super::*;
use std::time::Duration;

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z, a round starting point for simulated time.
const T0: i64 = 1_767_225_600_000;

fn open(dir: &Path, retention_days: u32) -> Store {
    Store::open(
        dir,
        Layout::new(Duration::from_secs(5), retention_days),
        10_000,
    )
    .expect("open store")
}

fn series(store: &Store, name: &str) -> SeriesId {
    store.resolve(&SeriesKey::new(name)).expect("resolve")
}

fn put(store: &Store, id: SeriesId, points: &[(i64, f64)]) -> IngestReport {
    let samples: Vec<Sample> = points
        .iter()
        .map(|&(ts_ms, value)| Sample {
            series: id,
            ts_ms,
            value,
        })
        .collect();
    store.ingest(&samples).expect("ingest")
}

#[test]
fn aggregates_merge_across_slot_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 30);
    let id = series(&s, "cpu_usage");
    // Two samples a minute for 10 minutes: values 0..20.
    let pts: Vec<(i64, f64)> = (0..20).map(|i| (T0 + i * 30_000, i as f64)).collect();
    put(&s, id, &pts);
    let q = s.query(id, T0, T0 + 10 * MIN, 5 * MIN).unwrap();
    assert_eq!(q.tier, "1m");
    assert_eq!(q.step_ms, 5 * MIN);
    assert_eq!(q.points.len(), 2);
    let a = q.points[0].1.unwrap();
    assert_eq!(
        (a.count, a.sum, a.min, a.max, a.last),
        (10, 45.0, 0.0, 9.0, 9.0)
    );
    let b = q.points[1].1.unwrap();
    assert_eq!((b.count, b.min, b.max, b.last), (10, 10.0, 19.0, 19.0));
    // The hour tier holds the same totals.
    let h = s.query(id, T0, T0 + HOUR, HOUR).unwrap();
    assert_eq!(h.tier, "1h");
    let t = h.points[0].1.unwrap();
    assert_eq!((t.count, t.sum, t.min, t.max), (20, 190.0, 0.0, 19.0));
}

#[test]
fn gaps_are_none_never_zero() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 30);
    let id = series(&s, "gappy");
    put(&s, id, &[(T0, 1.0), (T0 + 3 * MIN, 3.0)]);
    let v = s
        .query(id, T0, T0 + 4 * MIN, MIN)
        .unwrap()
        .values(Aggregation::Avg);
    assert_eq!(
        v,
        vec![
            (T0, Some(1.0)),
            (T0 + MIN, None),
            (T0 + 2 * MIN, None),
            (T0 + 3 * MIN, Some(3.0))
        ]
    );
}

#[test]
fn raw_tier_is_chosen_for_fine_steps_and_keeps_the_last_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 30);
    let id = series(&s, "dup");
    put(&s, id, &[(T0, 1.0), (T0, 2.0), (T0 + 5_000, 7.0)]);
    let q = s.query(id, T0, T0 + 15_000, 5_000).unwrap();
    assert_eq!(q.tier, "raw");
    assert_eq!(
        q.values(Aggregation::Last),
        vec![
            (T0, Some(2.0)),
            (T0 + 5_000, Some(7.0)),
            (T0 + 10_000, None)
        ]
    );
    // The minute tier counts both duplicates: aggregates keep every sample.
    let m = s.query(id, T0, T0 + MIN, MIN).unwrap().points[0].1.unwrap();
    assert_eq!(m.count, 3);
}

#[test]
fn out_of_order_samples_land_in_their_slot() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 30);
    let id = series(&s, "ooo");
    put(
        &s,
        id,
        &[
            (T0 + 2 * HOUR, 5.0),
            (T0 + 10 * MIN, 1.0),
            (T0 + 70 * MIN, 2.0),
        ],
    );
    let v = s
        .query(id, T0, T0 + 3 * HOUR, HOUR)
        .unwrap()
        .values(Aggregation::Sum);
    assert_eq!(
        v,
        vec![
            (T0, Some(1.0)),
            (T0 + HOUR, Some(2.0)),
            (T0 + 2 * HOUR, Some(5.0))
        ]
    );
    let raw = s
        .query(id, T0 + 10 * MIN, T0 + 10 * MIN + 5_000, 5_000)
        .unwrap();
    assert_eq!(
        raw.values(Aggregation::Last),
        vec![(T0 + 10 * MIN, Some(1.0))]
    );
}

#[test]
fn wrap_around_overwrites_old_laps_and_late_samples_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 3);
    let id = series(&s, "wrap");
    put(&s, id, &[(T0, 1.0)]);
    // Nine days later the hour ring (3 days) has wrapped over T0's block
    // three times, and T0 is older than the 7-day minute tier too.
    put(&s, id, &[(T0 + 9 * DAY, 4.0)]);
    let old = s.query(id, T0, T0 + HOUR, HOUR).unwrap();
    assert_eq!(old.points[0].1, None, "the old lap is gone, not mixed in");
    let new = s
        .query(id, T0 + 9 * DAY, T0 + 9 * DAY + HOUR, HOUR)
        .unwrap();
    assert_eq!(new.points[0].1.map(|a| a.last), Some(4.0));
    // A sample from the overwritten lap is older than every window: dropped, no error.
    let r = put(&s, id, &[(T0 + 30 * MIN, 9.0)]);
    assert_eq!(
        r,
        IngestReport {
            stored: 0,
            dropped: 1
        }
    );
    assert_eq!(s.stats().samples_dropped, 1);
    assert_eq!(s.stats().late_per_tier, [1, 1, 1]);
}

#[test]
fn data_survives_reopen_and_series_ids_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b);
    {
        let s = open(dir.path(), 30);
        a = series(&s, "a");
        b = s
            .resolve(&SeriesKey::new("b").with("service", "x"))
            .unwrap();
        put(&s, b, &[(T0, 42.0)]);
        s.flush().unwrap();
    }
    let s = open(dir.path(), 30);
    assert_eq!(s.lookup(&SeriesKey::new("a")), Some(a));
    assert_eq!(s.lookup(&SeriesKey::new("b").with("service", "x")), Some(b));
    assert_eq!(
        s.query(b, T0, T0 + MIN, MIN).unwrap().points[0]
            .1
            .map(|a| a.sum),
        Some(42.0)
    );
    assert_eq!(s.find(Some("b"), &[("service", "x")]).len(), 1);
    assert_eq!(s.find(None, &[("service", "y")]).len(), 0);
}

#[test]
fn retention_change_keeps_what_still_fits() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let s = open(dir.path(), 30);
        id = series(&s, "shrink");
        // One sample a day for 20 days, the last one is the newest.
        let pts: Vec<(i64, f64)> = (0..20).map(|d| (T0 + d * DAY, d as f64)).collect();
        put(&s, id, &pts);
        s.flush().unwrap();
    }
    {
        let s = open(dir.path(), 5);
        let v = s
            .query(id, T0, T0 + 20 * DAY, DAY)
            .unwrap()
            .values(Aggregation::Last);
        let kept: Vec<f64> = v.iter().filter_map(|(_, x)| *x).collect();
        assert_eq!(
            kept,
            vec![15.0, 16.0, 17.0, 18.0, 19.0],
            "the newest 5 days stay"
        );
    }
    // Growing again keeps them all and makes room for more.
    let s = open(dir.path(), 30);
    let v = s
        .query(id, T0, T0 + 20 * DAY, DAY)
        .unwrap()
        .values(Aggregation::Last);
    assert_eq!(v.iter().filter(|(_, x)| x.is_some()).count(), 5);
    put(&s, id, &[(T0 + 2 * DAY, 2.0)]);
    let v = s
        .query(id, T0, T0 + 20 * DAY, DAY)
        .unwrap()
        .values(Aggregation::Last);
    assert_eq!(v.iter().filter(|(_, x)| x.is_some()).count(), 6);
}

#[test]
fn raw_step_change_re_slots_raw_samples() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let s = open(dir.path(), 30);
        id = series(&s, "restep");
        put(&s, id, &[(T0, 1.0), (T0 + 5_000, 2.0), (T0 + 10_000, 3.0)]);
        s.flush().unwrap();
    }
    let s = Store::open(dir.path(), Layout::new(Duration::from_secs(10), 30), 10_000).unwrap();
    let v = s
        .query(id, T0, T0 + 20_000, 10_000)
        .unwrap()
        .values(Aggregation::Last);
    assert_eq!(v, vec![(T0, Some(2.0)), (T0 + 10_000, Some(3.0))]);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path(), 30);
    match Store::open(dir.path(), Layout::new(Duration::from_secs(5), 30), 10) {
        Err(Error::DataDirInUse(p)) => assert_eq!(p, dir.path()),
        other => panic!("expected DataDirInUse, got {:?}", other.map(|_| ())),
    }
}

/// The store's trees by name: a tier's blocks, the log, the open blocks.
fn trees(s: &Store, name: &str) -> Vec<sled::Tree> {
    let disk = &s.inner.disk;
    match name {
        "blocks" => disk.tiers.iter().map(|t| t.raw().clone()).collect(),
        "wal" => vec![disk.log.lock().wal.raw().clone()],
        other => vec![s.tree(other).unwrap().raw().clone()],
    }
}

/// Flips one byte in the middle of every value of `tree`.
fn damage(s: &Store, tree: &str) -> usize {
    let mut n = 0;
    for t in trees(s, tree) {
        for kv in t.iter() {
            let (k, v) = kv.unwrap();
            if v.is_empty() {
                // The log's spacers hold nothing.
                continue;
            }
            let mut bad = v.to_vec();
            let i = bad.len() / 2;
            bad[i] ^= 0x5a;
            t.insert(k, bad).unwrap();
            n += 1;
        }
        t.flush().unwrap();
    }
    n
}

/// Flips one byte in the middle of every block of the checkpoint file.
fn damage_checkpoint(dir: &Path) -> usize {
    let spans = super::checkpoint::block_spans(dir);
    let path = super::checkpoint::path(dir);
    let mut bytes = std::fs::read(&path).unwrap();
    for (at, len) in &spans {
        bytes[at + len / 2] ^= 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    spans.len()
}

#[test]
fn damaged_blocks_are_counted_and_read_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let s = open(dir.path(), 30);
        id = series(&s, "c");
        // The minute block of T0's hour is sealed by the sample two hours on.
        put(&s, id, &[(T0, 1.0), (T0 + 2 * HOUR, 2.0)]);
        s.checkpoint().unwrap();
        assert!(damage(&s, "blocks") >= 2);
    }
    assert!(damage_checkpoint(dir.path()) >= 2);
    let s = open(dir.path(), 30);
    assert_eq!(s.query(id, T0, T0 + MIN, MIN).unwrap().points[0].1, None);
    assert_eq!(
        s.query(id, T0 + 2 * HOUR, T0 + 2 * HOUR + MIN, MIN)
            .unwrap()
            .points[0]
            .1,
        None
    );
    assert!(s.stats().corrupt_blocks >= 2, "{:?}", s.stats());
    // The store keeps working and a new write replaces a damaged block.
    put(&s, id, &[(T0 + 2 * HOUR + 5_000, 7.0)]);
    s.flush().unwrap();
    let a = s
        .query(id, T0 + 2 * HOUR, T0 + 2 * HOUR + MIN, MIN)
        .unwrap()
        .points[0]
        .1
        .unwrap();
    assert_eq!((a.count, a.last), (1, 7.0));
}

#[test]
fn a_damaged_log_record_is_counted_and_the_rest_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let s = open(dir.path(), 30);
        id = series(&s, "w");
        put(&s, id, &[(T0, 1.0)]);
        s.flush().unwrap();
        put(&s, id, &[(T0 + 5_000, 2.0)]);
        s.flush().unwrap();
        // Damage only the first record.
        let t = &trees(&s, "wal")[0];
        let k = wal::slot_key(0);
        let mut v = t.get(k).unwrap().unwrap().to_vec();
        v[9] ^= 1;
        t.insert(k, v).unwrap();
        t.flush().unwrap();
    }
    let s = open(dir.path(), 30);
    assert_eq!(s.stats().corrupt_records, 1);
    let a = s.query(id, T0, T0 + MIN, MIN).unwrap().points[0].1.unwrap();
    assert_eq!((a.count, a.last), (1, 2.0), "the second record replayed");
}

#[test]
fn replay_after_a_crash_counts_every_sample_once() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let s = open(dir.path(), 30);
        id = series(&s, "r");
        // Before a checkpoint, between checkpoint and crash, and across a
        // block boundary that seals blocks whose samples are also in the log.
        put(&s, id, &[(T0, 1.0), (T0 + 5_000, 1.0)]);
        s.checkpoint().unwrap();
        put(&s, id, &[(T0 + 10_000, 1.0)]);
        s.flush().unwrap();
        put(&s, id, &[(T0 + 65 * MIN, 1.0)]);
        s.flush().unwrap();
        put(&s, id, &[(T0 + 15_000, 1.0)]); // late, into a sealed block
        s.flush().unwrap();
        // Dropped without a checkpoint: the log holds three records.
    }
    for _ in 0..2 {
        let s = open(dir.path(), 30);
        let h = s.query(id, T0, T0 + 2 * HOUR, HOUR).unwrap();
        let counts: Vec<Option<u32>> = h.points.iter().map(|(_, a)| a.map(|a| a.count)).collect();
        assert_eq!(counts, vec![Some(4), Some(1)]);
        let m = s.query(id, T0, T0 + MIN, MIN).unwrap().points[0].1.unwrap();
        assert_eq!((m.count, m.sum), (4, 4.0));
        let raw = s.query(id, T0, T0 + 20_000, 5_000).unwrap();
        assert_eq!(raw.points.iter().filter(|(_, a)| a.is_some()).count(), 4);
    }
}

#[test]
fn series_cap_refuses_new_series_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), Layout::new(Duration::from_secs(5), 30), 2).unwrap();
    series(&s, "one");
    let keys = [
        SeriesKey::new("one"),
        SeriesKey::new("two"),
        SeriesKey::new("three"),
    ];
    assert!(matches!(s.resolve_all(&keys), Err(Error::Capacity(_))));
    assert_eq!(s.stats().series, 1, "nothing registered by a refused batch");
    assert_eq!(s.resolve_all(&keys[..2]).unwrap(), vec![0, 1]);
}

#[test]
fn unflushed_writes_are_visible_to_queries() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 30);
    let id = series(&s, "hot");
    put(&s, id, &[(T0, 3.0)]);
    assert_eq!(s.latest(id, T0 + 1_000).unwrap(), Some((T0, 3.0)));
}

#[test]
fn histogram_series_merge_across_tiers_and_survive_migration() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let s = open(dir.path(), 30);
        id = s
            .resolve_hist(&SeriesKey::new("requests").with("service", "api"))
            .unwrap();
        assert!(s.is_hist(id));
        // A gauge write to a histogram series name is refused.
        assert!(
            s.resolve(&SeriesKey::new("requests").with("service", "api"))
                .is_err()
        );
        let mut samples = Vec::new();
        for i in 0..600i64 {
            samples.push(HistSample {
                series: id,
                ts_ms: T0 + i * 6_000,
                hist: Hist::of((i % 100 + 1) as f64, 1, u64::from(i % 10 == 0)),
            });
        }
        s.ingest_hist(&samples).unwrap();
        // One hour at 1 h step, one hour at 1 m step merged, and raw: the same totals.
        let h = s
            .query_hist(id, T0, T0 + HOUR, HOUR)
            .unwrap()
            .total()
            .unwrap();
        let m = s
            .query_hist(id, T0, T0 + HOUR, MIN)
            .unwrap()
            .total()
            .unwrap();
        assert_eq!((h.count, h.errors), (600, 60));
        assert_eq!(h, m);
        assert_eq!(s.query_hist(id, T0, T0 + HOUR, MIN).unwrap().tier, "1m");
        let p99 = h.quantile(0.99).unwrap();
        assert!((p99 - 99.0).abs() / 99.0 <= 0.01, "{p99}");
        // The gauge view of a histogram series is its latency statistics.
        let a = s.query(id, T0, T0 + HOUR, HOUR).unwrap().points[0]
            .1
            .unwrap();
        assert_eq!((a.count, a.min, a.max), (600, 1.0, 100.0));
        s.flush().unwrap();
    }
    // A retention change re-slots histograms too.
    let s = open(dir.path(), 7);
    assert!(s.is_hist(id));
    let h = s
        .query_hist(id, T0, T0 + HOUR, HOUR)
        .unwrap()
        .total()
        .unwrap();
    assert_eq!((h.count, h.errors), (600, 60));
}

#[test]
fn the_read_cache_never_serves_a_block_older_than_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let s = open(dir.path(), 30);
        id = series(&s, "cold");
        put(&s, id, &[(T0, 1.0)]);
        s.flush().unwrap();
    }
    let s = open(dir.path(), 30);
    // A query loads the cold block into the read cache ...
    assert_eq!(
        s.query(id, T0, T0 + MIN, MIN).unwrap().points[0]
            .1
            .map(|a| a.count),
        Some(1)
    );
    // ... a write to the same block must be visible to the next query.
    put(&s, id, &[(T0 + 1_000, 3.0)]);
    let a = s.query(id, T0, T0 + MIN, MIN).unwrap().points[0].1.unwrap();
    assert_eq!((a.count, a.sum), (2, 4.0));
    // And after the write cache lets it go, the read path still sees it.
    for _ in 0..12 {
        s.flush().unwrap();
    }
    let a = s.query(id, T0, T0 + MIN, MIN).unwrap().points[0].1.unwrap();
    assert_eq!((a.count, a.sum), (2, 4.0));
}

/// A data directory as the first release wrote it: blocks are bincode of
/// the decoded block after version byte 1, no log, no `format` key.
#[test]
fn a_format_1_directory_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new(Duration::from_secs(5), 30);
    {
        let db = sled::Config::new()
            .path(dir.path().join("db"))
            .open()
            .unwrap();
        let series = db.open_tree("series").unwrap();
        series.insert(0u32.to_be_bytes(), &b"ggold{}"[..]).unwrap();
        let blocks = db.open_tree("blocks").unwrap();
        for spec in &layout.tiers {
            let slot = spec.slot_of(T0);
            let base = spec.block_base(slot);
            let mut b = ring::Block::empty(spec, base, false);
            b.apply(spec, base, slot, T0, 2.5);
            b.apply(spec, base, slot, T0 + 1_000, 3.5);
            blocks
                .insert(
                    keys::block_key(0, spec.id, spec.position(base)),
                    codec::encode(&b),
                )
                .unwrap();
        }
        db.open_tree("meta")
            .unwrap()
            .insert("layout", codec::encode(&layout))
            .unwrap();
        db.flush().unwrap();
    }
    let s = open(dir.path(), 30);
    let id = s.lookup(&SeriesKey::new("gold")).unwrap();
    let a = s.query(id, T0, T0 + MIN, MIN).unwrap().points[0].1.unwrap();
    assert_eq!((a.count, a.sum, a.last), (2, 6.0, 3.5));
    let raw = s.query(id, T0, T0 + 5_000, 5_000).unwrap().points[0]
        .1
        .unwrap();
    assert_eq!(raw.last, 3.5);
    assert!(
        s.tree("blocks").unwrap().raw().is_empty(),
        "moved out of the main database"
    );
    let moved: usize = trees(&s, "blocks")
        .iter()
        .map(|t| {
            for kv in t.iter() {
                assert_eq!(kv.unwrap().1[0], 2, "re-encoded in block format 2");
            }
            t.len()
        })
        .sum();
    assert!(moved >= 3, "{moved}");
    // The partial blocks of the old release go on filling.
    put(&s, id, &[(T0 + 2_000, 4.0)]);
    let a = s.query(id, T0, T0 + HOUR, HOUR).unwrap().points[0]
        .1
        .unwrap();
    assert_eq!((a.count, a.sum), (3, 10.0));
    s.flush().unwrap();
    drop(s);
    let s = open(dir.path(), 30);
    let a = s.query(id, T0, T0 + HOUR, HOUR).unwrap().points[0]
        .1
        .unwrap();
    assert_eq!((a.count, a.sum), (3, 10.0));
}

#[test]
fn quiet_series_leave_memory_at_a_checkpoint_and_come_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 30);
    let id = series(&s, "quiet");
    put(&s, id, &[(T0, 1.0), (T0 + 5_000, 2.0)]);
    s.checkpoint().unwrap();
    assert_eq!(s.stats().open_blocks, 3, "one open block per tier");
    // Nothing new since the last checkpoint: the next one seals them all.
    s.checkpoint().unwrap();
    assert_eq!(s.stats().open_blocks, 0, "{:?}", s.stats());
    let a = s.query(id, T0, T0 + MIN, MIN).unwrap().points[0].1.unwrap();
    assert_eq!((a.count, a.sum), (2, 3.0));
    // A new sample brings the sealed block back and merges into it.
    put(&s, id, &[(T0 + 10_000, 4.0)]);
    assert_eq!(s.stats().open_blocks, 3);
    let a = s.query(id, T0, T0 + MIN, MIN).unwrap().points[0].1.unwrap();
    assert_eq!((a.count, a.sum, a.max), (3, 7.0, 4.0));
    let raw = s.query(id, T0, T0 + 15_000, 5_000).unwrap();
    assert_eq!(raw.points.iter().filter(|(_, a)| a.is_some()).count(), 3);
    // And it all survives a restart.
    s.flush().unwrap();
    drop(s);
    let s = open(dir.path(), 30);
    let h = s.query(id, T0, T0 + HOUR, HOUR).unwrap().points[0]
        .1
        .unwrap();
    assert_eq!((h.count, h.sum), (3, 7.0));
}

/// Store format 3 kept the checkpoint in the log database (`open` tree,
/// `meta/checkpoint`). Rebuilt here from a checkpoint file: the first start
/// reads it, replays the log after it, and moves it to the file.
#[test]
fn a_checkpoint_kept_in_sled_is_read_and_moved_to_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let s = open(dir.path(), 30);
        id = series(&s, "legacy");
        put(&s, id, &[(T0, 1.0), (T0 + 5_000, 2.0)]);
        s.checkpoint().unwrap();
        put(&s, id, &[(T0 + 10_000, 4.0)]);
        s.flush().unwrap(); // a log record after the checkpoint
    }
    let read = super::checkpoint::read(dir.path()).unwrap().unwrap();
    assert_eq!(read.entries.len(), 3);
    std::fs::remove_file(super::checkpoint::path(dir.path())).unwrap();
    {
        let log = sled::Config::new()
            .path(dir.path().join("log"))
            .open()
            .unwrap();
        let tree = log.open_tree("open").unwrap();
        for e in &read.entries {
            let mut k = e.series.to_be_bytes().to_vec();
            k.push(e.tier);
            tree.insert(k, e.bytes.as_slice()).unwrap();
        }
        log.open_tree("meta")
            .unwrap()
            .insert("checkpoint", &read.seq.to_le_bytes())
            .unwrap();
        log.flush().unwrap();
    }
    for _ in 0..2 {
        let s = open(dir.path(), 30);
        let a = s.query(id, T0, T0 + MIN, MIN).unwrap().points[0].1.unwrap();
        assert_eq!((a.count, a.sum), (3, 7.0));
        assert!(super::checkpoint::path(dir.path()).exists());
        assert!(
            !s.inner
                .disk
                .log
                .lock()
                .db
                .tree_names()
                .iter()
                .any(|n| n == b"open".as_slice()),
            "the old tree is dropped"
        );
    }
}

/// `resolve_hist` of a known series once held the registry's read lock while
/// taking it again; with a writer waiting between the two (a new series
/// being registered), the second read waited for the writer and the writer
/// for the first read: every ingest and probe stopped for good.
#[test]
fn resolving_known_series_while_new_ones_register_never_deadlocks() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), 1);
    let known = SeriesKey::new("http_requests").with("service", "a");
    store.resolve_hist(&known).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for t in 0..4 {
        let (s, k, done) = (store.clone(), known.clone(), done_tx.clone());
        std::thread::spawn(move || {
            for i in 0..2_000 {
                if t % 2 == 0 {
                    s.resolve_hist(&k).unwrap();
                } else {
                    let fresh = SeriesKey::new("up").with("n", &format!("{t}-{i}"));
                    s.resolve_all(&[fresh]).unwrap();
                }
            }
            let _ = done.send(());
        });
    }
    for _ in 0..4 {
        done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a thread resolving series is stuck: the registry lock deadlocked");
    }
}

/// The size `/health` and `/metrics` report is measured after flushes, off
/// the request path, and follows what was written.
#[test]
fn the_size_on_disk_is_measured_when_asked_not_on_every_read() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), 1);
    let at_open = store.size_on_disk();
    assert!(at_open > 0);
    let id = series(&store, "a");
    let points: Vec<(i64, f64)> = (0..20_000).map(|i| (T0 + i * 5_000, i as f64)).collect();
    put(&store, id, &points);
    store.checkpoint().unwrap();
    assert_eq!(store.size_on_disk(), at_open, "a read walks no directory");
    store.measure_size_on_disk();
    assert!(store.size_on_disk() > at_open);
}

fn open_encrypted(dir: &Path, key: u8) -> Result<Store> {
    Store::open_with(
        dir,
        Layout::new(Duration::from_secs(5), 30),
        10_000,
        SLED_CACHE_BYTES,
        Some(Arc::new(Cipher::new(&[key; 32]))),
    )
}

#[test]
fn with_a_key_every_stored_value_is_encrypted_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (own, other) = (Cipher::new(&[1; 32]), Cipher::new(&[9; 32]));
    let id;
    {
        let s = open_encrypted(dir.path(), 1).unwrap();
        id = series(&s, "tenant_acme_requests");
        // A sealed minute block, a log record and an open block.
        put(&s, id, &[(T0, 1.5), (T0 + 2 * HOUR, 2.5)]);
        s.checkpoint().unwrap();
        put(&s, id, &[(T0 + 2 * HOUR + 5_000, 3.5)]);
        s.flush().unwrap();
        let t = s.tree("alerts").unwrap();
        t.insert("a1", "cpu high on acme").unwrap();
        let mut seen = 0;
        let labels = [
            "raw/blocks",
            "1m/blocks",
            "1h/blocks",
            "log/wal",
            "db/series",
            "db/alerts",
        ];
        let all = ["blocks", "wal", "series", "alerts"]
            .iter()
            .flat_map(|n| trees(&s, n));
        for (label, tree) in labels.iter().zip(all) {
            for kv in tree.iter() {
                let (k, v) = kv.unwrap();
                if v.is_empty() && *label == "log/wal" {
                    // The log's spacers: empty, holding nothing.
                    continue;
                }
                assert!(!v.windows(4).any(|w| w == b"acme"), "{label}: clear text");
                // Encrypted for its place, with this key only.
                let place = [label.as_bytes(), b"\0", &k].concat();
                assert!(own.decrypt(&v, &place).is_ok(), "{label}");
                assert!(other.decrypt(&v, &place).is_err(), "{label}");
                seen += 1;
            }
        }
        assert!(seen >= 5, "{seen}");
        let file = std::fs::read(checkpoint::path(dir.path())).unwrap();
        assert!(!file.windows(4).any(|w| w == b"acme"));
    }
    // Read back with the key, from sealed blocks, the checkpoint and the log.
    let s = open_encrypted(dir.path(), 1).unwrap();
    assert_eq!(
        s.resolve(&SeriesKey::new("tenant_acme_requests")).unwrap(),
        id
    );
    let a = s.query(id, T0, T0 + MIN, MIN).unwrap().points[0].1.unwrap();
    assert_eq!((a.count, a.last), (1, 1.5));
    let b = s
        .query(id, T0 + 2 * HOUR, T0 + 2 * HOUR + MIN, MIN)
        .unwrap()
        .points[0]
        .1
        .unwrap();
    assert_eq!((b.count, b.last), (2, 3.5));
    assert_eq!(
        s.tree("alerts").unwrap().get("a1").unwrap().unwrap(),
        "cpu high on acme"
    );
    assert_eq!(s.stats().corrupt_blocks + s.stats().corrupt_records, 0);
    drop(s);
    std::thread::sleep(Duration::from_millis(200));
    // Another key, or none, is refused before anything is read.
    let e = open_encrypted(dir.path(), 2).err().unwrap().to_string();
    assert!(e.contains("another key"), "{e}");
    let e = Store::open(dir.path(), Layout::new(Duration::from_secs(5), 30), 10)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is encrypted"), "{e}");
}

#[test]
fn a_key_for_a_clear_directory_is_refused_and_damage_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), 30));
    std::thread::sleep(Duration::from_millis(200));
    let e = open_encrypted(dir.path(), 1).err().unwrap().to_string();
    assert!(e.contains("created without encryption"), "{e}");
    // An encrypted block or checkpoint entry that is altered reads as
    // empty, counted, like any damaged block.
    let dir = tempfile::tempdir().unwrap();
    let id;
    {
        let s = open_encrypted(dir.path(), 1).unwrap();
        id = series(&s, "c");
        put(&s, id, &[(T0, 1.0), (T0 + 2 * HOUR, 2.0)]);
        s.checkpoint().unwrap();
        assert!(damage(&s, "blocks") >= 2);
    }
    assert!(damage_checkpoint(dir.path()) >= 2);
    let s = open_encrypted(dir.path(), 1).unwrap();
    assert_eq!(s.query(id, T0, T0 + MIN, MIN).unwrap().points[0].1, None);
    assert!(s.stats().corrupt_blocks >= 2, "{:?}", s.stats());
}

#[test]
fn the_log_keeps_spacers_between_records_written_once_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let spaced;
    {
        let s = open(dir.path(), 30);
        let id = series(&s, "spaced");
        for i in 0..3 {
            put(&s, id, &[(T0 + i * 5_000, i as f64)]);
            s.flush().unwrap();
        }
        spaced = s.inner.spaced_slots.load(Ordering::Relaxed);
        assert_eq!(spaced, 1 + wal::SPACED_AHEAD);
        let log_db = s.inner.disk.log.lock();
        let wal = log_db.wal.raw();
        // Each record's slot key, then its empty spacers, then the next.
        let keys: Vec<Vec<u8>> = wal
            .iter()
            .keys()
            .take(8)
            .map(|k| k.unwrap().to_vec())
            .collect();
        assert_eq!(keys[0], wal::slot_key(0));
        for (k, spacer) in keys[1..4].iter().zip(wal::spacer_keys(0)) {
            assert_eq!(k.as_slice(), spacer);
            assert!(wal.get(k).unwrap().unwrap().is_empty());
        }
        assert_eq!(keys[4], wal::slot_key(1));
        assert_eq!(wal::spaced_slots(wal).unwrap(), spaced);
    }
    // Reopened: the records replay past the spacers, and the checkpoint
    // after the replay leaves a fresh, empty log database.
    let s = open(dir.path(), 30);
    assert_eq!(s.inner.spaced_slots.load(Ordering::Relaxed), 0);
    assert!(s.inner.disk.log.lock().wal.raw().is_empty());
    assert!(!dir.path().join("log.old").exists());
    let id = series(&s, "spaced");
    let q = s.query(id, T0, T0 + 15_000, 5_000).unwrap();
    let values: Vec<f64> = q.points.iter().map(|p| p.1.unwrap().last).collect();
    assert_eq!(values, [0.0, 1.0, 2.0]);
}

/// A checkpoint leaves a fresh, empty log database; records after it go
/// there. A crash while the log is being renewed (the old database renamed
/// to `log.old`, no new one yet) loses nothing, and the leftover goes.
#[test]
fn a_checkpoint_renews_the_log_database_and_a_crash_part_way_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let values = |s: &Store, id| -> Vec<f64> {
        let q = s.query(id, T0, T0 + 25_000, 5_000).unwrap();
        q.points
            .iter()
            .filter_map(|p| p.1.map(|a| a.last))
            .collect()
    };
    {
        let s = open(dir.path(), 30);
        let id = series(&s, "renewed");
        for i in 0..3 {
            put(&s, id, &[(T0 + i * 5_000, i as f64)]);
            s.flush().unwrap();
        }
        assert!(!s.inner.disk.log.lock().wal.raw().is_empty());
        s.checkpoint().unwrap();
        assert!(s.inner.disk.log.lock().wal.raw().is_empty());
        assert!(!dir.path().join("log.old").exists());
        for i in 3..5 {
            put(&s, id, &[(T0 + i * 5_000, i as f64)]);
            s.flush().unwrap();
        }
        assert!(!s.inner.disk.log.lock().wal.raw().is_empty());
        // Dropped without a checkpoint: as a crash after the flush.
    }
    {
        let s = open(dir.path(), 30);
        let id = series(&s, "renewed");
        assert_eq!(values(&s, id), [0.0, 1.0, 2.0, 3.0, 4.0]);
    }
    // The recovery above ended with a checkpoint: a crash just after it
    // renamed the log away leaves `log.old` and no `log`.
    std::fs::rename(dir.path().join("log"), dir.path().join("log.old")).unwrap();
    let s = open(dir.path(), 30);
    let id = series(&s, "renewed");
    assert_eq!(values(&s, id), [0.0, 1.0, 2.0, 3.0, 4.0]);
    assert!(!dir.path().join("log.old").exists());
    assert!(dir.path().join("log").is_dir());
}
