//! Server-side portal sessions (by the hash of their cookie value) and sign-in failure counters.
//! A counter counts attempts before they are checked, so concurrent attempts cannot all pass.

use diesel::prelude::*;

use super::schema::{login_failures, sessions};
use super::{StoreError, Tx};
use crate::ids::UserId;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user_id: UserId,
    pub stage: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub stepped_up_at: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// How the person authenticated: OpenID Connect `amr` values, space-separated.
    pub amr: String,
}

pub fn insert(tx: &mut Tx<'_>, session: &SessionRecord) -> Result<(), StoreError> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(tx.conn)?;
    Ok(())
}

pub fn find(tx: &mut Tx<'_>, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
    Ok(sessions::table
        .find(id_hash)
        .select(SessionRecord::as_select())
        .first(tx.conn)
        .optional()?)
}

/// Deletes a session; returns whether it existed (rotation must consume the old id once).
pub fn delete(tx: &mut Tx<'_>, id_hash: &str) -> Result<bool, StoreError> {
    Ok(diesel::delete(sessions::table.find(id_hash)).execute(tx.conn)? == 1)
}

pub fn delete_for_user(tx: &mut Tx<'_>, user_id: UserId) -> Result<usize, StoreError> {
    Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(tx.conn)?)
}

/// Ends every session of a user but the one with `keep` as its id hash.
pub fn delete_others_of_user(
    tx: &mut Tx<'_>,
    user_id: UserId,
    keep: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::id_hash.ne(keep)),
    )
    .execute(tx.conn)?)
}

pub fn touch(tx: &mut Tx<'_>, id_hash: &str, now: i64) -> Result<(), StoreError> {
    diesel::update(sessions::table.find(id_hash))
        .set(sessions::last_seen_at.eq(now))
        .execute(tx.conn)?;
    Ok(())
}

pub fn delete_expired(tx: &mut Tx<'_>, now: i64, idle_ms: i64) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .le(now)
                .or(sessions::last_seen_at.le(now - idle_ms)),
        ),
    )
    .execute(tx.conn)?)
}

/// Counts one attempt in `bucket` before it is checked. The row stays locked until the
/// transaction ends, so concurrent attempts are counted one after the other and each sees the
/// ones before it. Returns the attempts counted before this one and when the last of them was
/// counted; `None` for a bucket that did not exist.
pub fn count_attempt(
    tx: &mut Tx<'_>,
    bucket: &str,
    now: i64,
) -> Result<Option<(i32, i64)>, StoreError> {
    for _ in 0..3 {
        let counted: Option<(i32, i64)> = diesel::update(login_failures::table.find(bucket))
            .set(login_failures::failures.eq(login_failures::failures + 1))
            .returning((login_failures::failures, login_failures::last_failure_at))
            .get_result(tx.conn)
            .optional()?;
        if let Some((failures, last)) = counted {
            set_last_attempt(tx, bucket, now)?;
            return Ok(Some((failures - 1, last)));
        }
        let inserted = tx.conn.transaction(|conn| {
            diesel::insert_into(login_failures::table)
                .values((
                    login_failures::bucket.eq(bucket),
                    login_failures::failures.eq(1),
                    login_failures::last_failure_at.eq(now),
                ))
                .execute(conn)
        });
        match inserted.map_err(StoreError::from) {
            Ok(_) => return Ok(None),
            // Created concurrently: count this attempt on it.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict("failure counter contention".into()))
}

fn set_last_attempt(tx: &mut Tx<'_>, bucket: &str, at: i64) -> Result<(), StoreError> {
    diesel::update(login_failures::table.find(bucket))
        .set(login_failures::last_failure_at.eq(at))
        .execute(tx.conn)?;
    Ok(())
}

/// Takes back an attempt [`count_attempt`] counted: it was refused unchecked (`last` is the
/// time it returned, restored), or it turned out right (`None`: the time stays).
pub fn uncount_attempt(tx: &mut Tx<'_>, bucket: &str, last: Option<i64>) -> Result<(), StoreError> {
    diesel::update(
        login_failures::table
            .find(bucket)
            .filter(login_failures::failures.gt(0)),
    )
    .set(login_failures::failures.eq(login_failures::failures - 1))
    .execute(tx.conn)?;
    if let Some(at) = last {
        set_last_attempt(tx, bucket, at)?;
    }
    Ok(())
}

pub fn clear_failures(tx: &mut Tx<'_>, bucket: &str) -> Result<(), StoreError> {
    diesel::delete(login_failures::table.find(bucket)).execute(tx.conn)?;
    Ok(())
}

/// Forgets failure counters untouched since `before`.
pub fn delete_stale_failures(tx: &mut Tx<'_>, before: i64) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(login_failures::table.filter(login_failures::last_failure_at.lt(before)))
            .execute(tx.conn)?,
    )
}

/// A user's live sessions (not expired at `now`, used within `idle_ms`), most recent use first.
pub fn list_for_user(
    tx: &mut Tx<'_>,
    user_id: UserId,
    now: i64,
    idle_ms: i64,
) -> Result<Vec<SessionRecord>, StoreError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::stage.eq("full"))
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(now - idle_ms))
        .order((sessions::last_seen_at.desc(), sessions::created_at.desc()))
        .select(SessionRecord::as_select())
        .load(tx.conn)?)
}

/// Gives a session that replaced another (a new id at a privilege change) the start time and
/// browser of the one it replaced: to the person, it is the same session.
pub fn carry_over(
    tx: &mut Tx<'_>,
    id_hash: &str,
    created_at: i64,
    user_agent: Option<&str>,
) -> Result<(), StoreError> {
    diesel::update(sessions::table.find(id_hash))
        .set((
            sessions::created_at.eq(created_at),
            sessions::user_agent.eq(user_agent),
        ))
        .execute(tx.conn)?;
    Ok(())
}
