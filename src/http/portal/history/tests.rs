use serde_json::json;

use super::*;
use crate::ids::{TenantId, UserId};
use crate::store::history::PersonName;

fn names() -> Names {
    let mut names = Names::default();
    let person = |name: &str, role: &str| PersonName {
        name: name.to_owned(),
        tenant_id: Some(TenantId(3)),
        role: role.to_owned(),
    };
    names
        .users
        .insert(UserId(1), person("Ann Example", "owner"));
    names
        .users
        .insert(UserId(2), person("Bob Example", "viewer"));
    names.users.insert(UserId(9), person("Sam Staff", "staff"));
    names
        .groups
        .insert(5, (TenantId(3), "Plant North".to_owned()));
    names
        .groups
        .insert(6, (TenantId(3), "Plant South".to_owned()));
    names.tenants.insert(TenantId(3), "Acme Ltd".to_owned());
    names.tenants.insert(TenantId(4), "Rival Inc".to_owned());
    names
        .clients
        .insert("erp".to_owned(), "Factory ERP".to_owned());
    names.notes.insert(7, "ERP shows the sale".to_owned());
    names
}

fn said(action: Action, actor: &str, subject: &str, detail: Value) -> String {
    let entry = Entry {
        id: 1,
        occurred_at: 0,
        action: Some(action),
        action_name: action.as_str().to_owned(),
        actor: Party::parse(actor),
        subject: Party::parse(subject),
        detail,
    };
    sentence(&entry, &names())
}

