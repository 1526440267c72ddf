//! What the charts draw: the series each chart reads (chosen once, so the
//! API can fingerprint a cached answer by their write versions), and their
//! values on a chart's grid, `None` where nothing was recorded (Chart.js
//! draws a gap).

use super::Grid;
use crate::analysis::trend::{Trend, trend};
use crate::collect::system::metric;
use crate::error::Result;
use crate::store::{Aggregation, Layout, SeriesId, SeriesKey, Store};
use crate::{health, platform};
use std::collections::BTreeMap;

/// A chart keeps at most about this many points.
pub const MAX_POINTS: i64 = 300;

/// A chart's grid: at most `MAX_POINTS` covering `range_ms`, ending with
/// the step that holds `now_ms`.
pub fn grid(layout: &Layout, range_ms: i64, now_ms: i64) -> Grid {
    Grid::at_most(layout, range_ms, MAX_POINTS, now_ms)
}

/// One line of a chart: a label and a value per grid point.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub label: String,
    pub data: Vec<Option<f64>>,
}

/// The series a chart reads, each under its line's label (`None`: not
/// stored yet, an empty line).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub series: Vec<(String, Option<SeriesId>)>,
}

impl Selection {
    pub fn ids(&self) -> Vec<Option<SeriesId>> {
        self.series.iter().map(|(_, id)| *id).collect()
    }

    /// Every series' line on `g`, each point aggregated by `how`.
    pub fn lines(&self, store: &Store, g: Grid, how: Aggregation) -> Result<Vec<Line>> {
        self.series
            .iter()
            .map(|(label, id)| {
                Ok(Line {
                    label: label.clone(),
                    data: values(store, *id, g, how)?,
                })
            })
            .collect()
    }
}

impl Selection {
    /// Every series' line of levels that only change when a sample says so
    /// (counts written at each event): each point is the last value at its
    /// end, carried forward over points with no sample, from the last value
    /// before the grid (looked up in the hour tier). A point stays `None`
    /// only before the first sample ever.
    pub fn levels(&self, store: &Store, g: Grid) -> Result<Vec<Line>> {
        self.series
            .iter()
            .map(|(label, id)| {
                let Some(id) = id else {
                    return Ok(Line {
                        label: label.clone(),
                        data: vec![None; g.len()],
                    });
                };
                let mut held = last_before(store, *id, g.from)?;
                let data = values(store, Some(*id), g, Aggregation::Last)?
                    .into_iter()
                    .map(|v| {
                        if v.is_some() {
                            held = v;
                        }
                        held
                    })
                    .collect();
                Ok(Line {
                    label: label.clone(),
                    data,
                })
            })
            .collect()
    }
}

/// The newest value of `id` before `t`: from the finest tier that holds
/// the time since the last whole hour, else from the hour tier's whole
/// hours (a slot that reaches past `t` is never read).
pub fn last_before(store: &Store, id: SeriesId, t: i64) -> Result<Option<f64>> {
    let layout = store.layout();
    let hour = layout.tiers[layout.tiers.len() - 1];
    let boundary = t.div_euclid(hour.step_ms) * hour.step_ms;
    let fine = Grid {
        from: boundary,
        to: t,
        step: layout.raw().step_ms,
    }
    .reaching_back(layout, t);
    let newest = |from: i64, to: i64, step: i64| -> Result<Option<f64>> {
        if to <= from {
            return Ok(None);
        }
        Ok(store
            .query(id, from, to, step)?
            .points
            .iter()
            .rev()
            .filter(|(start, _)| start + step <= to)
            .find_map(|(_, a)| a.map(|a| a.last)))
    };
    let recent = if fine.step < hour.step_ms && t.rem_euclid(fine.step) == 0 {
        newest(boundary, t, fine.step)?
    } else {
        None
    };
    match recent {
        Some(v) => Ok(Some(v)),
        None => newest(boundary - hour.window_ms(), boundary, hour.step_ms),
    }
}

/// `id`'s values on `g` aggregated by `how` (all `None` for no series).
pub fn values(
    store: &Store,
    id: Option<SeriesId>,
    g: Grid,
    how: Aggregation,
) -> Result<Vec<Option<f64>>> {
    match id {
        None => Ok(vec![None; g.len()]),
        Some(id) => Ok(store
            .query(id, g.from, g.to, g.step)?
            .values(how)
            .into_iter()
            .map(|(_, v)| v)
            .take(g.len())
            .collect()),
    }
}

/// The trend of a line's points, by position.
pub fn trend_of(data: &[Option<f64>]) -> Trend {
    let pts: Vec<(f64, f64)> = data
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
        .collect();
    trend(&pts)
}

/// The model statuses the model-loading chart draws, in its order.
pub const MODEL_STATUSES: [&str; 4] = ["loaded", "loading", "failed", "unloaded"];

/// The count of models in each status (`MODEL_STATUSES`).
pub fn model_loading(store: &Store) -> Selection {
    Selection {
        series: MODEL_STATUSES
            .iter()
            .map(|s| {
                let key = SeriesKey::new(platform::models::COUNT_METRIC).with("status", s);
                (s.to_string(), store.lookup(&key))
            })
            .collect(),
    }
}

