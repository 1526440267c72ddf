//! The system harvest: one sysinfo `System` and `Disks` kept alive and
//! refreshed only for what is read. Blocking: call it from a blocking
//! thread. Process, thread and descriptor counts read three small `/proc`
//! files instead of refreshing every process (10-17 ms a tick with sysinfo);
//! network bytes come from `/proc/net/dev` (`net_dev.rs`).

use super::net_dev::NetDev;
use crate::store::SeriesKey;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::time::Instant;
use sysinfo::{CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

/// The series the system collector writes (named here once).
pub mod metric {
    pub const CPU_USAGE_PERCENT: &str = "cpu_usage_percent";
    pub const MEMORY_USED_MB: &str = "memory_used_mb";
    pub const MEMORY_TOTAL_MB: &str = "memory_total_mb";
    pub const MEMORY_USAGE_PERCENT: &str = "memory_usage_percent";
    pub const LOAD_PER_CORE: &str = "load_per_core";
    pub const DISK_USAGE_PERCENT: &str = "disk_usage_percent";
    pub const NETWORK_IO_MBPS: &str = "network_io_mbps";
    pub const NETWORK_RX_MBPS: &str = "network_rx_mbps";
    pub const NETWORK_TX_MBPS: &str = "network_tx_mbps";
    pub const LOAD_AVERAGE_1M: &str = "load_average_1m";
    pub const LOAD_AVERAGE_5M: &str = "load_average_5m";
    pub const LOAD_AVERAGE_15M: &str = "load_average_15m";
    pub const HOST_UPTIME_SECONDS: &str = "host_uptime_seconds";
    pub const PROCESSES: &str = "processes";
    pub const THREADS: &str = "threads";
    pub const FILE_DESCRIPTORS: &str = "file_descriptors";
    /// Every series the system collector writes.
    pub const ALL: [&str; 16] = [
        CPU_USAGE_PERCENT,
        MEMORY_USED_MB,
        MEMORY_TOTAL_MB,
        MEMORY_USAGE_PERCENT,
        LOAD_PER_CORE,
        DISK_USAGE_PERCENT,
        NETWORK_IO_MBPS,
        NETWORK_RX_MBPS,
        NETWORK_TX_MBPS,
        LOAD_AVERAGE_1M,
        LOAD_AVERAGE_5M,
        LOAD_AVERAGE_15M,
        HOST_UPTIME_SECONDS,
        PROCESSES,
        THREADS,
        FILE_DESCRIPTORS,
    ];
}

const BYTES_PER_MB: f64 = 1024.0 * 1024.0;

/// One tick's readings. `None` means the source could not be read this tick
/// (or does not exist on this platform); the API shows it as `null`.
/// `Default` is a reading of nothing at the epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemHarvest {
    pub at: DateTime<Utc>,
    pub cpu_usage_percent: Option<f64>,
    pub memory_used_mb: Option<f64>,
    pub memory_total_mb: Option<f64>,
    /// Logical CPUs, for load per core.
    pub cpus: Option<usize>,
    /// Usage of the filesystem holding the data directory.
    pub data_disk_usage_percent: Option<f64>,
    pub disks: Vec<DiskHarvest>,
    pub network_rx_mbps: Option<f64>,
    pub network_tx_mbps: Option<f64>,
    /// The interfaces the network rates count (`Interfaces`).
    pub network_interfaces: Vec<String>,
    pub load_average: Option<[f64; 3]>,
    pub uptime_seconds: Option<u64>,
    pub processes: Option<u64>,
    pub threads: Option<u64>,
    pub file_descriptors: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DiskHarvest {
    pub mount: String,
    pub usage_percent: f64,
}

impl SystemHarvest {
    pub fn memory_usage_percent(&self) -> Option<f64> {
        let total = self.memory_total_mb.filter(|t| *t > 0.0)?;
        Some(self.memory_used_mb? * 100.0 / total)
    }

    /// The 1-minute load average divided by the number of logical CPUs.
    pub fn load_per_core(&self) -> Option<f64> {
        let cpus = self.cpus.filter(|c| *c > 0)?;
        Some(self.load_average?[0] / cpus as f64)
    }

    /// Received plus transmitted, in megabits per second.
    pub fn network_io_mbps(&self) -> Option<f64> {
        Some(self.network_rx_mbps? + self.network_tx_mbps?)
    }

    /// The harvest as series values (metric names are listed in the README).
    pub fn series(&self) -> Vec<(SeriesKey, f64)> {
        let mut out = Vec::with_capacity(16 + self.disks.len());
        let mut put = |name: &str, v: Option<f64>| {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                out.push((SeriesKey::new(name), v));
            }
        };
        put(metric::CPU_USAGE_PERCENT, self.cpu_usage_percent);
        put(metric::MEMORY_USED_MB, self.memory_used_mb);
        put(metric::MEMORY_TOTAL_MB, self.memory_total_mb);
        put(metric::MEMORY_USAGE_PERCENT, self.memory_usage_percent());
        put(metric::LOAD_PER_CORE, self.load_per_core());
        put(metric::DISK_USAGE_PERCENT, self.data_disk_usage_percent);
        put(metric::NETWORK_IO_MBPS, self.network_io_mbps());
        put(metric::NETWORK_RX_MBPS, self.network_rx_mbps);
        put(metric::NETWORK_TX_MBPS, self.network_tx_mbps);
        put(metric::LOAD_AVERAGE_1M, self.load_average.map(|l| l[0]));
        put(metric::LOAD_AVERAGE_5M, self.load_average.map(|l| l[1]));
        put(metric::LOAD_AVERAGE_15M, self.load_average.map(|l| l[2]));
        put(
            metric::HOST_UPTIME_SECONDS,
            self.uptime_seconds.map(|v| v as f64),
        );
        put(metric::PROCESSES, self.processes.map(|v| v as f64));
        put(metric::THREADS, self.threads.map(|v| v as f64));
        put(
            metric::FILE_DESCRIPTORS,
            self.file_descriptors.map(|v| v as f64),
        );
        for d in &self.disks {
            out.push((
                SeriesKey::new(metric::DISK_USAGE_PERCENT).with("mount", &d.mount),
                d.usage_percent,
            ));
        }
        out
    }
}

