//! Shared test helpers: the daemon in-process on 127.0.0.1:0 with a temp data
//! directory, the real binary as a child process, and a small HTTP client.

#![allow(dead_code)]

pub mod servers;

use mlsec_monitor::config::{Config, Overrides};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// A response: status, headers we care about, parsed JSON body (Null if not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Value,
    pub text: String,
}

fn reply(mut r: ureq::http::Response<ureq::Body>) -> Reply {
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let bytes = r
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        text,
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    reply(
        agent()
            .get(&format!("http://{addr}{path}"))
            .call()
            .expect("GET"),
    )
}

pub fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = agent().get(&format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req.call().expect("GET"))
}

pub fn post_json(addr: SocketAddr, path: &str, body: &Value) -> Reply {
    post_raw(addr, path, "application/json", body.to_string().as_bytes())
}

pub fn post_raw(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> Reply {
    reply(
        agent()
            .post(&format!("http://{addr}{path}"))
            .header("content-type", content_type)
            .send(body)
            .expect("POST"),
    )
}

pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut b = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(()).expect("request");
    reply(agent().run(req).expect("request"))
}

/// `method` `path` with `headers` and, when given, a JSON body.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let mut b = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let text = body.map(Value::to_string).unwrap_or_default();
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let req = b.body(text).expect("request");
    reply(agent().run(req).expect("request"))
}

// ---- access control: tokens -------------------------------------------