/// Each training job's progress, labelled "job (model)", of one model or
/// all.
pub fn training_progress(store: &Store, model: Option<&str>) -> Selection {
    let mut found = store.find(Some(platform::training::JOB_PROGRESS_METRIC), &[]);
    found.retain(|(_, key)| model.is_none_or(|m| key.label("model") == Some(m)));
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Selection {
        series: found
            .into_iter()
            .map(|(id, key)| {
                let label = format!(
                    "{} ({})",
                    key.label("job").unwrap_or(""),
                    key.label("model").unwrap_or("")
                );
                (label, Some(id))
            })
            .collect(),
    }
}

/// The `metric` choices of the system-metrics chart.
pub const SYSTEM_CHOICES: [&str; 4] = ["cpu", "memory", "disk", "network"];

/// The system series of one choice (`None`: CPU, memory and disk percent),
/// or `None` for a choice not in `SYSTEM_CHOICES`.
pub fn system_metrics(store: &Store, choice: Option<&str>) -> Option<Selection> {
    let series: Vec<(&str, &str)> = match choice {
        None => vec![
            (metric::CPU_USAGE_PERCENT, "CPU %"),
            (metric::MEMORY_USAGE_PERCENT, "Memory %"),
            (metric::DISK_USAGE_PERCENT, "Disk %"),
        ],
        Some("cpu") => vec![(metric::CPU_USAGE_PERCENT, "CPU %")],
        Some("memory") => vec![(metric::MEMORY_USED_MB, "Memory used MiB")],
        Some("disk") => vec![(metric::DISK_USAGE_PERCENT, "Disk %")],
        Some("network") => vec![
            (metric::NETWORK_RX_MBPS, "Received Mbps"),
            (metric::NETWORK_TX_MBPS, "Transmitted Mbps"),
        ],
        Some(_) => return None,
    };
    Some(Selection {
        series: series
            .into_iter()
            .map(|(m, label)| (label.to_string(), store.lookup(&SeriesKey::new(m))))
            .collect(),
    })
}

/// What the system-metrics chart says under each line, from the samples
/// themselves rather than the drawn per-step means (a one-minute spike
/// vanishes in a 34-minute step's mean).
#[derive(Clone, Debug, PartialEq)]
pub struct LineSummary {
    pub label: String,
    /// The newest sample (`None`: none in the raw tier's window).
    pub current: Option<f64>,
    /// The mean of every sample on the grid.
    pub average: Option<f64>,
    /// The largest sample on the grid.
    pub max: Option<f64>,
    pub trend: Trend,
}

impl Selection {
    /// Every series' line of per-step means on `g`, and its summary at
    /// `now_ms`.
    pub fn lines_with_summary(
        &self,
        store: &Store,
        g: Grid,
        now_ms: i64,
    ) -> Result<(Vec<Line>, Vec<LineSummary>)> {
        let mut lines = Vec::new();
        let mut summaries = Vec::new();
        for (label, id) in &self.series {
            let (aggs, current) = match id {
                None => (vec![None; g.len()], None),
                Some(id) => {
                    let r = store.query(*id, g.from, g.to, g.step)?;
                    let aggs: Vec<_> = r.points.into_iter().map(|(_, a)| a).take(g.len()).collect();
                    (aggs, store.latest(*id, now_ms)?.map(|(_, v)| v))
                }
            };
            let data: Vec<Option<f64>> = aggs.iter().map(|a| a.map(|a| a.avg())).collect();
            let all = aggs.iter().flatten().copied().reduce(|mut m, a| {
                m.merge(&a);
                m
            });
            summaries.push(LineSummary {
                label: label.clone(),
                current,
                average: all.map(|a| a.avg()),
                max: all.map(|a| a.max),
                trend: trend_of(&data),
            });
            lines.push(Line {
                label: label.clone(),
                data,
            });
        }
        Ok((lines, summaries))
    }
}

/// The probed services the service-health chart draws: each one's `up`
/// series and its response-time series (`None` while it never answered).
#[derive(Clone, Debug, Default)]
pub struct ServiceHealth {
    services: Vec<(String, SeriesId, Option<SeriesId>)>,
}

impl ServiceHealth {
    /// Every probed service, or the one named.
    pub fn select(store: &Store, only: Option<&str>) -> ServiceHealth {
        let mut services: Vec<_> = store
            .find(Some(health::UP_METRIC), &[])
            .into_iter()
            .filter_map(|(id, key)| {
                let svc = key.label("service")?.to_string();
                let rt = SeriesKey::new(health::RESPONSE_TIME_METRIC).with("service", &svc);
                Some((svc, id, store.lookup(&rt)))
            })
            .filter(|(svc, ..)| only.is_none_or(|s| s == svc))
            .collect();
        services.sort();
        ServiceHealth { services }
    }

    pub fn ids(&self) -> Vec<Option<SeriesId>> {
        self.services
            .iter()
            .flat_map(|(_, up, rt)| [Some(*up), *rt])
            .collect()
    }

