//! The ownership gate: given the ERP's sale record, who holds the device now, and staff grants,
//! may this tenant pair this device, and on what grounds? A pure function, so every outcome is
//! tested without a database, and the page explains exactly what it decided.

use crate::ids::TenantId;

/// How the ERP says the device was sold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleFacts {
    pub sale_id: String,
    pub sold_to_customer_number: String,
    pub sold_to_name: String,
    pub sold_to_distributor: bool,
    /// For distributor sales: the end customer, when the ERP knows it.
    pub end_customer_number: Option<String>,
    /// Unix milliseconds.
    pub sold_at: Option<i64>,
}

/// What a tenant asking to pair a device brings to the gate.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub tenant_id: TenantId,
    /// The tenant's ERP customer number, when staff or the ERP linked one.
    pub customer_number: Option<&'a str>,
    /// Staff resolved a dispute in this tenant's favour.
    pub granted: bool,
}

pub use crate::config::DistributorPolicy;

/// Why a pairing is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Sold directly to the tenant's ERP customer.
    DirectSale,
    /// Sold to a distributor, and the ERP named this tenant as the end customer.
    NamedEndCustomer,
    /// Staff decided, in a dispute, that this tenant may pair it.
    StaffGrant,
    /// Sold to a distributor; the ERP has not confirmed the end customer yet.
    DistributorSale,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DirectSale => "direct_sale",
            Self::NamedEndCustomer => "named_end_customer",
            Self::StaffGrant => "staff_grant",
            Self::DistributorSale => "distributor_sale",
        }
    }
}

/// Why a pairing is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another tenant holds the device.
    PairedElsewhere,
    /// The ERP records a sale to another customer.
    SoldToOther,
    /// The ERP records no (active) sale of this device.
    NotSold,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PairedElsewhere => "paired_elsewhere",
            Self::SoldToOther => "sold_to_other",
            Self::NotSold => "not_sold",
        }
    }

    /// The sentence the confirmation page shows.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::PairedElsewhere => {
                "This device belongs to another company's account. If it is yours now, the \
                 manufacturer's support team can review it."
            }
            Self::SoldToOther => {
                "The manufacturer's records show this device was sold to another customer, so it \
                 cannot join your account."
            }
            Self::NotSold => {
                "The manufacturer has no record of this device being sold, so it cannot join an \
                 account yet."
            }
        }
    }
}

/// The gate's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pair now, on these grounds.
    Active(Basis),
    /// Pair now; the device works, but the ERP must confirm (distributor sale).
    Provisional,
    /// Distributor sale under the "review" policy: staff decide first.
    Review,
    Refused(Refusal),
}

/// Decides. `holder` is the tenant the device is paired to now, if any; re-pairing into the same
/// tenant (after a factory reset) goes through the same rules as a first pairing.
pub fn decide(
    sale: Option<&SaleFacts>,
    holder: Option<TenantId>,
    claim: Claim<'_>,
    policy: DistributorPolicy,
) -> Verdict {
    if holder.is_some_and(|h| h != claim.tenant_id) {
        return Verdict::Refused(Refusal::PairedElsewhere);
    }
    if claim.granted {
        return Verdict::Active(Basis::StaffGrant);
    }
    let Some(sale) = sale else {
        return Verdict::Refused(Refusal::NotSold);
    };
    let ours = |number: &str| claim.customer_number == Some(number);
    if !sale.sold_to_distributor {
        return if ours(&sale.sold_to_customer_number) {
            Verdict::Active(Basis::DirectSale)
        } else {
            Verdict::Refused(Refusal::SoldToOther)
        };
    }
    match &sale.end_customer_number {
        Some(end) if ours(end) => Verdict::Active(Basis::NamedEndCustomer),
        Some(_) => Verdict::Refused(Refusal::SoldToOther),
        None => match policy {
            DistributorPolicy::Provisional => Verdict::Provisional,
            DistributorPolicy::Review => Verdict::Review,
        },
    }
}

/// What a claimant may see of the sale record. Their own company's purchase in full; a
/// distributor's name while the end customer is open (any customer may claim the device, and
/// the name helps them recognise their supplier); of a sale to anyone else only that it exists:
/// another customer's name and number are that customer's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaleView {
    /// The ERP records no active sale.
    NotRecorded,
    /// Sold to the claimant's company: directly (with the ERP's name for it), or through a
    /// distributor that named it as the end customer.
    ToClaimant {
        customer_number: String,
        name: Option<String>,
        distributor: Option<String>,
        sold_at: Option<i64>,
    },
    /// Sold to a distributor; the end customer is not known yet.
    ToDistributor {
        distributor: String,
        sold_at: Option<i64>,
    },
    /// Sold to another customer, directly or through a distributor.
    ToAnotherCustomer,
}

