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
    refresh_tokens (id) {
        id -> BigInt,
        token_hash -> Text,
        family_id -> Text,
        client_id -> Text,
        subject -> Text,
        tenant_id -> Nullable<BigInt>,
        scope -> Text,
        jkt -> Nullable<Text>,
        status -> Text,
        created_at -> BigInt,
        idle_expires_at -> BigInt,
        family_expires_at -> BigInt,
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

diesel::joinable!(devices -> clients (serial));
diesel::joinable!(devices -> tenants (tenant_id));
diesel::allow_tables_to_appear_in_same_query!(
    clients,
    devices,
    tenants,
    device_flows,
    refresh_tokens
);
