//! Typed settings, loaded once at start-up and passed down (no global singletons).
//!
//! Layers: the embedded `config/default.toml`, then an optional `--config FILE`, then environment
//! variables (`PAIRGATE_<SECTION>__<KEY>` plus the contract variables `PAIRGATE_BIND`,
//! `PAIRGATE_PUBLIC_URL`, `PAIRGATE_DATABASE_URL`). Unknown keys are rejected, and every error
//! names the key and the layer it came from.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

mod values;

pub use values::{Cidr, DatabaseUrl, PublicUrl, Secret};

/// The defaults, compiled in so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// All of pairgate's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub oauth: OAuthSettings,
    pub keys: KeySettings,
    pub portal: PortalSettings,
    pub pairing: PairingSettings,
    pub mail: MailSettings,
    pub erp: ErpSettings,
    pub telemetry: TelemetrySettings,
    pub log: LogSettings,
}

/// The ERP integration: webhooks to the ERP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErpSettings {
    pub webhook_url: String,
    pub webhook_secret: Secret,
    pub webhook_timeout_secs: NonZeroU32,
    pub webhook_retry_base_secs: NonZeroU32,
    pub webhook_retry_max_secs: NonZeroU32,
    pub webhook_poll_interval_ms: NonZeroU32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalSettings {
    pub session_idle_secs: NonZeroU32,
    pub session_absolute_secs: NonZeroU32,
    pub step_up_secs: NonZeroU32,
    pub invitation_lifetime_secs: NonZeroU32,
    pub login_free_failures: u32,
    pub login_free_failures_per_ip: u32,
    pub second_factor_free_failures: u32,
    pub password_hash_concurrency: NonZeroU32,
    pub password_hash_queue: u32,
    pub invitations_per_tenant_per_hour: NonZeroU32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairingSettings {
    pub distributor_sales: DistributorPolicy,
    /// User-code attempts per network (IPv4 /24, IPv6 /48) in each ten-minute window.
    pub code_attempts_per_network: NonZeroU32,
    /// User-code attempts from addresses that have not approved a pairing, over all of them, in
    /// each ten-minute window.
    pub code_attempts_overall: NonZeroU32,
}

/// Distributor sales without a named end customer: pair provisionally (the device works, the ERP
/// confirms or rejects later), or hold for manufacturer staff to review first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DistributorPolicy {
    Provisional,
    Review,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub max_batch_readings: NonZeroU32,
    pub max_metrics_per_reading: NonZeroU32,
    pub max_reading_age_secs: NonZeroU32,
    pub max_reading_future_secs: u32,
    pub retention_days: NonZeroU32,
    pub writer_batch_rows: NonZeroU32,
    pub writer_queue: NonZeroU32,
    pub verified_token_cache: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub from: String,
    pub smtp_url: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub public_url: PublicUrl,
    pub workers: usize,
    pub shutdown_timeout_secs: u64,
    pub max_form_bytes: NonZeroU32,
    pub max_json_bytes: NonZeroU32,
    pub retry_after_secs: u32,
    /// Peers whose `Forwarded`/`X-Forwarded-For` headers are believed (`http::client_addr`).
    pub trusted_proxies: Vec<Cidr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    pub pool_size: NonZeroU32,
    pub acquire_timeout_ms: NonZeroU32,
    pub migrate_on_start: bool,
    pub sqlite_busy_timeout_ms: u32,
    pub sqlite_synchronous: SqliteSynchronous,
    /// SQLite: page cache of all connections together, in MiB (see `store/connection.rs`).
    pub sqlite_cache_mib: NonZeroU32,
}

