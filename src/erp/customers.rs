//! `PUT /api/erp/v1/customers/{customer_number}`: the tenant that stands for an ERP customer.
//! The first PUT creates the tenant (or links the existing tenant that staff matched, named by
//! `tenant_id`); later ones keep its name in step with the ERP. With `admin_email`, the
//! customer's first owner is invited by mail, once: not while an invitation to that address is
//! open, and not once the tenant has an active owner.
//!
//! The invitation is system-initiated (no session, no inviting user), so it is made here rather
//! than through `Accounts::invite`; it creates the same invitation rows and one-time links.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::error::{Conflict, ErpError, FieldError, Location};
use super::input::{self, Fields};
use crate::crypto::tokens::{hash_token, random_token};
use crate::events::{self, Action, Event, FeedEntry, FeedType, Subject};
use crate::ids::TenantId;
use crate::store::users::{self, NewInvitation, Role};
use crate::store::{StoreError, Tx, erp as stored, registry};

/// The members a body may have.
pub const FIELDS: &[&str] = &["name", "admin_email", "tenant_id"];

/// The body of a PUT as the ERP sends it, for the API description: [`CustomerInput::parse`]
/// reads the members one by one, so that one answer names every problem.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({ "name": "Acme Water", "admin_email": "it@acme.example" })))]
pub struct CustomerPut {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Invite this person as the tenant's first owner.
    #[schema(format = Email)]
    pub admin_email: Option<String>,
    /// Link this existing tenant (matched by staff) instead of creating one.
    #[schema(minimum = 1, value_type = Option<i64>)]
    pub tenant_id: Option<TenantId>,
}

/// A checked request body.
#[derive(Debug, Clone)]
pub struct CustomerInput {
    pub name: String,
    /// Normalised (lower-cased, trimmed).
    pub admin_email: Option<String>,
    /// An existing tenant that staff matched with this customer.
    pub tenant_id: Option<TenantId>,
}

impl CustomerInput {
    pub fn parse(customer_number: &str, body: &Value) -> Result<Self, ErpError> {
        let mut errors = Vec::new();
        if let Err(detail) = input::identifier(customer_number) {
            errors.push(FieldError {
                location: Location::Path("customer_number"),
                detail: detail.into(),
            });
        }
        let parsed = Fields::of(body, "", FIELDS, &mut errors).and_then(|f| {
            let name = f.text("name", input::name, &mut errors);
            let email = f.optional_text("admin_email", email, &mut errors);
            let tenant_id = match f.get("tenant_id") {
                None => None,
                Some(v) => match v.as_i64().filter(|n| *n > 0) {
                    Some(id) => Some(TenantId(id)),
                    None => {
                        errors.push(FieldError::body(
                            f.pointer("tenant_id"),
                            "must be a positive integer",
                        ));
                        return None;
                    }
                },
            };
            Some(Self {
                name: name?.trim().to_owned(),
                admin_email: email.and_then(|e| crate::accounts::normalize_email(&e)),
                tenant_id,
            })
        });
        match parsed {
            Some(input) if errors.is_empty() => Ok(input),
            _ => Err(ErpError::Validation(errors)),
        }
    }
}

fn email(text: &str) -> Result<(), &'static str> {
    crate::accounts::normalize_email(text)
        .map(drop)
        .ok_or("must be an email address")
}

/// What happened about the first owner's invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvitationOutcome {
    /// No `admin_email` was given.
    NotRequested,
    /// A new invitation is in the outbox; the mail goes out when the mail server accepts it
    /// (with no `mail.smtp_url`, `pairgate mail list` shows it).
    Queued,
    /// An invitation to this address is still open; none was sent again.
    AlreadyOpen,
    /// The tenant has an active owner already.
    OwnerExists,
    /// The address belongs to an existing account (of any tenant); nothing was sent.
    AccountExists,
}

/// The answer to a PUT.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerOutcome {
    pub customer_number: String,
    #[schema(value_type = i64)]
    pub tenant_id: TenantId,
    pub name: String,
    /// The tenant was created by this request.
    pub created: bool,
    /// The request linked the customer to a tenant (created or matched).
    pub linked: bool,
    /// Anything changed.
    pub applied: bool,
    pub invitation: InvitationOutcome,
}

/// What an invitation needs from the settings.
#[derive(Debug, Clone)]
pub struct InvitationSettings {
    /// The public URL; links are `<public_url>/invite/<token>`.
    pub public_url: String,
    pub lifetime_ms: i64,
    /// Seals the message: its link is a credential.
    pub outbox: crate::mail::Outbox,
}

/// Creates, links or updates the customer's tenant inside the caller's transaction. Every
/// refusal is decided before anything is written.
pub fn apply(
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    customer_number: &str,
    input: &CustomerInput,
    invitations: &InvitationSettings,
) -> Result<CustomerOutcome, ErpError> {
    let link = resolve_tenant(tx, now_ms, actor, customer_number, input)?;
    record_change(tx, now_ms, actor, customer_number, input, link)?;
    let tenant_id = link.tenant_id;
    let invitation = match &input.admin_email {
        None => InvitationOutcome::NotRequested,
        Some(email) => invite_first_owner(
            tx,
            now_ms,
            actor,
            tenant_id,
            &input.name,
            email,
            invitations,
        )?,
    };
    Ok(CustomerOutcome {
        customer_number: customer_number.to_owned(),
        tenant_id,
        name: input.name.clone(),
        created: link.created,
        linked: link.linked,
        applied: link.linked || link.renamed || invitation == InvitationOutcome::Queued,
        invitation,
    })
}

