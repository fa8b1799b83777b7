//! Shared short-lived state: seen `jti` values (client assertions, DPoP proofs) and fixed-window
//! rate-limit counters. Both live in the database so that every instance sees every other's.
//!
//! On PostgreSQL, where instances share the database, the primary key of `seen_jtis` decides
//! whether a jti is new. On SQLite one server process writes the database, through one thread
//! (`group_commit.rs`), so that thread decides: it keeps the unexpired values in memory
//! (`Writer`) and appends each new one to `seen_jtis`, ordered by expiry, so that a restart
//! finds them again. A new value costs SQLite an append to the table's last pages instead of an
//! insert into a random page of a key index, which was half the writer's work per token request.
//! A lock file next to the database (`lock.rs`) keeps a second server process from opening
//! another memory over the same table.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;

use diesel::prelude::*;
use diesel::query_builder::AstPass;
use diesel::sql_types::{BigInt, Text};

use super::batch::{self, BatchRow, Bind, InsertIgnoring, Prepared, fixed_sql};
use super::connection::MultiBackend;
use super::lock::ServerLock;
use super::schema::{rate_limits, seen_jtis};
use super::{DbConnection, StoreError, Tx};

/// Remembers a `jti` within `scope` until `expires_at`. Returns false when it was already seen:
/// the primary key (PostgreSQL) or the writer's memory (SQLite) decides, so two racing uses of
/// one jti cannot both pass. Only in a [`Store::write`](super::Store::write).
pub fn remember_jti(
    tx: &mut Tx<'_>,
    scope: &str,
    jti: &str,
    expires_at: i64,
) -> Result<bool, StoreError> {
    Ok(remember_jtis(tx, &[(scope, jti, expires_at)])?
        .first()
        .copied()
        .unwrap_or(false))
}

/// A jti to remember: scope, jti, until when (Unix ms).
pub type JtiEntry<'a> = (&'a str, &'a str, i64);

impl BatchRow for JtiEntry<'_> {
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        batch::bind::<Text, str>(out, self.0)?;
        out.push_sql(", ");
        batch::bind::<Text, str>(out, self.1)?;
        out.push_sql(", ");
        batch::bind::<BigInt, i64>(out, &self.2)
    }
}

/// [`remember_jti`] for many values at once, for hot paths that commit many requests together.
/// Returns, for each entry in order, whether it was new; of two equal entries in one call only
/// the first is new.
pub fn remember_jtis(tx: &mut Tx<'_>, entries: &[JtiEntry<'_>]) -> Result<Vec<bool>, StoreError> {
    match (tx.replay.as_deref_mut(), &*tx.conn) {
        (Some(writer), _) => {
            let memory = writer.memory(tx.conn)?;
            let fresh: Vec<bool> = entries
                .iter()
                .map(|(scope, jti, until)| memory.insert(scope, jti, *until))
                .collect();
            let new: Vec<JtiEntry<'_>> = entries
                .iter()
                .zip(&fresh)
                .filter_map(|(entry, &fresh)| fresh.then_some(*entry))
                .collect();
            append(tx.conn, &new)?;
            Ok(fresh)
        }
        (None, DbConnection::Pg(_)) => insert_unique(tx, entries),
        // Outside the writer thread nothing could tell a SQLite caller whether a value is new.
        (None, DbConnection::Sqlite(_)) => Err(StoreError::Other(
            "a SQLite jti can only be remembered in a write".into(),
        )),
    }
}

