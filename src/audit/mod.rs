//! The audit vocabulary: which security events pairgate records (DESIGN.md §4), and how an event
//! becomes a row of the hash-chained log. Events are appended inside the transaction of the state
//! change they describe, so neither exists without the other.

use serde_json::Value;

use crate::store::audit::NewAuditRecord;

/// Every kind of audited event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    TenantCreated,
    TenantSettingsChanged,
    UserCreated,
    UserInvited,
    UserJoined,
    UserRoleChanged,
    UserDisabled,
    UserEnabled,
    UserAccessChanged,
    UserSignedIn,
    UserSignInFailed,
    UserSignedOut,
    UserPasswordChanged,
    UserTotpEnrolled,
    UserRecoveryCodeUsed,
    UserSteppedUp,
    UserTotpReset,
    UserSecondFactorThrottled,
    DeviceGroupCreated,
    DeviceGroupAssigned,
    ClientRegistered,
    DeviceRegistered,
    SigningKeyRotated,
    PairingRequested,
    PairingApproved,
    PairingDenied,
    PairingTokensIssued,
    PairingProvisional,
    PairingRefused,
    PairingHeldForReview,
    PairingConfirmed,
    PairingRejected,
    DeviceUnpaired,
    DeviceReleased,
    DisputeResolved,
    RefreshTokenReuse,
    TokenRevoked,
    DeviceTokensRevoked,
    OAuthRefused,
    DeviceRekeyed,
    DeviceUpdated,
    ErpSaleRecorded,
    ErpSaleEnded,
    ErpCustomerLinked,
    ErpCustomerUpdated,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TenantCreated => "tenant.created",
            Self::TenantSettingsChanged => "tenant.settings_changed",
            Self::UserCreated => "user.created",
            Self::UserInvited => "user.invited",
            Self::UserJoined => "user.joined",
            Self::UserRoleChanged => "user.role_changed",
            Self::UserDisabled => "user.disabled",
            Self::UserEnabled => "user.enabled",
            Self::UserAccessChanged => "user.access_changed",
            Self::UserSignedIn => "user.signed_in",
            Self::UserSignInFailed => "user.sign_in_failed",
            Self::UserSignedOut => "user.signed_out",
            Self::UserPasswordChanged => "user.password_changed",
            Self::UserTotpEnrolled => "user.totp_enrolled",
            Self::UserRecoveryCodeUsed => "user.recovery_code_used",
            Self::UserSteppedUp => "user.stepped_up",
            Self::UserTotpReset => "user.totp_reset",
            Self::UserSecondFactorThrottled => "user.second_factor_throttled",
            Self::DeviceGroupCreated => "device_group.created",
            Self::DeviceGroupAssigned => "device_group.assigned",
            Self::ClientRegistered => "client.registered",
            Self::DeviceRegistered => "device.registered",
            Self::SigningKeyRotated => "keys.rotated",
            Self::PairingRequested => "pairing.requested",
            Self::PairingApproved => "pairing.approved",
            Self::PairingDenied => "pairing.denied",
            Self::PairingTokensIssued => "pairing.tokens_issued",
            Self::PairingProvisional => "pairing.provisional",
            Self::PairingRefused => "pairing.refused",
            Self::PairingHeldForReview => "pairing.held_for_review",
            Self::PairingConfirmed => "pairing.confirmed",
            Self::PairingRejected => "pairing.rejected",
            Self::DeviceUnpaired => "device.unpaired",
            Self::DeviceReleased => "device.released",
            Self::DisputeResolved => "dispute.resolved",
            Self::RefreshTokenReuse => "token.refresh_reuse_detected",
            Self::TokenRevoked => "token.revoked",
            Self::DeviceTokensRevoked => "device.tokens_revoked",
            Self::OAuthRefused => "oauth.refused",
            Self::DeviceRekeyed => "device.rekeyed",
            Self::DeviceUpdated => "device.updated",
            Self::ErpSaleRecorded => "erp.sale_recorded",
            Self::ErpSaleEnded => "erp.sale_ended",
            Self::ErpCustomerLinked => "erp.customer_linked",
            Self::ErpCustomerUpdated => "erp.customer_updated",
        }
    }
}

/// Builds an event. `actor` and `subject` use `kind:id` forms (`device:SN1`, `user:7`,
/// `client:erp`, `cli`); `detail` is a JSON object and must never hold a secret or token.
pub fn event(
    now_ms: i64,
    action: Action,
    actor: impl Into<String>,
    subject: impl Into<String>,
    tenant_id: Option<i64>,
    detail: Value,
) -> NewAuditRecord {
    NewAuditRecord {
        occurred_at: now_ms,
        tenant_id,
        actor: actor.into(),
        action: action.as_str().to_owned(),
        subject: subject.into(),
        detail: detail.to_string(),
    }
}
