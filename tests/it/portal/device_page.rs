//! The device page: charts titled and labelled from the ERP's description of the model (units,
//! ticks on both axes), the empty chart's sentence, ranges, times in the viewer's zone (their
//! own, the company's, UTC), and the CSV export with its access rules.

use super::devices::seed_devices;
use super::security::member_id;
use super::{invited, owner};
use crate::backend_tests;
use crate::erp::ErpClient;
use crate::support::portal::Browser;
use crate::support::{Backend, TestApp};
use pairgate::ids::TenantId;
use serde_json::json;

backend_tests!(
    charts_have_labels_units_and_ticks_from_the_models_description,
    an_empty_chart_says_so_and_ranges_are_chosen_by_the_query,
    times_are_in_the_viewers_zone_then_the_companys_then_utc,
    every_page_and_the_audit_dates_follow_the_viewers_zone,
    the_csv_export_holds_the_range_under_the_same_access_rules,
);

/// The owner's tenant, by their email.
async fn tenant_of(app: &TestApp, email: &str) -> TenantId {
    let email = email.to_owned();
    app.ctx
        .store
        .read(move |tx| pairgate::store::users::find_by_email(tx, &email))
        .await
        .unwrap()
        .unwrap()
        .tenant_id
        .unwrap()
}

/// `PG-0001` (model "Meter M1") in the owner's tenant with readings of `flow` and `temp` every
/// 10 minutes over the last 3 hours (flow 1.0, 1.5, …); `RV-0001` in another tenant.
pub async fn metered(app: &TestApp, email: &str) -> i64 {
    let tenant = tenant_of(app, email).await;
    let rival = app.tenant("Rival Water").await;
    let now = app.now() * 1000;
    seed_devices(
        app,
        &[
            ("PG-0001".to_owned(), tenant, "active"),
            ("RV-0001".to_owned(), rival, "active"),
        ],
        now,
    )
    .await;
    let values: Vec<String> = (1..=18)
        .map(|i| {
            let ts = now - i * 600_000;
            let flow = 1.0 + 0.5 * (i % 4) as f64;
            format!(
                "('PG-0001', 'r{i}', {tenant}, {ts}, {ts}, \
                 '{{\"flow\":{flow},\"temp\":{}}}')",
                20 + i
            )
        })
        .chain([format!(
            "('RV-0001', 'x1', {rival}, {now}, {now}, '{{\"flow\":9}}')"
        )])
        .collect();
    app.raw_sql(&format!(
        "INSERT INTO telemetry_readings (serial, reading_id, tenant_id, ts, received_at, \
         metrics) VALUES {}",
        values.join(", ")
    ))
    .await;
    now
}

/// The ERP describes the model of `PG-0001`.
pub async fn describe_meter(app: &TestApp) {
    let erp = ErpClient::new(app).await;
    let body = json!({ "metrics": [
        { "key": "flow", "label": "Flow", "unit": "m³/h", "decimals": 1, "min": 0, "max": 4 },
        { "key": "pressure", "label": "Pressure", "unit": "bar" },
    ]});
    let res = erp.put("/api/erp/v1/models/Meter%20M1", &body).await;
    assert_eq!(res.status(), 201);
}

async fn page(b: &mut Browser<'_>, path: &str) -> String {
    let page = b.get(path).await;
    assert_eq!(page.status, 200, "{path}: {}", page.body);
    page.body
}