/// PostgreSQL: the primary key (scope, jti) decides, so two instances racing with one jti cannot
/// both pass.
fn insert_unique(tx: &mut Tx<'_>, entries: &[JtiEntry<'_>]) -> Result<Vec<bool>, StoreError> {
    if let [first, second] = entries {
        // A token request's client assertion and DPoP proof: one fixed statement for both.
        fixed_sql!(
            RememberTwoJtis,
            "INSERT INTO seen_jtis (scope, jti, expires_at) VALUES (",
            ", ",
            ", ",
            "), (",
            ", ",
            ", ",
            ") ON CONFLICT DO NOTHING RETURNING scope, jti",
        );
        let [a, b, c] = binds(first);
        let [d, e, f] = binds(second);
        let inserted = Prepared::<RememberTwoJtis, (Text, Text)>::new(&[a, b, c, d, e, f])
            .load::<(String, String)>(tx.conn)?;
        return Ok(batch::claim_inserted(
            entries.iter().map(|(scope, jti, _)| (*scope, *jti)),
            inserted.iter().map(|(s, j)| (s.as_str(), j.as_str())),
        ));
    }
    if entries.len() <= FEW {
        // One value (or a few): a fixed single-row statement each, whose count of changed rows
        // answers.
        fixed_sql!(
            RememberJti,
            "INSERT INTO seen_jtis (scope, jti, expires_at) VALUES (",
            ", ",
            ", ",
            ") ON CONFLICT DO NOTHING",
        );
        return entries
            .iter()
            .map(|entry| {
                let n = Prepared::<RememberJti, ()>::new(&binds(entry)).execute(tx.conn)?;
                Ok(n == 1)
            })
            .collect();
    }
    // Many: a few multi-row statements.
    let mut inserted: Vec<(String, String)> = Vec::with_capacity(entries.len());
    for chunk in batch::chunks(entries) {
        inserted.extend(
            InsertIgnoring::<_, (Text, Text)>::new(
                "INSERT INTO seen_jtis (scope, jti, expires_at) VALUES ",
                " ON CONFLICT DO NOTHING RETURNING scope, jti",
                chunk,
            )
            .load::<(String, String)>(tx.conn)?,
        );
    }
    Ok(batch::claim_inserted(
        entries.iter().map(|(scope, jti, _)| (*scope, *jti)),
        inserted.iter().map(|(s, j)| (s.as_str(), j.as_str())),
    ))
}

/// SQLite: appends values the writer's memory found new. The table's key starts with the
/// expiry, so the rows go to its last pages. A value already there (only possible if something
/// other than this process's writer added it) fails the write rather than pass unnoticed.
fn append(conn: &mut DbConnection, new: &[JtiEntry<'_>]) -> Result<(), StoreError> {
    if let [first, second] = new {
        fixed_sql!(
            AppendTwoJtis,
            "INSERT INTO seen_jtis (scope, jti, expires_at) VALUES (",
            ", ",
            ", ",
            "), (",
            ", ",
            ", ",
            ")",
        );
        let [a, b, c] = binds(first);
        let [d, e, f] = binds(second);
        Prepared::<AppendTwoJtis, ()>::new(&[a, b, c, d, e, f]).execute(conn)?;
        return Ok(());
    }
    if new.len() <= FEW {
        fixed_sql!(
            AppendJti,
            "INSERT INTO seen_jtis (scope, jti, expires_at) VALUES (",
            ", ",
            ", ",
            ")",
        );
        for entry in new {
            Prepared::<AppendJti, ()>::new(&binds(entry)).execute(conn)?;
        }
        return Ok(());
    }
    for chunk in batch::chunks(new) {
        InsertIgnoring::<_, ()>::new(
            "INSERT INTO seen_jtis (scope, jti, expires_at) VALUES ",
            "",
            chunk,
        )
        .execute(conn)?;
    }
    Ok(())
}

/// Up to this many values, [`remember_jtis`] inserts them one by one.
const FEW: usize = 4;

/// An entry's values for a single-row `INSERT INTO seen_jtis (scope, jti, expires_at)`.
fn binds<'a>((scope, jti, until): &JtiEntry<'a>) -> [Bind<'a>; 3] {
    [Bind::Text(scope), Bind::Text(jti), Bind::Int(*until)]
}

