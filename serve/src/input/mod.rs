//! Reading request records by hand from JSON values, so that every problem
//! names its field, what was expected and what was found. Never panics.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{ErrorBody, describe};

mod fast;
mod scan;
#[cfg(test)]
mod tests;

pub use fast::{FastRecord, FastRecords, fast_batch, fast_record};
pub use scan::{BatchError, RecordsError, for_each_record, scan_batch};

/// A record: a customer to look up, or feature values in model order.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Customer(String),
    Features(Vec<f64>),
}

/// An input problem: the caller's mistake.
#[derive(Clone, Debug, PartialEq)]
pub struct InputError(pub ErrorBody);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

fn path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// `prefix` is empty for a single record, `records[i]` in a batch.
fn as_object<'a>(
    v: &'a Value,
    prefix: &str,
    what: &str,
) -> Result<&'a Map<String, Value>, InputError> {
    v.as_object().ok_or_else(|| {
        let mut b = ErrorBody::new(format!("{what} must be a JSON object"))
            .expected("an object of feature values by name, or {\"customer_id\": \"…\"}")
            .found(describe(v));
        if !prefix.is_empty() {
            b = b.field(prefix);
        }
        InputError(b)
    })
}

/// What a feature accepts.
fn expected_for(name: &str) -> &'static str {
    if name.starts_with(analytics_lib::features::SHARE_PREFIX) {
        "a share between 0 and 1"
    } else {
        "a finite number ≥ 0 (at most 3.4e38)"
    }
}

/// `{"customer_id": "…"}` alone: the id, or the problem.
fn customer_id(obj: &Map<String, Value>, prefix: &str) -> Option<Result<String, InputError>> {
    let id = obj.get("customer_id")?;
    if let Some(other) = obj.keys().find(|k| k.as_str() != "customer_id") {
        return Some(Err(InputError(
            ErrorBody::new("unknown field: a customer lookup takes only `customer_id`")
                .field(path(prefix, other))
                .expected("{\"customer_id\": \"…\"} alone, or feature values without it")
                .found(format!("`{other}` next to `customer_id`")),
        )));
    }
    Some(match id.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(s.to_string()),
        _ => Err(InputError(
            ErrorBody::new("wrong type for `customer_id`")
                .field(path(prefix, "customer_id"))
                .expected("a non-empty string")
                .found(describe(id)),
        )),
    })
}

fn unknown_field(prefix: &str, unknown: &str, names: &[String]) -> InputError {
    InputError(
        ErrorBody::new(format!("unknown field `{unknown}`"))
            .field(path(prefix, unknown))
            .expected(format!(
                "`customer_id`, or the model's features: {}",
                names.join(", ")
            ))
            .found(format!("`{unknown}`")),
    )
}

/// One feature value: a finite number ≥ 0 that XGBoost's f32 can hold (a
/// share: at most 1).
fn feature_value(name: &str, value: &Value, prefix: &str) -> Result<f64, InputError> {
    let field = path(prefix, name);
    let Some(x) = value.as_f64() else {
        return Err(InputError(
            ErrorBody::new(format!("wrong type for `{name}`"))
                .field(field)
                .expected(expected_for(name))
                .found(describe(value)),
        ));
    };
    let share = name.starts_with(analytics_lib::features::SHARE_PREFIX);
    if !acceptable(x, share) {
        return Err(InputError(
            ErrorBody::new(format!("invalid value for `{name}`"))
                .field(field)
                .expected(expected_for(name))
                .found(describe(value)),
        ));
    }
    Ok(x)
}

/// Whether `x` is a value a feature may take: finite, not negative, at
/// most `f32::MAX` (XGBoost reads f32: a larger value would become infinity
/// there) and, for a `share_<category>`, at most 1. The fast path and
/// [`feature_value`] both check with it.
pub(super) fn acceptable(x: f64, share: bool) -> bool {
    x.is_finite() && x >= 0.0 && x <= f64::from(f32::MAX) && !(share && x > 1.0)
}

fn missing(prefix: &str, name: &str) -> InputError {
    InputError(
        ErrorBody::new(format!("missing field `{name}`"))
            .field(path(prefix, name))
            .expected(expected_for(name))
            .found("nothing"),
    )
}

fn what(prefix: &str) -> String {
    if prefix.is_empty() {
        "the request body".to_string()
    } else {
        prefix.to_string()
    }
}

/// Read one record against the model's feature names.
pub fn parse_record(v: &Value, names: &[String], prefix: &str) -> Result<Record, InputError> {
    let obj = as_object(v, prefix, &what(prefix))?;
    if let Some(id) = customer_id(obj, prefix) {
        return id.map(Record::Customer);
    }
    if let Some(unknown) = obj.keys().find(|k| !names.iter().any(|n| n == *k)) {
        return Err(unknown_field(prefix, unknown, names));
    }
    let mut row = Vec::with_capacity(names.len());
    for name in names {
        let Some(value) = obj.get(name) else {
            return Err(missing(prefix, name));
        };
        row.push(feature_value(name, value, prefix)?);
    }
    Ok(Record::Features(row))
}

/// A `/segment` record: a customer to look up, or feature values by name.
#[derive(Clone, Debug, PartialEq)]
pub enum SegmentRecord {
    Customer(String),
    Features(BTreeMap<String, f64>),
}

/// The segment features every request must carry; the others of the model
/// (`average_ticket`, `share_<category>`) are optional (see
/// `SegmentModel::assign`: `average_ticket` defaults to `monetary /
/// frequency`; without any share the customer is placed on RFM only,
/// with some, the missing ones count as 0).
pub const SEGMENT_REQUIRED: [&str; 3] = ["recency_days", "frequency", "monetary"];

/// Read one `/segment` record against the segment model's feature names.
pub fn parse_segment_record(
    v: &Value,
    names: &[String],
    prefix: &str,
) -> Result<SegmentRecord, InputError> {
    let obj = as_object(v, prefix, &what(prefix))?;
    if let Some(id) = customer_id(obj, prefix) {
        return id.map(SegmentRecord::Customer);
    }
    if let Some(unknown) = obj.keys().find(|k| !names.iter().any(|n| n == *k)) {
        return Err(unknown_field(prefix, unknown, names));
    }
    for name in SEGMENT_REQUIRED {
        if names.iter().any(|n| n == name) && !obj.contains_key(name) {
            return Err(missing(prefix, name));
        }
    }
    let mut row = BTreeMap::new();
    for name in names {
        if let Some(value) = obj.get(name) {
            row.insert(name.clone(), feature_value(name, value, prefix)?);
        }
    }
    Ok(SegmentRecord::Features(row))
}
