//! What the benchmark examples share: starting the release daemon on a free
//! port and reading a process's CPU time and memory from /proc.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts `target/release/mlsec-monitor` (or the binary `BENCH_DAEMON`
/// names, to compare two builds side by side) with `args` and `env` on
/// 127.0.0.1:0 and returns it with the address it printed. Its log is
/// drained on a thread so it never blocks on a full pipe.
pub fn spawn_daemon(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> (Child, String) {
    let bin = std::env::var_os("BENCH_DAEMON").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/mlsec-monitor"),
        std::path::PathBuf::from,
    );
    let mut cmd = Command::new(&bin);
    cmd.args(args)
        .env("SERVICE_HOST", "127.0.0.1")
        .env("SERVICE_PORT", "0")
        // Loopback only; the benchmarks measure the API, not sign-in.
        .env("AUTH", "off")
        .env("LOG_LEVEL", "info")
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "start {}: {e} (run cargo build --release first)",
            bin.display()
        )
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok);
    let addr = lines
        .by_ref()
        .find_map(|l| {
            l.split("listening on http://")
                .nth(1)
                .map(|a| a.split_whitespace().next().unwrap_or("").to_string())
        })
        .expect("the daemon prints its address");
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// CPU time (user + system) in clock ticks: fields 14 and 15 of /proc/PID/stat.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f[11] + f[12]
}

/// `n` series `metric{id="0"}` ... registered in `store`.
pub fn series(store: &mlsec_monitor::store::Store, metric: &str, n: u32) -> Vec<u32> {
    (0..n)
        .map(|i| {
            store
                .resolve(&mlsec_monitor::store::SeriesKey::new(metric).with("id", &i.to_string()))
                .expect("resolve")
        })
        .collect()
}

/// `n` generators, a third of each kind in turn, seeded from `seed` on.
pub fn mixed(n: u32, seed: u64) -> Vec<Gen> {
    let kinds = [Kind::Walk, Kind::Counter, Kind::Health];
    (0..n)
        .map(|i| Gen::new(kinds[i as usize % 3], u64::from(i) + seed))
        .collect()
}

/// A number from the environment, or `default`.
pub fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Clock ticks per second (USER_HZ on Linux).
pub const HZ: f64 = 100.0;

/// The number after `field` in a /proc file such as `/proc/self/status`
/// (`VmRSS:`, in kB) or `/proc/PID/io` (`write_bytes:`, `wchar:`); 0 when
/// absent.
pub fn proc_field(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A `/proc/PID/status` field in MB (`VmRSS:`, `VmHWM:`).
pub fn status_mb(pid: u32, field: &str) -> f64 {
    proc_field(&format!("/proc/{pid}/status"), field) as f64 / 1024.0
}

/// The kinds of series the store's targets are stated for.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A full-precision random walk (a temperature, a load average).
    Walk,
    /// An integer counter with a varying rate (requests served).
    Counter,
    /// A 0/1 health series with rare outages.
    Health,
}

/// A deterministic generator of one series of a kind (xorshift inside, so
/// the benchmarks need no crate).
pub struct Gen {
    x: u64,
    kind: Kind,
    value: f64,
}

impl Gen {
    pub fn new(kind: Kind, seed: u64) -> Gen {
        Gen {
            x: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            kind,
            value: match kind {
                Kind::Walk => 100.0,
                Kind::Counter => 1_000_000.0,
                Kind::Health => 1.0,
            },
        }
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        (self.x >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn next(&mut self) -> f64 {
        let u = self.uniform();
        match self.kind {
            Kind::Walk => self.value += (u - 0.5) * 0.37,
            Kind::Counter => self.value += (u * 40.0).floor(),
            Kind::Health => {
                // About one outage a day at one sample every 5 s, a few minutes long.
                let flip = if self.value == 1.0 {
                    1.0 / 17_280.0
                } else {
                    1.0 / 40.0
                };
                if u < flip {
                    self.value = 1.0 - self.value;
                }
            }
        }
        self.value
    }
}

/// Loads `url` with `wrk -t2 -c64 -d10s --latency` (Debian package `wrk`),
/// plain and then as browsers ask for it (gzip), and prints wrk's summaries.
pub fn wrk(url: &str) {
    for header in [None, Some("Accept-Encoding: gzip")] {
        let mut args = vec!["-t2", "-c64", "-d10s", "--latency"];
        if let Some(h) = header {
            args.extend(["-H", h]);
        }
        args.push(url);
        match std::process::Command::new("wrk").args(&args).output() {
            Ok(o) => println!(
                "wrk {}:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&o.stdout)
            ),
            Err(e) => println!("wrk not run ({e}): apt-get install wrk"),
        }
    }
}

/// Successful (2xx) answers per second under `wrk -t2 -cN -d10s url`;
/// `strict`: every answer must be a 2xx. Alertmanager sheds load beyond
/// its concurrency limit with errors, which are not counted.
pub fn wrk_rate(url: &str, connections: u32, strict: bool) -> f64 {
    let c = format!("-c{connections}");
    let out = std::process::Command::new("wrk")
        .args(["-t2", &c, "-d10s", url])
        .output()
        .expect("apt-get install wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let errors: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(
        !strict || errors == 0.0,
        "{url} answered errors under load:\n{text}"
    );
    // "439708 requests in 10.02s, 52.04MB read"
    let (requests, secs) = text
        .lines()
        .find_map(|l| {
            let (n, rest) = l.trim().split_once(" requests in ")?;
            let secs = rest.split_once("s,")?.0;
            Some((n.parse::<f64>().ok()?, secs.parse::<f64>().ok()?))
        })
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    if errors > 0.0 {
        println!("  ({url}: {errors} of {requests} answers were errors, not counted)");
    }
    (requests - errors) / secs
}

/// A client for the benchmarks: long timeout, statuses as answers.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// The body of `GET url` as text; empty when it cannot be had.
pub fn get_text(url: &str) -> String {
    agent()
        .get(url)
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default()
}

/// The value of the first line of Prometheus exposition `text` that starts
/// with `name` (a metric name, with its labels where they matter).
pub fn exposition_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

/// Every file under `p` with its size.
pub fn files(p: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let m = e.metadata().expect("metadata");
        if m.is_dir() {
            out.extend(files(&e.path()));
        } else {
            out.push((e.path(), m.len()));
        }
    }
    out
}

/// The bytes of every file under `p`.
pub fn dir_bytes(p: &std::path::Path) -> u64 {
    files(p).iter().map(|(_, n)| n).sum()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Waits until `url` answers 200 (an anchor's `/-/ready`), at most `secs`.
pub fn wait_ready(url: &str, what: &str, secs: u64) {
    let started = std::time::Instant::now();
    while agent()
        .get(url)
        .call()
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(secs),
            "{what} did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
