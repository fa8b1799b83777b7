//! Multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING …` for the hot write paths (telemetry
//! readings, replay-store jti values): one statement for many rows, and the conflict is the
//! signal, as everywhere else. diesel's `MultiConnection` has no `ON CONFLICT` clause, so these
//! statements are written as SQL text once, valid on both engines: `$1, $2, …` placeholders are
//! PostgreSQL's, and SQLite reads them as named parameters numbered in order of appearance.

use diesel::query_builder::BoxedSqlQuery;
use diesel::query_builder::SqlQuery;

use super::connection::MultiBackend;

/// Rows per statement: a few binds each stays far below SQLite's 32,766 and PostgreSQL's 65,535
/// parameters, and keeps each statement's parse cheap.
pub const ROWS_PER_STATEMENT: usize = 500;

/// A boxed raw query whose binds can be added in a loop.
pub type RawQuery<'f> = BoxedSqlQuery<'f, MultiBackend, SqlQuery>;

/// `INSERT INTO {table} ({columns}) VALUES ($1, …), (…) ON CONFLICT DO NOTHING RETURNING
/// {returning}`, for `rows` rows.
pub fn insert_ignoring_conflicts<'f>(
    table: &str,
    columns: &[&str],
    rows: usize,
    returning: &str,
) -> RawQuery<'f> {
    let mut sql = String::with_capacity(64 + rows * columns.len() * 6);
    sql.push_str("INSERT INTO ");
    sql.push_str(table);
    sql.push_str(" (");
    sql.push_str(&columns.join(", "));
    sql.push_str(") VALUES ");
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..columns.len() {
            if col > 0 {
                sql.push_str(", ");
            }
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT DO NOTHING RETURNING ");
    sql.push_str(returning);
    diesel::sql_query(sql).into_boxed::<MultiBackend>()
}

/// For each wanted key in order, whether the database inserted it. `inserted` holds what
/// `RETURNING` gave back; a key wanted twice in one batch was inserted once, for its first claim.
pub fn claim_inserted<K: std::hash::Hash + Eq>(
    wanted: impl IntoIterator<Item = K>,
    inserted: impl IntoIterator<Item = K>,
) -> Vec<bool> {
    let mut left: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
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
}
