//! Command-line interface: `serve`, `config`, `check`, `rules`, `token`,
//! `backup`, `restore`, `analyze`, `audit`, `version`. The `token` and `backup` commands
//! talk to the running daemon's API as an admin (the daemon holds the
//! database, so nothing else may open it).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "mlsec-monitor",
    about = "Monitoring and alerting appliance for the ML security platform"
)]
pub struct Cli {
    /// TOML config file (also CONFIG_FILE).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve(ServeArgs),
    /// Print the effective configuration (secrets masked) and exit 2 if it is invalid.
    Config(ServeArgs),
    /// Probe every configured service once, print a table, exit 1 if any is unhealthy.
    Check(ServeArgs),
    /// List the effective alert rules (built-in and configured).
    Rules(ServeArgs),
    /// Manage API tokens of the running daemon (as an admin).
    Token {
        #[command(subcommand)]
        action: TokenAction,
        #[command(flatten)]
        server: ServeArgs,
        /// The daemon's URL (default: http://127.0.0.1:SERVICE_PORT).
        #[arg(long, global = true)]
        url: Option<String>,
        /// A file holding an admin token (default: MLSEC_TOKEN, else
        /// DATA_DIR/admin.token).
        #[arg(long, global = true, value_name = "PATH")]
        token_file: Option<PathBuf>,
    },
    /// Take a backup of the running daemon (as an admin) into a file.
    Backup {
        /// The archive to write (written beside as FILE.partial until whole).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        server: ServeArgs,
        /// The daemon's URL (default: http://127.0.0.1:SERVICE_PORT).
        #[arg(long)]
        url: Option<String>,
        /// A file holding an admin token (default: MLSEC_TOKEN, else
        /// DATA_DIR/admin.token).
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
    },
    /// Make a data directory from a backup (the archive is checked whole first).
    Restore {
        /// The archive to restore.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "at",
            conflicts_with = "at"
        )]
        from: Option<PathBuf>,
        /// Restore the newest backup in BACKUP_DIR taken at or before this
        /// time (RFC 3339, such as 2026-12-01T10:00:00Z).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Where the scheduled backups are (default: BACKUP_DIR).
        #[arg(long, value_name = "PATH")]
        backup_dir: Option<PathBuf>,
        /// The directory to restore into (default: DATA_DIR); it must be
        /// empty or missing.
        #[arg(long, value_name = "PATH")]
        data_dir: Option<PathBuf>,
        /// Replace what the data directory holds (never while a daemon runs on it).
        #[arg(long)]
        force: bool,
    },
    /// Replay the analysis offline on a `timestamp,value` CSV (NAB's format).
    Analyze {
        #[command(subcommand)]
        what: AnalyzeWhat,
    },
    /// Work with the audit trail of a stopped daemon's data directory.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum AnalyzeWhat {
    /// Print `timestamp,value,anomaly_score,is_anomaly` for every row, each
    /// decided from the rows up to it; bad input is an error naming the
    /// line (exit code 2).
    Anomalies {
        #[arg(long, value_name = "FILE.csv")]
        input: PathBuf,
    },
    /// Print `timestamp,value,target_timestamp,forecast,lower,upper` for
    /// every row: the forecast made at that row for HORIZON rows ahead, with
    /// its 95 % interval (empty while warming up); bad input is an error
    /// naming the line (exit code 2).
    Forecast {
        #[arg(long, value_name = "FILE.csv")]
        input: PathBuf,
        /// Rows ahead (1 to 10000).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        horizon: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check the whole hash chain of a stopped daemon's data directory;
    /// exit 1 naming the first broken record.
    Verify {
        /// The data directory (default: DATA_DIR or the config file's).
        #[arg(long, value_name = "PATH")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token and print it (shown this once).
    Create {
        #[arg(long)]
        name: String,
        /// viewer, operator, admin or ingest.
        #[arg(long)]
        role: String,
        /// Lifetime, such as 30d, 12h or 90m (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List the tokens (names, roles, creation, expiry, last use).
    List,
    /// Revoke a token by name.
    Revoke { name: String },
}

/// A lifetime such as `30d`, `12h`, `90m` or `45s`.
pub fn parse_lifetime(s: &str) -> Result<chrono::Duration, String> {
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("--expires '{s}': a positive number then d, h, m or s"))?;
    match unit {
        "d" => Ok(chrono::Duration::days(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "m" => Ok(chrono::Duration::minutes(n)),
        "s" => Ok(chrono::Duration::seconds(n)),
        _ => Err(format!(
            "--expires '{s}': a positive number then d, h, m or s"
        )),
    }
}

/// Runs a token command against the daemon at `url` with `admin`'s token;
/// returns what to print.
pub fn token(action: &TokenAction, url: &str, admin: &str) -> Result<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let auth = format!("Bearer {admin}");
    let call = |r: Result<ureq::http::Response<ureq::Body>, ureq::Error>| {
        let mut r = r.map_err(|e| format!("{url}: {e}"))?;
        let status = r.status().as_u16();
        let text = r
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{url}: unreadable answer: {e}"))?;
        let body: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{url}: not a JSON answer: {e}"))?;
        if status >= 400 {
            return Err(format!(
                "{status}: {}",
                body["error"].as_str().unwrap_or("error")
            ));
        }
        Ok(body)
    };
    match action {
        TokenAction::Create {
            name,
            role,
            expires,
        } => {
            let mut body = serde_json::json!({"name": name, "role": role});
            if let Some(e) = expires {
                let at = chrono::Utc::now() + parse_lifetime(e)?;
                body["expires_at"] = serde_json::json!(crate::time::ts(at));
            }
            let v = call(
                agent
                    .post(&format!("{url}/auth/tokens"))
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .send(body.to_string()),
            )?;
            Ok(format!("{}\n", v["token"].as_str().unwrap_or_default()))
        }
        TokenAction::List => {
            let v = call(
                agent
                    .get(&format!("{url}/auth/tokens"))
                    .header("authorization", &auth)
                    .call(),
            )?;
            let mut out = format!(
                "{:24} {:9} {:25} {:25} {:25}\n",
                "NAME", "ROLE", "CREATED", "EXPIRES", "LAST USED"
            );
            for t in v["tokens"].as_array().into_iter().flatten() {
                let s = |k: &str| t[k].as_str().unwrap_or("-").to_string();
                out += &format!(
                    "{:24} {:9} {:25} {:25} {:25}\n",
                    s("name"),
                    s("role"),
                    s("created_at"),
                    s("expires_at"),
                    s("last_used_at")
                );
            }
            Ok(out)
        }
        TokenAction::Revoke { name } => {
            call(
                agent
                    .delete(&format!("{url}/auth/tokens/{name}"))
                    .header("authorization", &auth)
                    .call(),
            )?;
            Ok(format!("revoked '{name}'\n"))
        }
    }
}

#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (SERVICE_HOST).
    #[arg(long)]
    pub host: Option<String>,
    /// Port to listen on, 0 for any free port (SERVICE_PORT).
    #[arg(long)]
    pub port: Option<String>,
    /// Where the database lives (DATA_DIR).
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// trace, debug, info, warn or error (LOG_LEVEL).
    #[arg(long)]
    pub log_level: Option<String>,
}
