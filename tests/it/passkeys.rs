//! Passkeys below the pages: real WebAuthn ceremonies against the accounts service, answered by
//! a software passkey. Registration (a second one of the same authenticator refused, at most
//! `MAX_PASSKEYS` each), use with a session and alone, assertions for another origin or RP id,
//! replayed and expired ceremonies, a signature counter that goes back, and keeping the last
//! second factor.

use pairgate::accounts::passkeys::{PublicKeyCredential, RegisterPublicKeyCredential};
use pairgate::accounts::{LoginOutcome, NewUser, PasskeyError, Role, Session};
use serde_json::Value;

use crate::backend_tests;
use crate::support::soft_passkey::SoftPasskey;
use crate::support::{Backend, TestApp};

backend_tests!(
    a_passkey_registers_then_signs_in,
    the_same_authenticator_registers_once,
    assertions_for_another_origin_or_rp_id_are_refused,
    a_ceremony_serves_once_and_expires,
    a_counter_that_goes_back_is_refused,
    the_last_factor_stays_while_the_tenant_requires_one,
);

/// The public URL: its host is the RP id (WebAuthn takes no IP address).
const ORIGIN: &str = "http://localhost:8443";
const EMAIL: &str = "olivia@acme.example";
const PASSWORD: &str = "correct horse battery staple";

/// An app whose owner (no TOTP) is signed in and stepped up; returns the session.
async fn signed_in(backend: Backend) -> (TestApp, Session) {
    let app = TestApp::builder(backend).public_url(ORIGIN).start().await;
    let tenant = app.tenant("Acme Water").await;
    let accounts = &app.ctx.accounts;
    let user = NewUser {
        tenant_id: Some(tenant),
        email: EMAIL.into(),
        name: "Olivia Owner".into(),
        role: Role::Owner,
        password: PASSWORD.into(),
        totp: false,
    };
    accounts.create_user("test", user).await.unwrap();
    let outcome = accounts.sign_in(EMAIL, PASSWORD, None, None).await.unwrap();
    let LoginOutcome::SignedIn(cookie) = outcome else {
        panic!("signed in without a second factor");
    };
    app.raw_sql("UPDATE sessions SET stepped_up_at = created_at")
        .await;
    let session = accounts.session(&cookie).await.unwrap().unwrap();
    (app, session)
}

/// Registers `key` as `name`.
async fn register(
    app: &TestApp,
    session: &Session,
    key: &mut SoftPasskey,
    name: &str,
) -> Result<pairgate::accounts::PasskeyView, PasskeyError> {
    let accounts = &app.ctx.accounts;
    let ceremony = accounts.begin_passkey_registration(session, name).await?;
    let options = serde_json::to_value(&ceremony.options).unwrap();
    let answer: RegisterPublicKeyCredential =
        serde_json::from_value(key.register(&options)).unwrap();
    accounts
        .finish_passkey_registration(session, &ceremony.handle, &answer)
        .await
}

/// Begins an authentication for the session's user; returns the handle and the options.
async fn begin(app: &TestApp, session: &Session) -> (String, Value) {
    let ceremony = app
        .ctx
        .accounts
        .begin_passkey_authentication(session)
        .await
        .unwrap();
    (
        ceremony.handle,
        serde_json::to_value(&ceremony.options).unwrap(),
    )
}

fn answer(key: &mut SoftPasskey, options: &Value) -> PublicKeyCredential {
    serde_json::from_value(key.assert(options)).unwrap()
}

/// Authenticates the session's user with `key`.
async fn authenticate(
    app: &TestApp,
    session: &Session,
    key: &mut SoftPasskey,
) -> Result<pairgate::accounts::PasskeyUse, PasskeyError> {
    let (handle, options) = begin(app, session).await;
    let answer = answer(key, &options);
    app.ctx
        .accounts
        .finish_passkey_authentication(session, &handle, &answer)
        .await
}

async fn events(app: &TestApp, action: &str) -> i64 {
    app.query_i64(&format!(
        "SELECT COUNT(*) AS n FROM audit_events WHERE action = '{action}'"
    ))
    .await
}

