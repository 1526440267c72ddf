//! Network byte counters from `/proc/net/dev`: one small read a tick for
//! every interface. sysinfo's `Networks::refresh` reads nine sysfs files per
//! interface and asks the kernel for every address, each tick: with one
//! series pushed every 5 s that was an eighth of the daemon's CPU (perf).
//! Whether an interface is virtual is looked up once, when it first appears.

use std::collections::HashMap;

const NET_DEV: &str = "/proc/net/dev";

/// One interface's bytes since the previous reading.
#[derive(Clone, Debug, PartialEq)]
pub struct Delta {
    pub name: String,
    pub is_virtual: bool,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

struct Seen {
    is_virtual: bool,
    rx: u64,
    tx: u64,
}

/// The counters of the previous reading, per interface.
pub struct NetDev {
    seen: HashMap<String, Seen>,
}

impl NetDev {
    /// Takes the first reading; `None` where `/proc/net/dev` cannot be read
    /// (the network rates are then `null`).
    pub fn new() -> Option<NetDev> {
        let mut net = NetDev {
            seen: HashMap::new(),
        };
        net.read()?;
        Some(net)
    }

    /// Bytes each interface moved since the previous reading. An interface
    /// seen for the first time, or whose counters went back (it was
    /// recreated), counts from this reading on.
    pub fn read(&mut self) -> Option<Vec<Delta>> {
        let text = std::fs::read_to_string(NET_DEV).ok()?;
        Some(self.apply(&text, is_virtual))
    }

    fn apply(&mut self, text: &str, is_virtual: impl Fn(&str) -> bool) -> Vec<Delta> {
        let mut seen = HashMap::with_capacity(self.seen.len());
        let mut out = Vec::new();
        for (name, rx, tx) in parse(text) {
            let before = self.seen.remove(name);
            let virt = before
                .as_ref()
                .map_or_else(|| is_virtual(name), |b| b.is_virtual);
            let (d_rx, d_tx) = before.map_or((0, 0), |b| {
                (rx.saturating_sub(b.rx), tx.saturating_sub(b.tx))
            });
            out.push(Delta {
                name: name.to_string(),
                is_virtual: virt,
                rx_bytes: d_rx,
                tx_bytes: d_tx,
            });
            seen.insert(
                name.to_string(),
                Seen {
                    is_virtual: virt,
                    rx,
                    tx,
                },
            );
        }
        self.seen = seen;
        out
    }
}

fn is_virtual(name: &str) -> bool {
    std::path::Path::new("/sys/devices/virtual/net")
        .join(name)
        .exists()
}

/// `(interface, received bytes, transmitted bytes)` of each line after the
/// two header lines: `name: rx_bytes rx_packets .. (8 fields) tx_bytes ..`.
/// A line that does not parse is skipped.
fn parse(text: &str) -> impl Iterator<Item = (&str, u64, u64)> {
    text.lines().skip(2).filter_map(|line| {
        let (name, fields) = line.split_once(':')?;
        let mut fields = fields.split_whitespace();
        let rx = fields.next()?.parse().ok()?;
        let tx = fields.nth(7)?.parse().ok()?;
        Some((name.trim(), rx, tx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

    fn text(lines: &[&str]) -> String {
        format!("{HEADER}{}\n", lines.join("\n"))
    }

    #[test]
    fn parses_the_kernels_format_and_skips_what_does_not_parse() {
        let t = text(&[
            "    lo: 140882348991 11740917    0    0    0     0          0         0 140882348991 11740917    0    0    0     0       0          0",
            "  eth0:1709840946   59254    0    0    0     0          0         0  4371868   36233    0    0    0     0       0          0",
            "  bad: 12 x",
        ]);
        let got: Vec<_> = parse(&t).collect();
        assert_eq!(
            got,
            [
                ("lo", 140_882_348_991, 140_882_348_991),
                ("eth0", 1_709_840_946, 4_371_868)
            ]
        );
    }

    #[test]
    fn deltas_count_from_the_previous_reading_and_restart_on_a_reset() {
        let line =
            |name: &str, rx: u64, tx: u64| format!("{name}: {rx} 0 0 0 0 0 0 0 {tx} 0 0 0 0 0 0 0");
        let looked_up = std::cell::Cell::new(0);
        let virt = |name: &str| {
            looked_up.set(looked_up.get() + 1);
            name == "veth0"
        };
        let mut net = NetDev {
            seen: HashMap::new(),
        };
        let first = net.apply(&text(&[&line("eth0", 100, 50)]), virt);
        assert_eq!((first[0].rx_bytes, first[0].tx_bytes), (0, 0));
        let second = net.apply(
            &text(&[&line("eth0", 1_100, 250), &line("veth0", 7, 7)]),
            virt,
        );
        assert_eq!(
            second,
            [
                Delta {
                    name: "eth0".into(),
                    is_virtual: false,
                    rx_bytes: 1_000,
                    tx_bytes: 200
                },
                Delta {
                    name: "veth0".into(),
                    is_virtual: true,
                    rx_bytes: 0,
                    tx_bytes: 0
                },
            ]
        );
        // Counters that went back (the interface was recreated): nothing
        // counted this tick, the next one counts from here.
        let reset = net.apply(&text(&[&line("eth0", 10, 5), &line("veth0", 9, 9)]), virt);
        assert_eq!((reset[0].rx_bytes, reset[0].tx_bytes), (0, 0));
        assert_eq!((reset[1].rx_bytes, reset[1].tx_bytes), (2, 2));
        let after = net.apply(&text(&[&line("eth0", 20, 6)]), virt);
        assert_eq!((after[0].rx_bytes, after[0].tx_bytes), (10, 1));
        // Each interface was looked up once, when it first appeared.
        assert_eq!(looked_up.get(), 2);
    }

    #[test]
    fn reads_this_machines_interfaces() {
        let mut net = NetDev::new().expect("/proc/net/dev");
        let all = net.read().expect("read");
        assert!(
            all.iter().any(|d| d.name == "lo" && d.is_virtual),
            "{all:?}"
        );
    }
}
