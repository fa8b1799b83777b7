//! The master key: 32 bytes from configuration (`keys.master_key`, base64) or from a file that is
//! created on first start. Purpose-specific keys are derived from it with HMAC-SHA256, so one
//! secret never serves two purposes.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::KeySettings;

/// The root secret; only derived keys leave this module.
pub struct MasterKey(hmac::Key);

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("keys.master_key is not base64 of 32 bytes")]
    BadValue,
    #[error("the master key file {path} is not base64 of 32 bytes")]
    BadFile { path: String },
    #[error("cannot read or create the master key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl MasterKey {
    /// Loads the configured key, or the key file (creating it, mode 0600, when missing).
    pub fn load(settings: &KeySettings) -> Result<Self, MasterKeyError> {
        let configured = settings.master_key.expose().trim();
        if !configured.is_empty() {
            return Self::from_base64(configured).ok_or(MasterKeyError::BadValue);
        }
        let path = &settings.master_key_file;
        let shown = path.display().to_string();
        let io = |source| MasterKeyError::Io {
            path: shown.clone(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(text.trim()).ok_or(MasterKeyError::BadFile {
                path: shown.clone(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes: [u8; 32] = rand::random();
                write_private(path, &STANDARD.encode(bytes)).map_err(io)?;
                tracing::warn!(
                    path = %shown,
                    "created a new master key file; back it up, and share it (or keys.master_key) \
                     with every instance"
                );
                Ok(Self::from_bytes(&bytes))
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    fn from_base64(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = STANDARD.decode(text).ok()?.try_into().ok()?;
        Some(Self::from_bytes(&bytes))
    }

    /// A 32-byte key for one purpose, e.g. `derive("dpop-nonce")`.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.0, format!("pairgate/v1/{purpose}").as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}