impl DatabaseSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.acquire_timeout_ms.get()))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    pub device_code_lifetime_secs: NonZeroU32,
    pub poll_interval_secs: NonZeroU32,
    pub access_token_lifetime_secs: NonZeroU32,
    pub refresh_token_idle_secs: NonZeroU32,
    pub refresh_token_absolute_secs: NonZeroU32,
    /// How long after a refresh its previous token may be presented again, by the same client
    /// with the same DPoP key, for the same answer (0: never).
    pub refresh_retry_grace_secs: u32,
    pub access_token_audience: String,
    pub client_assertion_max_lifetime_secs: NonZeroU32,
    pub clock_skew_secs: u32,
    pub dpop_proof_max_age_secs: NonZeroU32,
    pub dpop_require_nonce: bool,
    pub dpop_nonce_lifetime_secs: NonZeroU32,
    pub device_authorization_per_device_per_hour: NonZeroU32,
    pub device_authorization_per_ip_per_minute: NonZeroU32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub signing_alg: SigningAlg,
    pub master_key: Secret,
    pub master_key_file: PathBuf,
    pub publish_before_use_secs: u32,
    pub jwks_max_age_secs: u32,
    /// How often each instance reads the key ring again, in seconds.
    pub ring_reload_secs: NonZeroU32,
    /// PostgreSQL: learn of rotations at once through `LISTEN`/`NOTIFY`.
    pub listen_for_rotations: bool,
}

/// Algorithms pairgate signs access tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SigningAlg {
    EdDSA,
    ES256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    Normal,
    Full,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A configuration problem, with every underlying message (each naming its key and source).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration:\n{0}")]
    Invalid(String),
}

impl Settings {
    /// Loads the defaults, the optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::extract(Self::layers(file)?.merge(env_provider()))
    }

    /// [`Settings::load`], then the command line's values on top: (key, value) pairs such as
    /// `("server.bind", "0.0.0.0:8080")`, checked like every other layer.
    pub fn load_with(file: Option<&Path>, flags: &[(&str, String)]) -> Result<Self, ConfigError> {
        let mut figment = Self::layers(file)?.merge(env_provider());
        for (key, value) in flags {
            figment = figment.merge(Flag(figment::providers::Serialized::default(key, value)));
        }
        Self::extract(figment)
    }

    /// Loads the defaults and the optional file, ignoring the environment (for tests and tools).
    pub fn load_without_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::extract(Self::layers(file)?)
    }

    /// The compiled-in defaults.
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::load_without_env(None)
    }

    /// Parses a TOML overlay given as text on top of the defaults (used by tests).
    pub fn defaults_with(overlay: &str) -> Result<Self, ConfigError> {
        Self::extract(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(overlay)))
    }

    fn layers(file: Option<&Path>) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path.to_owned()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        Ok(figment)
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        let settings = figment.extract::<Settings>().map_err(|err| {
            let lines: Vec<String> = err
                .into_iter()
                .map(|e| format!("  - {}", describe(&e)))
                .collect();
            ConfigError::Invalid(lines.join("\n"))
        })?;
        settings.check()?;
        Ok(settings)
    }

    /// Rules that tie several keys together.
    fn check(&self) -> Result<(), ConfigError> {
        let keys = &self.keys;
        if keys.publish_before_use_secs < keys.ring_reload_secs.get() {
            return Err(ConfigError::Invalid(format!(
                "  - keys.publish_before_use_secs: {} s is shorter than keys.ring_reload_secs \
                 ({} s), so another instance might not know a new key when it starts signing; \
                 raise publish_before_use_secs or lower ring_reload_secs",
                keys.publish_before_use_secs, keys.ring_reload_secs
            )));
        }
        Ok(())
    }
}

/// A setting given on the command line; errors name it as such.
struct Flag<'a>(figment::providers::Serialized<&'a String>);

impl figment::Provider for Flag<'_> {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("the command line")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        self.0.data()
    }
}

/// One error as "key: what was wrong (where it came from)", keys in their file spelling.
fn describe(err: &figment::Error) -> String {
    let key = err.path.join(".").to_ascii_lowercase();
    let source = err
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(source) => format!("{} {source}", m.name),
            None => m.name.to_string(),
        })
        .unwrap_or_else(|| "settings".into());
    if key.is_empty() {
        format!("{} (in {source})", err.kind)
    } else {
        format!("{key}: {} (in {source})", err.kind)
    }
}

