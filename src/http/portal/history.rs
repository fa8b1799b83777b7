//! History in words: each audit event as a sentence that names people, groups, companies and
//! devices (`Said`, `templates/texts/history.txt`), and `/audit`, the log filtered by person,
//! action, device and dates and paged in SQL from the query string.

use serde_json::Value;

use super::texts::{Code, Facts, Line, Said};
use super::zone::when_for;
use crate::accounts::Zone;
use crate::accounts::history::{Entry, History};
use crate::events::{Action, Party};
use crate::ids::{GroupId, TenantId};
use crate::store::history::Names;
use crate::store::pairings::{PairingRecord, PairingStatus};

/// The name of an actor or a subject; what a viewer may not see, or no longer exists, reads as
/// a neutral phrase.
pub fn name_of(names: &Names, party: &Party) -> String {
    match party {
        Party::User(id) => match names.users.get(id) {
            Some(p) if p.role == "staff" => format!("{} (manufacturer's support)", p.name),
            Some(p) => p.name.clone(),
            None => "someone outside your company".to_owned(),
        },
        Party::Tenant(id) => names
            .tenants
            .get(id)
            .cloned()
            .unwrap_or_else(|| "another company".to_owned()),
        Party::Group(id) => names
            .groups
            .get(id)
            .map(|(_, name)| name.clone())
            .unwrap_or_else(|| "a group that no longer exists".to_owned()),
        Party::Client(id) => names
            .clients
            .get(id)
            .cloned()
            .unwrap_or_else(|| "a service client".to_owned()),
        Party::Device(serial) => serial.to_string(),
        Party::Sale(id) => id.clone(),
        Party::Model(name) => name.clone(),
        Party::Email(address) => address.clone(),
        Party::Key(_) => "a signing key".to_owned(),
        Party::Endpoint(_) => "pairgate".to_owned(),
        Party::UnknownAccount => "an address with no account".to_owned(),
        Party::Cli => "an operator of pairgate".to_owned(),
        Party::Anonymous | Party::Other(_) => "someone".to_owned(),
    }
}

fn text<'v>(detail: &'v Value, key: &str) -> Option<&'v str> {
    detail.get(key).and_then(Value::as_str)
}

fn number(detail: &Value, key: &str) -> Option<i64> {
    detail.get(key).and_then(Value::as_i64)
}

fn group_name(names: &Names, id: i64) -> String {
    name_of(names, &Party::Group(GroupId(id)))
}

/// "all devices", "the group Plant North and the device SN-1", "no devices".
fn access_words(names: &Names, detail: &Value) -> String {
    if detail.get("all").and_then(Value::as_bool) == Some(true) {
        return "all devices".to_owned();
    }
    let list = |key: &str| detail.get(key).and_then(Value::as_array).cloned();
    let groups: Vec<String> = list("groups")
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_i64)
        .map(|id| group_name(names, id))
        .collect();
    let devices: Vec<String> = list("devices")
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let mut parts = Vec::new();
    match groups.len() {
        0 => {}
        1 => parts.push(format!("the group {}", groups[0])),
        _ => parts.push(format!("the groups {}", and_list(&groups))),
    }
    match devices.len() {
        0 => {}
        1 => parts.push(format!("the device {}", devices[0])),
        _ => parts.push(format!("the devices {}", and_list(&devices))),
    }
    if parts.is_empty() {
        "no devices".to_owned()
    } else {
        parts.join(" and ")
    }
}

/// "A", "A and B", "A, B and C".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The name of the staff member behind a staff grant (an actor such as `user:7`), if the viewer
/// may know it.
fn granter(names: &Names, actor: Option<&str>) -> Option<String> {
    match Party::parse(actor?) {
        Party::User(id) => names.users.get(&id).map(|p| p.name.clone()),
        _ => None,
    }
}

/// Whether the detail says `true` under `key`.
fn yes(detail: &Value, key: &str) -> bool {
    detail.get(key).and_then(Value::as_bool) == Some(true)
}

/// A tenant's changed setting: its ERP customer number, default time zone, second-factor rule
/// or passkey-only approvals.
fn tenant_settings(f: &mut Facts, detail: &Value) {
    let code = |key| text(detail, key).unwrap_or("");
    f.erp = detail.get("erp_customer_number").is_some();
    f.to = code("erp_customer_number").to_owned();
    f.name = code("time_zone").to_owned();
    f.flag = yes(detail, "require_totp");
    if detail.get("require_passkey_approval").is_some() {
        f.passkeys = true;
        f.flag = yes(detail, "require_passkey_approval");
    }
}