/// The sale as the claimant with this ERP customer number may see it.
pub fn sale_view(sale: Option<&SaleFacts>, customer_number: Option<&str>) -> SaleView {
    let Some(sale) = sale else {
        return SaleView::NotRecorded;
    };
    let ours = |number: &str| customer_number == Some(number);
    let sold_at = sale.sold_at;
    match (sale.sold_to_distributor, &sale.end_customer_number) {
        (false, _) if ours(&sale.sold_to_customer_number) => SaleView::ToClaimant {
            customer_number: sale.sold_to_customer_number.clone(),
            name: Some(sale.sold_to_name.clone()),
            distributor: None,
            sold_at,
        },
        (true, Some(end)) if ours(end) => SaleView::ToClaimant {
            customer_number: end.clone(),
            name: None,
            distributor: Some(sale.sold_to_name.clone()),
            sold_at,
        },
        (true, None) => SaleView::ToDistributor {
            distributor: sale.sold_to_name.clone(),
            sold_at,
        },
        _ => SaleView::ToAnotherCustomer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale(distributor: bool, to: &str, end: Option<&str>) -> SaleFacts {
        SaleFacts {
            sale_id: "S1".into(),
            sold_to_customer_number: to.into(),
            sold_to_name: "Buyer".into(),
            sold_to_distributor: distributor,
            end_customer_number: end.map(str::to_owned),
            sold_at: None,
        }
    }

    fn claim(customer: Option<&str>) -> Claim<'_> {
        Claim {
            tenant_id: TenantId(1),
            customer_number: customer,
            granted: false,
        }
    }

    const P: DistributorPolicy = DistributorPolicy::Provisional;

    #[test]
    fn direct_sales_go_only_to_their_customer() {
        let s = sale(false, "C-1", None);
        assert_eq!(
            decide(Some(&s), None, claim(Some("C-1")), P),
            Verdict::Active(Basis::DirectSale)
        );
        assert_eq!(
            decide(Some(&s), None, claim(Some("C-2")), P),
            Verdict::Refused(Refusal::SoldToOther)
        );
        assert_eq!(
            decide(Some(&s), None, claim(None), P),
            Verdict::Refused(Refusal::SoldToOther)
        );
    }

    #[test]
    fn distributor_sales_are_provisional_unless_the_end_customer_is_named() {
        let open = sale(true, "D-9", None);
        assert_eq!(
            decide(Some(&open), None, claim(None), P),
            Verdict::Provisional
        );
        assert_eq!(
            decide(
                Some(&open),
                None,
                claim(Some("C-1")),
                DistributorPolicy::Review
            ),
            Verdict::Review
        );
        let named = sale(true, "D-9", Some("C-1"));
        assert_eq!(
            decide(Some(&named), None, claim(Some("C-1")), P),
            Verdict::Active(Basis::NamedEndCustomer)
        );
        assert_eq!(
            decide(Some(&named), None, claim(Some("C-2")), P),
            Verdict::Refused(Refusal::SoldToOther)
        );
        // The distributor's own account is not the end customer.
        assert_eq!(
            decide(Some(&named), None, claim(Some("D-9")), P),
            Verdict::Refused(Refusal::SoldToOther)
        );
    }

    #[test]
    fn claimants_see_only_their_own_purchase_in_full() {
        let direct = sale(false, "C-1", None);
        assert_eq!(
            sale_view(Some(&direct), Some("C-1")),
            SaleView::ToClaimant {
                customer_number: "C-1".into(),
                name: Some("Buyer".into()),
                distributor: None,
                sold_at: None
            }
        );
        assert_eq!(
            sale_view(Some(&direct), Some("C-2")),
            SaleView::ToAnotherCustomer
        );
        assert_eq!(sale_view(Some(&direct), None), SaleView::ToAnotherCustomer);
        let named = sale(true, "D-9", Some("C-1"));
        assert!(matches!(
            sale_view(Some(&named), Some("C-1")),
            SaleView::ToClaimant {
                distributor: Some(_),
                ..
            }
        ));
        for claimant in [Some("C-2"), Some("D-9"), None] {
            assert_eq!(
                sale_view(Some(&named), claimant),
                SaleView::ToAnotherCustomer,
                "{claimant:?}"
            );
        }
        assert_eq!(
            sale_view(Some(&sale(true, "D-9", None)), Some("C-2")),
            SaleView::ToDistributor {
                distributor: "Buyer".into(),
                sold_at: None
            }
        );
        assert_eq!(sale_view(None, Some("C-1")), SaleView::NotRecorded);
    }

    #[test]
    fn unsold_or_held_elsewhere_is_refused_and_grants_override_the_sale() {
        assert_eq!(
            decide(None, None, claim(Some("C-1")), P),
            Verdict::Refused(Refusal::NotSold)
        );
        let s = sale(false, "C-1", None);
        assert_eq!(
            decide(Some(&s), Some(TenantId(2)), claim(Some("C-1")), P),
            Verdict::Refused(Refusal::PairedElsewhere)
        );
        assert_eq!(
            decide(Some(&s), Some(TenantId(1)), claim(Some("C-1")), P),
            Verdict::Active(Basis::DirectSale),
            "re-pairing"
        );
        let granted = Claim {
            granted: true,
            ..claim(Some("C-7"))
        };
        assert_eq!(
            decide(None, None, granted, P),
            Verdict::Active(Basis::StaffGrant)
        );
        assert_eq!(
            decide(None, Some(TenantId(2)), granted, P),
            Verdict::Refused(Refusal::PairedElsewhere),
            "staff move devices explicitly"
        );
    }
}