    /// Each service's mean response time per point (answered checks only),
    /// and its up-time over the grid up to `now_ms`.
    pub fn compute(&self, store: &Store, g: Grid, now_ms: i64) -> Result<ServiceLines> {
        let mut lines = Vec::new();
        let mut uptime = BTreeMap::new();
        for (svc, up, rt) in &self.services {
            lines.push(Line {
                label: svc.clone(),
                data: values(store, *rt, g, Aggregation::Avg)?,
            });
            let u = super::uptime::uptime_percent(store, *up, g.from, g.to, now_ms)?;
            uptime.insert(svc.clone(), u);
        }
        Ok(ServiceLines {
            lines,
            uptime_percent: uptime,
        })
    }
}

/// The service-health chart's lines and each service's up-time in percent
/// (`None` without checks).
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceLines {
    pub lines: Vec<Line>,
    pub uptime_percent: BTreeMap<String, Option<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIN: i64 = 60_000;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let s =
            Store::open(dir.path(), Layout::new(Duration::from_secs(5), 30), 1_000).expect("store");
        (dir, s)
    }

    #[test]
    fn a_line_has_a_gap_where_nothing_was_recorded() {
        let (_d, s) = store();
        let now = 1_000 * 86_400_000;
        let cpu = s
            .resolve(&SeriesKey::new(metric::CPU_USAGE_PERCENT))
            .expect("resolve");
        s.record(vec![
            (
                SeriesKey::new(metric::CPU_USAGE_PERCENT),
                now - 50 * MIN,
                10.0,
            ),
            (
                SeriesKey::new(metric::CPU_USAGE_PERCENT),
                now - 5 * MIN,
                30.0,
            ),
        ])
        .expect("record");
        let g = grid(s.layout(), 60 * MIN, now);
        let sel = system_metrics(&s, Some("cpu")).expect("a choice");
        assert_eq!(sel.ids(), vec![Some(cpu)]);
        let lines = sel.lines(&s, g, Aggregation::Avg).expect("lines");
        let data = &lines[0].data;
        assert_eq!(data.len(), g.len());
        assert_eq!(data.iter().flatten().count(), 2);
        assert_eq!(
            data[g.index_of(now - 50 * MIN).expect("in grid")],
            Some(10.0)
        );
        let (_, sums) = sel.lines_with_summary(&s, g, now).expect("summary");
        let sum = &sums[0];
        assert_eq!(
            (sum.current, sum.average, sum.max),
            (Some(30.0), Some(20.0), Some(30.0))
        );
        assert!(system_metrics(&s, Some("gpu")).is_none());

        // A spike shorter than a step: the line shows its step's mean, the
        // summary its own value.
        let cpu = SeriesKey::new(metric::CPU_USAGE_PERCENT);
        let base = now - 30 * MIN;
        s.record((0..12).map(|i| {
            (
                cpu.clone(),
                base + i * 5_000,
                if i == 6 { 95.0 } else { 5.0 },
            )
        }))
        .expect("record");
        let week = grid(s.layout(), 7 * 24 * 60 * MIN, now);
        let (lines, sums) = sel.lines_with_summary(&s, week, now).expect("summary");
        let drawn = lines[0].data.iter().flatten().copied().fold(0.0, f64::max);
        assert!(drawn < 95.0, "the step mean hides the spike: {drawn}");
        assert_eq!(sums[0].max, Some(95.0));
        assert_eq!(sums[0].current, Some(30.0));
        // A series never stored is an empty line, not an error.
        let empty = system_metrics(&s, Some("disk")).expect("a choice");
        assert_eq!(empty.ids(), vec![None]);
        let lines = empty.lines(&s, g, Aggregation::Avg).expect("lines");
        assert!(lines[0].data.iter().all(Option::is_none));
    }

    #[test]
    fn model_counts_are_carried_between_events_instead_of_gaps() {
        let (_d, s) = store();
        let now = 1_000 * 86_400_000 + 7_000;
        let key = |st: &str| SeriesKey::new(platform::models::COUNT_METRIC).with("status", st);
        // Two loaded models since 3 hours ago, a third 20 minutes ago.
        s.record([
            (key("loaded"), now - 180 * MIN, 2.0),
            (key("loaded"), now - 20 * MIN, 3.0),
        ])
        .expect("record");
        let g = grid(s.layout(), 60 * MIN, now);
        let lines = model_loading(&s).levels(&s, g).expect("levels");
        let loaded = &lines[0].data;
        assert_eq!(lines[0].label, "loaded");
        let at = g.index_of(now - 20 * MIN).expect("in grid");
        assert!(loaded[..at].iter().all(|v| *v == Some(2.0)), "{loaded:?}");
        assert!(loaded[at..].iter().all(|v| *v == Some(3.0)), "{loaded:?}");
        // A status never recorded stays empty.
        assert!(lines[1].data.iter().all(Option::is_none));
        // Before the grid, the newest value strictly before its start.
        assert_eq!(
            last_before(&s, s.lookup(&key("loaded")).expect("id"), now - 20 * MIN).expect("q"),
            Some(2.0)
        );
    }
}
