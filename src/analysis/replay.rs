//! The offline replay of the analysis (`mlsec-monitor analyze`): a
//! `timestamp,value` CSV (the Numenta Anomaly Benchmark's format) read
//! whole and checked first, so bad input is one error naming its line and
//! nothing is printed; then every row judged in order from the rows up to
//! it, by the same code the daemon runs.

use super::anomaly::Detector;
use super::forecast::Forecaster;
use std::collections::VecDeque;
use std::fmt::Write;

/// Steps between rows a target time is extrapolated from.
const STEPS_SEEN: usize = 100;

/// One input row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The timestamp as written.
    pub timestamp: String,
    /// Milliseconds since the epoch (UTC when no zone is written).
    pub ts_ms: i64,
    /// The value as written, and parsed.
    pub text: String,
    pub value: f64,
}

/// A timestamp: `YYYY-MM-DD HH:MM:SS[.fff]` (UTC) or RFC 3339.
fn parse_time(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .map(|t| t.and_utc().timestamp_millis())
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_millis()))
        .ok()
}

/// Parses a `timestamp,value` CSV with a header line; the error names the
/// line (1 is the header) and what is wrong.
pub fn parse(text: &str) -> Result<Vec<Row>, String> {
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Err("line 1: empty input: a header 'timestamp,value' is needed".into());
    };
    let names: Vec<&str> = header
        .split(',')
        .map(|c| c.trim().trim_matches('"'))
        .collect();
    let column = |name: &str| {
        names
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("line 1: no '{name}' column in the header '{header}'"))
    };
    let (t_at, v_at) = (column("timestamp")?, column("value")?);
    let mut rows: Vec<Row> = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line
            .split(',')
            .map(|c| c.trim().trim_matches('"'))
            .collect();
        let cell = |at: usize, name: &str| {
            cells
                .get(at)
                .copied()
                .ok_or_else(|| format!("line {n}: no {name} (only {} columns)", cells.len()))
        };
        let (t, v) = (cell(t_at, "timestamp")?, cell(v_at, "value")?);
        let ts_ms = parse_time(t).ok_or_else(|| {
            format!("line {n}: timestamp '{t}' is not YYYY-MM-DD HH:MM:SS nor RFC 3339")
        })?;
        let value = v
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("line {n}: value '{v}' is not a finite number"))?;
        if let Some(prev) = rows.last()
            && ts_ms < prev.ts_ms
        {
            return Err(format!(
                "line {n}: timestamp '{t}' goes backwards (the row before is at '{}')",
                prev.timestamp
            ));
        }
        rows.push(Row {
            timestamp: t.to_string(),
            ts_ms,
            text: v.to_string(),
            value,
        });
    }
    Ok(rows)
}

/// `timestamp,value,anomaly_score,is_anomaly` for every row, in order, each
/// decided from the rows up to it (`is_anomaly` is 1 or 0).
pub fn anomalies(rows: &[Row]) -> String {
    let mut d = Detector::new();
    let mut out = String::with_capacity(rows.len() * 48);
    out.push_str("timestamp,value,anomaly_score,is_anomaly\n");
    for r in rows {
        let s = d.step_at(r.ts_ms, r.value);
        let _ = writeln!(
            out,
            "{},{},{:.6},{}",
            r.timestamp,
            r.text,
            s.score,
            u8::from(s.is_anomaly)
        );
    }
    out
}

