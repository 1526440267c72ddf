//! The watch: every raw step, each watched series' slots completed since
//! the last round are read from the store and fed to its detectors, one
//! value per slot (a gauge's mean; a request series' rate, error percent
//! and p95), the scores are stored as series and anomalies become events.
//!
//! A series found for the first time (at start, or new) is first replayed
//! from the raw tier (up to `HISTORY` slots) without scores or events, so
//! the detector does not start cold after a restart.

use super::events::{Event, Events};
use super::{Signal, score_key};
use crate::analysis::anomaly::Detector;
use crate::config::anomalies::Selector;
use crate::error::Result;
use crate::shutdown::Shutdown;
use crate::store::{Sample, SeriesId, SeriesKey, Store};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Slots replayed before a newly watched series is scored.
pub const HISTORY: i64 = 2_000;
/// An open event ends at the first slot scoring below this.
pub const CLOSE_BELOW: f64 = 0.99;
/// An open event of a series with no new value for this long ends.
const QUIET_MS: i64 = 10 * 60_000;
/// How often the watched set is looked up again.
const DISCOVER_EVERY_MS: i64 = 60_000;

/// A signal's score series: its key until the store registers it at the
/// first score (whether the store refused it: logged once, tried again
/// each round), then only its id.
enum ScoreSeries {
    Pending { key: SeriesKey, refused: bool },
    Stored(SeriesId),
}

struct Detecting {
    signal: Signal,
    detector: Detector,
    score: ScoreSeries,
    /// The open event, if any (boxed: most signals have none).
    event: Option<Box<Event>>,
    last_fed_ms: i64,
}

/// A watched series. Its key is looked up in the store when an event
/// opens, not held.
struct Watched {
    hist: bool,
    /// The start of the first slot not yet fed.
    next_ms: i64,
    /// Slots before this were history: replayed, not scored.
    live_from_ms: i64,
    signals: Box<[Detecting]>,
}

#[derive(Default)]
struct State {
    series: HashMap<SeriesId, Watched>,
    discovered_ms: Option<i64>,
    /// Series registered when last looked up (new ones are looked up at once).
    discovered_series: usize,
}

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Round {
    pub values: u64,
    pub scores: u64,
    pub events_opened: u64,
    pub events_closed: u64,
}

pub struct Watch {
    store: Store,
    events: Arc<Events>,
    selectors: RwLock<Vec<Selector>>,
    max_signals: usize,
    state: Mutex<State>,
    /// (series, signal) pairs watched, and series left out by the cap:
    /// kept apart so that readers never wait for a round.
    counts: [AtomicUsize; 2],
}

impl Watch {
    pub fn new(
        store: Store,
        events: Arc<Events>,
        selectors: Vec<Selector>,
        max_signals: usize,
    ) -> Watch {
        Watch {
            store,
            events,
            selectors: RwLock::new(selectors),
            max_signals,
            state: Mutex::default(),
            counts: Default::default(),
        }
    }

    pub fn events(&self) -> &Arc<Events> {
        &self.events
    }

