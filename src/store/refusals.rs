//! Counters of refused OAuth requests whose client never authenticated: one row per window,
//! address and claimed client, bumped by each refusal, instead of one audit row per refusal.
//! Distinct claims per address and window are limited, so an address that names a new client id
//! with each request still adds a bounded number of rows (the rest count under [`OTHERS`]).

use diesel::prelude::*;

use super::schema::oauth_refusals;
use super::{StoreError, Tx};

/// The actor under which claims past the per-address limit are counted.
pub const OTHERS: &str = "others";

/// One refusal to count.
#[derive(Debug, Clone)]
pub struct Refusal<'a> {
    pub window_start: i64,
    /// The client address, '' when unknown.
    pub ip: &'a str,
    /// `client:<id>` or `anonymous`, already cut to a bounded length.
    pub actor: &'a str,
    pub at: i64,
    /// A fixed text saying why.
    pub reason: &'a str,
}

/// A counter as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = oauth_refusals)]
pub struct RefusalCount {
    pub window_start: i64,
    pub ip: String,
    pub actor: String,
    pub refusals: i64,
    pub first_at: i64,
    pub first_reason: String,
    pub last_at: i64,
    pub last_reason: String,
}

/// Counts `refusal`. An address has at most `actors_per_address` rows of its own claims per
/// window, and one more for [`OTHERS`].
pub fn count(
    tx: &mut Tx<'_>,
    refusal: &Refusal<'_>,
    actors_per_address: i64,
) -> Result<(), StoreError> {
    let mut actor = refusal.actor;
    for _ in 0..3 {
        if bump(tx, refusal, actor)? {
            return Ok(());
        }
        if actor != OTHERS && actors_of(tx, refusal)? >= actors_per_address {
            actor = OTHERS;
            if bump(tx, refusal, actor)? {
                return Ok(());
            }
        }
        // A savepoint, so that losing a race to another instance leaves the transaction usable.
        let inserted = tx.conn.transaction(|conn| {
            diesel::insert_into(oauth_refusals::table)
                .values((
                    oauth_refusals::window_start.eq(refusal.window_start),
                    oauth_refusals::ip.eq(refusal.ip),
                    oauth_refusals::actor.eq(actor),
                    oauth_refusals::refusals.eq(1i64),
                    oauth_refusals::first_at.eq(refusal.at),
                    oauth_refusals::first_reason.eq(refusal.reason),
                    oauth_refusals::last_at.eq(refusal.at),
                    oauth_refusals::last_reason.eq(refusal.reason),
                ))
                .execute(conn)
        });
        match inserted.map_err(StoreError::from) {
            Ok(_) => return Ok(()),
            // Another instance created the row first: count in it.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict("refusal counter contention".into()))
}

/// Adds one to an existing row; false when there is none.
fn bump(tx: &mut Tx<'_>, refusal: &Refusal<'_>, actor: &str) -> Result<bool, StoreError> {
    let changed =
        diesel::update(oauth_refusals::table.find((refusal.window_start, refusal.ip, actor)))
            .set((
                oauth_refusals::refusals.eq(oauth_refusals::refusals + 1),
                oauth_refusals::last_at.eq(refusal.at),
                oauth_refusals::last_reason.eq(refusal.reason),
            ))
            .execute(tx.conn)?;
    Ok(changed == 1)
}

/// How many rows the refusal's address has in its window.
fn actors_of(tx: &mut Tx<'_>, refusal: &Refusal<'_>) -> Result<i64, StoreError> {
    Ok(oauth_refusals::table
        .filter(oauth_refusals::window_start.eq(refusal.window_start))
        .filter(oauth_refusals::ip.eq(refusal.ip))
        .count()
        .get_result(tx.conn)?)
}

/// The newest counters, newest window first.
pub fn recent(tx: &mut Tx<'_>, limit: i64) -> Result<Vec<RefusalCount>, StoreError> {
    Ok(oauth_refusals::table
        .select(RefusalCount::as_select())
        .order((
            oauth_refusals::window_start.desc(),
            oauth_refusals::last_at.desc(),
        ))
        .limit(limit)
        .load(tx.conn)?)
}

/// Deletes the counters of windows that started before `oldest_window`; returns how many.
pub fn delete_before(tx: &mut Tx<'_>, oldest_window: i64) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(
            oauth_refusals::table.filter(oauth_refusals::window_start.lt(oldest_window)),
        )
        .execute(tx.conn)?,
    )
}