type Case = (
    Action,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const ANN: &str = "user:1";
const BOB: &str = "user:2";
const SAM: &str = "user:9";
const ERP: &str = "client:erp";
const DEV: &str = "device:SN-1";

/// One realistic event of every action (actor, subject, detail as `events::record` writes
/// them) and its sentence.
const CASES: &[Case] = &[
    (
        Action::TenantCreated,
        ANN,
        "tenant:3",
        r#"{"name": "Acme Ltd", "via": "sign-up"}"#,
        "Ann Example created the company Acme Ltd by signing up",
    ),
    (
        Action::TenantSettingsChanged,
        ANN,
        "tenant:3",
        r#"{"require_totp": true}"#,
        "Ann Example made two-factor authentication required at Acme Ltd",
    ),
    (
        Action::TenantSettingsChanged,
        ANN,
        "tenant:3",
        r#"{"time_zone": "Europe/Berlin"}"#,
        "Ann Example set the default time zone of Acme Ltd to Europe/Berlin",
    ),
    (
        Action::UserCreated,
        "cli",
        BOB,
        r#"{"role": "viewer", "totp": false}"#,
        "An operator of pairgate created the account of Bob Example, a viewer",
    ),
    (
        Action::UserInvited,
        ANN,
        "email:carl@example.com",
        r#"{"role": "admin"}"#,
        "Ann Example invited carl@example.com to join as an admin",
    ),
    (
        Action::UserJoined,
        BOB,
        BOB,
        r#"{"role": "operator", "invitation": 4}"#,
        "Bob Example accepted an invitation and joined as an operator",
    ),
    (
        Action::UserRoleChanged,
        ANN,
        BOB,
        r#"{"from": "viewer", "to": "admin"}"#,
        "Ann Example made Bob Example an admin instead of a viewer",
    ),
    (
        Action::UserDisabled,
        ANN,
        BOB,
        r#"{}"#,
        "Ann Example disabled the account of Bob Example",
    ),
    (
        Action::UserEnabled,
        ANN,
        BOB,
        r#"{}"#,
        "Ann Example enabled the account of Bob Example again",
    ),
    (
        Action::UserAccessChanged,
        ANN,
        BOB,
        r#"{"all": false, "groups": [5], "devices": []}"#,
        "Ann Example gave Bob Example access to the group Plant North",
    ),
    (
        Action::UserSignedIn,
        BOB,
        BOB,
        r#"{"ip": "192.0.2.1", "second_factor": "totp"}"#,
        "Bob Example signed in from 192.0.2.1 with an authentication code",
    ),
    (
        Action::UserSignInFailed,
        "anonymous",
        BOB,
        r#"{"ip": "192.0.2.1", "factor": "password"}"#,
        "Someone gave a wrong password signing in as Bob Example from 192.0.2.1",
    ),
    (
        Action::UserSignedOut,
        ANN,
        BOB,
        r#"{}"#,
        "Ann Example signed Bob Example out",
    ),
    (
        Action::UserPasswordChanged,
        BOB,
        BOB,
        r#"{"ip": "192.0.2.1", "other_sessions_ended": 2}"#,
        "Bob Example changed their password from 192.0.2.1; their other sessions were signed \
             out",
    ),
    (
        Action::UserTotpEnrolled,
        BOB,
        BOB,
        r#"{}"#,
        "Bob Example set up two-factor authentication",
    ),
    (
        Action::UserRecoveryCodeUsed,
        BOB,
        BOB,
        r#"{"left": 9}"#,
        "Bob Example signed in with a recovery code (9 left)",
    ),
    (
        Action::UserSteppedUp,
        BOB,
        BOB,
        r#"{"ip": "192.0.2.1"}"#,
        "Bob Example confirmed it was them with a fresh authentication code",
    ),
    (
        Action::UserTotpReset,
        ANN,
        BOB,
        r#"{"sessions": 1}"#,
        "Ann Example reset the two-factor authentication of Bob Example",
    ),
    (
        Action::UserSecondFactorThrottled,
        "anonymous",
        BOB,
        r#"{"ip": "192.0.2.1", "failures": 10}"#,
        "Sign-in codes for Bob Example were paused after 10 wrong answers from 192.0.2.1",
    ),
    (
        Action::DeviceGroupCreated,
        ANN,
        "group:5",
        r#"{"name": "Plant North"}"#,
        "Ann Example created the group Plant North",
    ),
    (
        Action::DeviceGroupAssigned,
        ANN,
        DEV,
        r#"{"group": 6}"#,
        "Ann Example put the device SN-1 in the group Plant South",
    ),
    (
        Action::ClientRegistered,
        "cli",
        ERP,
        r#"{"name": "Factory ERP", "scope": "erp", "auth": "private_key_jwt"}"#,
        "An operator of pairgate registered the service client Factory ERP",
    ),
    (
        Action::DeviceRegistered,
        ERP,
        DEV,
        r#"{"model": "TH-2", "key_thumbprint": "x"}"#,
        "Factory ERP registered the device SN-1 (model TH-2)",
    ),
    (
        Action::SigningKeyRotated,
        "cli",
        "key:k1",
        r#"{"alg": "ES256"}"#,
        "An operator of pairgate rotated pairgate's signing key",
    ),
    (
        Action::PairingRequested,
        DEV,
        DEV,
        r#"{"ip": "198.51.100.7", "dpop_bound": true}"#,
        "The device SN-1 asked to be paired from 198.51.100.7",
    ),
    (
        Action::PairingApproved,
        BOB,
        DEV,
        r#"{"flow": 1, "basis": "staff_grant", "sale_id": null, "requested_ip": null}"#,
        "Bob Example paired the device SN-1 (the manufacturer's support team allowed it)",
    ),
    (
        Action::PairingDenied,
        BOB,
        DEV,
        r#"{"flow": 1}"#,
        "Bob Example turned down the pairing request of the device SN-1",
    ),
    (
        Action::PairingTokensIssued,
        DEV,
        DEV,
        r#"{"flow": 1, "jti": "j", "jkt": "k"}"#,
        "The device SN-1 completed its pairing and received its access",
    ),
    (
        Action::PairingProvisional,
        BOB,
        DEV,
        r#"{"basis": "distributor_sale"}"#,
        "Bob Example paired the device SN-1 provisionally, until the manufacturer confirms \
             the sale",
    ),
    (
        Action::PairingRefused,
        BOB,
        DEV,
        r#"{"reason": "sold_to_other", "dispute": 7}"#,
        "Bob Example tried to pair the device SN-1 and was refused: the manufacturer sold it \
             to another customer",
    ),
    (
        Action::PairingHeldForReview,
        BOB,
        DEV,
        r#"{"dispute": 7}"#,
        "Bob Example asked to pair the device SN-1; the manufacturer's support team reviews \
             it first",
    ),
    (
        Action::PairingConfirmed,
        ERP,
        DEV,
        r#"{"pairing": 3}"#,
        "Factory ERP confirmed the sale: the pairing of the device SN-1 is no longer \
             provisional",
    ),
    (
        Action::PairingRejected,
        ERP,
        DEV,
        r#"{"pairing": 3}"#,
        "Factory ERP found no sale to your company: the device SN-1 was unpaired",
    ),
    (
        Action::DeviceUnpaired,
        ANN,
        DEV,
        r#"{"reason": "unpaired"}"#,
        "Ann Example unpaired the device SN-1",
    ),
    (
        Action::DeviceReleased,
        ANN,
        DEV,
        r#"{"reason": "released"}"#,
        "Ann Example released the device SN-1 for its next owner",
    ),
    (
        Action::DisputeResolved,
        SAM,
        DEV,
        r#"{"dispute": 7, "resolution": "granted"}"#,
        "Sam Staff (manufacturer's support) settled dispute #7 about the device SN-1: the \
             company that asked for it may now pair it. Staff note: ERP shows the sale",
    ),
    (
        Action::RefreshTokenReuse,
        "client:SN-1",
        "client:SN-1",
        r#"{"family": "f", "revoked": true}"#,
        "A used refresh token of a service client was presented again; its access was \
             revoked",
    ),
    (
        Action::TokenRevoked,
        ERP,
        ERP,
        r#"{"kind": "refresh_token", "family": "f"}"#,
        "Factory ERP revoked an access grant",
    ),
    (
        Action::DeviceTokensRevoked,
        ERP,
        DEV,
        r#"{"reason": "sale_ended", "sale_id": "S-1", "status": "returned"}"#,
        "The access of the device SN-1 was revoked: the sale was cancelled or the device \
             returned",
    ),
    (
        Action::OAuthRefused,
        ERP,
        "endpoint:/oauth/token",
        r#"{"error": "invalid_grant", "reason": "the code has expired", "ip": null}"#,
        "A request from Factory ERP was refused: the code has expired",
    ),
    (
        Action::DeviceRekeyed,
        ERP,
        DEV,
        r#"{"previous_thumbprint": "a", "key_thumbprint": "b"}"#,
        "Factory ERP replaced the factory key of the device SN-1",
    ),
    (
        Action::DeviceUpdated,
        ERP,
        DEV,
        r#"{"from": "TH-1", "to": "TH-2"}"#,
        "Factory ERP changed the model of the device SN-1 from TH-1 to TH-2",
    ),
    (
        Action::ErpSaleRecorded,
        ERP,
        "sale:S-1",
        r#"{"serial": "SN-1", "revision": 1, "status": "active"}"#,
        "Factory ERP recorded the sale S-1 of the device SN-1 (in force)",
    ),
    (
        Action::ErpSaleEnded,
        ERP,
        "sale:S-1",
        r#"{"serial": "SN-1", "status": "cancelled", "tokens_revoked": true}"#,
        "Factory ERP recorded that the sale S-1 of the device SN-1 ended: cancelled; the \
             device's access was revoked",
    ),
    (
        Action::ErpCustomerLinked,
        ERP,
        "tenant:3",
        r#"{"customer_number": "C-1", "name": "Acme Ltd", "created": false}"#,
        "Factory ERP linked Acme Ltd to the ERP customer C-1",
    ),
    (
        Action::ErpCustomerUpdated,
        ERP,
        "tenant:3",
        r#"{"customer_number": "C-1", "name": "Acme Ltd", "created": false}"#,
        "Factory ERP updated the ERP record of Acme Ltd (customer C-1)",
    ),
    (
        Action::ErpModelMetricsSet,
        ERP,
        "model:Meter M1",
        r#"{"metrics": ["flow", "temperature"]}"#,
        "Factory ERP set the labels and units of the metrics of the model Meter M1",
    ),
];

/// Words joined by `_` (`sold_to_other`) or a `kind:id` (`user:1`): codes, not words.
fn looks_like_code(text: &str) -> bool {
    let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase());
    text.split(|c: char| c.is_whitespace() || "(),;".contains(c))
        .any(|token| {
            let token = token.trim_end_matches('.');
            (token.contains('_') && token.split('_').all(word))
                || token
                    .split_once(':')
                    .is_some_and(|(a, b)| word(a) && !b.is_empty())
        })
}

