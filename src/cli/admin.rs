//! The operator commands behind `pairgate tenant|user|mail|client|device|keys|erp`, one function
//! per subcommand. They run against the configured database, and every change is audited with the
//! actor `cli`.

use std::path::Path;

use super::read_json;
use super::{
    ClientCommand, ClientCreate, ClientKindArg, ErpCommand, KeysCommand, MailCommand,
    TenantCommand, UserCommand,
};
use crate::app::AppContext;
use crate::ids::TenantId;
use crate::oauth::apps::{AppKind, AppRegistration, create_app};
use crate::oauth::clients::{ClientCredential, create_service_client};

pub(super) async fn tenant(
    ctx: &AppContext,
    now: i64,
    command: TenantCommand,
) -> Result<(), String> {
    match command {
        TenantCommand::Create { name } => {
            let id = crate::accounts::create_tenant(&ctx.store, now, "cli", &name)
                .await
                .map_err(|e| e.to_string())?;
            println!("tenant {id} created: {}", name.trim());
        }
        TenantCommand::List => super::lists::tenants(ctx).await?,
    }
    Ok(())
}

pub(super) async fn user(ctx: &AppContext, command: UserCommand) -> Result<(), String> {
    match command {
        UserCommand::Create {
            email,
            name,
            tenant,
            role,
            totp,
        } => {
            let role = crate::accounts::Role::parse(&role)
                .ok_or("--role must be owner, admin, operator, viewer or staff")?;
            if let Some(id) = tenant {
                super::lists::require_tenant(ctx, id).await?;
            }
            let password = super::prompt::new_password()?;
            let (id, uri) = ctx
                .accounts
                .create_user(
                    "cli",
                    crate::accounts::NewUser {
                        tenant_id: tenant.map(TenantId::from),
                        email,
                        name,
                        role,
                        password,
                        totp,
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            println!("user {id} created");
            if let Some(uri) = uri {
                println!("otpauth URI (add it to an authenticator app; shown once):\n{uri}");
            }
        }
        UserCommand::Disable { email } => {
            let id = ctx
                .accounts
                .disable_user("cli", &email)
                .await
                .map_err(|e| match e {
                    crate::accounts::AccountError::NotFound => {
                        format!("no user with email {email}")
                    }
                    other => other.to_string(),
                })?;
            println!("user {id} disabled; their sessions have ended");
        }
        UserCommand::List { tenant } => super::lists::users(ctx, tenant).await?,
    }
    Ok(())
}

pub(super) async fn mail(ctx: &AppContext, command: MailCommand) -> Result<(), String> {
    match command {
        MailCommand::List { limit } => {
            let mails = ctx
                .store
                .read(move |tx| crate::store::mail::recent(tx, limit.clamp(1, 1000)))
                .await
                .map_err(|e| e.to_string())?;
            for m in mails {
                let state = match (m.sent_at, &m.last_error) {
                    (Some(_), _) => "sent".to_owned(),
                    (None, Some(e)) => {
                        format!("not sent ({} attempts; last error: {e})", m.attempts)
                    }
                    (None, None) => "not sent (no SMTP server configured)".to_owned(),
                };
                let body = ctx
                    .accounts
                    .outbox()
                    .body(&m)
                    .unwrap_or_else(|| "(sealed under another master key)".to_owned());
                println!(
                    "#{} to {} — {}\n  {state}\n\n{body}\n",
                    m.id, m.recipient, m.subject
                );
            }
        }
    }
    Ok(())
}

pub(super) async fn client(
    ctx: &AppContext,
    now: i64,
    command: ClientCommand,
) -> Result<(), String> {
    match command {
        ClientCommand::Create(args) => {
            let created = create_client(ctx, now, args).await?;
            println!("client_id:     {}", created.client_id);
            if let Some(secret) = created.secret {
                println!("client_secret: {secret}");
                println!("(shown once; pairgate keeps only its hash)");
            }
        }
        ClientCommand::List => super::lists::clients(ctx).await?,
        ClientCommand::Disable { client_id } => {
            let was_active =
                crate::oauth::clients::disable_service_client(&ctx.store, now, "cli", &client_id)
                    .await
                    .map_err(|e| e.to_string())?;
            if was_active {
                println!("client {client_id} disabled; it authenticates no more");
            } else {
                println!("client {client_id} was already disabled");
            }
        }
    }
    Ok(())
}

async fn create_client(
    ctx: &AppContext,
    now: i64,
    args: ClientCreate,
) -> Result<crate::oauth::clients::CreatedClient, String> {
    let credential = match (&args.jwks_file, args.secret) {
        (Some(path), _) => Some(ClientCredential::Jwks(read_json(path)?)),
        (None, true) => Some(ClientCredential::Secret),
        (None, false) => None,
    };
    let is_app = args.kind != ClientKindArg::Service;
    if !is_app
        && (!args.redirect_uris.is_empty()
            || !args.post_logout_redirect_uris.is_empty()
            || args.tenant.is_some()
            || args.first_party)
    {
        return Err("redirect URIs, --tenant and --first-party are for apps: \
                    add --kind confidential or --kind public"
            .into());
    }
    let kind = match (args.kind, credential) {
        (ClientKindArg::Service, Some(credential)) => {
            let scope = args.scope.unwrap_or_default();
            return create_service_client(&ctx.store, now, "cli", &args.name, &scope, credential)
                .await
                .map_err(|e| e.to_string());
        }
        (ClientKindArg::Confidential, Some(credential)) => AppKind::Confidential(credential),
        (ClientKindArg::Public, None) => AppKind::Public,
        (ClientKindArg::Public, Some(_)) => {
            return Err("a public app has no credential: drop --secret and --jwks-file".into());
        }
        (_, None) => return Err("give --jwks-file FILE (private_key_jwt) or --secret".into()),
    };
    if args.scope.is_some() {
        return Err(
            "an app's scopes are fixed (openid email profile telemetry:read): \
                    drop --scope"
                .into(),
        );
    }
    let tenant_id = match args.tenant {
        Some(id) => {
            let t = TenantId::from(id);
            let found = ctx
                .store
                .read(move |tx| crate::store::registry::find_tenant(tx, t))
                .await
                .map_err(|e| e.to_string())?;
            Some(found.ok_or(format!("no tenant with id {id}"))?.id)
        }
        None => None,
    };
    let registration = AppRegistration {
        name: args.name,
        kind,
        tenant_id,
        first_party: args.first_party,
        redirect_uris: args.redirect_uris,
        post_logout_redirect_uris: args.post_logout_redirect_uris,
    };
    create_app(&ctx.store, now, "cli", registration)
        .await
        .map_err(|e| e.to_string())
}

pub(super) async fn register_device(
    ctx: &AppContext,
    now: i64,
    serial: &str,
    model: &str,
    jwk_file: &Path,
) -> Result<(), String> {
    let jwk = read_json(jwk_file)?;
    let key = crate::devices::register(&ctx.store, now, "cli", &serial.into(), model, &jwk)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "device {serial} registered ({model}); key thumbprint {}",
        key.thumbprint()
    );
    Ok(())
}

pub(super) async fn keys(ctx: &AppContext, command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Rotate => {
            let kid = ctx
                .oauth
                .rotate_signing_key("cli")
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "signing key {kid} added: published now, signs from {} seconds from now",
                ctx.settings.keys.publish_before_use_secs
            );
        }
    }
    Ok(())
}

pub(super) async fn erp(ctx: &AppContext, command: ErpCommand) -> Result<(), String> {
    match command {
        ErpCommand::Import {
            file,
            format,
            batch_size,
        } => crate::erp::command::import(&ctx.erp, &file, format.as_deref(), batch_size).await,
    }
}
