//! The fuzz target for the compact JWS parser and the DPoP proof checks, as a property-based
//! harness (cargo-fuzz needs a nightly toolchain). Whatever the input (arbitrary bytes, valid
//! proofs and tokens with bytes flipped, inserted or cut away, wrong `alg`, `typ` or `jwk`), the
//! checks never panic and never accept anything but a validly signed input.
//!
//! Each property runs `PROPTEST_CASES` cases (256 by default); CI runs many more for a bounded
//! time (`.ci/run`).

#![expect(
    clippy::unwrap_used,
    reason = "test set-up: a key that cannot be made or used is a failed test"
)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use pairgate_verifier::dpop::{DpopPolicy, DpopRequest, DpopVerifier};
use pairgate_verifier::jose::{CompactJws, PublicJwk, b64, sha256_b64};
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW_MS: i64 = 1_800_000_000_000;
const URL: &str = "https://id.example.com/api/telemetry";
const TOKEN: &str = "an-access-token";

/// A signing key of either kind, with its public JWK.
enum Signer {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl Signer {
    fn es256() -> Self {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Self::Es256(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap(),
        )
    }

    fn eddsa() -> Self {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Self::EdDsa(Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap())
    }

    fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::EdDsa(_) => "EdDSA",
        }
    }

    fn jwk(&self) -> PublicJwk {
        match self {
            Self::Es256(k) => PublicJwk::from_p256_point(k.public_key().as_ref(), None),
            Self::EdDsa(k) => PublicJwk::from_ed25519(k.public_key().as_ref(), None),
        }
        .unwrap()
    }

    /// A compact JWS over exactly this header and these claims.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig = match self {
            Self::Es256(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Self::EdDsa(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(sig))
    }
}

fn verifier() -> DpopVerifier {
    let policy = DpopPolicy {
        require_nonce: false,
        nonce_lifetime_ms: 300_000,
        max_age_ms: 60_000,
        skew_ms: 30_000,
    };
    DpopVerifier::new(policy, [9; 32])
}

fn proof_header(signer: &Signer) -> Value {
    json!({ "typ": "dpop+jwt", "alg": signer.alg(), "jwk": signer.jwk().to_json() })
}

fn proof_claims(jti: &str) -> Value {
    json!({
        "jti": jti,
        "htm": "POST",
        "htu": URL,
        "iat": NOW_MS / 1000,
        "ath": sha256_b64(TOKEN),
    })
}

/// Whether the proof checks accept `proof` for the request the harness's proofs are made for.
fn accepted(proof: &str) -> bool {
    let proofs = [proof.to_owned()];
    let req = DpopRequest {
        proofs: &proofs,
        method: "POST",
        url: URL,
        access_token: Some(TOKEN),
    };
    matches!(verifier().check(&req, NOW_MS), Ok(Some(_)))
}

