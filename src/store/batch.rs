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
use diesel::backend::Backend;
use diesel::pg::PgConnection;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::LoadQuery;
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Nullable, Text};
use diesel::sqlite::SqliteConnection;

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

/// The SQL of one fixed statement, `PARTS[0] ? PARTS[1] ? …`: one value between each two parts;
/// diesel writes each engine's placeholder. Each statement is a type of its own (see
/// [`fixed_sql!`]), and diesel finds its prepared statement by that type.
pub trait FixedSql: 'static {
    const PARTS: &'static [&'static str];
}

/// Declares a [`FixedSql`] statement: `fixed_sql!(Name, "SELECT … WHERE a = ", "");`.
macro_rules! fixed_sql {
    ($name:ident, $($part:expr),+ $(,)?) => {
        struct $name;
        impl $crate::store::batch::FixedSql for $name {
            const PARTS: &'static [&'static str] = &[$($part),+];
        }
    };
}
pub(super) use fixed_sql;

/// A fixed statement for the hot paths, prepared once per connection and reused. `S` names the
/// statement; `ST` is the SQL type of what a query returns (`()` for a statement run with
/// [`execute`](Prepared::execute)).
///
/// It runs on the engine's own connection, not through the `MultiConnection` layer: that layer
/// writes a query's SQL text again on every run, twice (to ask whether it may be cached, and to
/// collect its binds), and that was most of a small statement's cost on the SQLite writer. On
/// the engine's connection, diesel finds the prepared statement by the type `S` and only binds
/// the values. (diesel never caches its own `UPDATE` statements at all: a changeset may leave
/// columns out, so it treats their SQL as variable.)
pub struct Prepared<'a, S, ST> {
    values: &'a [Bind<'a>],
    _statement: PhantomData<(S, ST)>,
}

/// A value bound into a [`Prepared`] statement.
#[derive(Debug, Clone, Copy)]
pub enum Bind<'a> {
    Int(i64),
    Text(&'a str),
    OptInt(Option<i64>),
    OptText(Option<&'a str>),
}

impl<'a, S: FixedSql, ST> Prepared<'a, S, ST> {
    /// `S::PARTS.len()` must be `values.len() + 1` (checked when the statement is built).
    pub fn new(values: &'a [Bind<'a>]) -> Self {
        Self {
            values,
            _statement: PhantomData,
        }
    }
}

impl<'a, S: FixedSql, ST: 'static> Prepared<'a, S, ST> {
    /// Runs a statement that returns no rows; the number of rows it changed.
    pub fn execute(self, conn: &mut DbConnection) -> QueryResult<usize> {
        match conn {
            DbConnection::Sqlite(c) => diesel::RunQueryDsl::execute(self, c),
            DbConnection::Pg(c) => diesel::RunQueryDsl::execute(self, c),
        }
    }

    /// Every row the query returns.
    pub fn load<U>(self, conn: &mut DbConnection) -> QueryResult<Vec<U>>
    where
        Self: LoadQuery<'a, SqliteConnection, U> + LoadQuery<'a, PgConnection, U>,
    {
        match conn {
            DbConnection::Sqlite(c) => diesel::RunQueryDsl::load(self, c),
            DbConnection::Pg(c) => diesel::RunQueryDsl::load(self, c),
        }
    }

    /// The first row the query returns (`NotFound` if none).
    pub fn get_result<U>(self, conn: &mut DbConnection) -> QueryResult<U>
    where
        Self: LoadQuery<'a, SqliteConnection, U> + LoadQuery<'a, PgConnection, U>,
    {
        match conn {
            DbConnection::Sqlite(c) => diesel::RunQueryDsl::get_result(self, c),
            DbConnection::Pg(c) => diesel::RunQueryDsl::get_result(self, c),
        }
    }
}

impl<S: FixedSql, ST, DB> QueryFragment<DB> for Prepared<'_, S, ST>
where
    DB: Backend
        + HasSqlType<BigInt>
        + HasSqlType<Text>
        + HasSqlType<Nullable<BigInt>>
        + HasSqlType<Nullable<Text>>,
    i64: ToSql<BigInt, DB>,
    str: ToSql<Text, DB>,
    Option<i64>: ToSql<Nullable<BigInt>, DB>,
    for<'s> Option<&'s str>: ToSql<Nullable<Text>, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if S::PARTS.len() != self.values.len() + 1 {
            return Err(diesel::result::Error::QueryBuilderError(
                "a prepared statement needs one value between each two parts of its SQL".into(),
            ));
        }
        for (i, part) in S::PARTS.iter().enumerate() {
            out.push_sql(part);
            match self.values.get(i) {
                Some(Bind::Int(v)) => out.push_bind_param::<BigInt, i64>(v)?,
                Some(Bind::Text(v)) => out.push_bind_param::<Text, str>(*v)?,
                Some(Bind::OptInt(v)) => out.push_bind_param::<Nullable<BigInt>, Option<i64>>(v)?,
                Some(Bind::OptText(v)) => out.push_bind_param::<Nullable<Text>, Option<&str>>(v)?,
                None => {}
            }
        }
        Ok(())
    }
}

impl<S: FixedSql, ST: 'static> QueryId for Prepared<'_, S, ST> {
    // The statement's own type: one cache entry per statement, found without its text.
    type QueryId = (S, ST);
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: FixedSql, ST: diesel::sql_types::SqlType> Query for Prepared<'_, S, ST> {
    type SqlType = ST;
}

impl<S, ST> diesel::RunQueryDsl<SqliteConnection> for Prepared<'_, S, ST> {}
impl<S, ST> diesel::RunQueryDsl<PgConnection> for Prepared<'_, S, ST> {}

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
