//! Entry point: parse the command line, load the configuration, start the
//! runtime, and map errors to exit codes (2 for configuration, 1 otherwise).

use clap::Parser;
use mlsec_monitor::cli::{Cli, Command, ServeArgs};
use mlsec_monitor::config::{Config, LogFormat, Overrides};
use mlsec_monitor::error::Error;
use std::process::ExitCode;

fn overrides(config: Option<std::path::PathBuf>, a: ServeArgs) -> Overrides {
    Overrides {
        config_file: config,
        host: a.host,
        port: a.port,
        data_dir: a.data_dir,
        log_level: a.log_level,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("mlsec-monitor {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Config(args) => match Config::load(overrides(cli.config, args)) {
            Ok(c) => {
                print!("{}", c.to_toml());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Rules(args) => match Config::load(overrides(cli.config, args)) {
            Ok(config) => {
                println!(
                    "{:26} {:9} {:44} {:10} {:>7} {:>6}  CONDITION",
                    "RULE", "SEVERITY", "SERIES", "AGG", "WINDOW", "FOR"
                );
                for r in mlsec_monitor::alerting::rule::effective_rules(&config) {
                    let matchers: Vec<String> = r
                        .matchers
                        .iter()
                        .map(|m| {
                            format!(
                                "{}{}\"{}\"",
                                m.name,
                                if m.negate { "!=" } else { "=" },
                                m.value
                            )
                        })
                        .collect();
                    println!(
                        "{:26} {:9} {:44} {:10} {:>6}s {:>5}s  {} {}{}",
                        r.name,
                        r.severity.as_str(),
                        format!("{}{{{}}}", r.metric, matchers.join(",")),
                        format!("{:?}", r.aggregation).to_lowercase(),
                        r.window.as_secs_f64(),
                        r.for_.as_secs_f64(),
                        r.op.as_str(),
                        r.threshold,
                        if r.builtin { "" } else { "  (configured)" }
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Check(args) => match Config::load(overrides(cli.config, args)) {
            Ok(config) => check(config),
            Err(e) => fail(&e),
        },
        Command::Serve(args) => match Config::load(overrides(cli.config, args)) {
            Ok(config) => serve(config),
            Err(e) => fail(&e),
        },
        Command::Audit {
            action: mlsec_monitor::cli::AuditAction::Verify { data_dir },
        } => {
            let args = ServeArgs {
                data_dir,
                ..ServeArgs::default()
            };
            match Config::load(overrides(cli.config, args)) {
                Ok(config) => audit_verify(&config),
                Err(e) => fail(&e),
            }
        }
        Command::Backup {
            out,
            server,
            url,
            token_file,
        } => match Config::load(overrides(cli.config, server)) {
            Ok(config) => backup(&config, &out, url, token_file),
            Err(e) => fail(&e),
        },
        Command::Restore {
            from,
            at,
            backup_dir,
            data_dir,
            force,
        } => {
            private_files();
            let args = ServeArgs {
                data_dir,
                ..ServeArgs::default()
            };
            match Config::load(overrides(cli.config, args)) {
                Ok(config) => restore(&config, from, at, backup_dir, force),
                Err(e) => fail(&e),
            }
        }
        Command::Analyze { what } => analyze(what),
        Command::Token {
            action,
            server,
            url,
            token_file,
        } => match Config::load(overrides(cli.config, server)) {
            Ok(config) => token(&action, &config, url, token_file),
            Err(e) => fail(&e),
        },
    }
}

/// The running daemon's URL (`--url`, else the configured address) and an
/// admin token from MLSEC_TOKEN, `--token-file` or the first-run file.
fn daemon(
    config: &Config,
    url: Option<String>,
    token_file: Option<std::path::PathBuf>,
) -> Result<(String, String), ExitCode> {
    let host = if config.host.is_unspecified() {
        "127.0.0.1".to_string()
    } else if config.host.is_ipv6() {
        format!("[{}]", config.host)
    } else {
        config.host.to_string()
    };
    let url = url.unwrap_or_else(|| format!("http://{host}:{}", config.port));
    let url = url.trim_end_matches('/').to_string();
    if let Some(t) = std::env::var("MLSEC_TOKEN").ok().filter(|t| !t.is_empty()) {
        return Ok((url, t));
    }
    let file = token_file.unwrap_or_else(|| {
        config
            .data_dir
            .join(mlsec_monitor::auth::tokens::ADMIN_TOKEN_FILE)
    });
    match std::fs::read_to_string(&file) {
        Ok(t) => Ok((url, t.trim().to_string())),
        Err(e) => {
            eprintln!(
                "error: no admin token: set MLSEC_TOKEN or --token-file ({}: {e})",
                file.display()
            );
            Err(ExitCode::from(2))
        }
    }
}

/// `token ...`: the daemon's API as an admin.
fn token(
    action: &mlsec_monitor::cli::TokenAction,
    config: &Config,
    url: Option<String>,
    token_file: Option<std::path::PathBuf>,
) -> ExitCode {
    let (url, admin) = match daemon(config, url, token_file) {
        Ok(d) => d,
        Err(code) => return code,
    };
    match mlsec_monitor::cli::token(action, &url, &admin) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// What an archive holds, in one line.
fn holds(m: &mlsec_monitor::backup::archive::Manifest) -> String {
    let n = |tree: &str| m.trees.get(tree).copied().unwrap_or(0);
    // Each tier's database has one `blocks` tree.
    let blocks: u64 = m
        .trees
        .iter()
        .filter(|(tree, _)| tree.ends_with("/blocks"))
        .map(|(_, n)| n)
        .sum();
    format!(
        "{} series, {blocks} blocks, {} alerts, {} audit records, {} silences, {} deliveries queued, {} models, {} training jobs, {} tokens; {} items",
        n("db/series"),
        n("db/alerts"),
        n("db/audit"),
        n("db/silences"),
        n("db/outbox"),
        n("db/models"),
        n("db/training_jobs"),
        n("db/tokens"),
        m.items
    )
}

/// `backup --out FILE`: an archive from the running daemon.
fn backup(
    config: &Config,
    out: &std::path::Path,
    url: Option<String>,
    token_file: Option<std::path::PathBuf>,
) -> ExitCode {
    use mlsec_monitor::backup::{fetch, progress};
    let (url, admin) = match daemon(config, url, token_file) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let mut shown: Option<progress::Progress> = None;
    let result = fetch::fetch(&url, &admin, out, &mut |bytes, items, estimate| {
        shown
            .get_or_insert_with(|| progress::Progress::new("backup", estimate))
            .update(bytes, items);
    });
    match result {
        Ok(m) => {
            let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
            let line = format!(
                "{} ({}), taken {}: {}",
                out.display(),
                progress::size(size),
                m.created_at,
                holds(&m)
            );
            match &shown {
                Some(p) => p.finish(&line),
                None => eprintln!("backup: {line}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: backup failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// `restore`: the archive (`--from`, or picked by `--at`) checked, then
/// written into the data directory.
fn restore(
    config: &Config,
    from: Option<std::path::PathBuf>,
    at: Option<String>,
    backup_dir: Option<std::path::PathBuf>,
    force: bool,
) -> ExitCode {
    use mlsec_monitor::backup::{progress, restore, schedule};
    let archive = match (from, at) {
        (Some(f), _) => f,
        (None, Some(at)) => {
            let Ok(t) = chrono::DateTime::parse_from_rfc3339(&at) else {
                eprintln!(
                    "error: --at '{at}' is not an RFC 3339 time such as 2026-12-01T10:00:00Z"
                );
                return ExitCode::from(2);
            };
            let Some(dir) = backup_dir.or_else(|| config.backup.as_ref().map(|b| b.dir.clone()))
            else {
                eprintln!("error: --at needs the backups' directory: --backup-dir or BACKUP_DIR");
                return ExitCode::from(2);
            };
            match schedule::pick(&dir, t.with_timezone(&chrono::Utc)) {
                Ok(p) => {
                    eprintln!("restore: picked {}", p.display());
                    p
                }
                Err(e) => return fail(&e),
            }
        }
        (None, None) => {
            eprintln!("error: restore needs --from FILE or --at TIME");
            return ExitCode::from(2);
        }
    };
    let total = std::fs::metadata(&archive).map(|m| m.len()).ok();
    let mut shown: Option<(restore::Pass, progress::Progress)> = None;
    let result = restore::restore(
        &archive,
        &config.data_dir,
        force,
        &mut |pass, bytes, items| {
            if shown.as_ref().is_none_or(|(p, _)| *p != pass) {
                let what = match pass {
                    restore::Pass::Check => "restore (checking)",
                    restore::Pass::Write => "restore (writing)",
                };
                shown = Some((pass, progress::Progress::new(what, total)));
            }
            if let Some((_, p)) = &mut shown {
                p.update(bytes, items);
            }
        },
    );
    match result {
        Ok(m) => {
            let line = format!(
                "{} restored into {} (taken {} by {}): {}",
                archive.display(),
                config.data_dir.display(),
                m.created_at,
                m.daemon_version,
                holds(&m)
            );
            match &shown {
                Some((_, p)) => p.finish(&line),
                None => eprintln!("restore: {line}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `analyze anomalies|forecast --input FILE`: the analysis replayed on a CSV.
fn analyze(what: mlsec_monitor::cli::AnalyzeWhat) -> ExitCode {
    use mlsec_monitor::analysis::replay;
    use mlsec_monitor::cli::AnalyzeWhat;
    let input = match &what {
        AnalyzeWhat::Anomalies { input } | AnalyzeWhat::Forecast { input, .. } => input,
    };
    let text = match std::fs::read_to_string(input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: cannot read it: {e}", input.display());
            return ExitCode::from(2);
        }
    };
    match replay::parse(&text) {
        Ok(rows) => {
            use std::io::Write;
            let out = match &what {
                AnalyzeWhat::Anomalies { .. } => replay::anomalies(&rows),
                AnalyzeWhat::Forecast { horizon, .. } => replay::forecast(&rows, *horizon as usize),
            };
            // A closed pipe (`| head`) is not an error of ours.
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", input.display());
            ExitCode::from(2)
        }
    }
}

/// `audit verify`: the chain of the data directory, offline.
fn audit_verify(config: &Config) -> ExitCode {
    use mlsec_monitor::alerting::chain;
    let verified =
        mlsec_monitor::cipher(config).and_then(|c| chain::verify_dir(&config.data_dir, c.as_ref()));
    match verified {
        Ok(Ok(ok)) => {
            let span = match ok.span {
                Some((a, b)) => format!("records {a} to {b}"),
                None => "no records".to_string(),
            };
            let anchor = if ok.anchor == chain::Link::START {
                "never purged".to_string()
            } else {
                format!("purged up to record {}", ok.anchor.seq)
            };
            println!(
                "audit trail intact: {} record(s), {span}, {anchor}, head {}",
                ok.records,
                chain::hex(&ok.head.hash)
            );
            ExitCode::SUCCESS
        }
        Ok(Err(broken)) => {
            eprintln!("audit trail broken: {broken}");
            ExitCode::from(1)
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &Error) -> ExitCode {
    eprintln!("mlsec-monitor: {e}");
    match e {
        Error::Config(_) => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}

/// The runtime of `serve` and `check`. Blocking work (sysinfo, sled
/// flushes, HTTP probes) runs on a bounded pool: one thread per service
/// (each has at most one probe in flight) plus room for the rest, so a
/// hanging target never queues another.
fn runtime(config: &Config) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(32 + config.services.len())
        .build()
}

/// Probes every service once and prints one line each; exit 1 if any is unhealthy.
fn check(config: Config) -> ExitCode {
    let runtime = match runtime(&config) {
        Ok(r) => r,
        Err(e) => return fail(&Error::Io(e)),
    };
    if config.services.is_empty() {
        println!(
            "no services configured (add [[services]] to the config file, or set REDIS_URL / DATABASE_URL)"
        );
        return ExitCode::SUCCESS;
    }
    let results = runtime.block_on(mlsec_monitor::health::engine::check_once(&config.services));
    let width = config
        .services
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(7)
        .max(7);
    println!(
        "{:width$}  {:9}  {:>10}  ERROR",
        "SERVICE", "STATUS", "TIME (ms)"
    );
    let mut any_down = false;
    for (spec, r) in config.services.iter().zip(&results) {
        any_down |= r.status == mlsec_monitor::health::HealthStatus::Unhealthy;
        println!(
            "{:width$}  {:9}  {:>10.1}  {}",
            spec.name,
            r.status.as_str(),
            r.latency_ms,
            r.error.as_deref().unwrap_or("-")
        );
    }
    if any_down {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn init_tracing(config: &Config) {
    let level: tracing::Level = config.log_level.parse().unwrap_or(tracing::Level::INFO);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false);
    match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        // Plain text with every control character escaped: a value from
        // outside can neither start a forged line nor colour the terminal.
        LogFormat::Text => builder
            .with_ansi(false)
            .with_writer(mlsec_monitor::log::stdout)
            .init(),
    }
}

/// Everything the daemon creates (the data directory, sled's files, the
/// checkpoint, the first-run token) is private to its user whatever the
/// umask it was started with: directories 0700, files 0600.
#[allow(unsafe_code)]
fn private_files() {
    // SAFETY: umask only sets the process's file-creation mask; it is
    // called before any other thread exists, so nothing races with it.
    unsafe {
        libc::umask(0o077);
    }
}

/// Files the daemon keeps for itself beside its connections (sled's files,
/// probes, scrapes, notifications).
const RESERVED_FILES: u64 = 256;

/// Raises the soft open-file limit to the hard one (every connection is a
/// file) and returns the soft limit in force.
#[allow(unsafe_code)]
fn raise_open_files() -> Option<u64> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed
    // by reference, which lives for the whole call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return None;
        }
        if l.rlim_cur < l.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: l.rlim_max,
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                l = raised;
            }
        }
    }
    Some(l.rlim_cur)
}

fn serve(mut config: Config) -> ExitCode {
    private_files();
    init_tracing(&config);
    if let Some(files) = raise_open_files() {
        let room = files.saturating_sub(RESERVED_FILES).max(16) as usize;
        if config.http.max_connections > room {
            tracing::warn!(
                open_files = files,
                max_connections = room,
                "HTTP_MAX_CONNECTIONS lowered to stay below the open-file limit"
            );
            config.http.max_connections = room;
        }
    }
    // A data directory made by an earlier release (or by hand) may be
    // readable by others: close it.
    if config.data_dir.is_dir() {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700));
    }
    let runtime = match runtime(&config) {
        Ok(r) => r,
        Err(e) => return fail(&Error::Io(e)),
    };
    let result = runtime.block_on(async {
        let addr = std::net::SocketAddr::new(config.host, config.port);
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("cannot listen on {addr}: {e}"),
            ))
        })?;
        mlsec_monitor::run(config, listener, mlsec_monitor::shutdown::os_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            fail(&e)
        }
    }
}
