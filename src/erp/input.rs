//! Reading the ERP's JSON: every problem of a body is collected with its JSON Pointer, so one
//! answer explains all of them (RFC 9457 `errors`). The same readers check the rows of
//! `pairgate erp import`.

use chrono::DateTime;
use serde_json::{Map, Value};

use super::error::FieldError;

/// The members of one JSON object, read with their pointer prefix.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Fields<'a> {
    /// The object at `value` (pointer `prefix`), refusing members not in `allowed`. `None` (with
    /// an error recorded) when `value` is not an object.
    pub fn of(
        value: &'a Value,
        prefix: &str,
        allowed: &[&str],
        errors: &mut Vec<FieldError>,
    ) -> Option<Self> {
        let Some(obj) = value.as_object() else {
            errors.push(FieldError::body(
                if prefix.is_empty() { "" } else { prefix },
                "must be a JSON object",
            ));
            return None;
        };
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                errors.push(FieldError::body(
                    pointer(prefix, key),
                    "is not a known field",
                ));
            }
        }
        Some(Self {
            obj,
            prefix: prefix.to_owned(),
        })
    }

    pub fn pointer(&self, key: &str) -> String {
        pointer(&self.prefix, key)
    }

    /// A member that is present and not `null`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    /// A required member, or an error.
    pub fn require(&self, key: &str, errors: &mut Vec<FieldError>) -> Option<&'a Value> {
        let value = self.get(key);
        if value.is_none() {
            errors.push(FieldError::body(self.pointer(key), "is required"));
        }
        value
    }

    /// A required string member checked by `check`, which returns the problem if there is one.
    pub fn text(
        &self,
        key: &str,
        check: fn(&str) -> Result<(), &'static str>,
        errors: &mut Vec<FieldError>,
    ) -> Option<String> {
        let value = self.require(key, errors)?;
        self.checked(key, value, check, errors)
    }

    /// An optional string member, checked by `check` when present.
    pub fn optional_text(
        &self,
        key: &str,
        check: fn(&str) -> Result<(), &'static str>,
        errors: &mut Vec<FieldError>,
    ) -> Option<String> {
        let value = self.get(key)?;
        self.checked(key, value, check, errors)
    }

    fn checked(
        &self,
        key: &str,
        value: &Value,
        check: fn(&str) -> Result<(), &'static str>,
        errors: &mut Vec<FieldError>,
    ) -> Option<String> {
        let Some(text) = value.as_str() else {
            errors.push(FieldError::body(self.pointer(key), "must be a string"));
            return None;
        };
        match check(text) {
            Ok(()) => Some(text.to_owned()),
            Err(problem) => {
                errors.push(FieldError::body(self.pointer(key), problem));
                None
            }
        }
    }

    /// An RFC 3339 timestamp, as Unix milliseconds.
    pub fn timestamp(&self, key: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
        let value = self.require(key, errors)?;
        match value.as_str().map(DateTime::parse_from_rfc3339) {
            Some(Ok(t)) => Some(t.timestamp_millis()),
            _ => {
                errors.push(FieldError::body(
                    self.pointer(key),
                    "must be an RFC 3339 date-time, e.g. 2026-11-26T09:30:00Z",
                ));
                None
            }
        }
    }

    /// A non-negative integer.
    pub fn count(&self, key: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
        let value = self.require(key, errors)?;
        match value.as_i64().filter(|n| *n >= 0) {
            Some(n) => Some(n),
            None => {
                errors.push(FieldError::body(
                    self.pointer(key),
                    "must be an integer from 0 to 9223372036854775807",
                ));
                None
            }
        }
    }

    /// An optional boolean (absent is `false`).
    pub fn flag(&self, key: &str, errors: &mut Vec<FieldError>) -> bool {
        match self.get(key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                errors.push(FieldError::body(self.pointer(key), "must be true or false"));
                false
            }
        }
    }
}

fn pointer(prefix: &str, key: &str) -> String {
    // RFC 6901 §3: '~' and '/' are escaped in reference tokens.
    format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// ERP identifiers (customer numbers, sale ids): 1–64 printable characters, no surrounding space.
pub fn identifier(text: &str) -> Result<(), &'static str> {
    let ok = (1..=64).contains(&text.chars().count())
        && !text.chars().any(char::is_control)
        && text.trim() == text;
    if ok {
        Ok(())
    } else {
        Err("must be 1–64 printable characters without leading or trailing spaces")
    }
}

/// Names of people and companies: 1–200 printable characters.
pub fn name(text: &str) -> Result<(), &'static str> {
    let ok = !text.trim().is_empty()
        && text.chars().count() <= 200
        && !text.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err("must be 1–200 printable characters")
    }
}

/// Device serial numbers, as the device registry accepts them.
pub fn serial(text: &str) -> Result<(), &'static str> {
    if crate::devices::valid_serial(text) {
        Ok(())
    } else {
        Err("must be 1–64 characters of A–Z, a–z, 0–9, '.', '_' or '-'")
    }
}

/// Device models, as the device registry accepts them.
pub fn model(text: &str) -> Result<(), &'static str> {
    if crate::devices::valid_model(text) {
        Ok(())
    } else {
        Err("must be 1–128 printable characters")
    }
}
