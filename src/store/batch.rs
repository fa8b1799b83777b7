//! Multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING …` for the hot write paths (telemetry
//! readings, replay-store jti values): one statement for many rows, and the conflict is the
//! signal, as everywhere else. diesel's `MultiConnection` has no `ON CONFLICT` clause, so the
//! statement is a small `QueryFragment` of its own: the SQL text is the same on both engines, and
//! diesel writes each engine's placeholders (`?` for SQLite, `$n` for PostgreSQL). Named
//! placeholders would cost SQLite a lookup per parameter over all earlier ones (quadratic in a
//! statement of thousands).

use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;

use diesel::QueryResult;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

use super::DbConnection;
use super::connection::MultiBackend;

/// Rows per statement: a few binds each stays far below SQLite's 32,766 and PostgreSQL's 65,535
/// parameters. Statements of this many rows, and of the few sizes a remainder is split into, are
/// prepared once per connection and reused.
pub const ROWS_PER_STATEMENT: usize = 256;

/// The sizes a batch is cut into, largest first: each is one cached prepared statement, and a
/// batch takes at most one statement of each size below the largest.
const CHUNK_SIZES: [usize; 9] = [ROWS_PER_STATEMENT, 128, 64, 32, 16, 8, 4, 2, 1];

/// A row that binds its values, in column order.
pub trait BatchRow {
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, MultiBackend>) -> QueryResult<()>;
}

/// `{head} (…), (…) {tail}`, one parenthesised group of placeholders per row; `ST` is the SQL
/// type of the `RETURNING` columns.
pub struct InsertIgnoring<'a, R, ST> {
    /// `INSERT INTO t (a, b) VALUES `
    head: &'static str,
    /// ` ON CONFLICT DO NOTHING RETURNING a, b`
    tail: &'static str,
    rows: &'a [R],
    _returning: PhantomData<ST>,
}

impl<'a, R: BatchRow, ST> InsertIgnoring<'a, R, ST> {
    pub fn new(head: &'static str, tail: &'static str, rows: &'a [R]) -> Self {
        Self {
            head,
            tail,
            rows,
            _returning: PhantomData,
        }
    }
}

impl<R: BatchRow, ST> QueryFragment<MultiBackend> for InsertIgnoring<'_, R, ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        out.push_sql(self.head);
        for (i, row) in self.rows.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            row.bind(&mut out)?;
            out.push_sql(")");
        }
        out.push_sql(self.tail);
        Ok(())
    }
}

impl<R, ST> QueryId for InsertIgnoring<'_, R, ST> {
    type QueryId = ();
    // Not static: diesel caches the prepared statement by its SQL text, one per chunk size.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<R, ST: diesel::sql_types::SqlType> Query for InsertIgnoring<'_, R, ST> {
    type SqlType = ST;
}

impl<R, ST> diesel::RunQueryDsl<DbConnection> for InsertIgnoring<'_, R, ST> {}

/// A fixed statement for the hot paths, prepared once per connection and reused. diesel never
/// caches its own `UPDATE` statements (a changeset may leave columns out, so it treats the SQL
/// as variable), and preparing one from its text costs SQLite more than running it. The SQL is
/// `parts[0] ? parts[1] ? …`: one value between each two parts; diesel writes each engine's
/// placeholder. `ST` is the SQL type of what a query returns; `()` for a statement that returns
/// nothing and runs with `execute`.
pub struct Prepared<'a, ST> {
    parts: &'static [&'static str],
    values: &'a [Bind<'a>],
    _returns: PhantomData<ST>,
}

/// A value bound into a [`Prepared`] statement.
#[derive(Debug, Clone, Copy)]
pub enum Bind<'a> {
    Int(i64),
    Text(&'a str),
}

impl<'a, ST> Prepared<'a, ST> {
    /// `parts.len()` must be `values.len() + 1` (checked when the statement is built).
    pub fn new(parts: &'static [&'static str], values: &'a [Bind<'a>]) -> Self {
        Self {
            parts,
            values,
            _returns: PhantomData,
        }
    }
}

impl<ST> QueryFragment<MultiBackend> for Prepared<'_, ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        if self.parts.len() != self.values.len() + 1 {
            return Err(diesel::result::Error::QueryBuilderError(
                "a prepared statement needs one value between each two parts of its SQL".into(),
            ));
        }
        for (i, part) in self.parts.iter().enumerate() {
            out.push_sql(part);
            match self.values.get(i) {
                Some(Bind::Int(v)) => out.push_bind_param::<diesel::sql_types::BigInt, i64>(v)?,
                Some(Bind::Text(v)) => out.push_bind_param::<diesel::sql_types::Text, str>(*v)?,
                None => {}
            }
        }
        Ok(())
    }
}

impl<ST> QueryId for Prepared<'_, ST> {
    type QueryId = ();
    // Not static: diesel caches the prepared statement by its SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST: diesel::sql_types::SqlType> Query for Prepared<'_, ST> {
    type SqlType = ST;
}

impl<ST> diesel::RunQueryDsl<DbConnection> for Prepared<'_, ST> {}

/// Cuts `rows` into chunks of the cached statement sizes.
pub fn chunks<R>(mut rows: &[R]) -> impl Iterator<Item = &[R]> {
    std::iter::from_fn(move || {
        let size = CHUNK_SIZES.into_iter().find(|s| *s <= rows.len())?;
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

/// Binds one value (helper for [`BatchRow`] implementations).
pub fn bind<'b, T, U>(out: &mut AstPass<'_, 'b, MultiBackend>, value: &'b U) -> QueryResult<()>
where
    MultiBackend: diesel::sql_types::HasSqlType<T>,
    U: diesel::serialize::ToSql<T, MultiBackend> + ?Sized,
{
    out.push_bind_param::<T, U>(value)
}

/// For each wanted key in order, whether the database inserted it. `inserted` holds what
/// `RETURNING` gave back; a key wanted twice in one batch was inserted once, for its first claim.
pub fn claim_inserted<K: Hash + Eq>(
    wanted: impl IntoIterator<Item = K>,
    inserted: impl IntoIterator<Item = K>,
) -> Vec<bool> {
    let mut left: HashMap<K, usize> = HashMap::new();
    for key in inserted {
        *left.entry(key).or_default() += 1;
    }
    wanted
        .into_iter()
        .map(|key| match left.get_mut(&key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_wanted_twice_is_claimed_once() {
        let claimed = claim_inserted(["a", "b", "a", "c"], ["a", "c"]);
        assert_eq!(claimed, [true, false, false, true]);
    }

    #[test]
    fn batches_are_cut_into_cached_sizes() {
        let rows = vec![0u8; 2 * ROWS_PER_STATEMENT + 64 + 16 + 5];
        let sizes: Vec<usize> = chunks(&rows).map(<[u8]>::len).collect();
        assert_eq!(
            sizes,
            [ROWS_PER_STATEMENT, ROWS_PER_STATEMENT, 64, 16, 4, 1]
        );
        let ten: Vec<usize> = chunks(&[0u8; 10]).map(<[u8]>::len).collect();
        assert_eq!(ten, [8, 2]);
        assert_eq!(chunks::<u8>(&[]).count(), 0);
    }
}