/// `timestamp,value,target_timestamp,forecast,lower,upper` for every row:
/// the forecast made at that row for `horizon` rows ahead with its 95 %
/// interval (empty while warming up). The target time is the row's plus
/// `horizon` times the median step between the last 100 rows, written in
/// the row's own style.
pub fn forecast(rows: &[Row], horizon: usize) -> String {
    let mut f = Forecaster::new(horizon);
    let mut steps: VecDeque<i64> = VecDeque::with_capacity(STEPS_SEEN);
    let mut out = String::with_capacity(rows.len() * 80);
    out.push_str("timestamp,value,target_timestamp,forecast,lower,upper\n");
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            if steps.len() == STEPS_SEEN {
                steps.pop_front();
            }
            steps.push_back(r.ts_ms - rows[i - 1].ts_ms);
        }
        let made = f.step_at(r.ts_ms, r.value);
        let _ = write!(out, "{},{},", r.timestamp, r.text);
        match made {
            Some(fc) if !steps.is_empty() => {
                let mut s: Vec<i64> = steps.iter().copied().collect();
                let mid = s.len() / 2;
                let target = r.ts_ms + *s.select_nth_unstable(mid).1 * horizon as i64;
                let at = chrono::DateTime::from_timestamp_millis(target).unwrap_or_default();
                let target = if r.timestamp.contains('T') {
                    crate::time::ts(at)
                } else {
                    at.format("%Y-%m-%d %H:%M:%S").to_string()
                };
                let _ = writeln!(out, "{target},{},{},{}", fc.value, fc.lower, fc.upper);
            }
            _ => out.push_str(",,,\n"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forecast_row_for_every_input_row_with_its_target_time() {
        let mut text = String::from("timestamp,value\n");
        for i in 0..200 {
            text += &format!(
                "2014-04-01 {:02}:{:02}:00,{}\n",
                i / 12,
                i % 12 * 5,
                10 + i % 3
            );
        }
        let rows = parse(&text).unwrap();
        let out = forecast(&rows, 12);
        assert_eq!(out, forecast(&rows, 12), "deterministic");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 201);
        assert_eq!(
            lines[0],
            "timestamp,value,target_timestamp,forecast,lower,upper"
        );
        assert_eq!(lines[1], "2014-04-01 00:00:00,10,,,,");
        let last = lines[200];
        assert!(
            last.starts_with("2014-04-01 16:35:00,11,2014-04-01 17:35:00,"),
            "{last}"
        );
        let cells: Vec<f64> = last
            .split(',')
            .skip(3)
            .map(|c| c.parse().unwrap())
            .collect();
        assert!(cells[1] <= cells[0] && cells[0] <= cells[2], "{last}");
    }

    #[test]
    fn bad_input_names_its_line() {
        for (text, want) in [
            ("", "line 1: empty input"),
            ("time,value\n", "line 1: no 'timestamp' column"),
            ("timestamp,val\n", "line 1: no 'value' column"),
            (
                "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,high\n",
                "line 3: value 'high' is not a finite number",
            ),
            (
                "timestamp,value\n2014-04-01 00:00:00,NaN\n",
                "line 2: value 'NaN'",
            ),
            (
                "timestamp,value\nyesterday,1\n",
                "line 2: timestamp 'yesterday'",
            ),
            (
                "timestamp,value\n2014-04-01 00:05:00,1\n2014-04-01 00:00:00,2\n",
                "line 3: timestamp '2014-04-01 00:00:00' goes backwards",
            ),
            ("timestamp,value\n2014-04-01 00:05:00\n", "line 2: no value"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn every_row_is_printed_in_order_and_the_same_input_gives_the_same_output() {
        let mut text = String::from("value,timestamp\n");
        for i in 0..1000 {
            let v = if i == 800 { 500.0 } else { (i % 7) as f64 };
            text += &format!("{v},2026-12-01T00:{:02}:{:02}Z\n", i / 60 % 60, i % 60);
        }
        let rows = parse(&text).unwrap();
        assert_eq!(rows.len(), 1000);
        assert_eq!(rows[1].ts_ms - rows[0].ts_ms, 1000);
        let out = anomalies(&rows);
        assert_eq!(out, anomalies(&rows));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1001);
        assert_eq!(lines[0], "timestamp,value,anomaly_score,is_anomaly");
        assert!(
            lines[801].starts_with("2026-12-01T00:13:20Z,500,"),
            "{}",
            lines[801]
        );
        assert!(lines[801].ends_with(",1"), "{}", lines[801]);
        assert_eq!(lines.iter().filter(|l| l.ends_with(",1")).count(), 1);
    }
}
