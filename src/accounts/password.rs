//! Passwords: argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1), rules after ASVS v4
//! §2.1 (at least 8 characters, 15 recommended, at least 64 allowed, no composition rules, common
//! passwords refused), input length capped before hashing, and a dummy verification for unknown
//! accounts so that timing does not tell which accounts exist. [`Hashing`] caps how many hashes
//! run at once and gives each slot one reused 19 MiB working memory, so a burst of sign-ins
//! cannot exhaust the server's memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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

/// argon2's working memory for one hash (19 MiB with our parameters), kept and reused: the
/// allocator would otherwise keep a freed buffer of that size resident after nearly every hash.
pub struct Memory(Vec<Block>);

impl Memory {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// The first `count` blocks, growing the buffer once when it is too small.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        &mut self.0[..count]
    }
}

impl Default for Memory {
    fn default() -> Self {
        Self::new()
    }
}

/// Hashes and verifies; every call is CPU-heavy, so callers run it on the blocking pool.
pub struct Passwords {
    params: Params,
    /// A hash of a random password, verified against when the account does not exist.
    dummy: String,
}

impl Passwords {
    pub fn new() -> Self {
        let mut passwords = Self {
            params: Params::new(19 * 1024, 2, 1, None).unwrap_or_default(),
            dummy: String::new(),
        };
        let random: [u8; 16] = rand::random();
        passwords.dummy = passwords
            .hash(&hex::encode(random), &mut Memory::new())
            .unwrap_or_default();
        passwords
    }

    /// A PHC-format argon2id hash with a random salt, computed in `memory`.
    pub fn hash(&self, password: &str, memory: &mut Memory) -> Option<String> {
        let salt_bytes: [u8; 16] = rand::random();
        let salt = Salt::new(&salt_bytes).ok()?;
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                &salt_bytes,
                &mut out,
                memory.blocks(self.params.block_count()),
            )
            .ok()?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).ok()?,
            salt: Some(salt),
            hash: Some(Output::new(&out).ok()?),
        };
        Some(phc.to_string())
    }

    /// Verifies `password` against `hash`, or against the dummy hash when there is no account,
    /// taking the same time either way, computing in `memory`. Over-long input is refused
    /// before hashing.
    pub fn verify(&self, password: &str, hash: Option<&str>, memory: &mut Memory) -> bool {
        let input = if password.len() > MAX_BYTES {
            ""
        } else {
            password
        };
        let ok = Self::matches(input, hash.unwrap_or(&self.dummy), memory).unwrap_or(false);
        ok && hash.is_some() && password.len() <= MAX_BYTES
    }

    /// Recomputes a stored PHC hash with its own algorithm, version, parameters and salt.
    fn matches(password: &str, stored: &str, memory: &mut Memory) -> Option<bool> {
        let parsed = PasswordHash::new(stored).ok()?;
        let algorithm = Algorithm::new(parsed.algorithm.as_str()).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).ok()?;
        let expected = parsed.hash?;
        let salt = parsed.salt?;
        let mut out = vec![0u8; expected.len()];
        let blocks = memory.blocks(params.block_count());
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
            .ok()?;
        Some(subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()).into())
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

/// Password work with a cap: at most `concurrency` hashes run at once on the blocking pool, each
/// in a slot's working memory, and at most `queue` more wait for a slot; beyond that,
/// [`Hashing::admit`] refuses at once, before the caller has counted or stored anything.
pub struct Hashing {
    passwords: Passwords,
    slots: Arc<tokio::sync::Semaphore>,
    /// One working memory per slot, made at first use and then reused.
    memory: std::sync::Mutex<Vec<Memory>>,
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
            memory: std::sync::Mutex::new(Vec::new()),
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

    /// The idle working memories (a panic while one was taken only loses that one).
    fn memory_pool(&self) -> std::sync::MutexGuard<'_, Vec<Memory>> {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        work: impl FnOnce(&Passwords, &mut Memory) -> T + Send + 'static,
    ) -> Option<T> {
        let permit = Arc::clone(&self.0.slots).acquire_owned().await.ok()?;
        let hashing = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            let running = hashing.running.fetch_add(1, Ordering::AcqRel) + 1;
            hashing.peak.fetch_max(running, Ordering::AcqRel);
            let mut memory = hashing.memory_pool().pop().unwrap_or_default();
            let out = work(&hashing.passwords, &mut memory);
            hashing.memory_pool().push(memory);
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
        self.run(move |p, m| p.hash(&password, m)).await.flatten()
    }

    /// [`Passwords::verify`] in a slot; false if the work could not run.
    pub async fn verify(&self, password: String, hash: Option<String>) -> bool {
        self.run(move |p, m| p.verify(&password, hash.as_deref(), m))
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
        let m = &mut Memory::new();
        let h = p.hash("correct horse battery staple", m).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(p.verify("correct horse battery staple", Some(&h), m));
        assert!(!p.verify("wrong", Some(&h), m));
        assert!(!p.verify("anything", None, m));
        // The same as argon2's own verification, for hashes made by either side.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p.params.clone());
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(
            argon
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok()
        );
        let salt = [7; 16];
        let theirs = argon
            .hash_password_with_salt("pässwörd".as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert!(p.verify("pässwörd", Some(&theirs), m));
        // A hash with other (smaller) parameters still verifies: they come from the hash.
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        );
        let older = small
            .hash_password_with_salt(b"old one", &salt)
            .unwrap()
            .to_string();
        assert!(p.verify("old one", Some(&older), m));
        assert!(!p.verify("old two", Some(&older), m));
    }

    #[test]
    fn hashes_stored_by_earlier_versions_still_verify() {
        // Made by `Passwords::hash` with argon2 0.5: stored hashes must survive upgrades.
        let stored = "$argon2id$v=19$m=19456,t=2,p=1$SnFMkMzWwcdNFxOoG2RWJA\
                      $0SxqxXwnr3n8TYE1Je05QcePJwu/xLbQmdFpo6Zfp2M";
        let p = Passwords::new();
        let m = &mut Memory::new();
        assert!(p.verify("correct horse battery staple", Some(stored), m));
        assert!(!p.verify("correct horse battery stapler", Some(stored), m));
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
