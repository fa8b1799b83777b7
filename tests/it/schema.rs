//! `src/store/schema.rs` is written by hand: this checks it against a freshly migrated PostgreSQL
//! database, as `diesel print-schema` would, table by table: the same tables, columns, SQL types,
//! nullability and primary keys.

use std::collections::BTreeMap;

use diesel::pg::PgConnection;
use diesel::sql_types::{Integer, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use pairgate::config::DatabaseUrl;

use crate::support::{TestApp, postgres};

/// A table as both sides describe it: columns (name → type as diesel spells it) and primary key.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: BTreeMap<String, String>,
    primary_key: Vec<String>,
}

/// Reads the `diesel::table!` blocks of `src/store/schema.rs`.
fn declared() -> BTreeMap<String, Table> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/schema.rs");
    let text = std::fs::read_to_string(path).unwrap();
    let mut tables = BTreeMap::new();
    let mut current: Option<(String, Table)> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some((name, rest)) = line.split_once(" (")
            && let Some(key) = rest.strip_suffix(") {")
        {
            let key = key.split(',').map(|c| c.trim().to_owned()).collect();
            current = Some((
                name.to_owned(),
                Table {
                    primary_key: key,
                    ..Table::default()
                },
            ));
        } else if let Some((column, sql_type)) = line.split_once(" -> ")
            && let Some((_, table)) = current.as_mut()
        {
            let sql_type = sql_type.trim_end_matches(',').to_owned();
            table.columns.insert(column.to_owned(), sql_type);
        } else if line == "}"
            && let Some((name, table)) = current.take()
        {
            tables.insert(name, table);
        }
    }
    tables
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

#[derive(QueryableByName)]
struct KeyColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Integer)]
    position: i32,
}

/// diesel's name for a PostgreSQL column type, as `print-schema` writes it.
fn diesel_type(data_type: &str, nullable: bool) -> String {
    let base = match data_type {
        "bigint" => "BigInt",
        "integer" => "Integer",
        "smallint" => "SmallInt",
        "text" | "character varying" => "Text",
        "boolean" => "Bool",
        "bytea" => "Binary",
        "double precision" => "Double",
        "real" => "Float",
        other => other,
    };
    if nullable {
        format!("Nullable<{base}>")
    } else {
        base.to_owned()
    }
}

/// The tables of the migrated database, without diesel's own bookkeeping table.
fn migrated(conn: &mut PgConnection) -> BTreeMap<String, Table> {
    let columns: Vec<Column> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
    .load(conn)
    .unwrap();
    let keys: Vec<KeyColumn> = diesel::sql_query(
        "SELECT k.table_name::text, k.column_name::text, k.ordinal_position::int AS position \
         FROM information_schema.table_constraints c \
         JOIN information_schema.key_column_usage k \
           ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema \
         WHERE c.table_schema = 'public' AND c.constraint_type = 'PRIMARY KEY' \
           AND c.table_name <> '__diesel_schema_migrations'",
    )
    .load(conn)
    .unwrap();
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    for c in columns {
        let sql_type = diesel_type(&c.data_type, c.is_nullable == "YES");
        let table = tables.entry(c.table_name).or_default();
        table.columns.insert(c.column_name, sql_type);
    }
    let mut keys: Vec<KeyColumn> = keys;
    keys.sort_by_key(|k| k.position);
    for k in keys {
        tables
            .entry(k.table_name)
            .or_default()
            .primary_key
            .push(k.column_name);
    }
    tables
}

#[actix_web::test]
async fn postgres_schema_rs_matches_the_migrations() {
    let Some(backend) = postgres() else { return };
    let app = TestApp::start(backend).await;
    let DatabaseUrl::Postgres(url) = &app.ctx.settings.database.url else {
        panic!("a PostgreSQL test app has a PostgreSQL URL")
    };
    let url = url.clone();
    let actual =
        tokio::task::spawn_blocking(move || migrated(&mut PgConnection::establish(&url).unwrap()))
            .await
            .unwrap();
    let declared = declared();
    assert!(declared.len() > 10, "schema.rs was read: {declared:?}");
    let names = |t: &BTreeMap<String, Table>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&declared),
        names(&actual),
        "tables: schema.rs, then the migrations"
    );
    for (name, table) in &declared {
        assert_eq!(
            Some(table),
            actual.get(name),
            "table {name}: schema.rs, then the migrations"
        );
    }
}