/// Which network interfaces the network rates count. By default the
/// physical ones (not under `/sys/devices/virtual/net`: no loopback,
/// bridge, veth, tunnel), so traffic a bridge forwards to a container is
/// not counted twice; where there is none (inside a container, whose
/// interfaces are all virtual), every one but the loopback. `include`
/// (names, or prefixes ending in `*`) replaces that choice; `exclude` is
/// taken out of either.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interfaces {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

fn matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

impl Interfaces {
    /// The interfaces to count among `all` (name, is virtual).
    pub fn pick<'a>(&self, all: &[(&'a str, bool)]) -> Vec<&'a str> {
        let chosen: Vec<&str> = if !self.include.is_empty() {
            all.iter()
                .filter(|(n, _)| matches(&self.include, n))
                .map(|(n, _)| *n)
                .collect()
        } else if all.iter().any(|(n, v)| !v && *n != "lo") {
            all.iter().filter(|(_, v)| !v).map(|(n, _)| *n).collect()
        } else {
            all.iter()
                .filter(|(n, _)| *n != "lo")
                .map(|(n, _)| *n)
                .collect()
        };
        let mut out: Vec<&str> = chosen
            .into_iter()
            .filter(|n| !matches(&self.exclude, n))
            .collect();
        out.sort_unstable();
        out
    }
}

pub struct SystemSource {
    sys: Option<System>,
    interfaces: Interfaces,
    disks: Option<Disks>,
    nets: Option<NetDev>,
    last_net_refresh: Instant,
    data_dir: PathBuf,
}

