//! Table definitions shared by both backends. Kept by hand in step with `migrations/*`: times are
//! `BigInt` Unix milliseconds and ids `BigInt`, which both engines store natively.

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        occurred_at -> BigInt,
        tenant_id -> Nullable<BigInt>,
        actor -> Text,
        action -> Text,
        subject -> Text,
        detail -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_chain (id) {
        id -> Integer,
        last_id -> BigInt,
        last_hash -> Text,
    }
}

diesel::table! {
    tenants (id) {
        id -> BigInt,
        name -> Text,
        created_at -> BigInt,
        require_totp -> Bool,
        erp_customer_number -> Nullable<Text>,
        time_zone -> Nullable<Text>,
        require_passkey_approval -> Bool,
    }
}

diesel::table! {
    clients (client_id) {
        client_id -> Text,
        kind -> Text,
        name -> Text,
        status -> Text,
        jwks -> Nullable<Text>,
        secret_hash -> Nullable<Text>,
        scope -> Text,
        created_at -> BigInt,
        tenant_id -> Nullable<BigInt>,
        first_party -> Bool,
    }
}

diesel::table! {
    devices (serial) {
        serial -> Text,
        model -> Text,
        tenant_id -> Nullable<BigInt>,
        paired_at -> Nullable<BigInt>,
        token_generation -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    device_flows (id) {
        id -> BigInt,
        device_code_hash -> Text,
        user_code -> Text,
        client_id -> Text,
        scope -> Text,
        dpop_jkt -> Nullable<Text>,
        status -> Text,
        interval_secs -> Integer,
        created_at -> BigInt,
        expires_at -> BigInt,
        last_polled_at -> Nullable<BigInt>,
        requested_ip -> Nullable<Text>,
        tenant_id -> Nullable<BigInt>,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_families (family_id) {
        family_id -> Text,
        client_id -> Text,
        subject -> Text,
        tenant_id -> Nullable<BigInt>,
        scope -> Text,
        jkt -> Nullable<Text>,
        counter -> BigInt,
        status -> Text,
        created_at -> BigInt,
        issued_at -> BigInt,
        idle_expires_at -> BigInt,
        family_expires_at -> BigInt,
        legacy_hash -> Nullable<Text>,
        generation -> Nullable<BigInt>,
    }
}

diesel::table! {
    revoked_access_tokens (jti) {
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    seen_jtis (scope, jti) {
        scope -> Text,
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    rate_limits (bucket) {
        bucket -> Text,
        window_start -> BigInt,
        hits -> Integer,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        public_jwk -> Text,
        private_key -> Text,
        created_at -> BigInt,
        activates_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        tenant_id -> Nullable<BigInt>,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        status -> Text,
        device_access -> Text,
        totp_secret -> Nullable<Text>,
        totp_enabled -> Bool,
        totp_last_step -> Nullable<BigInt>,
        created_at -> BigInt,
        time_zone -> Nullable<Text>,
        passkey_sign_in -> Bool,
        email_verified -> Bool,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> BigInt,
        code_hash -> Text,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    passkeys (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        credential_id -> Text,
        passkey -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    passkey_ceremonies (id_hash) {
        id_hash -> Text,
        user_id -> Nullable<BigInt>,
        kind -> Text,
        state -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> BigInt,
        stage -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
        stepped_up_at -> Nullable<BigInt>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        amr -> Text,
    }
}

diesel::table! {
    invitations (id) {
        id -> BigInt,
        tenant_id -> BigInt,
        email -> Text,
        role -> Text,
        token_hash -> Text,
        invited_by -> Nullable<BigInt>,
        created_at -> BigInt,
        expires_at -> BigInt,
        accepted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    device_groups (id) {
        id -> BigInt,
        tenant_id -> BigInt,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    device_group_members (serial) {
        serial -> Text,
        group_id -> BigInt,
    }
}

diesel::table! {
    user_group_access (user_id, group_id) {
        user_id -> BigInt,
        group_id -> BigInt,
    }
}

diesel::table! {
    user_device_access (user_id, serial) {
        user_id -> BigInt,
        serial -> Text,
    }
}

diesel::table! {
    login_failures (bucket) {
        bucket -> Text,
        failures -> Integer,
        last_failure_at -> BigInt,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> BigInt,
        recipient -> Text,
        subject -> Text,
        body -> Text,
        created_at -> BigInt,
        sent_at -> Nullable<BigInt>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    erp_sales (sale_id) {
        sale_id -> Text,
        serial -> Nullable<Text>,
        sold_at -> Nullable<BigInt>,
        sold_to_customer_number -> Nullable<Text>,
        sold_to_name -> Nullable<Text>,
        sold_to_kind -> Nullable<Text>,
        end_customer_number -> Nullable<Text>,
        revision -> Nullable<BigInt>,
        status -> Text,
        ended_revision -> Nullable<BigInt>,
        ended_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    erp_events (id) {
        id -> BigInt,
        occurred_at -> BigInt,
        event_type -> Text,
        serial -> Nullable<Text>,
        sale_id -> Nullable<Text>,
        customer_number -> Nullable<Text>,
        tenant_id -> Nullable<BigInt>,
        data -> Text,
    }
}

diesel::table! {
    erp_event_head (id) {
        id -> Integer,
        last_id -> BigInt,
        webhooks -> Bool,
    }
}

diesel::table! {
    erp_outbox (event_id) {
        event_id -> BigInt,
        ordering_key -> Text,
        ready -> Bool,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    oauth_refusals (window_start, ip, actor) {
        window_start -> BigInt,
        ip -> Text,
        actor -> Text,
        refusals -> BigInt,
        first_at -> BigInt,
        first_reason -> Text,
        last_at -> BigInt,
        last_reason -> Text,
    }
}

diesel::joinable!(devices -> clients (serial));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(users -> tenants (tenant_id));
diesel::joinable!(device_group_members -> device_groups (group_id));
diesel::joinable!(device_group_members -> devices (serial));
diesel::joinable!(devices -> tenants (tenant_id));
diesel::allow_tables_to_appear_in_same_query!(
    clients,
    devices,
    tenants,
    device_flows,
    refresh_families,
    users,
    sessions,
    passkeys,
    device_groups,
    device_group_members,
    user_group_access,
    user_device_access,
);

diesel::table! {
    pairings (id) {
        id -> BigInt,
        serial -> Text,
        tenant_id -> BigInt,
        status -> Text,
        basis -> Text,
        sale_id -> Nullable<Text>,
        flow_id -> Nullable<BigInt>,
        approved_by -> Text,
        created_at -> BigInt,
        confirmed_at -> Nullable<BigInt>,
        ended_at -> Nullable<BigInt>,
        end_reason -> Nullable<Text>,
        granted_by -> Nullable<Text>,
    }
}

diesel::table! {
    disputes (id) {
        id -> BigInt,
        serial -> Text,
        claimant_tenant_id -> BigInt,
        holder_tenant_id -> Nullable<BigInt>,
        reason -> Text,
        status -> Text,
        resolution -> Nullable<Text>,
        opened_by -> Text,
        created_at -> BigInt,
        resolved_by -> Nullable<Text>,
        resolved_at -> Nullable<BigInt>,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    pairing_grants (serial, tenant_id) {
        serial -> Text,
        tenant_id -> BigInt,
        granted_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    // PostgreSQL's key: a partitioned table's keys hold its partition key, `ts`. On SQLite the
    // key is (serial, reading_id).
    telemetry_readings (serial, reading_id, ts) {
        serial -> Text,
        reading_id -> Text,
        tenant_id -> BigInt,
        ts -> BigInt,
        received_at -> BigInt,
        metrics -> Text,
    }
}

diesel::table! {
    model_metrics (model, metric) {
        model -> Text,
        metric -> Text,
        label -> Text,
        unit -> Nullable<Text>,
        decimals -> Nullable<Integer>,
        min_value -> Nullable<Double>,
        max_value -> Nullable<Double>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    client_redirect_uris (client_id, purpose, uri) {
        client_id -> Text,
        purpose -> Text,
        uri -> Text,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        user_id -> BigInt,
        redirect_uri -> Text,
        scope -> Text,
        code_challenge -> Text,
        nonce -> Nullable<Text>,
        dpop_jkt -> Nullable<Text>,
        auth_time -> BigInt,
        amr -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        family_id -> Nullable<Text>,
        access_jti -> Nullable<Text>,
        access_expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> BigInt,
        client_id -> Text,
        scope -> Text,
        granted_at -> BigInt,
    }
}

diesel::joinable!(client_redirect_uris -> clients (client_id));
diesel::joinable!(consents -> clients (client_id));
diesel::allow_tables_to_appear_in_same_query!(client_redirect_uris, clients);
diesel::allow_tables_to_appear_in_same_query!(consents, clients);
