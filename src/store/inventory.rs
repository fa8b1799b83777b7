//! Whether a database holds anything of anyone's: tenants, people, devices or clients. `pairgate
//! demo` sets up only a database that holds none of them.

use diesel::dsl::exists;
use diesel::prelude::*;

use super::schema::{clients, devices, tenants, users};
use super::{StoreError, Tx};

/// True when any tenant, user, device or OAuth client exists.
pub fn holds_data(tx: &mut Tx<'_>) -> Result<bool, StoreError> {
    Ok(
        diesel::select(exists(tenants::table.select(tenants::id))).get_result::<bool>(tx.conn)?
            || diesel::select(exists(users::table.select(users::id)))
                .get_result::<bool>(tx.conn)?
            || diesel::select(exists(devices::table.select(devices::serial)))
                .get_result::<bool>(tx.conn)?
            || diesel::select(exists(clients::table.select(clients::client_id)))
                .get_result::<bool>(tx.conn)?,
    )
}
