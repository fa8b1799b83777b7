//! Shared short-lived state: seen `jti` values (client assertions, DPoP proofs) and fixed-window
//! rate-limit counters. Both live in the database so that every instance sees every other's.

use diesel::prelude::*;
use diesel::query_builder::AstPass;
use diesel::sql_types::{BigInt, Text};

use super::batch::{self, BatchRow, Bind, InsertIgnoring, Prepared, fixed_sql};
use super::connection::MultiBackend;
use super::schema::{rate_limits, seen_jtis};
use super::{StoreError, Tx};

/// Remembers a `jti` within `scope` until `expires_at`. Returns false when it was already seen:
/// the primary key decides, so two racing uses of one jti cannot both pass.
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
/// the first is new. Same table, same primary key decides.
pub fn remember_jtis(tx: &mut Tx<'_>, entries: &[JtiEntry<'_>]) -> Result<Vec<bool>, StoreError> {
    if entries.len() <= FEW {
        // A token request's one or two values: a fixed single-row statement each, whose count
        // of changed rows answers. `RETURNING` would cost SQLite a temporary table per statement.
        fixed_sql!(
            RememberJti,
            "INSERT INTO seen_jtis (scope, jti, expires_at) VALUES (",
            ", ",
            ", ",
            ") ON CONFLICT DO NOTHING",
        );
        return entries
            .iter()
            .map(|(scope, jti, until)| {
                let n = Prepared::<RememberJti, ()>::new(&[
                    Bind::Text(scope),
                    Bind::Text(jti),
                    Bind::Int(*until),
                ])
                .execute(tx.conn)?;
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

/// Up to this many values, [`remember_jtis`] inserts them one by one.
const FEW: usize = 4;

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
            let reset = diesel::update(rate_limits::table.find(bucket))
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

/// Deletes jti records and rate-limit buckets that ended before `before`; returns how many.
pub fn delete_expired(
    tx: &mut Tx<'_>,
    before: i64,
    oldest_window: i64,
) -> Result<usize, StoreError> {
    let a = diesel::delete(seen_jtis::table.filter(seen_jtis::expires_at.lt(before)))
        .execute(tx.conn)?;
    let b = diesel::delete(rate_limits::table.filter(rate_limits::window_start.lt(oldest_window)))
        .execute(tx.conn)?;
    Ok(a + b)
}
