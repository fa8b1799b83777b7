//! RFC 8628 end to end: authorization request, polling states, approval, denial, expiry,
//! supersession, redemption exactly once, and the tokens that come out.

use pairgate::ids::TenantId;
use pairgate::oauth::device_flow::{DecisionError, Verdict};
use pairgate::store::audit::ChainCheck;

use super::error_of;
use crate::backend_tests;
use crate::support::{Backend, TestApp};

backend_tests!(
    device_authorization_response_follows_rfc_8628,
    pending_then_approved_issues_dpop_bound_tokens_once,
    polling_too_fast_gets_slow_down_and_a_longer_interval,
    a_poll_half_a_second_early_is_on_time_and_one_earlier_is_not,
    denied_flow_answers_access_denied,
    expired_flow_answers_expired_token,
    a_new_request_supersedes_the_old_one,
    unknown_device_code_is_invalid_grant,
    another_devices_code_is_invalid_grant,
    concurrent_polls_redeem_exactly_once,
    approve_racing_deny_has_one_winner,
    decisions_need_a_live_code_and_a_real_tenant,
    device_authorization_is_rate_limited_per_device,
    every_flow_step_is_audited,
);

async fn device_authorization_response_follows_rfc_8628(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-1001").await;
    let res = app.device_authorization(&device).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    let user_code = body["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(
        user_code
            .bytes()
            .filter(|b| *b != b'-')
            .all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b))
    );
    assert!(
        body["device_code"].as_str().unwrap().len() >= 43,
        "≥ 256 bits"
    );
    assert_eq!(body["verification_uri"], app.url("/device"));
    assert_eq!(
        body["verification_uri_complete"],
        app.url(&format!("/device?user_code={user_code}"))
    );
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["interval"], 5);
    insta::assert_json_snapshot!("device_authorization_response", body, {
        ".device_code" => "[device_code]",
        ".user_code" => "[user_code]",
        ".verification_uri" => "[base]/device",
        ".verification_uri_complete" => "[base]/device?user_code=[user_code]",
    });
}

async fn pending_then_approved_issues_dpop_bound_tokens_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme Water").await;
    let device = app.device("SN-1002").await;
    let started = app.start_pairing(&device).await;
    let code = started["device_code"].as_str().unwrap();

    let body = error_of(app.poll(&device, code).await, 400).await;
    assert_eq!(body["error"], "authorization_pending");

    app.ctx
        .oauth
        .decide(
            started["user_code"].as_str().unwrap(),
            Verdict::Approve { tenant_id: tenant },
            "user:1",
        )
        .await
        .unwrap();
    app.advance(5);
    let res = app.poll(&device, code).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let tokens: serde_json::Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    assert_eq!(tokens["expires_in"], 600);
    assert_eq!(tokens["scope"], "telemetry:write");
    assert!(
        tokens["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("pgr_")
    );

    let claims =
        crate::oauth::discovery::verify_with_jwks(&app, tokens["access_token"].as_str().unwrap())
            .await;
    assert_eq!(claims["sub"], "device:SN-1002");
    assert_eq!(claims["client_id"], "SN-1002");
    assert_eq!(claims["tenant_id"], tenant.get());
    assert_eq!(claims["cnf"]["jkt"], device.key.thumbprint());
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["aud"], app.url("/api"));

    // The same device_code never works twice.
    app.advance(5);
    let body = error_of(app.poll(&device, code).await, 400).await;
    assert_eq!(body["error"], "invalid_grant");
}

async fn polling_too_fast_gets_slow_down_and_a_longer_interval(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-1003").await;
    let started = app.start_pairing(&device).await;
    let code = started["device_code"].as_str().unwrap();
    assert_eq!(
        error_of(app.poll(&device, code).await, 400).await["error"],
        "authorization_pending"
    );
    app.advance(2);
    assert_eq!(
        error_of(app.poll(&device, code).await, 400).await["error"],
        "slow_down"
    );
    // The interval is now 10 s: 5 s later is still too fast...
    app.advance(5);
    assert_eq!(
        error_of(app.poll(&device, code).await, 400).await["error"],
        "slow_down"
    );
    // ...and it grew again, to 15 s.
    app.advance(15);
    assert_eq!(
        error_of(app.poll(&device, code).await, 400).await["error"],
        "authorization_pending"
    );
    assert_eq!(
        app.metric("pairgate_oauth_slow_down_total").await,
        Some(2.0)
    );
}