/// The first-run admin token, checked to be readable by the daemon's user only.
pub fn admin_token(d: &Daemon) -> String {
    let path = d.data_dir.join("admin.token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path)
        .expect("the first-run token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "readable by the daemon's user only");
    std::fs::read_to_string(path)
        .expect("read")
        .trim()
        .to_string()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `method` `path` (with `body`) as the holder of `token`.
pub fn with_token(
    addr: std::net::SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Reply {
    send(
        addr,
        method,
        path,
        &[("authorization", &bearer(token))],
        body,
    )
}

/// Creates a token through the API (as `admin`) and returns its secret.
pub fn create(
    d: &Daemon,
    admin: &str,
    name: &str,
    role: &str,
    expires_at: Option<String>,
) -> String {
    let mut body = json!({"name": name, "role": role});
    if let Some(t) = expires_at {
        body["expires_at"] = json!(t);
    }
    let r = send(
        d.addr,
        "POST",
        "/auth/tokens",
        &[("authorization", &bearer(admin))],
        Some(&body),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["role"], role);
    r.body["token"]
        .as_str()
        .expect("the secret, shown once")
        .to_string()
}

/// Sends raw bytes on a fresh connection and returns (status, body). For
/// requests a normal client would not send (a huge Content-Length, no body).
pub fn raw_http(addr: SocketAddr, request: &[u8]) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Count and highest value of every stored sample of `metric` over the
/// last 7 days (hour granularity), as `token`'s holder when given: the
/// crash and backup tests write a sequence and check what survived.
pub fn stored_sequence(addr: SocketAddr, metric: &str, token: Option<&str>) -> (u64, i64) {
    let auth = token.map(bearer);
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    let r = send(
        addr,
        "GET",
        &format!("/metrics/detailed?metric={metric}&time_range=7d&granularity=1h"),
        &headers,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let mut count = 0;
    let mut max = -1i64;
    for s in r.body["series"].as_array().expect("series") {
        for p in s["points"].as_array().expect("points") {
            count += p["count"].as_u64().expect("count");
            if let Some(m) = p["max"].as_f64() {
                max = max.max(m as i64);
            }
        }
    }
    (count, max)
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "condition not met within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The environment every test daemon starts from: loopback, port 0, fast ticks.
pub fn base_env(data_dir: &Path) -> Vec<(String, String)> {
    [
        ("SERVICE_HOST", "127.0.0.1"),
        ("SERVICE_PORT", "0"),
        ("SYSTEM_METRICS_INTERVAL", "1"),
        ("FLUSH_INTERVAL", "0.2"),
        ("LOG_LEVEL", "warn"),
        // Loopback only, so allowed; tests/auth.rs turns it on.
        ("AUTH", "off"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([("DATA_DIR".to_string(), data_dir.display().to_string())])
    .collect()
}

/// The daemon in-process: `run` on its own runtime thread.
pub struct Daemon {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<mlsec_monitor::error::Result<()>>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Daemon {
    pub fn start(extra_env: &[(&str, &str)]) -> Daemon {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut d = Daemon::start_in(tmp.path(), extra_env);
        d._tmp = Some(tmp);
        d
    }

    /// Starts with `toml` as the config file (written into the data dir's parent).
    pub fn start_with_config(toml: &str, extra_env: &[(&str, &str)]) -> Daemon {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("config.toml");
        std::fs::write(&file, toml).expect("write config");
        let mut env: Vec<(&str, &str)> = extra_env.to_vec();
        let file_s = file.display().to_string();
        env.push(("CONFIG_FILE", &file_s));
        let mut d = Daemon::start_in(&tmp.path().join("data"), &env);
        d._tmp = Some(tmp);
        d
    }

    pub fn start_in(data_dir: &Path, extra_env: &[(&str, &str)]) -> Daemon {
        let mut env: HashMap<String, String> = base_env(data_dir).into_iter().collect();
        for (k, v) in extra_env {
            env.insert(k.to_string(), v.to_string());
        }
        let config =
            Config::from_sources(Overrides::default(), &env).expect("test config is valid");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                let _ = ready_tx.send(());
                mlsec_monitor::run(config, listener, async move {
                    let _ = stop_rx.await;
                })
                .await
            })
        });
        ready_rx.recv().expect("daemon thread started");
        let d = Daemon {
            addr,
            data_dir: data_dir.to_path_buf(),
            stop: Some(stop_tx),
            thread: Some(thread),
            _tmp: None,
        };
        // Ready once the store is open and the server answers.
        wait_for(Duration::from_secs(20), || {
            (get(d.addr, "/").status == 200).then_some(())
        });
        d
    }

    pub fn get(&self, path: &str) -> Reply {
        get(self.addr, path)
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        post_json(self.addr, path, body)
    }

    /// Graceful stop; returns what `run` returned.
    pub fn stop(mut self) -> mlsec_monitor::error::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> mlsec_monitor::error::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let Some(t) = self.thread.take() else {
            return Ok(());
        };
        // A daemon that does not stop is a hang to report, not to wait out
        // until the CI's limit: every thread's stack, then abort.
        let end = Instant::now() + STOP_WITHIN;
        while !t.is_finished() {
            if Instant::now() > end {
                eprintln!("the daemon did not stop within {STOP_WITHIN:?}; its threads:");
                dump_threads();
                std::process::abort();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        t.join().expect("daemon thread panicked")
    }
}

/// How long a graceful stop may take (the HTTP drain is 10 s).
const STOP_WITHIN: Duration = Duration::from_secs(60);

/// Prints every thread's stack of this process with gdb, when installed.
pub fn dump_threads() {
    let out = Command::new("gdb")
        .args([
            "-p",
            &std::process::id().to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .output();
    match out {
        Ok(o) => eprintln!("{}", String::from_utf8_lossy(&o.stdout)),
        Err(e) => eprintln!("(no stacks: gdb: {e})"),
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The real binary as a child process.
pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
    /// The log lines up to "listening on", then the rest as they come.
    pub startup: Vec<String>,
    pub lines: mpsc::Receiver<String>,
}

pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mlsec-monitor"))
}

/// Runs the binary with `args` and only `env` (and PATH); returns its exit
/// code, standard output and standard error.
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = binary();
    cmd.args(args).env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `mlsec-monitor backup` from `d` into `out`: (exit code, stderr).
pub fn backup_via_cli(d: &Daemon, token_file: &Path, out: &Path) -> (i32, String) {
    let (code, _, err) = run_cli(
        &[
            "backup",
            "--url",
            &format!("http://{}", d.addr),
            "--token-file",
            &token_file.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
        &[],
    );
    (code, err)
}

/// `mlsec-monitor restore --from archive --data-dir dir extra...`: (exit code, stderr).
pub fn restore_via_cli(archive: &Path, dir: &Path, extra: &[&str]) -> (i32, String) {
    let (archive, dir) = (archive.display().to_string(), dir.display().to_string());
    let mut args = vec!["restore", "--from", &archive, "--data-dir", &dir];
    args.extend_from_slice(extra);
    let (code, _, err) = run_cli(&args, &[]);
    (code, err)
}

impl Process {
    /// Starts `serve` with the base env plus `extra`, and waits for "listening on".
    pub fn spawn(data_dir: &Path, extra: &[(&str, &str)]) -> Process {
        let mut cmd = binary();
        cmd.arg("serve");
        Process::start(cmd, data_dir, extra)
    }

    /// As `spawn`, from a shell that runs `setup` first (`ulimit ...`).
    pub fn spawn_after(setup: &str, data_dir: &Path, extra: &[(&str, &str)]) -> Process {
        let bin = env!("CARGO_BIN_EXE_mlsec-monitor");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("{setup} && exec {bin} serve"));
        Process::start(cmd, data_dir, extra)
    }

    fn start(mut cmd: Command, data_dir: &Path, extra: &[(&str, &str)]) -> Process {
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in base_env(data_dir) {
            cmd.env(k, v);
        }
        cmd.env("LOG_LEVEL", "info");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn binary");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut startup = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("daemon printed 'listening on' in time");
            startup.push(line.clone());
            let at = line
                .split("listening on http://")
                .nth(1)
                .or_else(|| line.split("listening on https://").nth(1));
            if let Some(rest) = at {
                let addr: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"')
                    .collect();
                break addr.parse().expect("address");
            }
        };
        Process {
            child,
            addr,
            startup,
            lines: rx,
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(mut self) -> i32 {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
