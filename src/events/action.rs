//! The audit vocabulary: which security events pairgate records (DESIGN.md §4), each with the
//! name its rows carry in the hash-chained log.

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
    UserRenamed,
    UserRecoveryCodesRegenerated,
    UserPasskeyRegistered,
    UserPasskeyUsed,
    UserPasskeyRemoved,
    UserPasskeyRefused,
    UserPasskeySignInChanged,
    DeviceGroupCreated,
    DeviceGroupAssigned,
    ClientRegistered,
    ClientDisabled,
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
    ErpModelMetricsSet,
}

impl Action {
    /// Every action, in the order of the enum (the audit page's filter lists them).
    pub const ALL: [Action; 54] = [
        Self::TenantCreated,
        Self::TenantSettingsChanged,
        Self::UserCreated,
        Self::UserInvited,
        Self::UserJoined,
        Self::UserRoleChanged,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::UserAccessChanged,
        Self::UserSignedIn,
        Self::UserSignInFailed,
        Self::UserSignedOut,
        Self::UserPasswordChanged,
        Self::UserTotpEnrolled,
        Self::UserRecoveryCodeUsed,
        Self::UserSteppedUp,
        Self::UserTotpReset,
        Self::UserSecondFactorThrottled,
        Self::UserRenamed,
        Self::UserRecoveryCodesRegenerated,
        Self::UserPasskeyRegistered,
        Self::UserPasskeyUsed,
        Self::UserPasskeyRemoved,
        Self::UserPasskeyRefused,
        Self::UserPasskeySignInChanged,
        Self::DeviceGroupCreated,
        Self::DeviceGroupAssigned,
        Self::ClientRegistered,
        Self::ClientDisabled,
        Self::DeviceRegistered,
        Self::SigningKeyRotated,
        Self::PairingRequested,
        Self::PairingApproved,
        Self::PairingDenied,
        Self::PairingTokensIssued,
        Self::PairingProvisional,
        Self::PairingRefused,
        Self::PairingHeldForReview,
        Self::PairingConfirmed,
        Self::PairingRejected,
        Self::DeviceUnpaired,
        Self::DeviceReleased,
        Self::DisputeResolved,
        Self::RefreshTokenReuse,
        Self::TokenRevoked,
        Self::DeviceTokensRevoked,
        Self::OAuthRefused,
        Self::DeviceRekeyed,
        Self::DeviceUpdated,
        Self::ErpSaleRecorded,
        Self::ErpSaleEnded,
        Self::ErpCustomerLinked,
        Self::ErpCustomerUpdated,
        Self::ErpModelMetricsSet,
    ];

    /// The action whose log name is `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The name in the log (`pairing.approved`).
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
            Self::UserRenamed => "user.renamed",
            Self::UserRecoveryCodesRegenerated => "user.recovery_codes_regenerated",
            Self::UserPasskeyRegistered => "user.passkey_registered",
            Self::UserPasskeyUsed => "user.passkey_used",
            Self::UserPasskeyRemoved => "user.passkey_removed",
            Self::UserPasskeyRefused => "user.passkey_refused",
            Self::UserPasskeySignInChanged => "user.passkey_sign_in_changed",
            Self::DeviceGroupCreated => "device_group.created",
            Self::DeviceGroupAssigned => "device_group.assigned",
            Self::ClientRegistered => "client.registered",
            Self::ClientDisabled => "client.disabled",
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
            Self::ErpModelMetricsSet => "erp.model_metrics_set",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_parses_back_from_its_name() {
        let mut names: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        assert_eq!(Action::parse("pairing.unheard_of"), None);
    }
}