/// Environment variables: the three contract names, and `PAIRGATE_<SECTION>__<KEY>` for every key.
fn env_provider() -> Env {
    Env::prefixed("PAIRGATE_").filter_map(|key| {
        let key = key.as_str().to_ascii_lowercase();
        match key.as_str() {
            "bind" => Some("server.bind".into()),
            "public_url" => Some("server.public_url".into()),
            "database_url" => Some("database.url".into()),
            k if k.contains("__") => Some(k.replace("__", ".").into()),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn defaults_parse_and_match_the_contract() {
        let s = Settings::defaults().unwrap();
        assert_eq!(s.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.server.public_url.as_str(), "http://127.0.0.1:8080");
        assert_eq!(
            s.database.url,
            DatabaseUrl::Sqlite(PathBuf::from("data/pairgate.db"))
        );
    }

    #[test]
    fn a_key_may_not_sign_before_every_instance_reloaded_the_ring() {
        let err = Settings::defaults_with("[keys]\npublish_before_use_secs = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("keys.publish_before_use_secs"), "{err}");
        assert!(err.contains("keys.ring_reload_secs (60 s)"), "{err}");
        Settings::defaults_with("[keys]\npublish_before_use_secs = 5\nring_reload_secs = 5")
            .unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = Settings::defaults_with("[server]\nbindd = \"x\"").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("bindd"), "{text}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = Settings::defaults_with("[database]\npool_size = 0").unwrap_err();
        assert!(err.to_string().contains("database.pool_size"), "{err}");
        let err = Settings::defaults_with("[server]\npublic_url = \"ftp://x\"").unwrap_err();
        assert!(err.to_string().contains("server.public_url"), "{err}");
    }

    #[test]
    fn public_url_is_normalised() {
        let url = PublicUrl::try_from("https://id.example.com/".to_owned()).unwrap();
        assert_eq!(url.as_str(), "https://id.example.com");
        assert!(url.is_https());
        assert!(PublicUrl::try_from("https://x/?a=1".to_owned()).is_err());
    }

    #[test]
    fn trusted_proxies_are_cidr_blocks_checked_at_load() {
        assert!(
            Settings::defaults()
                .unwrap()
                .server
                .trusted_proxies
                .is_empty()
        );
        let s = Settings::defaults_with(
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"fd00::/8\", \"127.0.0.1\"]",
        )
        .unwrap();
        let blocks = &s.server.trusted_proxies;
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(blocks[0].contains(ip("10.200.3.4")));
        assert!(!blocks[0].contains(ip("11.0.0.1")));
        assert!(blocks[0].contains(ip("::ffff:10.0.0.9")), "IPv4-mapped");
        assert!(blocks[1].contains(ip("fd12:3456::1")));
        assert!(!blocks[1].contains(ip("fe80::1")));
        assert!(!blocks[1].contains(ip("10.0.0.1")));
        assert!(blocks[2].contains(ip("127.0.0.1")));
        assert!(!blocks[2].contains(ip("127.0.0.2")));
        assert_eq!(blocks[2].to_string(), "127.0.0.1/32");
        let everything = Cidr::try_from("0.0.0.0/0".to_owned()).unwrap();
        assert!(everything.contains(ip("203.0.113.9")));
        assert!(
            Cidr::try_from("::/0".to_owned())
                .unwrap()
                .contains(ip("2001:db8::1"))
        );

        for (bad, says) in [
            ("10.0.0.0/33", "prefix length must be 0 to 32"),
            ("fd00::/129", "prefix length must be 0 to 128"),
            ("10.0.0.1/8", "the block is 10.0.0.0/8"),
            ("proxy.internal", "is not a CIDR block"),
            ("10.0.0.0/", "prefix length"),
        ] {
            let err = Settings::defaults_with(&format!("[server]\ntrusted_proxies = [{bad:?}]"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("server.trusted_proxies"), "{err}");
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn database_url_never_shows_the_password() {
        let url = DatabaseUrl::try_from("postgres://u:secret@h/db".to_owned()).unwrap();
        assert!(!format!("{url:?}").contains("secret"));
        let err = DatabaseUrl::try_from("mysql://u:secret@h/db".to_owned()).unwrap_err();
        assert!(!err.contains("secret"));
    }
}
