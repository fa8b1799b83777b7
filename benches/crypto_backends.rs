//! Signature verification and signing cost of the crypto backends pairgate could use, on this
//! machine, single-threaded: jsonwebtoken with its `aws_lc_rs` and its `rust_crypto` providers, and
//! the raw libraries underneath with the public key parsed once (as a key cache would).
//!
//! Run: `cargo bench --bench crypto_backends` (each figure is operations per second on one core).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly on purpose"
)]

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, ParsedPublicKey, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};

const RUN: Duration = Duration::from_millis(1500);

fn rate(label: &str, mut op: impl FnMut()) {
    for _ in 0..200 {
        op();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN {
        for _ in 0..100 {
            op();
        }
        n += 100;
    }
    let per_sec = n as f64 / start.elapsed().as_secs_f64();
    println!(
        "{label:<58} {per_sec:>10.0} ops/s  {:>7.1} µs/op",
        1e6 / per_sec
    );
}

/// A typical DPoP proof's signing input (header with JWK + claims).
fn message() -> Vec<u8> {
    let header = concat!(
        r#"{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","#,
        r#""x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","#,
        r#""y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}}"#,
    );
    let claims = concat!(
        r#"{"jti":"e1j3V_bKic8-LAEB","htm":"POST","#,
        r#""htu":"https://pairgate.example.com/oauth/token","iat":1800000000}"#,
    );
    format!("{}.{}", B64.encode(header), B64.encode(claims)).into_bytes()
}

struct Keys {
    es_pkcs8: Vec<u8>,
    es_public: Vec<u8>,
    ed_pkcs8: Vec<u8>,
    ed_public: Vec<u8>,
}

fn keys() -> Keys {
    let rng = SystemRandom::new();
    let es_pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .unwrap()
        .as_ref()
        .to_vec();
    let es = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &es_pkcs8).unwrap();
    let ed_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .unwrap()
        .as_ref()
        .to_vec();
    let ed = Ed25519KeyPair::from_pkcs8(&ed_pkcs8).unwrap();
    Keys {
        es_public: es.public_key().as_ref().to_vec(),
        ed_public: ed.public_key().as_ref().to_vec(),
        es_pkcs8,
        ed_pkcs8,
    }
}

/// jsonwebtoken's own verify/sign through whichever provider this process installed.
fn jsonwebtoken_figures(provider: &str, k: &Keys) {
    let msg = message();
    let es_enc = EncodingKey::from_ec_der(&k.es_pkcs8);
    let ed_enc = EncodingKey::from_ed_der(&k.ed_pkcs8);
    let es_sig = jsonwebtoken::crypto::sign(&msg, &es_enc, Algorithm::ES256).unwrap();
    let ed_sig = jsonwebtoken::crypto::sign(&msg, &ed_enc, Algorithm::EdDSA).unwrap();
    let es_x = B64.encode(&k.es_public[1..33]);
    let es_y = B64.encode(&k.es_public[33..65]);
    let ed_x = B64.encode(&k.ed_public);
    rate(
        &format!("jsonwebtoken[{provider}] ES256 verify (key from JWK x,y)"),
        || {
            let key = DecodingKey::from_ec_components(&es_x, &es_y).unwrap();
            assert!(jsonwebtoken::crypto::verify(&es_sig, &msg, &key, Algorithm::ES256).unwrap());
        },
    );
    rate(
        &format!("jsonwebtoken[{provider}] EdDSA verify (key from JWK x)"),
        || {
            let key = DecodingKey::from_ed_components(&ed_x).unwrap();
            assert!(jsonwebtoken::crypto::verify(&ed_sig, &msg, &key, Algorithm::EdDSA).unwrap());
        },
    );
    let header = Header::new(Algorithm::ES256);
    let claims = serde_json::json!({
        "iss": "https://pairgate.example.com",
        "sub": "device:SN1",
        "exp": 1_800_000_600
    });
    rate(
        &format!("jsonwebtoken[{provider}] ES256 encode (sign)"),
        || {
            black_box(jsonwebtoken::encode(&header, &claims, &es_enc).unwrap());
        },
    );
    let header = Header::new(Algorithm::EdDSA);
    rate(
        &format!("jsonwebtoken[{provider}] EdDSA encode (sign)"),
        || {
            black_box(jsonwebtoken::encode(&header, &claims, &ed_enc).unwrap());
        },
    );
}

fn raw_figures(k: &Keys) {
    let msg = message();
    let rng = SystemRandom::new();
    let es = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &k.es_pkcs8).unwrap();
    let ed = Ed25519KeyPair::from_pkcs8(&k.ed_pkcs8).unwrap();
    let es_sig = es.sign(&rng, &msg).unwrap().as_ref().to_vec();
    let ed_sig = ed.sign(&msg).as_ref().to_vec();

    let parsed_es = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &k.es_public).unwrap();
    rate("aws-lc-rs ES256 verify, key parsed once", || {
        parsed_es.verify_sig(&msg, &es_sig).unwrap();
    });
    rate("aws-lc-rs ES256 verify, key parsed per call", || {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &k.es_public)
            .verify(&msg, &es_sig)
            .unwrap();
    });
    let parsed_ed = ParsedPublicKey::new(&ED25519, &k.ed_public).unwrap();
    rate("aws-lc-rs EdDSA verify, key parsed once", || {
        parsed_ed.verify_sig(&msg, &ed_sig).unwrap();
    });
    rate("aws-lc-rs ES256 sign, key pair parsed once", || {
        black_box(es.sign(&rng, &msg).unwrap());
    });
    rate("aws-lc-rs EdDSA sign, key pair parsed once", || {
        black_box(ed.sign(&msg));
    });

    use p256::ecdsa::signature::Verifier as _;
    let p256_key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&k.es_public).unwrap();
    let p256_sig = p256::ecdsa::Signature::from_slice(&es_sig).unwrap();
    rate("RustCrypto p256 ES256 verify, key parsed once", || {
        p256_key.verify(&msg, &p256_sig).unwrap();
    });
    let dalek_key =
        ed25519_dalek::VerifyingKey::from_bytes(&k.ed_public.clone().try_into().unwrap()).unwrap();
    let dalek_sig = ed25519_dalek::Signature::from_slice(&ed_sig).unwrap();
    rate(
        "RustCrypto ed25519-dalek EdDSA verify, key parsed once",
        || {
            dalek_key.verify(&msg, &dalek_sig).unwrap();
        },
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // cargo bench passes --bench; a child run gets the provider to install.
    if let Some(pos) = args.iter().position(|a| a == "--provider") {
        let provider = args[pos + 1].as_str();
        match provider {
            "aws_lc_rs" => jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default(),
            _ => jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default(),
        }
        .unwrap();
        jsonwebtoken_figures(provider, &keys());
        return;
    }
    println!("single-threaded, {} ms per figure", RUN.as_millis());
    for provider in ["aws_lc_rs", "rust_crypto"] {
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["--provider", provider])
            .status()
            .unwrap();
        assert!(status.success());
    }
    raw_figures(&keys());
}