impl SystemSource {
    pub fn new(data_dir: &Path, interfaces: Interfaces) -> SystemSource {
        let sys = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_usage())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        )
        .ok();
        SystemSource {
            sys,
            interfaces,
            disks: Disks::new_with_refreshed_list().ok(),
            nets: NetDev::new(),
            last_net_refresh: Instant::now(),
            data_dir: std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf()),
        }
    }

    /// Reads everything once. CPU usage and network rates are deltas since the
    /// previous call, so the first call waits out sysinfo's minimum interval.
    pub fn harvest(&mut self) -> SystemHarvest {
        let since = self.last_net_refresh.elapsed();
        if since < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL {
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL - since);
        }
        let mut h = SystemHarvest {
            at: Utc::now(),
            load_average: System::load_average()
                .ok()
                .map(|l| [l.one, l.five, l.fifteen]),
            uptime_seconds: System::uptime().ok(),
            processes: count_processes(),
            threads: count_threads(),
            file_descriptors: count_file_descriptors(),
            ..SystemHarvest::default()
        };
        if let Some(sys) = &mut self.sys {
            sys.refresh_cpu_usage();
            sys.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
            h.cpu_usage_percent = Some(sys.global_cpu_usage() as f64);
            h.memory_used_mb = Some(sys.used_memory() as f64 / BYTES_PER_MB);
            h.memory_total_mb = Some(sys.total_memory() as f64 / BYTES_PER_MB);
            h.cpus = Some(sys.cpus().len()).filter(|n| *n > 0);
        }
        if let Some(disks) = &mut self.disks {
            // Space only: not the I/O counters (every device's /proc/diskstats
            // line) or the device kind, which nothing here reads.
            disks.refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
            let mut best: Option<(usize, f64)> = None;
            for d in disks.iter() {
                let total = d.total_space();
                if total == 0 {
                    continue;
                }
                let pct = (total - d.available_space().min(total)) as f64 * 100.0 / total as f64;
                let mount = d.mount_point();
                if self.data_dir.starts_with(mount) {
                    let depth = mount.components().count();
                    if best.is_none_or(|(b, _)| depth > b) {
                        best = Some((depth, pct));
                    }
                }
                let mount = mount.display().to_string();
                if !h.disks.iter().any(|x| x.mount == mount) {
                    h.disks.push(DiskHarvest {
                        mount,
                        usage_percent: pct,
                    });
                }
            }
            h.data_disk_usage_percent = best.map(|(_, p)| p);
        }
        if let Some(deltas) = self.nets.as_mut().and_then(NetDev::read) {
            let secs = self.last_net_refresh.elapsed().as_secs_f64();
            self.last_net_refresh = Instant::now();
            let all: Vec<(&str, bool)> = deltas
                .iter()
                .map(|d| (d.name.as_str(), d.is_virtual))
                .collect();
            let counted = self.interfaces.pick(&all);
            let (mut rx, mut tx) = (0u64, 0u64);
            for d in deltas.iter().filter(|d| counted.contains(&d.name.as_str())) {
                rx += d.rx_bytes;
                tx += d.tx_bytes;
            }
            h.network_interfaces = counted.iter().map(|s| s.to_string()).collect();
            if secs > 0.0 {
                h.network_rx_mbps = Some(rx as f64 * 8.0 / secs / 1e6);
                h.network_tx_mbps = Some(tx as f64 * 8.0 / secs / 1e6);
            }
        } else {
            self.last_net_refresh = Instant::now();
        }
        h
    }
}

/// Processes (including kernel threads, as `ps -e` counts them): the numeric
/// entries of /proc.
fn count_processes() -> Option<u64> {
    let entries = std::fs::read_dir("/proc").ok()?;
    Some(
        entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .count() as u64,
    )
}

/// Threads of all processes: the total in /proc/loadavg's fourth field
/// (`running/total` scheduling entities).
fn count_threads() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace()
        .nth(3)?
        .split('/')
        .nth(1)?
        .parse()
        .ok()
}

/// Open file descriptors system-wide: the first field of /proc/sys/fs/file-nr.
fn count_file_descriptors() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/fs/file-nr").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_harvest_reads_plausible_values_on_linux() {
        let dir = tempfile::tempdir().unwrap();
        let mut src = SystemSource::new(dir.path(), Interfaces::default());
        let h = src.harvest();
        let cpu = h.cpu_usage_percent.expect("cpu");
        assert!((0.0..=100.0).contains(&cpu), "{cpu}");
        let (used, total) = (h.memory_used_mb.unwrap(), h.memory_total_mb.unwrap());
        assert!(used > 0.0 && used < total, "{used} {total}");
        assert!(h.processes.unwrap() >= 1);
        assert!(h.threads.unwrap() >= h.processes.unwrap() / 2);
        assert!(h.file_descriptors.unwrap() >= 1);
        assert!(h.load_average.unwrap().iter().all(|l| *l >= 0.0));
        assert!(h.network_io_mbps().unwrap() >= 0.0);
        let names: Vec<String> = h.series().iter().map(|(k, _)| k.metric.clone()).collect();
        assert!(names.contains(&"cpu_usage_percent".to_string()));
    }

    #[test]
    fn network_counts_physical_interfaces_unless_told_otherwise() {
        let host = [
            ("lo", true),
            ("eth0", false),
            ("docker0", true),
            ("veth12ab", true),
            ("wlan0", false),
        ];
        let auto = Interfaces::default();
        assert_eq!(auto.pick(&host), ["eth0", "wlan0"]);
        // Inside a container every interface is virtual: all but lo.
        let container = [("lo", true), ("eth0", true)];
        assert_eq!(auto.pick(&container), ["eth0"]);
        let chosen = Interfaces {
            include: vec!["veth*".into(), "eth0".into()],
            exclude: vec![],
        };
        assert_eq!(chosen.pick(&host), ["eth0", "veth12ab"]);
        let without = Interfaces {
            include: vec![],
            exclude: vec!["wlan*".into()],
        };
        assert_eq!(without.pick(&host), ["eth0"]);
    }

    #[test]
    fn every_series_a_harvest_writes_is_named_in_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut src = SystemSource::new(dir.path(), Interfaces::default());
        let h = src.harvest();
        for (key, _) in h.series() {
            assert!(
                metric::ALL.contains(&key.metric.as_str()),
                "{} is not in metric::ALL",
                key.metric
            );
        }
    }
}
