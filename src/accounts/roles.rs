//! What each role may do. Tenant roles rank owner > admin > operator > viewer; `staff` is the
//! manufacturer's support role, outside every tenant.

pub use crate::store::kinds::Role;

// The rules live here, with the domain; the enum and its stored words live in the store.
impl Role {
    /// The roles a tenant member can hold, highest first.
    pub fn tenant_roles() -> [Role; 4] {
        [Self::Owner, Self::Admin, Self::Operator, Self::Viewer]
    }

    /// Invite users, change roles, disable users, manage groups and device access.
    pub fn manages_users(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }

    /// Approve a device into the tenant (always with a fresh TOTP step-up).
    pub fn pairs_devices(self) -> bool {
        matches!(self, Self::Owner | Self::Admin | Self::Operator)
    }

    /// Read the audit log (a tenant's own events; staff read all).
    pub fn reads_audit(self) -> bool {
        matches!(self, Self::Owner | Self::Admin | Self::Staff)
    }

    /// Whether this role may give `target` to someone (or change someone who has it): admins
    /// manage everyone below owner; owners manage everyone.
    pub fn may_assign(self, target: Role) -> bool {
        match self {
            Self::Owner => target != Self::Staff,
            Self::Admin => matches!(target, Self::Admin | Self::Operator | Self::Viewer),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_cannot_make_or_touch_owners() {
        assert!(Role::Owner.may_assign(Role::Owner));
        assert!(!Role::Admin.may_assign(Role::Owner));
        assert!(Role::Admin.may_assign(Role::Viewer));
        assert!(!Role::Operator.may_assign(Role::Viewer));
        assert!(!Role::Owner.may_assign(Role::Staff));
        for r in Role::tenant_roles() {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}
