//! PostgreSQL's daily partitions of `telemetry_readings`: a reading's id is a duplicate across a
//! day boundary and under two racing transactions, retention drops whole days and keeps newer
//! ones, reads span days, and a day with no partition is created when a reading needs it.

use std::sync::mpsc;
use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};

use pairgate::ids::{DeviceSerial, TenantId};
use pairgate::store::telemetry::{self as stored, AcceptedTimes, NewReading};
use serde_json::Value;

use super::{accepted, batch, paired, read, sign_in, stored, upload};
use crate::support::{TestApp, postgres};
use pairgate::accounts::Role;

const DAY: i64 = 86_400_000;

/// The start of the UTC day holding `ms`.
fn midnight_before(ms: i64) -> i64 {
    ms.div_euclid(DAY) * DAY
}

/// The partitions attached to `telemetry_readings`, by name.
async fn partition_names(app: &TestApp) -> Vec<String> {
    let mut names = Vec::new();
    let count = app
        .query_i64(
            "SELECT COUNT(*) AS n FROM pg_inherits \
             WHERE inhparent = 'public.telemetry_readings'::regclass",
        )
        .await;
    for i in 0..count {
        let day = app
            .query_i64(&format!(
                "SELECT substring(c.relname FROM 10)::bigint AS n FROM pg_inherits i \
                 JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = 'public.telemetry_readings'::regclass \
                 ORDER BY c.relname OFFSET {i} LIMIT 1"
            ))
            .await;
        names.push(format!("readings_{day}"));
    }
    names
}

/// The partition name of the UTC day holding `ms`.
fn partition_of(ms: i64) -> String {
    let day = chrono::DateTime::from_timestamp_millis(ms).unwrap();
    format!("readings_{}", day.format("%Y%m%d"))
}

/// A reading uploaded just before midnight UTC and retried: the same id is a duplicate whether
/// it comes again with its own time or with a time on the other side of midnight (another
/// partition), within the acceptance window; a new id on either side is stored.
#[actix_web::test]
async fn postgres_a_retry_across_midnight_is_a_duplicate() {
    let Some(backend) = postgres() else { return };
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7501").await;
    let midnight = midnight_before(app.now() * 1000);
    let before = batch(&[("r1", midnight - 1)]);
    assert_eq!(accepted(upload(&app, &p, &before).await).await, (1, 0));
    assert_eq!(accepted(upload(&app, &p, &before).await).await, (0, 1));
    let after = batch(&[("r1", midnight), ("r2", midnight)]);
    assert_eq!(accepted(upload(&app, &p, &after).await).await, (1, 1));
    let back = batch(&[("r2", midnight - 2), ("r3", midnight - 2)]);
    assert_eq!(accepted(upload(&app, &p, &back).await).await, (1, 1));
    assert_eq!(stored(&app, "SN-7501").await, 3);
    // One writer batch holding an id twice (two uploads), at two times: the first is stored.
    let tenant_id = p.tenant;
    let inserted = app
        .ctx
        .store
        .write(move |tx| {
            let serial = DeviceSerial::from("SN-7501");
            let row = |ts| NewReading {
                serial: &serial,
                reading_id: "r4",
                tenant_id,
                ts,
                received_at: midnight,
                metrics: "{\"t\":1}",
            };
            let accepted = AcceptedTimes {
                oldest: midnight - DAY,
                newest: midnight + DAY,
            };
            stored::insert_readings(tx, &[row(midnight - 3), row(midnight + 1)], accepted)
        })
        .await
        .unwrap();
    assert_eq!(inserted, [true, false]);
    let r4 = "SELECT ts AS n FROM telemetry_readings WHERE reading_id = 'r4'";
    assert_eq!(app.query_i64(r4).await, midnight - 3);
}

/// Two transactions (as two instances would) insert the same retry at once: the second waits
/// on the primary key for the first, then stores nothing and counts a duplicate.
#[actix_web::test]
async fn postgres_a_retry_racing_its_original_is_stored_once() {
    let Some(backend) = postgres() else { return };
    let app = TestApp::start(backend).await;
    let now = app.now() * 1000;
    let accepted = AcceptedTimes {
        oldest: now - DAY,
        newest: now + 60_000,
    };
    let insert = move |tx: &mut pairgate::store::Tx<'_>| {
        let serial = DeviceSerial::from("SN-7502");
        let row = NewReading {
            serial: &serial,
            reading_id: "r1",
            tenant_id: TenantId(1),
            ts: now,
            received_at: now,
            metrics: "{\"t\":1}",
        };
        stored::insert_readings(tx, &[row], accepted)
    };
    let (inserted, first_inserted) = tokio::sync::oneshot::channel();
    let (commit, may_commit) = mpsc::channel::<()>();
    let store = app.ctx.store.clone();
    let first = tokio::spawn(async move {
        store
            .write(move |tx| {
                let result = insert(tx);
                inserted.send(()).unwrap();
                may_commit.recv_timeout(Duration::from_secs(10)).unwrap();
                result
            })
            .await
    });
    first_inserted.await.unwrap();
    let store = app.ctx.store.clone();
    let second = tokio::spawn(async move { store.write(insert).await });
    // The second is waiting for the first's transaction now (or soon): let the first commit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second waits for the first");
    commit.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap(), [true]);
    assert_eq!(second.await.unwrap().unwrap(), [false]);
    assert_eq!(stored(&app, "SN-7502").await, 1);
}

