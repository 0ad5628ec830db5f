//! Catalog passwords at rest: encrypted with a master key that is not in the data
//! directory (`QUARRY_MASTER_KEY`, or a key file created on first use).

use std::fmt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::{ConnectorError, Result};

/// The environment variable holding the master key (any text of 16 characters or more).
pub const MASTER_KEY_ENV: &str = "QUARRY_MASTER_KEY";

/// Prefix of an encrypted value, followed by hex(nonce || ciphertext).
const SEALED_PREFIX: &str = "sealed:v1:";

/// The key catalog secrets are encrypted with.
#[derive(Clone)]
pub struct MasterKey {
    key: Key,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// Derives the key from a passphrase of at least 16 characters.
    pub fn from_passphrase(passphrase: &str) -> Result<Self> {
        if passphrase.trim().len() < 16 {
            return Err(ConnectorError::MasterKey(format!(
                "the master key must be at least 16 characters long ({MASTER_KEY_ENV} or the key file)"
            )));
        }
        let digest = Sha256::new()
            .chain_update(b"quarry-master-key-v1\0")
            .chain_update(passphrase.trim().as_bytes())
            .finalize();
        Ok(Self {
            key: Key::clone_from_slice(&digest),
        })
    }

    /// `QUARRY_MASTER_KEY` when set, else the key file at `path` (default
    /// `~/.config/quarry/master.key`), created with a random key (mode 0600) when missing.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        if let Ok(passphrase) = std::env::var(MASTER_KEY_ENV)
            && !passphrase.is_empty()
        {
            return Self::from_passphrase(&passphrase);
        }
        let path = match path {
            Some(path) => path.to_path_buf(),
            None => default_key_file()?,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_passphrase(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key_file(&path),
            Err(e) => Err(ConnectorError::MasterKey(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Encrypts `secret` for storage.
    pub fn seal(&self, secret: &SecretString) -> String {
        let cipher = ChaCha20Poly1305::new(&self.key);
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, secret.expose_secret().as_bytes())
            .expect("ChaCha20-Poly1305 encrypts any message of this size");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", hex::encode(bytes))
    }

    /// Decrypts what [`MasterKey::seal`] produced; a different key is a clear error.
    pub fn open(&self, sealed: &str, what: &str) -> Result<SecretString> {
        let wrong = || {
            ConnectorError::MasterKey(format!(
                "cannot decrypt the {what}: it was stored with a different master key"
            ))
        };
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() > 12)
            .ok_or_else(wrong)?;
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = ChaCha20Poly1305::new(&self.key)
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| wrong())?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| wrong())
    }
}

fn default_key_file() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| {
            ConnectorError::MasterKey(format!(
                "set {MASTER_KEY_ENV}: there is no home directory for a key file"
            ))
        })?;
    Ok(base.join("quarry").join("master.key"))
}

fn create_key_file(path: &Path) -> Result<MasterKey> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let fail = |e: std::io::Error| {
        ConnectorError::MasterKey(format!("cannot create {}: {e}", path.display()))
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let passphrase = hex::encode(ChaCha20Poly1305::generate_key(&mut OsRng));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.write_all(passphrase.as_bytes()).map_err(fail)?;
    tracing::info!(path = %path.display(), "created a master key for catalog secrets");
    MasterKey::from_passphrase(&passphrase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let key = MasterKey::from_passphrase("a long enough passphrase").unwrap();
        let sealed = key.seal(&SecretString::from("hunter2"));
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            key.open(&sealed, "password").unwrap().expose_secret(),
            "hunter2"
        );
        let other = MasterKey::from_passphrase("another long passphrase").unwrap();
        let err = other.open(&sealed, "password of catalog x").unwrap_err();
        assert!(err.to_string().contains("different master key"));
        assert!(MasterKey::from_passphrase("short").is_err());
    }

    #[test]
    fn a_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quarry/master.key");
        let first = create_key_file(&path).unwrap();
        let sealed = first.seal(&SecretString::from("s"));
        let text = std::fs::read_to_string(&path).unwrap();
        let again = MasterKey::from_passphrase(&text).unwrap();
        assert_eq!(
            again.open(&sealed, "password").unwrap().expose_secret(),
            "s"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