/// The facts a sentence needs, read from the event's detail.
fn facts(action: Action, detail: &Value, names: &Names) -> Facts {
    let words = |code: Code<'_>| code.to_string();
    let code = |key| text(detail, key).unwrap_or("");
    let mut f = Facts {
        ip: text(detail, "ip")
            .or_else(|| text(detail, "requested_ip"))
            .map(str::to_owned),
        serial: code("serial").to_owned(),
        dispute: number(detail, "dispute"),
        other: number(detail, "claimant_tenant")
            .map(|t| name_of(names, &Party::Tenant(TenantId(t)))),
        role: words(Code::Role(code("role"))),
        ..Facts::default()
    };
    match action {
        Action::TenantCreated => f.words = words(Code::Via(code("via"))),
        Action::TenantSettingsChanged => tenant_settings(&mut f, detail),
        Action::UserPasskeySignInChanged => f.flag = yes(detail, "allowed"),
        Action::ClientRegistered | Action::ClientDisabled => f.flag = code("kind") == "app",
        Action::AppUpdated => f.flag = code("change") == "secret",
        Action::UserRoleChanged => {
            f.from = words(Code::Role(code("from")));
            f.to = words(Code::Role(code("to")));
        }
        Action::DeviceUpdated => {
            f.from = code("from").to_owned();
            f.to = code("to").to_owned();
        }
        Action::DeviceRegistered => f.to = code("model").to_owned(),
        Action::UserAccessChanged => f.access = access_words(names, detail),
        Action::DeviceGroupAssigned => {
            f.group = number(detail, "group").map(|g| group_name(names, g))
        }
        Action::UserSignedIn => f.words = words(Code::SignedInWith(code("second_factor"))),
        Action::UserSignInFailed => f.words = words(Code::Factor(code("factor"))),
        Action::UserSignedOut => {
            f.flag = yes(detail, "everywhere");
            f.others = yes(detail, "others");
            f.count = number(detail, "sessions");
        }
        Action::UserRenamed => {
            f.from = code("from").to_owned();
            f.to = code("to").to_owned();
        }
        Action::UserPasswordChanged => {
            f.flag = number(detail, "other_sessions_ended").is_some_and(|n| n > 0);
        }
        Action::UserRecoveryCodeUsed => f.count = number(detail, "left"),
        Action::UserSecondFactorThrottled => f.count = number(detail, "failures"),
        Action::PairingApproved => {
            f.words = words(Code::Basis(code("basis")));
            f.name = granter(names, text(detail, "granted_by")).unwrap_or_default();
        }
        Action::PairingRefused => f.words = words(Code::Refusal(code("reason"))),
        Action::DisputeResolved => {
            f.words = words(Code::Resolution(code("resolution")));
            f.note = f.dispute.and_then(|d| names.notes.get(&d).cloned());
        }
        Action::RefreshTokenReuse => {
            f.flag = detail
                .get("revoked")
                .is_some_and(|r| r.as_bool() != Some(false));
        }
        Action::DeviceTokensRevoked => f.words = words(Code::Ended(code("reason"))),
        Action::OAuthRefused => f.words = code("reason").to_owned(),
        Action::ErpSaleRecorded => f.words = words(Code::SaleStatus(code("status"))),
        Action::ErpSaleEnded => {
            f.words = words(Code::SaleStatus(code("status")));
            f.flag = yes(detail, "tokens_revoked");
        }
        Action::ErpCustomerLinked | Action::ErpCustomerUpdated => {
            f.name = code("customer_number").to_owned();
        }
        _ => {}
    }
    f
}

/// The event as a sentence, starting with a capital letter.
pub fn sentence(entry: &Entry, names: &Names) -> String {
    let Some(action) = entry.action else {
        return "Something happened that this version of pairgate does not describe".to_owned();
    };
    let f = facts(action, &entry.detail, names);
    let said = Said {
        action,
        who: &name_of(names, &entry.actor),
        whom: &name_of(names, &entry.subject),
        same: entry.actor == entry.subject,
        f: &f,
    }
    .to_string();
    let mut chars = said.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => said,
    }
}

/// One pairing of a device's history as a sentence, its times in `zone`; `company`: to whom
/// (for staff).
pub fn pairing_line(p: &PairingRecord, names: &Names, company: Option<&str>, zone: Zone) -> String {
    let when = |ms| when_for(zone, ms);
    let ended = match (p.ended_at, &p.end_reason) {
        (Some(t), Some(reason)) => Some((when(t), Code::Ended(reason).to_string())),
        _ => None,
    };
    Line::Pairing {
        at: when(p.created_at),
        company,
        by: &name_of(names, &Party::parse(&p.approved_by)),
        basis: Code::Basis(&p.basis).to_string(),
        granter: granter(names, p.granted_by.as_deref()),
        provisional: p.status == PairingStatus::Provisional,
        ended,
    }
    .to_string()
}

/// Every event of `history` as (time, sentence).
pub fn sentences(history: &History, when: impl Fn(i64) -> String) -> Vec<(String, String)> {
    history
        .entries
        .iter()
        .map(|e| (when(e.occurred_at), sentence(e, &history.names)))
        .collect()
}

#[cfg(test)]
mod tests;