async fn charts_have_labels_units_and_ticks_from_the_models_description(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    metered(&app, "olivia@example.com").await;
    // Before the ERP says anything: the key is the label, no unit.
    let before = page(&mut b, "/devices/PG-0001").await;
    assert!(before.contains("id=\"m0-title\">flow</h3>"), "{before}");
    assert!(!before.contains("m³/h"));
    describe_meter(&app).await;
    let body = page(&mut b, "/devices/PG-0001").await;
    // The title is the label, with the unit; the value axis carries the unit and nice ticks
    // from the ERP's range (0–4); the time axis has hours and the zone.
    assert!(
        body.contains(">Flow <span class=\"unit\">(m³/h)</span></h3>"),
        "{body}"
    );
    assert!(body.contains("<text class=\"axis-title\" x=\"4\" y=\"11\">m³/h</text>"));
    for tick in [
        ">0</text>",
        ">1</text>",
        ">2</text>",
        ">3</text>",
        ">4</text>",
    ] {
        assert!(body.contains(tick), "value tick {tick}");
    }
    assert!(body.contains(">Time (UTC)</text>"));
    let time_labels = body.matches("text-anchor=\"middle\">").count();
    assert!(time_labels >= 4, "time ticks labelled: {time_labels}");
    // The description says the series in words, with units; decimals as the ERP asked.
    assert!(
        body.contains("Flow over the last 24 hours: between 1.0 m³/h and 2.5 m³/h, latest"),
        "{body}"
    );
    assert!(body.contains("<th scope=\"col\">Average</th>"));
    // A metric the ERP does not describe keeps its key.
    assert!(body.contains(">temp</h3>"));
    // The page names the CSV download for what it shows.
    assert!(body.contains("/devices/PG-0001/readings.csv?from="));
}

async fn an_empty_chart_says_so_and_ranges_are_chosen_by_the_query(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    metered(&app, "olivia@example.com").await;
    describe_meter(&app).await;
    let body = page(&mut b, "/devices/PG-0001").await;
    assert!(
        body.contains("No readings of Pressure in the last 24 hours."),
        "{body}"
    );
    // The last hour holds 6 readings of flow; 30 days are offered and chosen by the query.
    let hour = page(&mut b, "/devices/PG-0001?range=1h").await;
    assert!(hour.contains("<strong aria-current=\"true\">hour</strong>"));
    assert!(hour.contains("No readings of Pressure in the last hour."));
    let month = page(&mut b, "/devices/PG-0001?range=30d").await;
    assert!(month.contains("<strong aria-current=\"true\">30 days</strong>"));
    // Days long ago: every chart says it is empty.
    let old = page(&mut b, "/devices/PG-0001?from=2020-01-01&to=2020-01-02").await;
    assert!(
        old.contains("No readings of Flow from 2020-01-01 00:00 UTC to 2020-01-03 00:00 UTC."),
        "{old}"
    );
    assert!(
        old.contains("value=\"2020-01-02\""),
        "the form keeps the last day"
    );
    // Dates the wrong way round: the page says so, and shows the last 24 hours.
    let bad = b
        .get("/devices/PG-0001?from=2020-01-05&to=2020-01-02")
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.contains("Enter the dates as YYYY-MM-DD"));
}

