//! What `backup` and `restore` show while they run: a bar on a terminal
//! (bytes and items done, rate, time left), and a plain line every few
//! seconds when standard error is not a terminal (a log, a pipe).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Seconds between plain lines.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    what: String,
    total: Option<u64>,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    bytes: u64,
    items: u64,
}

/// `n` bytes in binary units, one decimal.
pub fn size(n: u64) -> String {
    let mut v = n as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if v < 1024.0 || unit == "GiB" {
            return if unit == "B" {
                format!("{n} B")
            } else {
                format!("{v:.1} {unit}")
            };
        }
        v /= 1024.0;
    }
    format!("{n} B")
}

impl Progress {
    /// Progress of `what` over `total` bytes, if known.
    pub fn new(what: &str, total: Option<u64>) -> Progress {
        Progress::to(what, total, std::io::stderr().is_terminal())
    }

    /// As `new`, a bar or plain lines as asked.
    pub fn to(what: &str, total: Option<u64>, terminal: bool) -> Progress {
        let bar = terminal.then(|| {
            let (bar, template) = match total {
                Some(t) => (
                    ProgressBar::new(t),
                    "{prefix} [{bar:30}] {bytes}/{total_bytes}, {msg}, {binary_bytes_per_sec}, {eta} left",
                ),
                None => (
                    ProgressBar::new_spinner(),
                    "{prefix} {spinner} {bytes}, {msg}, {binary_bytes_per_sec}, {elapsed}",
                ),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            what: what.to_string(),
            total,
            bar,
            started: now,
            last_line: now,
            bytes: 0,
            items: 0,
        }
    }

    /// Bytes and items done so far.
    pub fn update(&mut self, bytes: u64, items: u64) {
        self.bytes = bytes;
        self.items = items;
        match &self.bar {
            Some(bar) => {
                bar.set_position(bytes);
                bar.set_message(format!("{items} items"));
            }
            None => {
                if self.last_line.elapsed() >= PLAIN_EVERY {
                    self.last_line = Instant::now();
                    eprintln!("{}", self.line());
                }
            }
        }
    }

    /// One plain line: what, how far, how fast, how long still.
    pub fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.bytes as f64 / secs;
        let mut s = format!("{}: {}", self.what, size(self.bytes));
        if let Some(t) = self.total.filter(|t| *t > 0) {
            s += &format!(
                " of {} ({:.0} %)",
                size(t),
                100.0 * self.bytes.min(t) as f64 / t as f64
            );
        }
        s += &format!(", {} items, {}/s", self.items, size(rate as u64));
        if let Some(t) = self.total
            && rate > 0.0
        {
            let left = t.saturating_sub(self.bytes) as f64 / rate;
            s += &format!(", about {left:.0} s left");
        }
        s
    }

    /// Ends the display with `message`.
    pub fn finish(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{}: {message}", self.what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_says_how_far_how_fast_and_how_long() {
        let mut p = Progress::to("restore", Some(4 << 20), false);
        p.update(1 << 20, 1234);
        let line = p.line();
        assert!(
            line.starts_with("restore: 1.0 MiB of 4.0 MiB (25 %), 1234 items, "),
            "{line}"
        );
        assert!(line.contains("/s, about "), "{line}");
        assert!(line.ends_with(" s left"), "{line}");
        let p = Progress::to("backup", None, false);
        assert!(!p.line().contains("left"));
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
    }
}
