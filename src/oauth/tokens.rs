//! What pairgate issues: RFC 9068 access tokens (JWT, `typ: at+jwt`) and device codes (random,
//! stored only as SHA-256 hashes). Refresh tokens are `rotation`'s.

use crate::crypto::jose::CompactJws;
use crate::ids::TenantId;
use crate::store::tokens::DeviceTokenState;

/// The one scope a device may hold: uploading its own telemetry.
pub const DEVICE_SCOPE: &str = "telemetry:write";

/// Whether a device's token, issued for `tenant_id` in `generation`, still stands against the
/// device as it is now (`state`, `None` if the device is gone): the device still belongs to that
/// tenant, has not moved past that generation (unpaired, re-keyed, paired again, its tokens
/// revoked), and its client is enabled. Every place that accepts a device's access or refresh
/// token asks this, so a token ends everywhere at once.
pub fn device_token_stands(
    state: Option<&DeviceTokenState>,
    tenant_id: Option<TenantId>,
    generation: Option<i64>,
) -> bool {
    state.is_some_and(|s| {
        s.active
            && s.tenant_id.is_some()
            && s.tenant_id == tenant_id
            && Some(s.token_generation) == generation
    })
}

/// Parses an access token far enough to look up its key: `Some` only for a JWS with
/// `typ: at+jwt` and a `kid`.
pub fn parse_access_token(token: &str) -> Option<(CompactJws, String)> {
    let jws = CompactJws::parse(token).ok()?;
    if jws.header_str("typ") != Some("at+jwt") {
        return None;
    }
    let kid = jws.header_str("kid")?.to_owned();
    Some((jws, kid))
}