async fn times_are_in_the_viewers_zone_then_the_companys_then_utc(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    metered(&app, "olivia@example.com").await;
    let mut victor = invited(&app, &mut b, "victor@example.com", "admin").await;
    assert!(
        page(&mut victor, "/devices/PG-0001")
            .await
            .contains("Time (UTC)")
    );
    // An unknown zone is refused and nothing changes.
    let refused = victor
        .submit(
            "/account/time-zone",
            "/account/time-zone",
            &[("zone", "Mars/Olympus")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.contains("that is not a time zone"));
    assert!(
        page(&mut victor, "/account/time-zone")
            .await
            .contains("UTC, as nobody chose")
    );
    // The owner sets the company's default: Victor, who chose none, sees it.
    let saved = b
        .submit(
            "/account/time-zone",
            "/account/time-zone/company",
            &[("zone", "Asia/Kolkata")],
        )
        .await;
    assert_eq!(saved.status, 303);
    let body = page(&mut victor, "/devices/PG-0001").await;
    assert!(
        body.contains("Time (IST)") && body.contains(" IST</span>"),
        "{body}"
    );
    assert!(body.contains("Times in Asia/Kolkata"));
    // Victor's own choice wins; Olivia still sees the company's.
    victor
        .submit(
            "/account/time-zone",
            "/account/time-zone",
            &[("zone", "Asia/Tokyo")],
        )
        .await;
    let body = page(&mut victor, "/devices/PG-0001").await;
    assert!(body.contains("Time (JST)") && body.contains(" JST</span>"));
    assert!(
        page(&mut b, "/devices/PG-0001")
            .await
            .contains("Time (IST)")
    );
    // Only an owner sets the company's zone; the change is in the audit log, in words.
    let denied = victor
        .submit(
            "/account/time-zone",
            "/account/time-zone/company",
            &[("zone", "UTC")],
        )
        .await;
    assert_eq!(denied.status, 403);
    let audit = page(&mut b, "/audit").await;
    assert!(
        audit.contains("set the default time zone of Acme Water to Asia/Kolkata"),
        "{audit}"
    );
    let id = member_id(&app, "victor@example.com").await;
    assert_eq!(
        app.query_i64(&format!(
            "SELECT COUNT(*) AS n FROM users WHERE id = {id} AND time_zone = 'Asia/Tokyo'"
        ))
        .await,
        1
    );
}

/// The events of a day in the viewer's zone (JST, UTC+9) at 20:00 UTC, when the two days differ.
async fn every_page_and_the_audit_dates_follow_the_viewers_zone(backend: Backend) {
    let app = TestApp::start(backend).await;
    let day = 86_400;
    app.advance((20 * 3600 - app.now().rem_euclid(day)).rem_euclid(day));
    let utc_day = chrono::DateTime::from_timestamp(app.now(), 0)
        .unwrap()
        .date_naive();
    let tokyo_day = utc_day.succ_opt().unwrap();
    let mut b = owner(&app, "olivia@example.com").await;
    let saved = b
        .submit(
            "/account/time-zone",
            "/account/time-zone/company",
            &[("zone", "Asia/Tokyo")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let account = page(&mut b, "/account").await;
    assert!(
        account.contains("Times are shown in Asia/Tokyo"),
        "{account}"
    );
    assert!(account.contains("href=\"/account/time-zone\""));
    assert!(
        account.contains(" JST<br>") && !account.contains(" UTC<br>"),
        "{account}"
    );
    let home = page(&mut b, "/").await;
    assert!(home.contains(" JST") && !home.contains(" UTC"), "{home}");
    // The audit log: times in JST, and a date is a day of Tokyo (05:00 there, 20:00 UTC the
    // day before).
    let said = "set the default time zone of Acme Water to Asia/Tokyo";
    let audit = page(&mut b, "/audit").await;
    assert!(audit.contains(said) && audit.contains(" JST"), "{audit}");
    assert!(!audit.contains(" UTC"), "{audit}");
    let on = |d: chrono::NaiveDate| format!("/audit?from={d}&to={d}");
    assert!(page(&mut b, &on(tokyo_day)).await.contains(said));
    let before = page(&mut b, &on(utc_day)).await;
    assert!(
        !before.contains(said),
        "the UTC day is the day before in Tokyo: {before}"
    );
}

async fn the_csv_export_holds_the_range_under_the_same_access_rules(backend: Backend) {
    let app = TestApp::start(backend).await;
    let mut b = owner(&app, "olivia@example.com").await;
    let now = metered(&app, "olivia@example.com").await;
    describe_meter(&app).await;
    let rfc = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    // The last hour and a bit: readings 1–6 (10 to 60 minutes ago).
    let path = format!(
        "/devices/PG-0001/readings.csv?from={}&to={}",
        rfc(now - 3_600_000),
        rfc(now)
    );
    let res = b.client.get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"PG-0001_"),
        "{disposition}"
    );
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "time (UTC),Flow (m³/h),temp");
    assert_eq!(lines.len(), 7, "{text}");
    assert_eq!(lines[1], format!("{},2,26", rfc(now - 3_600_000)));
    assert_eq!(lines[6], format!("{},1.5,21", rfc(now - 600_000)));
    // Another company's device, and a member who may not see the device: not found.
    let rival = b.get("/devices/RV-0001/readings.csv").await;
    assert_eq!(rival.status, 404);
    let mut vera = invited(&app, &mut b, "vera@example.com", "viewer").await;
    let id = member_id(&app, "vera@example.com").await;
    let path = format!("/users/{id}/access");
    let limited = b.submit(&path, &path, &[("scope", "selected")]).await;
    assert_eq!(limited.status, 303, "{}", limited.body);
    assert_eq!(vera.get("/devices/PG-0001").await.status, 404);
    let hidden = vera.get("/devices/PG-0001/readings.csv").await;
    assert_eq!(hidden.status, 404);
    assert!(!hidden.body.contains("flow"));
    // Without a session: to the sign-in page.
    let anonymous = Browser::new(&app)
        .get("/devices/PG-0001/readings.csv")
        .await;
    assert_eq!(anonymous.status, 303);
}