/// Counts one hit in `bucket` for the window starting at `window_start`; returns the hits in
/// that window including this one. A bucket from an older window starts over.
pub fn hit(tx: &mut Tx<'_>, bucket: &str, window_start: i64) -> Result<i32, StoreError> {
    for _ in 0..3 {
        let same_window = diesel::update(
            rate_limits::table
                .find(bucket)
                .filter(rate_limits::window_start.eq(window_start)),
        )
        .set(rate_limits::hits.eq(rate_limits::hits + 1))
        .execute(tx.conn)?;
        if same_window == 0 {
            // Only a bucket of another window starts over. Without the filter, a bucket that
            // another transaction created for this window since the update above would be reset
            // to 1, and the hits it had counted lost; with it, that case inserts, conflicts and
            // counts again.
            let reset = diesel::update(
                rate_limits::table
                    .find(bucket)
                    .filter(rate_limits::window_start.ne(window_start)),
            )
            .set((
                rate_limits::window_start.eq(window_start),
                rate_limits::hits.eq(1),
            ))
            .execute(tx.conn)?;
            if reset == 0 {
                let inserted = tx.conn.transaction(|conn| {
                    diesel::insert_into(rate_limits::table)
                        .values((
                            rate_limits::bucket.eq(bucket),
                            rate_limits::window_start.eq(window_start),
                            rate_limits::hits.eq(1),
                        ))
                        .execute(conn)
                });
                match inserted.map_err(StoreError::from) {
                    Ok(_) => {}
                    // Another instance created the bucket first: count again.
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        return Ok(rate_limits::table
            .find(bucket)
            .select(rate_limits::hits)
            .first(tx.conn)?);
    }
    Err(StoreError::Conflict("rate-limit bucket contention".into()))
}

/// Marks `bucket` until `until` (Unix ms), or extends a mark that ends sooner. A mark is a
/// `rate_limits` row whose `window_start` holds the mark's end (its `hits` stay 0), so the sweep
/// of old windows deletes it only after it has ended. Mark buckets have their own names, never
/// passed to [`hit`].
pub fn mark_until(tx: &mut Tx<'_>, bucket: &str, until: i64) -> Result<(), StoreError> {
    for _ in 0..3 {
        let extended = diesel::update(
            rate_limits::table
                .find(bucket)
                .filter(rate_limits::window_start.lt(until)),
        )
        .set(rate_limits::window_start.eq(until))
        .execute(tx.conn)?;
        if extended > 0 || marked(tx, bucket, until - 1)? {
            return Ok(());
        }
        let inserted = tx.conn.transaction(|conn| {
            diesel::insert_into(rate_limits::table)
                .values((
                    rate_limits::bucket.eq(bucket),
                    rate_limits::window_start.eq(until),
                    rate_limits::hits.eq(0),
                ))
                .execute(conn)
        });
        match inserted.map_err(StoreError::from) {
            Ok(_) => return Ok(()),
            // Another request marked it first: extend that mark.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict("rate-limit mark contention".into()))
}

/// Whether `bucket` holds a mark that is still on at `now` (see [`mark_until`]).
pub fn marked(tx: &mut Tx<'_>, bucket: &str, now: i64) -> Result<bool, StoreError> {
    let end: Option<i64> = rate_limits::table
        .find(bucket)
        .select(rate_limits::window_start)
        .first(tx.conn)
        .optional()?;
    Ok(end.is_some_and(|end| end > now))
}

/// The readiness probe's write (`GET /readyz`): one row of `rate_limits`, the `readyz` bucket,
/// moved to `now_ms` and counted. Its bytes must change every time: a transaction that changes
/// nothing (SQLite skips rewriting an identical row) commits even on a full disk or a read-only
/// file. The sweep drops the row two hours after the last probe.
pub fn probe_write(tx: &mut Tx<'_>, now_ms: i64) -> Result<(), StoreError> {
    // Both engines take this upsert; the value is an integer, formatted, never text. The count
    // wraps well below the column's 32 bits.
    diesel::sql_query(format!(
        "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ('readyz', {now_ms}, 1) \
         ON CONFLICT (bucket) DO UPDATE SET window_start = excluded.window_start, \
         hits = rate_limits.hits % 1000000 + 1"
    ))
    .execute(tx.conn)?;
    Ok(())
}

/// Deletes jti records and rate-limit buckets that ended before `before`; returns how many.
pub fn delete_expired(
    tx: &mut Tx<'_>,
    before: i64,
    oldest_window: i64,
) -> Result<usize, StoreError> {
    if let Some(writer) = tx.replay.as_deref_mut() {
        writer.forget_before(before);
    }
    let a = diesel::delete(seen_jtis::table.filter(seen_jtis::expires_at.lt(before)))
        .execute(tx.conn)?;
    let b = diesel::delete(rate_limits::table.filter(rate_limits::window_start.lt(oldest_window)))
        .execute(tx.conn)?;
    Ok(a + b)
}

/// The SQLite writer thread's replay memory: every jti value in `seen_jtis`, loaded at its first
/// use, and the lock that makes this process the database's only keeper of it (`lock.rs`).
pub(super) struct Writer {
    lock: Arc<ServerLock>,
    memory: Option<Memory>,
    /// The store's schema generation the memory was loaded under (see [`Self::check_schema`]).
    schema: u64,
}

impl Writer {
    pub(super) fn new(lock: Arc<ServerLock>) -> Self {
        Self {
            lock,
            memory: None,
            schema: 0,
        }
    }

    /// The memory, claimed and loaded from `seen_jtis` at the first use (inside the writer's
    /// transaction, so nothing changes the table while it loads).
    fn memory(&mut self, conn: &mut DbConnection) -> Result<&mut Memory, StoreError> {
        let memory = match self.memory.take() {
            Some(memory) => memory,
            None => {
                self.lock.claim()?;
                load(conn)?
            }
        };
        Ok(self.memory.insert(memory))
    }

    /// Where the current write's additions begin (to forget them if it rolls back).
    pub(super) fn mark(&self) -> usize {
        self.memory.as_ref().map_or(0, |m| m.added.len())
    }

    /// Forgets what was added since `mark`: that write rolled back.
    pub(super) fn undo_to(&mut self, mark: usize) {
        if let Some(memory) = &mut self.memory {
            for key in memory.added.drain(mark.min(memory.added.len())..) {
                memory.seen.remove(&key);
            }
        }
    }

    /// The group's transaction committed: what it added stays.
    pub(super) fn committed(&mut self) {
        if let Some(memory) = &mut self.memory {
            memory.added.clear();
        }
    }

    /// The group's transaction was rolled back: nothing it added stays.
    pub(super) fn rolled_back(&mut self) {
        self.undo_to(0);
    }

    /// The transaction's outcome is unknown: load the memory again at its next use.
    pub(super) fn reload(&mut self) {
        self.memory = None;
    }

    /// A migration ran since the memory was loaded (it may have reshaped or refilled the table):
    /// load it again.
    pub(super) fn check_schema(&mut self, schema: u64) {
        if schema != self.schema {
            self.schema = schema;
            self.memory = None;
        }
    }

    fn forget_before(&mut self, before: i64) {
        if let Some(memory) = &mut self.memory {
            memory.seen.retain(|_, until| *until >= before);
            // Dropped keys leave the undo list too. Should the sweep's write roll back, they stay
            // forgotten while the table keeps their rows: harmless, as their windows have ended.
            let seen = &memory.seen;
            memory.added.retain(|key| seen.contains_key(key));
        }
    }
}

/// Every value in `seen_jtis`, 4,096 rows per statement in key order, so that a restart after a
/// busy hour need not hold the whole table's text at once.
fn load(conn: &mut DbConnection) -> Result<Memory, StoreError> {
    fixed_sql!(
        LoadPage,
        "SELECT scope, jti, expires_at FROM seen_jtis WHERE (expires_at, scope, jti) > (",
        ", ",
        ", ",
        ") ORDER BY expires_at, scope, jti LIMIT 4096",
    );
    let mut memory = Memory::new();
    // No row sorts before this one: every jti is at least one character.
    let mut after = (i64::MIN, String::new(), String::new());
    loop {
        let page: Vec<(String, String, i64)> = Prepared::<LoadPage, (Text, Text, BigInt)>::new(&[
            Bind::Int(after.0),
            Bind::Text(&after.1),
            Bind::Text(&after.2),
        ])
        .load(conn)?;
        for (scope, jti, until) in &page {
            memory.insert(scope, jti, *until);
        }
        // Until a page comes back empty: no count to keep in step with the LIMIT.
        match page.into_iter().last() {
            Some((scope, jti, until)) => after = (until, scope, jti),
            None => break,
        }
    }
    memory.added.clear();
    Ok(memory)
}

/// Seen values by a 128-bit keyed hash of (scope, jti): 24 bytes each, whatever the length of
/// the jti (up to 256 bytes). Two values collide with odds of about n² / 2¹²⁹, and a collision
/// could only refuse a new value, never let a seen one pass.
struct Memory {
    seen: HashMap<u128, i64, KeyIsHash>,
    salt: (RandomState, RandomState),
    /// Keys added since the group's transaction began, in order.
    added: Vec<u128>,
}

impl Memory {
    fn new() -> Self {
        Self {
            seen: HashMap::with_hasher(KeyIsHash),
            salt: (RandomState::new(), RandomState::new()),
            added: Vec::new(),
        }
    }

    /// True when (scope, jti) was not seen; it is from now on.
    fn insert(&mut self, scope: &str, jti: &str, until: i64) -> bool {
        let key = (u128::from(self.salt.0.hash_one((scope, jti))) << 64)
            | u128::from(self.salt.1.hash_one((scope, jti)));
        match self.seen.entry(key) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(until);
                self.added.push(key);
                true
            }
        }
    }
}

/// The map's keys are keyed hashes already: the table takes their low bits as they are.
#[derive(Clone, Copy, Default)]
struct KeyIsHash;

impl BuildHasher for KeyIsHash {
    type Hasher = TakeLow;
    fn build_hasher(&self) -> TakeLow {
        TakeLow(0)
    }
}

struct TakeLow(u64);

impl Hasher for TakeLow {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed (`write_u128`); fold anything else in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, key: u128) {
        self.0 = key as u64;
    }
}