/// Retention drops the partitions of the days that ended before the cutoff, with their readings,
/// and keeps newer ones; a reading of a day with no partition yet creates it.
#[actix_web::test]
async fn postgres_retention_drops_whole_days() {
    let Some(backend) = postgres() else { return };
    let app = TestApp::builder(backend)
        .config("[telemetry]\nretention_days = 2")
        .start()
        .await;
    let p = paired(&app, "SN-7503").await;
    let now = app.now() * 1000;
    let old = now - 3 * DAY;
    // Three days back is past retention: start-up prepared no partition for it.
    assert!(!partition_names(&app).await.contains(&partition_of(old)));
    let body = batch(&[("old", old), ("recent", now - DAY), ("new", now)]);
    assert_eq!(accepted(upload(&app, &p, &body).await).await, (3, 0));
    let names = partition_names(&app).await;
    assert!(names.contains(&partition_of(old)), "{names:?}");
    assert!(
        names.contains(&partition_of(now + DAY)),
        "a day ahead: {names:?}"
    );

    let sweep =
        |at: i64| pairgate::maintenance::sweep(&app.ctx.store, &app.ctx.oauth, 3_600_000, at);
    let report = sweep(now).await.unwrap();
    assert_eq!(report.telemetry_partitions, 1, "{report:?}");
    assert_eq!(report.telemetry_readings, 0, "no row is deleted one by one");
    let names = partition_names(&app).await;
    assert!(!names.contains(&partition_of(old)), "{names:?}");
    for kept in [now - DAY, now] {
        assert!(names.contains(&partition_of(kept)), "{names:?}");
    }
    let gone = format!(
        "SELECT COUNT(*) AS n FROM information_schema.tables \
         WHERE table_schema = 'telemetry_partitions' AND table_name = '{}'",
        partition_of(old)
    );
    assert_eq!(app.query_i64(&gone).await, 0);
    assert_eq!(stored(&app, "SN-7503").await, 2);
    assert_eq!(sweep(now).await.unwrap().telemetry_partitions, 0);

    // Two days on, the day of "recent" is past the cutoff too; today's stays.
    let report = sweep(midnight_before(now) + 2 * DAY).await.unwrap();
    assert!(report.telemetry_partitions >= 1, "{report:?}");
    let names = partition_names(&app).await;
    assert!(!names.contains(&partition_of(now - DAY)), "{names:?}");
    assert!(names.contains(&partition_of(now)), "{names:?}");
    assert_eq!(stored(&app, "SN-7503").await, 1);
}

