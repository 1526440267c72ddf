//! API tokens. A token is 32 random bytes from the operating system, shown
//! once at creation as `mlsec_` and 64 hex digits; only its SHA-256 is
//! kept (sled tree `tokens`, keyed by the token's name). A token is high
//! entropy, so a plain hash is enough: nobody can guess one to match it,
//! and the lookup is by hash, so comparing leaks nothing about a secret.

use super::Role;
use crate::error::{Error, Result};
use crate::store::{Store, codec};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// The file the first-run admin token is written to, in the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// The first-run admin token's name.
pub const FIRST_ADMIN: &str = "admin";
const TREE: &str = "tokens";
const PREFIX: &str = "mlsec_";
/// `last_used_at` is noted (in memory and in sled) at most this often per token.
const LAST_USE_EVERY_SECS: i64 = 60;

/// A token as stored: never the secret, only its hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Who a request is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's name.
    pub name: String,
    pub role: Role,
}

/// Why a credential was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a token this daemon knows (or one revoked).
    Unknown,
    /// The named token's expiry has passed.
    Expired(String),
}

impl Denied {
    pub fn message(&self) -> String {
        match self {
            Denied::Missing => "authentication required: send Authorization: Bearer <token>".into(),
            Denied::Unknown => "invalid token (unknown or revoked)".into(),
            Denied::Expired(name) => format!("token '{name}' has expired"),
        }
    }
}

pub struct Tokens {
    tree: crate::store::Vault,
    /// By hash.
    by_hash: RwLock<HashMap<Vec<u8>, TokenRecord>>,
}

fn sha256(secret: &str) -> Vec<u8> {
    crate::digest::sha256(secret.as_bytes()).to_vec()
}

fn new_secret() -> Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Internal("the operating system gave no random bytes".into()))?;
    Ok(format!("{PREFIX}{}", crate::digest::hex(&bytes)))
}

/// A token name: 1-64 letters, digits, `-`, `_`, `.`.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name '{}': 1-64 letters, digits, '-', '_' or '.'",
            name.escape_debug()
        ))
    }
}

impl Tokens {
    /// Loads every token of the store.
    pub fn open(store: &Store) -> Result<Tokens> {
        let tree = store.named_tree(TREE)?;
        let mut by_hash = HashMap::new();
        for kv in tree.iter() {
            let (_, v) = kv.map_err(|e| store_err(store, e))?;
            let r: TokenRecord =
                codec::decode(&v).map_err(|e| store_err(store, format!("{TREE}: {e}")))?;
            by_hash.insert(r.hash.clone(), r);
        }
        Ok(Tokens {
            tree,
            by_hash: RwLock::new(by_hash),
        })
    }