/// The tolerance for network jitter (`POLL_TOLERANCE_MS`, 500 ms) at its exact edge, with the
/// default 5 s interval: 4,500 ms after the last poll is on time, 4,499 ms is too fast.
async fn a_poll_half_a_second_early_is_on_time_and_one_earlier_is_not(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-1008").await;
    let started = app.start_pairing(&device).await;
    let code = started["device_code"].as_str().unwrap();
    let poll = || async { error_of(app.poll(&device, code).await, 400).await["error"].clone() };
    assert_eq!(poll().await, "authorization_pending");
    app.advance_ms(4_500);
    assert_eq!(poll().await, "authorization_pending");
    app.advance_ms(4_499);
    assert_eq!(poll().await, "slow_down");
    // slow_down counts as a poll and adds 5 s: the next on-time poll is 9,500 ms later.
    app.advance_ms(9_499);
    assert_eq!(poll().await, "slow_down");
    app.advance_ms(14_500);
    assert_eq!(poll().await, "authorization_pending");
}

async fn denied_flow_answers_access_denied(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-1004").await;
    let started = app.start_pairing(&device).await;
    app.ctx
        .oauth
        .decide(
            started["user_code"].as_str().unwrap(),
            Verdict::Deny,
            "user:1",
        )
        .await
        .unwrap();
    let body = error_of(
        app.poll(&device, started["device_code"].as_str().unwrap())
            .await,
        400,
    )
    .await;
    assert_eq!(body["error"], "access_denied");
}

async fn expired_flow_answers_expired_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-1005").await;
    let started = app.start_pairing(&device).await;
    app.advance(601);
    // Too late to approve, too late to poll.
    let err = app
        .ctx
        .oauth
        .decide(
            started["user_code"].as_str().unwrap(),
            Verdict::Approve { tenant_id: tenant },
            "user:1",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DecisionError::UnknownCode), "{err:?}");
    let body = error_of(
        app.poll(&device, started["device_code"].as_str().unwrap())
            .await,
        400,
    )
    .await;
    assert_eq!(body["error"], "expired_token");
}

async fn a_new_request_supersedes_the_old_one(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-1006").await;
    let first = app.start_pairing(&device).await;
    let second = app.start_pairing(&device).await;
    assert_ne!(first["user_code"], second["user_code"]);
    let err = app
        .ctx
        .oauth
        .decide(
            first["user_code"].as_str().unwrap(),
            Verdict::Approve { tenant_id: tenant },
            "user:1",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DecisionError::UnknownCode));
    let body = error_of(
        app.poll(&device, first["device_code"].as_str().unwrap())
            .await,
        400,
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        error_of(
            app.poll(&device, second["device_code"].as_str().unwrap())
                .await,
            400
        )
        .await["error"],
        "authorization_pending"
    );
}

async fn unknown_device_code_is_invalid_grant(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-1007").await;
    let body = error_of(app.poll(&device, "not-a-real-device-code").await, 400).await;
    assert_eq!(body["error"], "invalid_grant");
    insta::assert_json_snapshot!("unknown_device_code_error", body);
}

async fn another_devices_code_is_invalid_grant(backend: Backend) {
    let app = TestApp::start(backend).await;
    let owner = app.device("SN-1008").await;
    let thief = app.device("SN-1009").await;
    let started = app.start_pairing(&owner).await;
    let body = error_of(
        app.poll(&thief, started["device_code"].as_str().unwrap())
            .await,
        400,
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");
}

async fn concurrent_polls_redeem_exactly_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-1010").await;
    let started = app.start_pairing(&device).await;
    app.ctx
        .oauth
        .decide(
            started["user_code"].as_str().unwrap(),
            Verdict::Approve { tenant_id: tenant },
            "user:1",
        )
        .await
        .unwrap();
    let code = started["device_code"].as_str().unwrap();
    let polls: Vec<_> = (0..6).map(|_| app.poll(&device, code)).collect();
    let results = futures_util::future::join_all(polls).await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        5,
        "{statuses:?}"
    );
}