/// A range read spanning midnight returns the readings of both days, in time order (newest
/// first when the store is asked so).
#[actix_web::test]
async fn postgres_a_range_read_spans_days() {
    let Some(backend) = postgres() else { return };
    let app = TestApp::start(backend).await;
    let p = paired(&app, "SN-7504").await;
    let midnight = midnight_before(app.now() * 1000);
    let body = batch(&[
        ("a", midnight - DAY + 5),
        ("b", midnight - 2),
        ("c", midnight),
        ("d", midnight + 1),
    ]);
    assert_eq!(accepted(upload(&app, &p, &body).await).await, (4, 0));
    let days = "SELECT COUNT(DISTINCT tableoid) AS n FROM telemetry_readings";
    assert_eq!(app.query_i64(days).await, 2, "two partitions hold them");

    let (_, cookie) = sign_in(&app, Some(p.tenant), Role::Viewer, "viewer@acme.example").await;
    let ids = |v: Value| -> Vec<String> {
        v["readings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let range = format!("from={}&to={}", midnight - DAY / 2, midnight + 2);
    let res = read(&app, Some(&cookie), "SN-7504", &range).await;
    assert_eq!(res.status(), 200);
    assert_eq!(ids(res.json().await.unwrap()), ["b", "c", "d"]);
    // Newest first, as the device page reads its latest values.
    let tenant_id = p.tenant;
    let newest_first = app
        .ctx
        .store
        .read(move |tx| {
            let serial = DeviceSerial::from("SN-7504");
            stored::readings(
                tx,
                &stored::RangeQuery {
                    serial: &serial,
                    tenant_id,
                    from: midnight - DAY,
                    to: midnight + 2,
                    limit: 10,
                    newest_first: true,
                },
            )
        })
        .await
        .unwrap();
    let ids: Vec<&str> = newest_first.iter().map(|r| r.reading_id.as_str()).collect();
    assert_eq!(ids, ["d", "c", "b", "a"]);
}

/// Whether retention, in this test's database, is waiting on a lock to take a day away.
async fn a_detach_is_waiting(app: &TestApp) -> bool {
    app.query_i64(
        "SELECT COUNT(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock' \
           AND query LIKE '%telemetry_partitions.readings_%'",
    )
    .await
        > 0
}

/// Retention detaches a day concurrently: while it waits for a long transaction that reads the
/// readings, uploads go on (a plain `DROP TABLE` of a partition would queue every upload behind
/// its lock on the parent table); once that transaction ends, the day is dropped.
#[actix_web::test]
async fn postgres_retention_lets_uploads_through_while_it_waits_for_a_long_read() {
    let Some(backend) = postgres() else { return };
    let app = TestApp::builder(backend)
        .config("[telemetry]\nretention_days = 2")
        .start()
        .await;
    let p = paired(&app, "SN-7505").await;
    let now = app.now() * 1000;
    let old = now - 3 * DAY;
    let body = batch(&[("old", old), ("new", now)]);
    assert_eq!(accepted(upload(&app, &p, &body).await).await, (2, 0));

    // A report that reads every day and stays open.
    let mut reader = PgConnection::establish(&app.database_url()).unwrap();
    diesel::sql_query("BEGIN").execute(&mut reader).unwrap();
    diesel::sql_query("SELECT COUNT(*) FROM telemetry_readings")
        .execute(&mut reader)
        .unwrap();

    let (store, oauth) = (app.ctx.store.clone(), app.ctx.oauth.clone());
    let sweep =
        tokio::spawn(
            async move { pairgate::maintenance::sweep(&store, &oauth, 3_600_000, now).await },
        );
    let mut waited = 0;
    while !a_detach_is_waiting(&app).await {
        assert!(!sweep.is_finished(), "the sweep ended without waiting");
        waited += 1;
        assert!(waited < 300, "the detach never waited for the open read");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let more = batch(&[("during", now + 1)]);
    // A bound on a hang, not a timing: behind a lock on the parent table, the upload would wait
    // for as long as the read stays open.
    let during = tokio::time::timeout(Duration::from_secs(30), upload(&app, &p, &more))
        .await
        .expect("the upload waited behind retention");
    assert_eq!(accepted(during).await, (1, 0));
    assert!(
        !sweep.is_finished() && a_detach_is_waiting(&app).await,
        "the upload was answered while the day was still being detached"
    );

    diesel::sql_query("COMMIT").execute(&mut reader).unwrap();
    let report = sweep.await.unwrap().unwrap();
    assert_eq!(report.telemetry_partitions, 1, "{report:?}");
    assert!(!partition_names(&app).await.contains(&partition_of(old)));
    assert_eq!(app.query_i64(&table_count(&partition_of(old))).await, 0);
    assert_eq!(stored(&app, "SN-7505").await, 2);
}

/// How many tables named `name` schema `telemetry_partitions` holds.
fn table_count(name: &str) -> String {
    format!(
        "SELECT COUNT(*) AS n FROM information_schema.tables \
         WHERE table_schema = 'telemetry_partitions' AND table_name = '{name}'"
    )
}

/// A day detached but not dropped (a sweep stopped between the two) is dropped by the next one.
#[actix_web::test]
async fn postgres_a_day_left_detached_is_dropped_by_the_next_sweep() {
    let Some(backend) = postgres() else { return };
    let app = TestApp::builder(backend)
        .config("[telemetry]\nretention_days = 2")
        .start()
        .await;
    let p = paired(&app, "SN-7506").await;
    let now = app.now() * 1000;
    let old = now - 3 * DAY;
    assert_eq!(
        accepted(upload(&app, &p, &batch(&[("old", old)])).await).await,
        (1, 0)
    );
    let mut conn = PgConnection::establish(&app.database_url()).unwrap();
    diesel::sql_query(format!(
        "ALTER TABLE telemetry_readings DETACH PARTITION telemetry_partitions.{}",
        partition_of(old)
    ))
    .execute(&mut conn)
    .unwrap();
    assert_eq!(app.query_i64(&table_count(&partition_of(old))).await, 1);

    let report = pairgate::maintenance::sweep(&app.ctx.store, &app.ctx.oauth, 3_600_000, now)
        .await
        .unwrap();
    assert_eq!(report.telemetry_partitions, 1, "{report:?}");
    assert_eq!(app.query_i64(&table_count(&partition_of(old))).await, 0);
}