async fn a_passkey_registers_then_signs_in(backend: Backend) {
    let (app, session) = signed_in(backend).await;
    let accounts = &app.ctx.accounts;
    let mut key = SoftPasskey::new(ORIGIN);
    let view = register(&app, &session, &mut key, "  Laptop ")
        .await
        .unwrap();
    assert_eq!(view.name, "Laptop");
    assert_eq!(view.last_used_at, None);
    assert_eq!(events(&app, "user.passkey_registered").await, 1);

    app.advance(60);
    let used = authenticate(&app, &session, &mut key).await.unwrap();
    assert_eq!((used.user, used.passkey), (session.user.id, view.id));
    let listed = accounts.passkeys(&session).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at, Some(app.now() * 1000));

    // Alone, once the person allowed it: the credential names the account.
    let ceremony = accounts.begin_passkey_sign_in().await.unwrap();
    let options = serde_json::to_value(&ceremony.options).unwrap();
    let refused = accounts
        .finish_passkey_sign_in(&ceremony.handle, &answer(&mut key, &options))
        .await;
    assert!(
        matches!(refused, Err(PasskeyError::NotAlone)),
        "{refused:?}"
    );
    accounts.set_passkey_sign_in(&session, true).await.unwrap();
    let ceremony = accounts.begin_passkey_sign_in().await.unwrap();
    let options = serde_json::to_value(&ceremony.options).unwrap();
    let signed = accounts
        .finish_passkey_sign_in(&ceremony.handle, &answer(&mut key, &options))
        .await
        .unwrap();
    assert_eq!(signed.user, session.user.id);
    assert_eq!(events(&app, "user.passkey_used").await, 2);

    // An unknown authenticator signs no one in.
    let ceremony = accounts.begin_passkey_sign_in().await.unwrap();
    let options = serde_json::to_value(&ceremony.options).unwrap();
    let mut stranger = SoftPasskey::new(ORIGIN);
    stranger.user_handle = key.user_handle.clone();
    let refused = accounts
        .finish_passkey_sign_in(&ceremony.handle, &answer(&mut stranger, &options))
        .await;
    assert!(
        matches!(refused, Err(PasskeyError::Rejected)),
        "{refused:?}"
    );
}

async fn the_same_authenticator_registers_once(backend: Backend) {
    let (app, session) = signed_in(backend).await;
    let mut key = SoftPasskey::new(ORIGIN);
    register(&app, &session, &mut key, "Laptop").await.unwrap();
    let again = register(&app, &session, &mut key, "Laptop again").await;
    assert!(
        matches!(again, Err(PasskeyError::AlreadyRegistered)),
        "{again:?}"
    );
    assert_eq!(events(&app, "user.passkey_refused").await, 1);

    let mut other = SoftPasskey::new(ORIGIN);
    let taken = register(&app, &session, &mut other, " Laptop").await;
    assert!(matches!(taken, Err(PasskeyError::NameTaken)), "{taken:?}");
    for name in ["", "   ", &"x".repeat(65)] {
        let bad = register(&app, &session, &mut other, name).await;
        assert!(matches!(bad, Err(PasskeyError::InvalidName)), "{bad:?}");
    }
    register(&app, &session, &mut other, &"x".repeat(64))
        .await
        .unwrap();
    assert_eq!(app.ctx.accounts.passkeys(&session).await.unwrap().len(), 2);

    // At most MAX_PASSKEYS each.
    for n in 2..pairgate::accounts::passkeys::MAX_PASSKEYS {
        let mut more = SoftPasskey::new(ORIGIN);
        register(&app, &session, &mut more, &format!("Key {n}"))
            .await
            .unwrap();
    }
    let mut one_more = SoftPasskey::new(ORIGIN);
    let refused = register(&app, &session, &mut one_more, "One more").await;
    assert!(matches!(refused, Err(PasskeyError::TooMany)), "{refused:?}");
}

async fn assertions_for_another_origin_or_rp_id_are_refused(backend: Backend) {
    let (app, session) = signed_in(backend).await;
    let mut key = SoftPasskey::new(ORIGIN);
    register(&app, &session, &mut key, "Laptop").await.unwrap();

    let mut phished = key.clone();
    phished.origin = "http://localhost.evil.example:8443".into();
    let refused = authenticate(&app, &session, &mut phished).await;
    assert!(
        matches!(refused, Err(PasskeyError::Rejected)),
        "{refused:?}"
    );

    let mut other_rp = key.clone();
    other_rp.rp_id = "evil.example".into();
    let refused = authenticate(&app, &session, &mut other_rp).await;
    assert!(
        matches!(refused, Err(PasskeyError::Rejected)),
        "{refused:?}"
    );
    assert_eq!(events(&app, "user.passkey_refused").await, 2);

    // The same passkey, for the right origin, still works.
    key.counter = 10;
    authenticate(&app, &session, &mut key).await.unwrap();
}

