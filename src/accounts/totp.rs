//! TOTP (RFC 6238) second factor: secrets, the otpauth URI and its QR code (SVG), code checks
//! within ±1 time step, and recovery codes. Whether a code was already used is decided in the
//! database (the last accepted step is stored), not here.

use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Totp};

pub const STEP_SECS: u64 = 30;
const DIGITS: u8 = 6;
const SECRET_BYTES: usize = 20;

/// A fresh 160-bit secret.
pub fn new_secret() -> Vec<u8> {
    rand::random::<[u8; SECRET_BYTES]>().to_vec()
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(secret)
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .ok()
}

/// The `otpauth://totp/…` URI authenticator apps import.
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> Option<String> {
    // The label may not contain ':'; emails do not, issuers are ours.
    totp(secret, issuer, &account.replace(':', ""))?
        .to_url()
        .ok()
}

/// The secret in base32, for typing into an app by hand.
pub fn secret_base32(secret: &[u8]) -> String {
    totp_rs::Secret::from(secret).to_base32()
}

/// A QR code of `data` as an inline SVG element.
pub fn qr_svg(data: &str) -> Option<String> {
    let code = qrcode::QrCode::new(data.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .build(),
    )
}

/// The time step a submitted code matches, trying the current step and one on either side.
/// Only exactly six ASCII digits are considered (no spaces, no other scripts' digits).
pub fn matching_step(secret: &[u8], code: &str, now_secs: i64) -> Option<i64> {
    if code.len() != usize::from(DIGITS) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let generator = totp(secret, "pairgate", "check")?;
    let step = now_secs.div_euclid(STEP_SECS as i64);
    [step, step - 1, step + 1].into_iter().find(|s| {
        let at = u64::try_from(*s).unwrap_or(0) * STEP_SECS;
        let expected = generator.generate(at).to_string();
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into()
    })
}

/// The code for `now_secs` (for tests and the CLI's demonstrations).
pub fn code_at(secret: &[u8], now_secs: i64) -> Option<String> {
    let at = u64::try_from(now_secs).ok()?;
    Some(totp(secret, "pairgate", "check")?.generate(at).to_string())
}

/// Ten one-time recovery codes like `k7m2-x9qd-4t8r` (≈ 60 bits each).
pub fn recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..10)
        .map(|_| {
            let chars: Vec<char> = (0..12)
                .map(|_| ALPHABET[usize::from(rand::random::<u8>()) % ALPHABET.len()] as char)
                .collect();
            format!(
                "{}-{}-{}",
                chars[0..4].iter().collect::<String>(),
                chars[4..8].iter().collect::<String>(),
                chars[8..12].iter().collect::<String>()
            )
        })
        .collect()
}

/// How recovery codes are stored: normalised (case, dashes, spaces), SHA-256 hex. They are
/// random and long, so a fast hash is enough.
pub fn hash_recovery_code(code: &str) -> Option<String> {
    let normal: String = code
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (normal.len() == 12 && normal.is_ascii())
        .then(|| hex::encode(Sha256::digest(normal.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_step_and_neighbours_only() {
        let secret = new_secret();
        let now = 1_800_000_015;
        let code = code_at(&secret, now).unwrap();
        assert_eq!(matching_step(&secret, &code, now), Some(now / 30));
        assert_eq!(matching_step(&secret, &code, now + 30), Some(now / 30));
        assert_eq!(matching_step(&secret, &code, now + 90), None);
        assert_eq!(matching_step(&secret, &format!(" {code}"), now), None);
        let arabic_indic: String = code
            .chars()
            .map(|c| char::from_u32(c as u32 - '0' as u32 + 0x660).unwrap())
            .collect();
        assert_eq!(matching_step(&secret, &arabic_indic, now), None);
    }

    #[test]
    fn recovery_codes_normalise() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), 10);
        let h = hash_recovery_code(&codes[0]).unwrap();
        assert_eq!(
            hash_recovery_code(&codes[0].to_uppercase().replace('-', " ")),
            Some(h)
        );
        assert_eq!(hash_recovery_code("short"), None);
    }

    #[test]
    fn uri_and_qr() {
        let uri = otpauth_uri(&new_secret(), "pairgate", "ann@example.com").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/pairgate:ann%40example.com?"),
            "{uri}"
        );
        assert!(
            qr_svg(&uri).unwrap().starts_with("<?xml") || qr_svg(&uri).unwrap().contains("<svg")
        );
    }

    #[test]
    fn codes_follow_rfc_6238_appendix_b() {
        // RFC 6238's SHA-1 test vectors (8 digits there; a 6-digit code is their last six).
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(secret, time).as_deref(), Some(code), "at {time}");
            assert_eq!(matching_step(secret, code, time), Some(time / 30));
        }
    }

    #[test]
    fn uri_and_typed_secret_keep_their_format() {
        // What authenticator apps already hold: the same secret must give the same text.
        let secret: Vec<u8> = (1..=20).collect();
        assert_eq!(
            otpauth_uri(&secret, "pairgate", "ann:o'hara+x@example.com").as_deref(),
            Some(
                "otpauth://totp/pairgate:anno%27hara%2Bx%40example.com\
                 ?secret=AEBAGBAFAYDQQCIKBMGA2DQPCAIREEYU&issuer=pairgate"
            )
        );
        assert_eq!(secret_base32(&secret), "AEBAGBAFAYDQQCIKBMGA2DQPCAIREEYU");
    }
}
