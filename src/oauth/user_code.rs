//! User codes (RFC 8628 §6.1, DESIGN.md §4): 8 characters from an alphabet without vowels or
//! look-alikes, shown as `XXXX-XXXX`. Input is normalised for ASCII case, dashes and spaces only;
//! anything else never matches a code.

use rand::RngExt;

/// 20 consonants: no vowels (no words), no 0/O or 1/I confusion. 20^8 ≈ 2.6·10^10 codes.
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const LEN: usize = 8;

/// A fresh random code, normalised (no dash).
pub fn generate() -> String {
    let mut rng = rand::rng();
    (0..LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `BCDFGHJK` → `BCDF-GHJK`.
pub fn display(code: &str) -> String {
    if code.len() == LEN && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

/// Normalises what a person typed: ASCII letters upper-cased, dashes and spaces dropped. Returns
/// `None` unless exactly 8 alphabet characters remain (so `0`, `O`, non-ASCII look-alikes, or a
/// code with extra characters never reach the database).
pub fn normalize(input: &str) -> Option<String> {
    if input.len() > 32 || !input.is_ascii() {
        return None;
    }
    let code: String = input
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_use_the_alphabet() {
        for _ in 0..200 {
            let code = generate();
            assert_eq!(normalize(&code).as_deref(), Some(code.as_str()));
            assert_eq!(normalize(&display(&code)).as_deref(), Some(code.as_str()));
        }
    }

    #[test]
    fn normalisation_is_ascii_only() {
        assert_eq!(normalize("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize(" BCDF GHJK ").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize("BCDF–GHJK"), None, "en dash");
        assert_eq!(normalize("ＢCDFGHJK"), None, "fullwidth B");
        assert_eq!(normalize("BCDFGHJA"), None, "vowel");
        assert_eq!(normalize("BCDFGHJKL"), None, "too long");
        assert_eq!(normalize("BCDF\tGHJK"), None, "tab");
    }
}