    /// Replaces what is watched (a reload); series no longer selected are
    /// dropped at the next round.
    pub fn set_selectors(&self, selectors: Vec<Selector>) {
        *self.selectors.write().unwrap_or_else(|p| p.into_inner()) = selectors;
        self.state().discovered_ms = None;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (series, signals) watched now, and series left out by the cap.
    pub fn watched(&self) -> (usize, usize) {
        (
            self.counts[0].load(Ordering::Relaxed),
            self.counts[1].load(Ordering::Relaxed),
        )
    }

    /// One round at `now_ms`: every slot that ended at least half a step
    /// before it is fed.
    pub fn round(&self, now_ms: i64) -> Result<Round> {
        let step = self.store.layout().raw().step_ms;
        let end = (now_ms - step / 2).div_euclid(step) * step;
        let mut state = self.state();
        let registered = self.store.series_count();
        if state
            .discovered_ms
            .is_none_or(|d| now_ms - d >= DISCOVER_EVERY_MS)
            || registered != state.discovered_series
        {
            self.discover(&mut state, end);
            state.discovered_ms = Some(now_ms);
            state.discovered_series = registered;
        }
        let mut round = Round::default();
        let mut scores: Vec<Sample> = Vec::new();
        let mut changed: Vec<Event> = Vec::new();
        for (id, w) in state.series.iter_mut() {
            let from = w.next_ms.max(end - HISTORY * step);
            if from < end {
                let rows = self.rows(*id, w.hist, from, end, step)?;
                w.next_ms = end;
                for (ts, values) in rows {
                    for (d, v) in w.signals.iter_mut().zip(values) {
                        let Some(v) = v else { continue };
                        round.values += 1;
                        let s = d.detector.step_at(ts, v);
                        d.last_fed_ms = ts;
                        if ts < w.live_from_ms {
                            continue;
                        }
                        if let Some(series) = self.score_id(d) {
                            scores.push(Sample {
                                series,
                                ts_ms: ts,
                                value: s.score,
                            });
                            round.scores += 1;
                        }
                        let key = || self.store.key_of(*id);
                        track_event(&self.events, key, d, ts, v, s, &mut round, &mut changed);
                    }
                }
            }
            for d in &mut w.signals {
                if let Some(e) = &mut d.event
                    && now_ms - d.last_fed_ms > QUIET_MS
                {
                    e.end = DateTime::from_timestamp_millis(d.last_fed_ms + step);
                    changed.push((**e).clone());
                    d.event = None;
                    round.events_closed += 1;
                }
            }
        }
        drop(state);
        if !scores.is_empty()
            && let Err(e) = self.store.ingest(&scores)
        {
            tracing::warn!(error = %e, "anomaly scores not stored");
        }
        if !changed.is_empty() {
            for e in &changed {
                self.events.put(e).map_err(|e| crate::error::Error::Store {
                    dir: self.store.dir().to_path_buf(),
                    message: format!("anomaly events: {e}"),
                })?;
            }
            self.store.sync()?;
        }
        Ok(round)
    }

    /// The id of `d`'s score series, registered the first time (`None`
    /// while the store refuses a new series).
    fn score_id(&self, d: &mut Detecting) -> Option<SeriesId> {
        match &mut d.score {
            ScoreSeries::Stored(id) => Some(*id),
            ScoreSeries::Pending { key, refused } => match self.store.resolve(key) {
                Ok(id) => {
                    d.score = ScoreSeries::Stored(id);
                    Some(id)
                }
                Err(e) => {
                    if !*refused {
                        *refused = true;
                        tracing::warn!(series = %key, error = %e, "anomaly score not stored");
                    }
                    None
                }
            },
        }
    }

    /// Looks the selected series up again: new ones start (with history
    /// replayed), ones no longer selected stop.
    fn discover(&self, state: &mut State, end: i64) {
        let selectors = self
            .selectors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut selected: Vec<(SeriesId, SeriesKey)> = Vec::new();
        for sel in &selectors {
            let equal: Vec<(&str, &str)> = sel
                .labels
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            selected.extend(self.store.find_with(&sel.metric, &equal, |_| true));
        }
        selected.sort_by_key(|(id, _)| *id);
        selected.dedup_by_key(|(id, _)| *id);
        let keep: std::collections::HashSet<SeriesId> =
            selected.iter().map(|(id, _)| *id).collect();
        state.series.retain(|id, _| keep.contains(id));
        let step = self.store.layout().raw().step_ms;
        let history = HISTORY.min(self.store.layout().raw().window_ms() / step);
        let mut left_out = 0;
        let mut watched: usize = state.series.values().map(|w| w.signals.len()).sum();
        for (id, key) in selected {
            if state.series.contains_key(&id) {
                continue;
            }
            let hist = self.store.is_hist(id);
            // A boxed slice: exactly as long as the signals, no spare room.
            let signals: Box<[Detecting]> = Signal::of(hist)
                .iter()
                .filter_map(|s| {
                    Some(Detecting {
                        signal: *s,
                        detector: Detector::new(),
                        score: ScoreSeries::Pending {
                            key: score_key(&key, *s)?,
                            refused: false,
                        },
                        event: None,
                        last_fed_ms: end,
                    })
                })
                .collect();
            if signals.is_empty() {
                continue;
            }
            if watched + signals.len() > self.max_signals {
                left_out += 1;
                continue;
            }
            watched += signals.len();
            state.series.insert(
                id,
                Watched {
                    hist,
                    next_ms: end - history * step,
                    live_from_ms: end,
                    signals,
                },
            );
        }
        let before = self.counts[1].swap(left_out, Ordering::Relaxed);
        if left_out > 0 && left_out != before {
            tracing::warn!(
                left_out,
                max = self.max_signals,
                "ANOMALY_MAX_SERIES reached: some selected series are not watched"
            );
        }
        self.counts[0].store(watched, Ordering::Relaxed);
    }

    /// Per completed slot in `[from, end)`, the value of each signal.
    fn rows(
        &self,
        id: SeriesId,
        hist: bool,
        from: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<(i64, Vec<Option<f64>>)>> {
        if !hist {
            let q = self.store.query(id, from, end, step)?;
            return Ok(q
                .points
                .into_iter()
                .filter_map(|(ts, a)| a.map(|a| (ts, vec![Some(a.avg())])))
                .collect());
        }
        let q = self.store.query_hist(id, from, end, step)?;
        let per_second = 1000.0 / step as f64;
        Ok(q.points
            .into_iter()
            .filter_map(|(ts, h)| {
                h.map(|h| {
                    (
                        ts,
                        vec![
                            Some(h.count as f64 * per_second),
                            h.error_percent(),
                            h.quantile(0.95),
                        ],
                    )
                })
            })
            .collect())
    }
}

/// Opens, raises or closes `d`'s event for the value `v` at `ts`.
#[allow(clippy::too_many_arguments)]
fn track_event(
    events: &Events,
    key: impl FnOnce() -> Option<SeriesKey>,
    d: &mut Detecting,
    ts: i64,
    v: f64,
    s: crate::analysis::anomaly::Step,
    round: &mut Round,
    changed: &mut Vec<Event>,
) {
    let at = DateTime::<Utc>::from_timestamp_millis(ts).unwrap_or_default();
    match &mut d.event {
        None if s.is_anomaly => {
            let Some(key) = key() else { return };
            let e = Event {
                id: events.new_id(),
                metric: key.metric,
                labels: key.labels,
                signal: d.signal.as_str().to_string(),
                start: at,
                end: None,
                peak_score: s.score,
                peak_at: at,
                value: v,
                expected_low: s.expected.map(|r| r.0),
                expected_high: s.expected.map(|r| r.1),
            };
            changed.push(e.clone());
            d.event = Some(Box::new(e));
            round.events_opened += 1;
        }
        None => {}
        Some(e) if s.score < CLOSE_BELOW => {
            e.end = Some(at);
            changed.push((**e).clone());
            d.event = None;
            round.events_closed += 1;
        }
        Some(e) if s.score > e.peak_score => {
            e.peak_score = s.score;
            e.peak_at = at;
            e.value = v;
            e.expected_low = s.expected.map(|r| r.0);
            e.expected_high = s.expected.map(|r| r.1);
            changed.push((**e).clone());
        }
        Some(_) => {}
    }
}

/// Runs a round every raw step until shutdown.
pub async fn run(watch: Arc<Watch>, mut shutdown: Shutdown) {
    let step = std::time::Duration::from_millis(watch.store.layout().raw().step_ms as u64);
    let mut ticker = crate::shutdown::ticker(step);
    while shutdown.tick(&mut ticker).await {
        let w = watch.clone();
        crate::blocking::run("anomaly watch", move || {
            w.round(Utc::now().timestamp_millis())
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Layout;
    use std::time::Duration;

    const T0: i64 = 1_767_225_600_000;
    const STEP: i64 = 5_000;

    fn noise(i: i64) -> f64 {
        crate::analysis::noise(i as u64)
    }

    #[test]
    fn a_spike_becomes_a_scored_event_that_closes_and_history_is_not_scored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Layout::new(Duration::from_secs(5), 30), 1000).unwrap();
        let key = SeriesKey::new("queue_depth").with("service", "api");
        // Two hours of history before the watch starts.
        let put = |i: i64, v: f64| store.record([(key.clone(), T0 + i * STEP, v)]).unwrap();
        for i in 0..1440 {
            put(i, 10.0 + noise(i));
        }
        let events = Arc::new(Events::open(&store).unwrap());
        let sel = vec![Selector {
            metric: "queue_depth".into(),
            labels: vec![],
        }];
        let watch = Watch::new(store.clone(), events.clone(), sel, 100);
        let r = watch.round(T0 + 1440 * STEP + STEP / 2).unwrap();
        assert_eq!(
            (r.values, r.scores),
            (1440, 0),
            "history replayed, not scored"
        );
        assert_eq!(watch.watched(), (1, 0));
        // Live: calm, a spike, calm again.
        for i in 1440..1700 {
            put(i, 10.0 + noise(i) + if i == 1600 { 40.0 } else { 0.0 });
            watch.round(T0 + (i + 1) * STEP + STEP / 2).unwrap();
        }
        let (list, total) = events.list(&Default::default(), 10);
        assert_eq!(total, 1, "{list:?}");
        let e = &list[0];
        assert_eq!(e.start.timestamp_millis(), T0 + 1600 * STEP);
        assert!(e.end.is_some(), "closed once the score fell");
        assert!(e.peak_score >= 0.9999 && e.value > 45.0, "{e:?}");
        let (lo, hi) = (e.expected_low.unwrap(), e.expected_high.unwrap());
        assert!(lo < 10.0 && hi > 10.0 && hi < 20.0, "{lo}..{hi}");
        assert_eq!(e.labels["service"], "api");
        // Scores are stored beside the series, for live slots only.
        let sk = score_key(&key, Signal::Value).unwrap();
        let id = store.lookup(&sk).expect("the score series");
        let q = store.query(id, T0, T0 + 1700 * STEP, STEP).unwrap();
        let scored: Vec<_> = q
            .points
            .iter()
            .filter_map(|(t, a)| a.map(|a| (*t, a.last)))
            .collect();
        assert_eq!(scored.first().unwrap().0, T0 + 1440 * STEP);
        assert_eq!(scored.len(), 260);
        let peak = scored
            .iter()
            .find(|(t, _)| *t == T0 + 1600 * STEP)
            .unwrap()
            .1;
        assert!(peak >= 0.9999, "{peak}");
    }

    #[test]
    fn request_series_give_three_signals_and_the_cap_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Layout::new(Duration::from_secs(5), 30), 1000).unwrap();
        let hist = store
            .resolve_hist(&SeriesKey::new("http_requests").with("service", "api"))
            .unwrap();
        let gauge = SeriesKey::new("cpu_usage_percent");
        for i in 0..20 {
            let h = crate::store::Hist::of(12.0, 10, if i % 2 == 0 { 1 } else { 0 });
            store
                .ingest_hist(&[crate::store::HistSample {
                    series: hist,
                    ts_ms: T0 + i * STEP,
                    hist: h,
                }])
                .unwrap();
            store.record([(gauge.clone(), T0 + i * STEP, 5.0)]).unwrap();
        }
        let events = Arc::new(Events::open(&store).unwrap());
        let sel = crate::anomalies::default_selectors();
        let watch = Watch::new(store.clone(), events.clone(), sel.clone(), 3);
        let r = watch.round(T0 + 20 * STEP + STEP / 2).unwrap();
        // The request series' three signals fill the cap; the gauge is left out.
        assert_eq!(watch.watched(), (3, 1));
        assert_eq!(r.values, 60);
        let watch = Watch::new(store.clone(), events, sel, 100);
        watch.round(T0 + 20 * STEP + STEP / 2).unwrap();
        assert_eq!(watch.watched(), (4, 0));
        for i in 20..25 {
            store.record([(gauge.clone(), T0 + i * STEP, 5.0)]).unwrap();
        }
        let r = watch.round(T0 + 25 * STEP + STEP / 2).unwrap();
        assert_eq!((r.values, r.scores), (5, 5));
    }
}
