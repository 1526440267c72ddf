//! Encryption at rest (`ENCRYPTION_KEY_FILE`): one 32-byte key from a file the daemon's user
//! alone may read, two keys derived from it with HKDF-SHA256, and ring's
//! AEAD and HMAC (ring is in the tree already, through rustls).
//!
//! - [`Cipher::encrypt`]: ChaCha20-Poly1305 with a random 96-bit nonce, bound
//!   to an "associated" context (the tree and key it is stored under), so an
//!   encrypted value moved to another key does not decrypt there;
//!   `nonce | ciphertext | tag`, 28 bytes more than the plain value.
//! - [`Cipher::name`]: HMAC-SHA256 of a name, for keys that would reveal
//!   data (a model's or a token's name): the same name gives the same key,
//!   so lookups work, and the name itself is kept encrypted in the value.
//! - [`Cipher::canary`] / [`Cipher::check`]: an encrypted known value stored
//!   once, so a wrong key stops start-up with a clear error, never garbage.

use crate::error::{Error, Result};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, KeyType, Salt};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;

/// Bytes an encrypted value takes beyond the plain one.
pub const OVERHEAD: usize = NONCE_LEN + 16;
/// The key file holds exactly this many bytes.
pub const KEY_LEN: usize = 32;
const CANARY: &[u8] = b"mlsec-monitor sealed store";
const CANARY_CONTEXT: &[u8] = b"canary";

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

pub struct Cipher {
    aead: LessSafeKey,
    names: hmac::Key,
    rng: SystemRandom,
}

/// An encrypted value that does not decrypt: damaged, moved, or another key's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoesNotOpen;

fn derive(master: &[u8; KEY_LEN], info: &[u8]) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    Salt::new(HKDF_SHA256, b"mlsec-monitor")
        .extract(master)
        .expand(&[info], Len(KEY_LEN))
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF-SHA256 gives 32 bytes");
    out
}

impl Cipher {
    pub fn new(master: &[u8; KEY_LEN]) -> Cipher {
        let aead = UnboundKey::new(&CHACHA20_POLY1305, &derive(master, b"values"))
            .expect("a 32-byte ChaCha20-Poly1305 key");
        Cipher {
            aead: LessSafeKey::new(aead),
            names: hmac::Key::new(hmac::HMAC_SHA256, &derive(master, b"names")),
            rng: SystemRandom::new(),
        }
    }

    /// The key in `path`: exactly 32 bytes, readable by its owner only
    /// (mode 0600 or stricter), else an error naming the file and why.
    pub fn from_key_file(path: &Path) -> Result<Cipher> {
        use std::os::unix::fs::PermissionsExt;
        let bad =
            |why: String| Error::config(format!("ENCRYPTION_KEY_FILE {}: {why}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad(format!(
                "mode {mode:04o} lets others read it; chmod 600 it"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            bad(format!(
                "holds {} bytes, not {KEY_LEN} (make one with: head -c 32 /dev/urandom > FILE)",
                bytes.len()
            ))
        })?;
        Ok(Cipher::new(&key))
    }

    /// `plain` encrypted for the place `context` names.
    pub fn encrypt(&self, plain: &[u8], context: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .expect("the system's random number generator");
        let mut out = Vec::with_capacity(plain.len() + OVERHEAD);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let mut body = out.split_off(NONCE_LEN);
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut body,
            )
            .expect("a value far below ChaCha20's limit");
        out.extend_from_slice(&body);
        out
    }

    /// The plain value of `sealed`, if it was encrypted with this key for `context`.
    pub fn decrypt(
        &self,
        sealed: &[u8],
        context: &[u8],
    ) -> std::result::Result<Vec<u8>, DoesNotOpen> {
        if sealed.len() < OVERHEAD {
            return Err(DoesNotOpen);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| DoesNotOpen)?;
        let mut body = body.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(context), &mut body)
            .map_err(|_| DoesNotOpen)?;
        let n = plain.len();
        body.truncate(n);
        Ok(body)
    }

    /// The key a name is stored under: the same for the same name, and
    /// telling nothing of it without the key.
    pub fn name(&self, name: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.names, name);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// A value to store once, beside the data this key encrypts.
    pub fn canary(&self) -> Vec<u8> {
        self.encrypt(CANARY, CANARY_CONTEXT)
    }

    /// Whether `stored` (a `canary`) was made with this key.
    pub fn check(&self, stored: &[u8]) -> bool {
        self.decrypt(stored, CANARY_CONTEXT)
            .is_ok_and(|p| p == CANARY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn key(b: u8) -> [u8; KEY_LEN] {
        [b; KEY_LEN]
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_context() {
        let s = Cipher::new(&key(1));
        let plain = b"model fraud-detector loaded";
        let sealed = s.encrypt(plain, b"models/fraud");
        assert_eq!(sealed.len(), plain.len() + OVERHEAD);
        assert!(!sealed.windows(5).any(|w| w == b"model"), "no plain text");
        assert_eq!(s.decrypt(&sealed, b"models/fraud").unwrap(), plain);
        assert_eq!(s.decrypt(&sealed, b"models/other"), Err(DoesNotOpen));
        assert_eq!(
            Cipher::new(&key(2)).decrypt(&sealed, b"models/fraud"),
            Err(DoesNotOpen)
        );
        for at in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert_eq!(
                s.decrypt(&bad, b"models/fraud"),
                Err(DoesNotOpen),
                "byte {at}"
            );
        }
        assert_eq!(
            s.decrypt(&sealed[..OVERHEAD - 1], b"models/fraud"),
            Err(DoesNotOpen)
        );
        // Two seals of one value differ (random nonces); both open.
        let again = s.encrypt(plain, b"models/fraud");
        assert_ne!(again, sealed);
        assert_eq!(s.decrypt(&again, b"models/fraud").unwrap(), plain);
        assert_eq!(s.decrypt(&s.encrypt(b"", b"x"), b"x").unwrap(), b"");
    }

    #[test]
    fn names_are_stable_per_key_and_the_canary_tells_a_wrong_key() {
        let (a, b) = (Cipher::new(&key(1)), Cipher::new(&key(2)));
        assert_eq!(a.name(b"grafana"), a.name(b"grafana"));
        assert_ne!(a.name(b"grafana"), a.name(b"grafanb"));
        assert_ne!(a.name(b"grafana"), b.name(b"grafana"));
        let canary = a.canary();
        assert!(a.check(&canary));
        assert!(!b.check(&canary));
        assert!(!a.check(b"garbage"));
    }

    #[test]
    fn the_key_file_must_be_private_and_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, key(7)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Cipher::from_key_file(&path).err().unwrap().to_string();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = Cipher::from_key_file(&path).unwrap();
        assert!(Cipher::new(&key(7)).check(&s.canary()));
        std::fs::write(&path, b"short").unwrap();
        let e = Cipher::from_key_file(&path).err().unwrap().to_string();
        assert!(e.contains("holds 5 bytes, not 32"), "{e}");
        let e = Cipher::from_key_file(&dir.path().join("none"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("cannot read it"), "{e}");
    }
}