async fn a_ceremony_serves_once_and_expires(backend: Backend) {
    let (app, session) = signed_in(backend).await;
    let accounts = &app.ctx.accounts;
    let mut key = SoftPasskey::new(ORIGIN);
    register(&app, &session, &mut key, "Laptop").await.unwrap();

    let (handle, options) = begin(&app, &session).await;
    let first = answer(&mut key, &options);
    accounts
        .finish_passkey_authentication(&session, &handle, &first)
        .await
        .unwrap();
    let replayed = accounts
        .finish_passkey_authentication(&session, &handle, &first)
        .await;
    assert!(
        matches!(replayed, Err(PasskeyError::CeremonyExpired)),
        "{replayed:?}"
    );
    let fresh = answer(&mut key, &options);
    let again = accounts
        .finish_passkey_authentication(&session, &handle, &fresh)
        .await;
    assert!(
        matches!(again, Err(PasskeyError::CeremonyExpired)),
        "{again:?}"
    );

    let (handle, options) = begin(&app, &session).await;
    app.advance(5 * 60 + 1);
    let late = answer(&mut key, &options);
    let expired = accounts
        .finish_passkey_authentication(&session, &handle, &late)
        .await;
    assert!(
        matches!(expired, Err(PasskeyError::CeremonyExpired)),
        "{expired:?}"
    );
    assert_eq!(events(&app, "user.passkey_used").await, 1);
}

async fn a_counter_that_goes_back_is_refused(backend: Backend) {
    let (app, session) = signed_in(backend).await;
    let mut key = SoftPasskey::new(ORIGIN);
    register(&app, &session, &mut key, "Laptop").await.unwrap();
    key.counter = 10;
    authenticate(&app, &session, &mut key).await.unwrap();

    let mut clone = key.clone();
    clone.counter = 5;
    let refused = authenticate(&app, &session, &mut clone).await;
    assert!(
        matches!(refused, Err(PasskeyError::PossibleClone)),
        "{refused:?}"
    );
    assert_eq!(
        app.query_i64(
            "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'user.passkey_refused' \
             AND detail LIKE '%counter_regression%'"
        )
        .await,
        1
    );
    // The stored counter did not move back: the original goes on from 11.
    authenticate(&app, &session, &mut key).await.unwrap();
}

async fn the_last_factor_stays_while_the_tenant_requires_one(backend: Backend) {
    let (app, session) = signed_in(backend).await;
    let accounts = &app.ctx.accounts;
    let laptop = register(&app, &session, &mut SoftPasskey::new(ORIGIN), "Laptop")
        .await
        .unwrap();
    let phone = register(&app, &session, &mut SoftPasskey::new(ORIGIN), "Phone")
        .await
        .unwrap();
    app.raw_sql("UPDATE tenants SET require_totp = TRUE").await;
    accounts.remove_passkey(&session, laptop.id).await.unwrap();
    let refused = accounts.remove_passkey(&session, phone.id).await;
    assert!(
        matches!(refused, Err(PasskeyError::LastFactor)),
        "{refused:?}"
    );
    assert_eq!(events(&app, "user.passkey_refused").await, 1);

    // With TOTP as well, the passkey may go.
    app.raw_sql("UPDATE users SET totp_enabled = TRUE").await;
    accounts.remove_passkey(&session, phone.id).await.unwrap();

    // Without the requirement, the last factor may go too.
    app.raw_sql("UPDATE users SET totp_enabled = FALSE").await;
    app.raw_sql("UPDATE tenants SET require_totp = FALSE").await;
    let tablet = register(&app, &session, &mut SoftPasskey::new(ORIGIN), "Tablet")
        .await
        .unwrap();
    accounts.remove_passkey(&session, tablet.id).await.unwrap();
    assert!(accounts.passkeys(&session).await.unwrap().is_empty());
    assert_eq!(events(&app, "user.passkey_removed").await, 3);
    let missing = accounts.remove_passkey(&session, tablet.id).await;
    assert!(
        matches!(missing, Err(PasskeyError::Account(_))),
        "{missing:?}"
    );
}