    /// The tree copied whole while no change can reach it (a backup).
    pub fn copy_tree(&self, store: &Store) -> Result<crate::store::frozen::TreeCopy> {
        let _no_change = self.by_hash.read().unwrap_or_else(|p| p.into_inner());
        crate::store::frozen::copy_tree(self.tree.raw()).map_err(|e| store_err(store, e))
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Every token, by name (no secrets: only hashes are kept).
    pub fn list(&self) -> Vec<TokenRecord> {
        let mut all: Vec<TokenRecord> = self
            .by_hash
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Creates a token; returns its record and the secret (shown once).
    /// Durable before it returns.
    pub fn create(
        &self,
        store: &Store,
        name: &str,
        role: Role,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(TokenRecord, String)> {
        check_name(name).map_err(Error::BadRequest)?;
        if expires_at.is_some_and(|t| t <= now) {
            return Err(Error::BadRequest("expires_at must be in the future".into()));
        }
        let mut all = self.by_hash.write().unwrap_or_else(|p| p.into_inner());
        if all.values().any(|r| r.name == name) {
            return Err(Error::BadRequest(format!(
                "a token named '{name}' exists; revoke it first or pick another name"
            )));
        }
        let secret = new_secret()?;
        let record = TokenRecord {
            name: name.to_string(),
            role,
            hash: sha256(&secret),
            created_at: now,
            expires_at,
            last_used_at: None,
        };
        self.tree
            .insert(name.as_bytes(), codec::encode(&record))
            .map_err(|e| store_err(store, e))?;
        store.sync()?;
        all.insert(record.hash.clone(), record.clone());
        Ok((record, secret))
    }

    /// Removes the named token; `None` when there is none. Durable before
    /// it returns; the token is refused from then on.
    pub fn revoke(&self, store: &Store, name: &str) -> Result<Option<TokenRecord>> {
        let mut all = self.by_hash.write().unwrap_or_else(|p| p.into_inner());
        let Some(hash) = all
            .iter()
            .find(|(_, r)| r.name == name)
            .map(|(h, _)| h.clone())
        else {
            return Ok(None);
        };
        self.tree
            .remove(name.as_bytes())
            .map_err(|e| store_err(store, e))?;
        store.sync()?;
        Ok(all.remove(&hash))
    }

    /// Who `secret` is at `now`. Notes the use; it reaches sled at most
    /// once a minute per token (no sync: losing a last use to a crash is
    /// harmless).
    pub fn check(
        &self,
        secret: &str,
        now: DateTime<Utc>,
    ) -> std::result::Result<Principal, Denied> {
        let hash = sha256(secret);
        // A shared lock for the check: requests do not queue behind each other.
        let (principal, due) = {
            let all = self.by_hash.read().unwrap_or_else(|p| p.into_inner());
            let r = all.get(&hash).ok_or(Denied::Unknown)?;
            if r.expires_at.is_some_and(|t| t <= now) {
                return Err(Denied::Expired(r.name.clone()));
            }
            let due = r
                .last_used_at
                .is_none_or(|t| (now - t).num_seconds() >= LAST_USE_EVERY_SECS);
            let principal = Principal {
                name: r.name.clone(),
                role: r.role,
            };
            (principal, due)
        };
        // The last use, noted at most once a minute per token.
        if due {
            let noted = {
                let mut all = self.by_hash.write().unwrap_or_else(|p| p.into_inner());
                all.get_mut(&hash).map(|r| {
                    r.last_used_at = Some(now);
                    r.clone()
                })
            };
            if let Some(r) = noted {
                let _ = self.tree.insert(r.name.as_bytes(), codec::encode(&r));
            }
        }
        Ok(principal)
    }

    /// On a first start with no token at all: creates the `admin` token and
    /// writes it to `<data_dir>/admin.token`, readable by the daemon's user
    /// only. Returns the file's path when it did.
    pub fn first_run(
        &self,
        store: &Store,
        data_dir: &Path,
        now: DateTime<Utc>,
    ) -> Result<Option<PathBuf>> {
        if !self.is_empty() {
            return Ok(None);
        }
        let (_, secret) = self.create(store, FIRST_ADMIN, Role::Admin, None, now)?;
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        write_private(&path, &format!("{secret}\n"))?;
        Ok(Some(path))
    }
}

/// Writes `text` to a new file only its owner can read and write (0600).
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn store_err(store: &Store, e: impl std::fmt::Display) -> Error {
    Error::Store {
        dir: store.dir().to_path_buf(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn open(dir: &Path) -> (Store, Tokens) {
        let store = Store::open(
            dir,
            crate::store::Layout::new(Duration::from_secs(5), 3),
            100,
        )
        .expect("store");
        let tokens = Tokens::open(&store).expect("tokens");
        (store, tokens)
    }

    #[test]
    fn tokens_check_expire_revoke_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Utc::now();
        let (viewer, short) = {
            let (store, t) = open(dir.path());
            let path = t
                .first_run(&store, dir.path(), now)
                .expect("first run")
                .expect("created");
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let admin = std::fs::read_to_string(&path).expect("read");
            assert_eq!(t.check(admin.trim(), now).map(|p| p.role), Ok(Role::Admin));
            assert!(
                t.first_run(&store, dir.path(), now)
                    .expect("again")
                    .is_none()
            );
            let (_, viewer) = t
                .create(&store, "grafana", Role::Viewer, None, now)
                .expect("create");
            let soon = now + chrono::Duration::hours(1);
            let (_, short) = t
                .create(&store, "temp", Role::Operator, Some(soon), now)
                .expect("create");
            assert!(t.create(&store, "grafana", Role::Admin, None, now).is_err());
            assert!(
                t.create(&store, "bad name", Role::Admin, None, now)
                    .is_err()
            );
            (viewer, short)
        };
        let (store, t) = open(dir.path());
        assert_eq!(
            t.check(&viewer, now),
            Ok(Principal {
                name: "grafana".into(),
                role: Role::Viewer
            })
        );
        // Stored: hashes, never the secrets.
        assert!(t.list().iter().all(|r| r.hash.len() == 32));
        assert!(t.check(&short, now).is_ok());
        let later = now + chrono::Duration::hours(2);
        assert_eq!(t.check(&short, later), Err(Denied::Expired("temp".into())));
        assert_eq!(t.check("mlsec_guess", now), Err(Denied::Unknown));
        assert!(t.revoke(&store, "grafana").expect("revoke").is_some());
        assert_eq!(t.check(&viewer, now), Err(Denied::Unknown));
        assert!(t.revoke(&store, "grafana").expect("revoke").is_none());
    }
}