/// A change to a valid token: flip bits of one byte, insert a byte, cut a piece out, or keep a
/// prefix (a truncated segment or a missing one).
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Cut(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip(at, bits)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Cut(at, len)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// `token` changed by `m`, as a string when it still is one (JWS parsing takes `&str`).
fn mutate(token: &str, m: &Mutation) -> Option<String> {
    let mut bytes = token.as_bytes().to_vec();
    let n = bytes.len();
    match *m {
        Mutation::Flip(at, bits) => bytes[at % n] ^= bits,
        Mutation::Insert(at, byte) => bytes.insert(at % (n + 1), byte),
        Mutation::Cut(at, len) => {
            let at = at % n;
            bytes.drain(at..(at + len).min(n));
        }
        Mutation::Truncate(at) => bytes.truncate(at % n),
    }
    String::from_utf8(bytes).ok().filter(|s| s != token)
}

fn cases() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[test]
fn fuzz_the_harness_accepts_valid_proofs() {
    // The properties below would pass vacuously if the harness's own proofs were refused.
    for signer in [Signer::es256(), Signer::eddsa()] {
        let proof = signer.sign(&proof_header(&signer), &proof_claims("j"));
        assert!(accepted(&proof), "{}", signer.alg());
        let jws = CompactJws::parse(&proof).unwrap();
        assert!(signer.jwk().verify(&jws));
    }
}

proptest! {
    #![proptest_config(cases())]

    /// Arbitrary text, and arbitrary bytes shaped like three base64url segments, are refused
    /// without a panic.
    #[test]
    fn fuzz_arbitrary_input_is_refused(
        text in any::<String>(),
        segments in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..5),
    ) {
        let _ = CompactJws::parse(&text);
        prop_assert!(!accepted(&text));
        let shaped: Vec<String> = segments.iter().map(b64).collect();
        let shaped = shaped.join(".");
        let _ = CompactJws::parse(&shaped);
        prop_assert!(!accepted(&shaped));
    }

    /// Header and claims that are arbitrary JSON, signed by the key they name, parse or not
    /// without a panic; as proofs they pass only with every claim the request needs.
    #[test]
    fn fuzz_signed_arbitrary_json_is_refused(
        ed in any::<bool>(),
        header in json_value(),
        claims in json_value(),
    ) {
        let signer = if ed { Signer::eddsa() } else { Signer::es256() };
        let token = signer.sign(&header, &claims);
        if let Ok(jws) = CompactJws::parse(&token) {
            let _ = signer.jwk().verify(&jws);
        }
        prop_assert!(!accepted(&token));
    }

    /// A valid proof changed in any way is refused.
    #[test]
    fn fuzz_mutated_proofs_are_refused(
        ed in any::<bool>(),
        jti in "[a-z0-9]{1,24}",
        m in mutation(),
    ) {
        let signer = if ed { Signer::eddsa() } else { Signer::es256() };
        let proof = signer.sign(&proof_header(&signer), &proof_claims(&jti));
        if let Some(mutated) = mutate(&proof, &m) {
            prop_assert!(!accepted(&mutated), "{m:?} accepted");
        }
    }

    /// A valid access token changed in any way no longer verifies under the issuer's key.
    #[test]
    fn fuzz_mutated_tokens_do_not_verify(
        ed in any::<bool>(),
        sub in "[ -~]{0,40}",
        m in mutation(),
    ) {
        let signer = if ed { Signer::eddsa() } else { Signer::es256() };
        let header = json!({ "typ": "at+jwt", "alg": signer.alg(), "kid": "k1" });
        let token = signer.sign(&header, &json!({ "sub": sub, "exp": NOW_MS / 1000 + 60 }));
        let jwk = signer.jwk();
        prop_assert!(jwk.verify(&CompactJws::parse(&token).unwrap()));
        if let Some(mutated) = mutate(&token, &m)
            && let Ok(jws) = CompactJws::parse(&mutated)
        {
            prop_assert!(!jwk.verify(&jws), "{m:?} verified");
        }
    }

    /// Proofs with a wrong `alg`, `typ` or `jwk`, or bound to another request, are refused even
    /// though they are signed.
    #[test]
    fn fuzz_wrong_headers_and_bindings_are_refused(
        ed in any::<bool>(),
        which in 0..10usize,
        alg in "[A-Za-z0-9]{0,8}",
    ) {
        let signer = if ed { Signer::eddsa() } else { Signer::es256() };
        prop_assume!(which != 0 || alg != signer.alg());
        let other = if ed { Signer::es256() } else { Signer::eddsa() };
        let same_kind = if ed { Signer::eddsa() } else { Signer::es256() };
        let mut header = proof_header(&signer);
        let mut claims = proof_claims("j");
        match which {
            0 => header["alg"] = json!(alg),
            1 => header["alg"] = json!(other.alg()),
            2 => header["typ"] = json!("at+jwt"),
            3 => header["jwk"] = other.jwk().to_json(),
            4 => header["jwk"] = same_kind.jwk().to_json(),
            5 => header["jwk"]["d"] = json!(b64([1u8; 32])),
            6 => claims["htm"] = json!("GET"),
            7 => claims["htu"] = json!("https://id.example.com/api/other"),
            8 => claims["ath"] = json!(sha256_b64("another-token")),
            _ => claims["iat"] = json!(NOW_MS / 1000 - 3600),
        }
        let proof = signer.sign(&header, &claims);
        prop_assert!(!accepted(&proof), "variant {which} accepted");
    }
}

/// JSON values of a few levels, with the header and claim names the checks look at.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("alg".to_owned()),
        Just("typ".to_owned()),
        Just("jwk".to_owned()),
        Just("crit".to_owned()),
        Just("htm".to_owned()),
        Just("htu".to_owned()),
        Just("iat".to_owned()),
        Just("jti".to_owned()),
        Just("ath".to_owned()),
        Just("nonce".to_owned()),
        "[a-z]{1,4}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[ -~]{0,16}".prop_map(Value::from),
        Just(json!("dpop+jwt")),
        Just(json!("ES256")),
        Just(json!("EdDSA")),
        Just(json!(URL)),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
