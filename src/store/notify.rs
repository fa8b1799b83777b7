//! PostgreSQL `LISTEN`/`NOTIFY` for signing-key rotations: every instance learns at once that
//! another one (or `pairgate keys rotate`) added a key, instead of at its next periodic reload.
//! `keys::insert` sends the notification inside the inserting transaction, so it arrives when
//! the key is committed. diesel's `PgConnection` has no way to wait for one, so a thread with a
//! connection of its own polls for them (a non-blocking read of the socket) a few times a
//! second, and checks the connection now and then; when the connection is lost it reconnects,
//! and since notifications sent meanwhile are lost, it then reports one anyway.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::{Connection, RunQueryDsl};
use tokio::sync::Notify;

/// The channel rotations are announced on.
pub(super) const SIGNING_KEYS: &str = "pairgate_signing_keys";

/// How often the connection is asked for notifications.
const POLL: Duration = Duration::from_millis(100);
/// How often an idle connection is checked with a query (a dead peer sends nothing).
const CHECK: Duration = Duration::from_secs(30);
/// How long to wait before connecting again after a failure.
const RECONNECT: Duration = Duration::from_secs(2);

/// Starts a thread listening on `channel` of the database at `url`; the returned [`Notify`] is
/// woken for every notification (several in a row wake it once). The thread ends when the
/// `Notify` is dropped.
pub(super) fn listen(url: String, channel: &'static str) -> Arc<Notify> {
    let wake = Arc::new(Notify::new());
    let weak = Arc::downgrade(&wake);
    let started = std::thread::Builder::new()
        .name("pg-listen".into())
        .spawn(move || run(&url, channel, &weak));
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the PostgreSQL listener thread");
    }
    wake
}

fn run(url: &str, channel: &str, wake: &Weak<Notify>) {
    loop {
        match listen_until_lost(url, channel, wake) {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    channel,
                    "PostgreSQL listener lost its connection; reconnecting"
                );
            }
        }
        std::thread::sleep(RECONNECT);
        if wake.strong_count() == 0 {
            return;
        }
    }
}

/// Listens until the `Notify` is dropped (`Ok`) or the connection fails (`Err`).
fn listen_until_lost(url: &str, channel: &str, wake: &Weak<Notify>) -> Result<(), String> {
    let mut conn = PgConnection::establish(url).map_err(|e| e.to_string())?;
    diesel::sql_query(format!("LISTEN {channel}"))
        .execute(&mut conn)
        .map_err(|e| e.to_string())?;
    // Whatever was announced while there was no connection is lost: report one.
    let Some(notify) = wake.upgrade() else {
        return Ok(());
    };
    notify.notify_one();
    drop(notify);
    let mut checked = Instant::now();
    loop {
        std::thread::sleep(POLL);
        let Some(notify) = wake.upgrade() else {
            return Ok(());
        };
        let mut heard = false;
        for notification in conn.notifications_iter() {
            notification.map_err(|e| e.to_string())?;
            heard = true;
        }
        if heard {
            notify.notify_one();
        }
        if checked.elapsed() >= CHECK {
            diesel::sql_query("SELECT 1")
                .execute(&mut conn)
                .map_err(|e| e.to_string())?;
            checked = Instant::now();
        }
    }
}
