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