async fn approve_racing_deny_has_one_winner(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-1011").await;
    let started = app.start_pairing(&device).await;
    let code = started["user_code"].as_str().unwrap();
    let oauth = &app.ctx.oauth;
    let (a, d, a2) = tokio::join!(
        oauth.decide(code, Verdict::Approve { tenant_id: tenant }, "user:1"),
        oauth.decide(code, Verdict::Deny, "user:2"),
        oauth.decide(code, Verdict::Approve { tenant_id: tenant }, "user:3"),
    );
    let wins = [a.is_ok(), d.is_ok(), a2.is_ok()];
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    let poll = app
        .poll(&device, started["device_code"].as_str().unwrap())
        .await;
    if d.is_ok() {
        assert_eq!(error_of(poll, 400).await["error"], "access_denied");
    } else {
        assert_eq!(poll.status(), 200);
    }
}

async fn decisions_need_a_live_code_and_a_real_tenant(backend: Backend) {
    let app = TestApp::start(backend).await;
    let device = app.device("SN-1012").await;
    let started = app.start_pairing(&device).await;
    let code = started["user_code"].as_str().unwrap();
    let oauth = &app.ctx.oauth;
    assert!(matches!(
        oauth
            .decide(
                code,
                Verdict::Approve {
                    tenant_id: TenantId(999)
                },
                "user:1"
            )
            .await,
        Err(DecisionError::UnknownTenant)
    ));
    for typo in ["BCDF-GHJ", "AAAA-AAAA", "ＢCDF-GHJK", ""] {
        assert!(matches!(
            oauth.pending_request(typo).await,
            Err(DecisionError::UnknownCode)
        ));
    }
    // Case, dashes and spaces do not matter.
    let relaxed = code.to_lowercase().replace('-', " ");
    let pending = oauth.pending_request(&relaxed).await.unwrap();
    assert_eq!(pending.serial, "SN-1012");
    assert_eq!(pending.user_code, code);
    assert_eq!(pending.requested_ip.as_deref(), Some("127.0.0.1"));
}

async fn device_authorization_is_rate_limited_per_device(backend: Backend) {
    let app = TestApp::builder(backend)
        .config("[oauth]\ndevice_authorization_per_device_per_hour = 3")
        .start()
        .await;
    let device = app.device("SN-1013").await;
    for _ in 0..3 {
        assert_eq!(app.device_authorization(&device).await.status(), 200);
    }
    let res = app.device_authorization(&device).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry));
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "slow_down"
    );
    // Another device is not affected; the next hour this one may try again.
    let other = app.device("SN-1014").await;
    assert_eq!(app.device_authorization(&other).await.status(), 200);
    app.advance(3600);
    assert_eq!(app.device_authorization(&device).await.status(), 200);
    let throttled = "pairgate_throttled_total{limit=\"device_authorization\"}";
    assert_eq!(app.metric(throttled).await, Some(1.0));
    // A rate limit's slow_down is not a poll's.
    assert_eq!(
        app.metric("pairgate_oauth_slow_down_total").await,
        Some(0.0)
    );
}

async fn every_flow_step_is_audited(backend: Backend) {
    let app = TestApp::start(backend).await;
    let tenant = app.tenant("Acme").await;
    let device = app.device("SN-1015").await;
    app.pair(&device, tenant).await;
    let thief = app.device("SN-1016").await;
    let _ = app.poll(&thief, "stolen").await;
    let events = app.ctx.store.audit_page(None, None, 100).await.unwrap();
    let actions: Vec<&str> = events.iter().rev().map(|e| e.action.as_str()).collect();
    for expected in [
        "device.registered",
        "pairing.requested",
        "pairing.approved",
        "pairing.tokens_issued",
        "oauth.refused",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let refused = events.iter().find(|e| e.action == "oauth.refused").unwrap();
    assert_eq!(refused.actor, "client:SN-1016");
    assert!(refused.detail.contains("invalid_grant"));
    assert!(
        !refused.detail.contains("stolen"),
        "codes never reach the log"
    );
    assert!(matches!(
        app.ctx.store.verify_audit_chain().await.unwrap(),
        ChainCheck::Intact { .. }
    ));
}
