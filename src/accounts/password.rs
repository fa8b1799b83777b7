//! Passwords: argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1), rules after ASVS v4
//! §2.1 (at least 8 characters, 15 recommended, at least 64 allowed, no composition rules, common
//! passwords refused), input length capped before hashing, and a dummy verification for unknown
//! accounts so that timing does not tell which accounts exist. [`Hashing`] caps how many hashes
//! run at once (each takes 19 MiB), so a burst of sign-ins cannot exhaust the server's memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_CHARS: usize = 8;
pub const RECOMMENDED_CHARS: usize = 15;
pub const MAX_CHARS: usize = 128;
/// Longest input hashed at all (bytes): beyond this, refuse without hashing.
pub const MAX_BYTES: usize = 512;

/// Passwords seen too often in breaches to be allowed (a short list; the length rule does most).
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password123",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyuiop",
    "iloveyou",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "admin123",
    "letmein1",
    "trustno1",
    "11111111",
    "00000000",
    "abc12345",
    "passw0rd",
    "qwerty123",
    "1q2w3e4r",
    "zaq12wsx",
    "changeme",
    "starwars",
    "whatever",
    "superman",
    "michael1",
    "computer",
    "internet",
];

/// Why a new password was refused (shown to the person choosing it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("use at least 8 characters (15 or more is better)")]
    TooShort,
    #[error("use at most 128 characters")]
    TooLong,
    #[error("this password is too common; choose another")]
    Common,
    #[error("the password must not be your email address")]
    SameAsEmail,
}

/// Checks a new password against the rules.
pub fn check(password: &str, email: &str) -> Result<(), PasswordProblem> {
    let chars = password.chars().count();
    if password.len() > MAX_BYTES || chars > MAX_CHARS {
        return Err(PasswordProblem::TooLong);
    }
    if chars < MIN_CHARS {
        return Err(PasswordProblem::TooShort);
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err(PasswordProblem::Common);
    }
    if lower == email.to_lowercase() {
        return Err(PasswordProblem::SameAsEmail);
    }
    Ok(())
}

/// Hashes and verifies; every call is CPU-heavy, so callers run it on the blocking pool.
pub struct Passwords {
    argon: Argon2<'static>,
    /// A hash of a random password, verified against when the account does not exist.
    dummy: String,
}

impl Passwords {
    pub fn new() -> Self {
        let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut passwords = Self {
            argon,
            dummy: String::new(),
        };
        let random: [u8; 16] = rand::random();
        passwords.dummy = passwords.hash(&hex::encode(random)).unwrap_or_default();
        passwords
    }

    /// A PHC-format argon2id hash with a random salt.
    pub fn hash(&self, password: &str) -> Option<String> {
        let salt_bytes: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt_bytes).ok()?;
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .ok()
            .map(|h| h.to_string())
    }

    /// Verifies `password` against `hash`, or against the dummy hash when there is no account,
    /// taking the same time either way. Over-long input is refused before hashing.
    pub fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let stored = hash.unwrap_or(&self.dummy);
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let input = if password.len() > MAX_BYTES {
            ""
        } else {
            password
        };
        let ok = self
            .argon
            .verify_password(input.as_bytes(), &parsed)
            .is_ok();
        ok && hash.is_some() && password.len() <= MAX_BYTES
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

/// Password work with a cap: at most `concurrency` hashes run at once on the blocking pool and
/// at most `queue` more wait for a slot; beyond that, [`Hashing::admit`] refuses at once, before
/// the caller has counted or stored anything.
pub struct Hashing {
    passwords: Passwords,
    slots: Arc<tokio::sync::Semaphore>,
    /// Admissions alive: running or waiting.
    admitted: AtomicUsize,
    capacity: usize,
    running: AtomicUsize,
    peak: AtomicUsize,
    completed: AtomicU64,
}

/// What [`Hashing`] has done since start (for operators and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingStats {
    /// The most hashes that ran at the same moment.
    pub peak_running: usize,
    /// Hashes and verifications computed.
    pub completed: u64,
}

/// A place in the hashing queue, taken before the work it allows is counted or started.
pub struct Admission(Arc<Hashing>);

impl Hashing {
    pub fn new(concurrency: usize, queue: usize) -> Arc<Self> {
        let concurrency = concurrency.max(1);
        Arc::new(Self {
            passwords: Passwords::new(),
            slots: Arc::new(tokio::sync::Semaphore::new(concurrency)),
            admitted: AtomicUsize::new(0),
            capacity: concurrency.saturating_add(queue),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
        })
    }

    /// A place in the queue, or `None` when running and waiting work fill it.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| Admission(Arc::clone(self)))
    }

    pub fn stats(&self) -> HashingStats {
        HashingStats {
            peak_running: self.peak.load(Ordering::Acquire),
            completed: self.completed.load(Ordering::Acquire),
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    /// Waits for a slot, then runs `work` on the blocking pool. The slot goes with the work, so
    /// it stays taken until the hash ends even if the request is dropped meanwhile.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Passwords) -> T + Send + 'static,
    ) -> Option<T> {
        let permit = Arc::clone(&self.0.slots).acquire_owned().await.ok()?;
        let hashing = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            let running = hashing.running.fetch_add(1, Ordering::AcqRel) + 1;
            hashing.peak.fetch_max(running, Ordering::AcqRel);
            let out = work(&hashing.passwords);
            hashing.running.fetch_sub(1, Ordering::AcqRel);
            hashing.completed.fetch_add(1, Ordering::AcqRel);
            drop(permit);
            out
        })
        .await
        .ok()
    }

    /// [`Passwords::hash`] in a slot.
    pub async fn hash(&self, password: String) -> Option<String> {
        self.run(move |p| p.hash(&password)).await.flatten()
    }

    /// [`Passwords::verify`] in a slot; false if the work could not run.
    pub async fn verify(&self, password: String, hash: Option<String>) -> bool {
        self.run(move |p| p.verify(&password, hash.as_deref()))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_follow_asvs() {
        assert_eq!(check("short", "a@b.c"), Err(PasswordProblem::TooShort));
        assert_eq!(check("Password123", "a@b.c"), Err(PasswordProblem::Common));
        assert_eq!(
            check("alice@example.com", "Alice@Example.com"),
            Err(PasswordProblem::SameAsEmail)
        );
        assert!(check("correct horse battery staple", "a@b.c").is_ok());
        assert!(
            check(&"x".repeat(64), "a@b.c").is_ok(),
            "64 characters are allowed"
        );
        assert_eq!(
            check(&"x".repeat(129), "a@b.c"),
            Err(PasswordProblem::TooLong)
        );
        assert!(
            check("ünïcödé-pässwörd", "a@b.c").is_ok(),
            "no composition rules, any characters"
        );
    }

    #[test]
    fn hashes_verify_and_unknown_accounts_never_do() {
        let p = Passwords::new();
        let h = p.hash("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(p.verify("correct horse battery staple", Some(&h)));
        assert!(!p.verify("wrong", Some(&h)));
        assert!(!p.verify("anything", None));
    }

    #[tokio::test]
    async fn hashing_admits_its_slots_and_queue_and_no_more() {
        let hashing = Hashing::new(1, 1);
        let first = hashing.admit().unwrap();
        let second = hashing.admit().unwrap();
        assert!(hashing.admit().is_none(), "one running, one waiting: full");
        drop(second);
        let third = hashing.admit().unwrap();
        assert!(!first.verify("x".into(), None).await);
        drop((first, third));
        assert!(hashing.admit().is_some());
        assert_eq!(
            hashing.stats(),
            HashingStats {
                peak_running: 1,
                completed: 1
            }
        );
    }
}
