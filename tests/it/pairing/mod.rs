//! The pairing ceremony end to end: the verification page, the ERP ownership gate, provisional
//! pairings and the ERP's verdicts, disputes and the staff console, unpairing, races and limits.

mod attempts;
mod budgets;
mod ceremony;
mod disputes;
mod ending;
mod kept;
mod races;
mod refusals;

use pairgate::accounts::{NewUser, Role, Session};
use pairgate::ids::TenantId;
use pairgate::store::erp::{BuyerKind, SaleRecord, SaleStatus};

use crate::portal::PASSWORD;
use crate::support::TestApp;
use crate::support::device::TestDevice;
use crate::support::portal::{Browser, Page, extract};

/// A company with a signed-in owner (TOTP enrolled).
pub struct Company<'a> {
    pub owner: Browser<'a>,
    pub tenant: TenantId,
}

/// Signs up a company, and links it to an ERP customer number when given.
pub async fn company<'a>(
    app: &'a TestApp,
    email: &str,
    customer_number: Option<&str>,
) -> Company<'a> {
    let owner = crate::portal::owner(app, email).await;
    let email = email.to_owned();
    let tenant = app
        .ctx
        .store
        .read(move |tx| pairgate::store::users::find_by_email(tx, &email))
        .await
        .unwrap()
        .unwrap()
        .tenant_id
        .unwrap();
    if let Some(number) = customer_number {
        let number = number.to_owned();
        app.ctx
            .store
            .write(move |tx| pairgate::store::erp::set_tenant_customer(tx, tenant, Some(&number)))
            .await
            .unwrap();
    }
    Company { owner, tenant }
}

/// Records a sale in the ERP's tables, as the ERP API would.
pub async fn sell(
    app: &TestApp,
    serial: &str,
    to: &str,
    distributor: bool,
    end_customer: Option<&str>,
) {
    let now = app.now() * 1000;
    let sale = SaleRecord {
        sale_id: format!("SALE-{serial}"),
        serial: Some(serial.into()),
        sold_at: Some(now - 86_400_000),
        sold_to_customer_number: Some(to.to_owned()),
        sold_to_name: Some(format!("Buyer {to}")),
        sold_to_kind: Some(if distributor {
            BuyerKind::Distributor
        } else {
            BuyerKind::EndCustomer
        }),
        end_customer_number: end_customer.map(str::to_owned),
        revision: Some(1),
        status: SaleStatus::Active,
        ended_revision: None,
        ended_at: None,
        created_at: now,
        updated_at: now,
    };
    app.ctx
        .store
        .write(move |tx| pairgate::store::erp::insert_sale(tx, &sale))
        .await
        .unwrap();
}

/// The domain session behind a browser.
pub async fn session_of(app: &TestApp, b: &Browser<'_>) -> Session {
    app.ctx
        .accounts
        .session(&b.session_cookie().unwrap())
        .await
        .unwrap()
        .unwrap()
}

/// Opens the verification page with `user_code`, submits it, and returns the confirmation page.
pub async fn confirm<'a>(b: &mut Browser<'a>, user_code: &str) -> Page {
    let page = b.get(&format!("/device?user_code={user_code}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    b.post("/device", &[("user_code", user_code)]).await
}

/// The proof a confirmation page carries that its session was shown the request.
pub fn shown(page: &Page) -> String {
    extract(&page.body, "name=\"shown\" value=\"")
        .unwrap_or_else(|| panic!("a confirmation page: {}", page.body))
}

/// Approves on the confirmation page with a fresh TOTP code (the clock moves to the next step,
/// since a code is usable once).
pub async fn approve<'a>(app: &TestApp, b: &mut Browser<'a>, user_code: &str, group: &str) -> Page {
    let page = confirm(b, user_code).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let proof = shown(&page);
    app.advance(30);
    let code = b.code();
    b.post(
        "/device/decide",
        &[
            ("user_code", user_code),
            ("shown", &proof),
            ("group", group),
            ("totp", &code),
            ("action", "approve"),
        ],
    )
    .await
}

/// A device that started pairing; returns it with its device_code and user code.
pub async fn requesting(app: &TestApp, serial: &str) -> (TestDevice, String, String) {
    let device = app.device(serial).await;
    let started = app.start_pairing(&device).await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    (device, device_code, user_code)
}

/// A manufacturer staff member, signed in with TOTP.
pub async fn staff<'a>(app: &'a TestApp) -> Browser<'a> {
    let (_, uri) = app
        .ctx
        .accounts
        .create_user(
            "test",
            NewUser {
                tenant_id: None,
                email: "support@maker.example".into(),
                name: "Sam Support".into(),
                role: Role::Staff,
                password: PASSWORD.into(),
                totp: true,
            },
        )
        .await
        .unwrap();
    let uri = uri.unwrap();
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let mut b = Browser::new(app);
    b.totp_secret = Some(totp_rs::Secret::try_from_base32(secret).unwrap().to_vec());
    b.sign_in("support@maker.example", PASSWORD).await;
    let code = b.code();
    let page = b
        .submit(
            "/login/code",
            "/login/code",
            &[("code", &code), ("next", "/staff")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    b
}

/// The `error` of a device poll (or "ok").
pub async fn poll_result(
    app: &TestApp,
    device: &TestDevice,
    device_code: &str,
) -> (String, serde_json::Value) {
    app.advance(6);
    let res = app.poll(device, device_code).await;
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap();
    if status == 200 {
        ("ok".to_owned(), body)
    } else {
        (body["error"].as_str().unwrap().to_owned(), body)
    }
}

/// Whether introspection says the token set's access token is active.
pub async fn active(app: &TestApp, tokens: &serde_json::Value) -> bool {
    let (id, secret) = app.service_client_with_secret("introspect").await;
    let res = app
        .client
        .post(app.url("/oauth/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    res.json::<serde_json::Value>().await.unwrap()["active"] == true
}
