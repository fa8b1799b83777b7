//! The mail outbox: every message pairgate sends is written here first, in the transaction of the
//! change that caused it, and delivered from here (at least once).

use diesel::prelude::*;

use super::schema::mail_outbox;
use super::{StoreError, Tx};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mail_outbox)]
pub struct MailRecord {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

pub fn enqueue(
    tx: &mut Tx<'_>,
    recipient: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(mail_outbox::table)
        .values((
            mail_outbox::recipient.eq(recipient),
            mail_outbox::subject.eq(subject),
            mail_outbox::body.eq(body),
            mail_outbox::created_at.eq(now),
            mail_outbox::attempts.eq(0),
        ))
        .returning(mail_outbox::id)
        .get_result(tx.conn)?)
}

/// Unsent messages, oldest first.
pub fn unsent(tx: &mut Tx<'_>, limit: i64) -> Result<Vec<MailRecord>, StoreError> {
    Ok(mail_outbox::table
        .filter(mail_outbox::sent_at.is_null())
        .select(MailRecord::as_select())
        .order(mail_outbox::id.asc())
        .limit(limit)
        .load(tx.conn)?)
}

/// The newest messages, for operators and tests.
pub fn recent(tx: &mut Tx<'_>, limit: i64) -> Result<Vec<MailRecord>, StoreError> {
    Ok(mail_outbox::table
        .select(MailRecord::as_select())
        .order(mail_outbox::id.desc())
        .limit(limit)
        .load(tx.conn)?)
}

pub fn mark_sent(tx: &mut Tx<'_>, id: i64, now: i64) -> Result<(), StoreError> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::sent_at.eq(now),
            mail_outbox::attempts.eq(mail_outbox::attempts + 1),
        ))
        .execute(tx.conn)?;
    Ok(())
}

pub fn mark_failed(tx: &mut Tx<'_>, id: i64, error: &str) -> Result<(), StoreError> {
    diesel::update(mail_outbox::table.find(id))
        .set((
            mail_outbox::attempts.eq(mail_outbox::attempts + 1),
            mail_outbox::last_error.eq(error),
        ))
        .execute(tx.conn)?;
    Ok(())
}