/// The tenant that stands for the customer, and what this request does to it.
#[derive(Debug, Clone, Copy)]
struct TenantLink {
    tenant_id: TenantId,
    /// The tenant was created by this request.
    created: bool,
    /// The customer is linked to the tenant by this request.
    linked: bool,
    /// The tenant's name changes to the ERP's.
    renamed: bool,
}

/// Finds the customer's tenant, or links the one staff matched, or creates one.
fn resolve_tenant(
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    customer_number: &str,
    input: &CustomerInput,
) -> Result<TenantLink, ErpError> {
    let existing = stored::tenant_for_customer(tx, customer_number)?;
    let (tenant_id, created, linked, renamed) = match (existing, input.tenant_id) {
        (Some((id, _)), Some(wanted)) if wanted != id => {
            return Err(ErpError::Conflict(Conflict::CustomerLinkedElsewhere));
        }
        (Some((id, name)), _) => (id, false, false, name != input.name),
        (None, Some(wanted)) => {
            match stored::customer_of_tenant(tx, wanted)? {
                None => {
                    return Err(ErpError::invalid(FieldError::body(
                        "/tenant_id",
                        "no tenant has this id",
                    )));
                }
                Some(Some(_)) => {
                    return Err(ErpError::Conflict(Conflict::TenantLinkedElsewhere));
                }
                Some(None) => {}
            }
            let current = registry::find_tenant(tx, wanted)?.map(|t| t.name);
            stored::link_tenant(tx, wanted, customer_number)?;
            (
                wanted,
                false,
                true,
                current.as_deref() != Some(input.name.as_str()),
            )
        }
        (None, None) => {
            let id = registry::insert_tenant(tx, &input.name, now_ms)?;
            stored::link_tenant(tx, id, customer_number)?;
            let detail = json!({
                "name": input.name,
                "via": "erp",
                "customer_number": customer_number,
            });
            let event = Event::new(Action::TenantCreated, actor, Subject::Tenant(id))
                .tenant(Some(id))
                .detail(detail);
            events::record(tx, now_ms, event)?;
            (id, true, true, false)
        }
    };
    Ok(TenantLink {
        tenant_id,
        created,
        linked,
        renamed,
    })
}

/// Renames the tenant if needed, and records a link or an update in the audit log and the feed.
fn record_change(
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    customer_number: &str,
    input: &CustomerInput,
    link: TenantLink,
) -> Result<(), ErpError> {
    let TenantLink {
        tenant_id,
        created,
        linked,
        renamed,
    } = link;
    if renamed {
        stored::rename_tenant(tx, tenant_id, &input.name)?;
    }
    if linked || renamed {
        let action = if linked {
            Action::ErpCustomerLinked
        } else {
            Action::ErpCustomerUpdated
        };
        let feed_type = if linked {
            FeedType::CustomerLinked
        } else {
            FeedType::CustomerUpdated
        };
        let entry = FeedEntry {
            customer_number: Some(customer_number.to_owned()),
            tenant_id: Some(tenant_id),
            data: json!({ "name": input.name, "created": created }),
            ..FeedEntry::new(feed_type)
        };
        let event = Event::new(action, actor, Subject::Tenant(tenant_id))
            .tenant(Some(tenant_id))
            .detail(json!({
                "customer_number": customer_number,
                "name": input.name,
                "created": created,
            }))
            .erp_entry(entry);
        events::record(tx, now_ms, event)?;
    }
    Ok(())
}

/// Invites a tenant's first owner on behalf of the system (no inviting user): an invitation row
/// with a one-time link, and the mail in the outbox, inside the caller's transaction.
pub fn invite_first_owner(
    tx: &mut Tx<'_>,
    now_ms: i64,
    actor: &str,
    tenant_id: TenantId,
    tenant_name: &str,
    email: &str,
    settings: &InvitationSettings,
) -> Result<InvitationOutcome, StoreError> {
    if users::count_active_owners(tx, tenant_id)? > 0 {
        return Ok(InvitationOutcome::OwnerExists);
    }
    if users::pending_invitations(tx, tenant_id, now_ms)?
        .iter()
        .any(|i| i.email == email && i.role == Role::Owner)
    {
        return Ok(InvitationOutcome::AlreadyOpen);
    }
    if users::find_by_email(tx, email)?.is_some() {
        return Ok(InvitationOutcome::AccountExists);
    }
    let token = random_token();
    let link = format!("{}/invite/{token}", settings.public_url);
    let days = (settings.lifetime_ms / 86_400_000).max(1);
    users::insert_invitation(
        tx,
        &NewInvitation {
            tenant_id,
            email: email.to_owned(),
            role: Role::Owner,
            token_hash: hash_token(&token),
            invited_by: None,
            created_at: now_ms,
            expires_at: now_ms + settings.lifetime_ms,
        },
    )?;
    settings.outbox.queue_sealed(
        tx,
        email,
        &format!("Your {tenant_name} account on pairgate"),
        &format!(
            "An account for {tenant_name} has been set up on pairgate, the portal for your \
             connected devices, and you are invited to be its owner.\n\n\
             Accept the invitation here (the link works once, for {days} days at most):\n\
             {link}\n\n\
             If you did not expect this, ignore this message.\n"
        ),
        now_ms,
    )?;
    events::record(
        tx,
        now_ms,
        Event::new(Action::UserInvited, actor, Subject::Email(email.to_owned()))
            .tenant(Some(tenant_id))
            .detail(json!({ "role": "owner", "via": "erp" })),
    )?;
    Ok(InvitationOutcome::Queued)
}