#[test]
fn every_action_reads_as_a_sentence_with_names() {
    let cases = CASES;
    for action in Action::ALL {
        assert!(
            cases.iter().any(|c| c.0 == action),
            "{} has no case",
            action.as_str()
        );
    }
    for &(action, actor, subject, detail, expected) in cases {
        let detail = serde_json::from_str(detail).expect("a JSON detail");
        let text = said(action, actor, subject, detail);
        assert_eq!(text, expected, "{}", action.as_str());
        assert!(!text.contains("user:") && !text.contains('{'), "{text}");
        assert!(!looks_like_code(&text), "{text}");
        assert!(!text.contains(action.as_str()), "{text}");
    }
}

#[test]
fn the_code_detector_can_fail() {
    assert!(looks_like_code("refused: sold_to_other"));
    assert!(looks_like_code("by user:1"));
    assert!(!looks_like_code("Ann Example at 10:30 UTC"));
}

#[test]
fn unknown_people_groups_and_codes_stay_unnamed() {
    let text = said(
        Action::UserAccessChanged,
        "user:77",
        "user:2",
        json!({"all": false, "groups": [5, 6, 99], "devices": ["SN-1", "SN-2"]}),
    );
    assert_eq!(
        text,
        "Someone outside your company gave Bob Example access to the groups Plant North, Plant \
         South and a group that no longer exists and the devices SN-1 and SN-2"
    );
    let text = said(
        Action::PairingRefused,
        "user:2",
        "device:SN-1",
        json!({"reason": "brand_new_reason", "claimant_tenant": 4}),
    );
    assert_eq!(
        text,
        "Bob Example from Rival Inc tried to pair the device SN-1 and was refused: the \
         manufacturer's records do not allow it"
    );
    assert_eq!(
        said(
            Action::UserSignedOut,
            "user:2",
            "user:2",
            json!({"everywhere": true, "sessions": 3})
        ),
        "Bob Example signed out everywhere (3 sessions)"
    );
    assert_eq!(
        said(
            Action::UserAccessChanged,
            "user:1",
            "user:2",
            json!({"all": true})
        ),
        "Ann Example gave Bob Example access to all devices"
    );
}
