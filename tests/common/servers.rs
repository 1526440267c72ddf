//! Real servers for the probes to check: small HTTP targets with a chosen
//! behaviour, and real redis-server and PostgreSQL processes on free
//! loopback ports (installed by scripts/test.sh).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub enum Behavior {
    /// 200 with this JSON body.
    Json(&'static str),
    /// This status, empty body.
    Status(u16),
    /// 200 after this many milliseconds.
    Slow(u64),
    /// Accept and never answer.
    Hang,
    /// Accept, then reset the connection (close with the request unread).
    Reset,
    /// Answer bytes that are not HTTP.
    Garbage,
    /// The status in the cell (change it while running).
    Switch(Arc<AtomicU16>),
    /// 200 with the text in the cell (Prometheus exposition).
    Text(Arc<std::sync::Mutex<String>>),
    /// 200 `{}` to every request on a connection kept alive, counting the
    /// requests in the cell (`hits` counts connections).
    KeepAlive(Arc<AtomicUsize>),
}

/// An HTTP target on 127.0.0.1 that counts the requests it receives.
pub struct HttpTarget {
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl HttpTarget {
    pub fn start(behavior: Behavior) -> HttpTarget {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind target");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                h.fetch_add(1, Ordering::Relaxed);
                let b = behavior.clone();
                let s2 = s.clone();
                std::thread::spawn(move || serve(stream, b, s2));
            }
        });
        HttpTarget { port, hits, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/health", self.port)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for HttpTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn read_request(s: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
}

fn respond(s: &mut TcpStream, status: u16, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn serve(mut s: TcpStream, b: Behavior, stop: Arc<AtomicBool>) {
    match b {
        Behavior::Reset => {
            // Closing with unread request bytes makes the kernel send RST.
            std::thread::sleep(Duration::from_millis(20));
            drop(s);
        }
        Behavior::Hang => {
            read_request(&mut s);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Behavior::Garbage => {
            read_request(&mut s);
            let _ = s.write_all(b"\x00\x01garbage that is not http\r\n\r\n");
        }
        Behavior::Json(body) => {
            read_request(&mut s);
            respond(&mut s, 200, body);
        }
        Behavior::Status(code) => {
            read_request(&mut s);
            respond(&mut s, code, "");
        }
        Behavior::Slow(ms) => {
            read_request(&mut s);
            std::thread::sleep(Duration::from_millis(ms));
            respond(&mut s, 200, "{}");
        }
        Behavior::Text(cell) => {
            read_request(&mut s);
            let body = cell.lock().map(|b| b.clone()).unwrap_or_default();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Behavior::Switch(cell) => {
            read_request(&mut s);
            respond(&mut s, cell.load(Ordering::Relaxed), "");
        }
        Behavior::KeepAlive(requests) => {
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || stop.load(Ordering::Relaxed) {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    seen.drain(..end + 4);
                    requests.fetch_add(1, Ordering::Relaxed);
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
                    );
                }
            }
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn wait_port(port: u16, what: &str) {
    let end = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "{what} did not start on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find_binary(name: &str) -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .collect();
    let mut pg: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(name))
        .collect();
    pg.sort();
    candidates.extend(pg.into_iter().rev());
    candidates.push(PathBuf::from("/usr/bin").join(name));
    candidates.push(PathBuf::from("/usr/sbin").join(name));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run scripts/test.sh, which installs it")
        })
}

/// A real redis-server on a free loopback port, optionally with a password.
pub struct Redis {
    pub port: u16,
    child: Child,
}

impl Redis {
    pub fn start(password: Option<&str>) -> Redis {
        let port = free_port();
        let mut cmd = Command::new(find_binary("redis-server"));
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        if let Some(p) = password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        wait_port(port, "redis-server");
        Redis { port, child }
    }

    pub fn url(&self, password: Option<&str>) -> String {
        match password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throw-away PostgreSQL cluster on a free loopback port, user `postgres`
/// with password `password`. As root, it runs as the `postgres` user.
pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

fn as_postgres(bin: PathBuf) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

impl Postgres {
    pub fn start(password: &str) -> Postgres {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{password}\n")).expect("pwfile");
        let _ = Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(dir.path())
            .status();
        let out = as_postgres(find_binary("initdb"))
            .args(["-U", "postgres", "-A", "scram-sha-256", "--pwfile"])
            .arg(&pwfile)
            .arg("-D")
            .arg(&data)
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let child = as_postgres(find_binary("postgres"))
            .arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-k",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        wait_port(port, "postgres");
        // The port opens before the server accepts sessions ("the database
        // system is starting up"): wait for pg_isready to say it does.
        let end = Instant::now() + Duration::from_secs(30);
        while !Command::new(find_binary("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(Instant::now() < end, "postgres did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        Postgres { port, dir, child }
    }

    pub fn url(&self, password: &str) -> String {
        format!(
            "postgres://postgres:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT to the postmaster: immediate shutdown of the whole cluster.
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
            && let Some(pid) = pid.lines().next()
        {
            let _ = Command::new("kill").args(["-QUIT", pid.trim()]).status();
        }
        let _ = self.child.wait();
    }
}

/// A real Prometheus Alertmanager on a free loopback port (no clustering).
pub struct Alertmanager {
    pub port: u16,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Alertmanager {
    pub fn start() -> Alertmanager {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("am.yml");
        std::fs::write(
            &cfg,
            "route:\n  receiver: none\nreceivers:\n  - name: none\n",
        )
        .expect("config");
        let port = free_port();
        let bin = ["/usr/bin/prometheus-alertmanager"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .unwrap_or_else(|| find_binary("alertmanager"));
        let child = Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager");
        wait_port(port, "alertmanager");
        Alertmanager {
            port,
            _dir: dir,
            child,
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Prometheus server on a loopback port with `config` as its
/// prometheus.yml (its TSDB in its directory, the remote write receiver on).
pub struct Prometheus {
    pub port: u16,
    _tmp: Option<tempfile::TempDir>,
    child: Child,
}

impl Prometheus {
    pub fn start(config: &str) -> Prometheus {
        Prometheus::start_with(config, &[])
    }

    /// As `start`, with more files (rule files) beside the configuration.
    pub fn start_with(config: &str, files: &[(&str, &str)]) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).expect("file");
        }
        let mut p = Prometheus::start_at(dir.path(), free_port(), config);
        p._tmp = Some(dir);
        p
    }

    /// In `dir` on `port`: started again there, it has what it had.
    pub fn start_at(dir: &std::path::Path, port: u16, config: &str) -> Prometheus {
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, config).expect("config");
        let child = Command::new(find_binary("prometheus"))
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        wait_port(port, "prometheus");
        Prometheus {
            port,
            _tmp: None,
            child,
        }
    }

    /// An instant PromQL query's result vector (`[]` when it has none yet).
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let r = super::agent()
            .get(&url)
            .query("query", promql)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .unwrap_or_default();
        r["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
