//! One case per audit action: who did it, to what, with which detail, and the sentence the
//! history shows for it.

use crate::events::Action;

pub(super) type Case = (
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
pub(super) const CASES: &[Case] = &[
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
        Action::UserRenamed,
        BOB,
        BOB,
        r#"{"from": "Bob", "to": "Bob Example"}"#,
        "Bob Example changed their name from Bob to Bob Example",
    ),
    (
        Action::UserRecoveryCodesRegenerated,
        BOB,
        BOB,
        r#"{"codes": 10}"#,
        "Bob Example replaced their recovery codes; the old ones no longer work",
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
        Action::ClientDisabled,
        "cli",
        ERP,
        "{}",
        "An operator of pairgate disabled the service client Factory ERP",
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
