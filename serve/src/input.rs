//! Reading request records by hand from JSON values, so that every problem
//! names its field, what was expected and what was found. Never panics.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{ErrorBody, describe, invalid_json};

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
    // XGBoost reads f32: a larger value would become infinity there.
    if !x.is_finite() || x < 0.0 || x > f64::from(f32::MAX) || (share && x > 1.0) {
        return Err(InputError(
            ErrorBody::new(format!("invalid value for `{name}`"))
                .field(field)
                .expected(expected_for(name))
                .found(describe(value)),
        ));
    }
    Ok(x)
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

/// What a JSON value is, read without building it: an array's length, or
/// a short description for `found` (as [`describe`] words a `Value`).
enum Shape {
    Array(usize),
    Other(String),
}

struct ShapeSeed;

impl<'de> serde::de::DeserializeSeed<'de> for ShapeSeed {
    type Value = Shape;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ShapeSeed {
    type Value = Shape;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Shape, E> {
        Ok(Shape::Other(describe(&Value::Bool(b))))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Shape, E> {
        Ok(Shape::Other(describe(&Value::from(n))))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Shape, E> {
        Ok(Shape::Other(describe(&Value::from(n))))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Shape, E> {
        Ok(Shape::Other(describe(&Value::from(n))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Shape, E> {
        // At most 41 characters are kept: never the whole string.
        let short: String = v.chars().take(41).collect();
        Ok(Shape::Other(describe(&Value::String(short))))
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other("null".into()))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut n = 0usize;
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(Shape::Array(n))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut n = 0usize;
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {
            n += 1;
        }
        Ok(Shape::Other(format!("an object with {n} fields")))
    }
}

/// The top level of a batch body, checked as [`scan_batch`] says.
struct BatchShape<'a> {
    problem: &'a mut Option<BatchError>,
}

impl<'de> serde::de::DeserializeSeed<'de> for BatchShape<'_> {
    type Value = Option<Shape>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<Shape>, D::Error> {
        d.deserialize_any(self)
    }
}

impl BatchShape<'_> {
    fn refuse<E: serde::de::Error>(self, e: BatchError) -> E {
        *self.problem = Some(e);
        E::custom("refused")
    }
    fn not_an_object<E: serde::de::Error>(self, found: Shape) -> Result<Option<Shape>, E> {
        let found = match found {
            Shape::Array(n) => format!("an array of {n} items"),
            Shape::Other(s) => s,
        };
        Err(self.refuse(BatchError::Invalid(InputError(
            ErrorBody::new("the request body must be a JSON object")
                .expected("{\"records\": [ … ]}")
                .found(found),
        ))))
    }
}

impl<'de> serde::de::Visitor<'de> for BatchShape<'_> {
    type Value = Option<Shape>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("{\"records\": [ … ]}")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut records = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key != "records" {
                let short: String = key.chars().take(60).collect();
                return Err(self.refuse(BatchError::Invalid(InputError(
                    ErrorBody::new(format!("unknown field `{short}`"))
                        .field(short.as_str())
                        .expected("only `records`")
                        .found(format!("`{short}`")),
                ))));
            }
            if records.is_some() {
                return Err(self.refuse(BatchError::Invalid(InputError(
                    ErrorBody::new("duplicate field `records`")
                        .field("records")
                        .expected("one `records` array")
                        .found("`records` twice"),
                ))));
            }
            records = Some(map.next_value_seed(ShapeSeed)?);
        }
        Ok(records)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let found = ShapeSeed.visit_seq(seq)?;
        self.not_an_object(found)
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
        let found = ShapeSeed.visit_bool(b)?;
        self.not_an_object(found)
    }
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
        let found = ShapeSeed.visit_i64(n)?;
        self.not_an_object(found)
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
        let found = ShapeSeed.visit_u64(n)?;
        self.not_an_object(found)
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
        let found = ShapeSeed.visit_f64(n)?;
        self.not_an_object(found)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let found = ShapeSeed.visit_str(v)?;
        self.not_an_object(found)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        let found = ShapeSeed.visit_unit()?;
        self.not_an_object(found)
    }
}

/// Check a batch body `{"records": [ … ]}` (nothing else, 1 to `max`
/// records) without building it: the records are counted, not read, so a
/// batch over the limit is refused before any record is parsed, in memory
/// that does not grow with the body. Returns the number of records.
pub fn scan_batch(body: &[u8], max: usize) -> Result<usize, BatchError> {
    let mut problem = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let shape = serde::de::DeserializeSeed::deserialize(
        BatchShape {
            problem: &mut problem,
        },
        &mut de,
    )
    .and_then(|shape| de.end().map(|()| shape));
    let records = match (problem, shape) {
        (Some(p), _) => return Err(p),
        (None, Err(e)) => return Err(BatchError::Invalid(InputError(invalid_json(&e)))),
        (None, Ok(records)) => records,
    };
    let n = match records {
        None => {
            return Err(BatchError::Invalid(InputError(
                ErrorBody::new("missing field `records`")
                    .field("records")
                    .expected("an array of records")
                    .found("nothing"),
            )));
        }
        Some(Shape::Other(found)) => {
            return Err(BatchError::Invalid(InputError(
                ErrorBody::new("wrong type for `records`")
                    .field("records")
                    .expected("an array of records")
                    .found(found),
            )));
        }
        Some(Shape::Array(n)) => n,
    };
    if n == 0 {
        return Err(BatchError::Invalid(InputError(
            ErrorBody::new("empty batch")
                .field("records")
                .expected(format!("between 1 and {max} records"))
                .found("0 records"),
        )));
    }
    if n > max {
        return Err(BatchError::TooLarge(InputError(
            ErrorBody::new("batch too large")
                .field("records")
                .expected(format!("at most {max} records"))
                .found(format!("{n} records")),
        )));
    }
    Ok(n)
}

/// Hand each record of a batch body that [`scan_batch`] accepted to `f`,
/// one at a time (one record's `Value` alive at once), in order; the
/// first error of `f` stops the reading and is returned.
pub fn for_each_record<E>(
    body: &[u8],
    mut f: impl FnMut(usize, &Value) -> Result<(), E>,
) -> Result<(), RecordsError<E>> {
    let mut stopped = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let r = serde::de::DeserializeSeed::deserialize(
        EachBatch {
            f: &mut f,
            stopped: &mut stopped,
        },
        &mut de,
    );
    match (stopped, r) {
        (Some(e), _) => Err(RecordsError::Record(e)),
        (None, Err(e)) => Err(RecordsError::Json(e)),
        (None, Ok(())) => Ok(()),
    }
}

/// Why [`for_each_record`] stopped.
#[derive(Debug)]
pub enum RecordsError<E> {
    /// `f` refused a record.
    Record(E),
    /// The body is not a batch (it was not checked by [`scan_batch`]).
    Json(serde_json::Error),
}

struct EachBatch<'a, F, E> {
    f: &'a mut F,
    stopped: &'a mut Option<E>,
}

impl<'de, F: FnMut(usize, &Value) -> Result<(), E>, E> serde::de::DeserializeSeed<'de>
    for EachBatch<'_, F, E>
{
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(usize, &Value) -> Result<(), E>, E> serde::de::Visitor<'de>
    for EachBatch<'_, F, E>
{
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("{\"records\": [ … ]}")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "records" {
                map.next_value_seed(EachRecord {
                    f: &mut *self.f,
                    stopped: &mut *self.stopped,
                })?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct EachRecord<'a, F, E> {
    f: &'a mut F,
    stopped: &'a mut Option<E>,
}

impl<'de, F: FnMut(usize, &Value) -> Result<(), E>, E> serde::de::DeserializeSeed<'de>
    for EachRecord<'_, F, E>
{
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(usize, &Value) -> Result<(), E>, E> serde::de::Visitor<'de>
    for EachRecord<'_, F, E>
{
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while let Some(v) = seq.next_element::<Value>()? {
            if let Err(e) = (self.f)(i, &v) {
                *self.stopped = Some(e);
                return Err(serde::de::Error::custom("stopped"));
            }
            i += 1;
        }
        Ok(())
    }
}

/// Why a batch body was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchError {
    Invalid(InputError),
    TooLarge(InputError),
}

// ---------------------------------------------------------------------------
// Fast path: records read straight from the JSON text into feature rows.
//
// The happy path of `/predict` and `/predict/batch`, without building a
// `serde_json::Value` (one map and one `String` per field). It accepts
// exactly what `parse_record` accepts and reads the same numbers (serde_json
// parses a number the same way for a `Value` and for an `f64`); on anything
// else it gives up (`None`) and the route reads the body again the slow way,
// whose errors name the field. Duplicate keys: the last one wins, as in a
// `Value`.

/// A record read by the fast path.
#[derive(Clone, Debug, PartialEq)]
pub enum FastRecord {
    /// The row was appended to the output.
    Features,
    /// A customer lookup (a placeholder row of zeros was appended).
    Customer(String),
}

/// Records read by the fast path: rows appended to one row-major buffer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FastRecords {
    pub rows: Vec<f64>,
    pub records: Vec<FastRecord>,
}

/// One record (`{…}` alone): its row appended to `out.rows`.
pub fn fast_record(body: &[u8], names: &[String], share: &[bool]) -> Option<FastRecords> {
    let mut out = FastRecords {
        rows: Vec::with_capacity(names.len()),
        records: Vec::with_capacity(1),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = RecordSeed {
        names,
        share,
        rows: &mut out.rows,
    };
    let r = serde::de::DeserializeSeed::deserialize(seed, &mut de).ok()?;
    de.end().ok()?;
    out.records.push(r);
    Some(out)
}

/// A batch body `{"records": [ … ]}` with 1 to `max` records.
pub fn fast_batch(
    body: &[u8],
    names: &[String],
    share: &[bool],
    max: usize,
) -> Option<FastRecords> {
    let mut de = serde_json::Deserializer::from_slice(body);
    // Rows of ~20 features take ≥ 200 bytes of JSON: a safe first guess.
    let guess = (body.len() / 200).clamp(1, max);
    let mut out = FastRecords {
        rows: Vec::with_capacity(guess * names.len()),
        records: Vec::with_capacity(guess),
    };
    let seed = BatchSeed {
        names,
        share,
        max,
        out: &mut out,
    };
    serde::de::DeserializeSeed::deserialize(seed, &mut de).ok()?;
    de.end().ok()?;
    (!out.records.is_empty()).then_some(out)
}

fn give_up<E: serde::de::Error>() -> E {
    E::custom("not on the fast path")
}

/// A key of a record: a feature's index, or `customer_id`.
enum Key {
    Feature(usize),
    Customer,
}

struct KeySeed<'a> {
    names: &'a [String],
    /// Where the previous key was: records usually come in model order.
    hint: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        // A key's bytes (escapes resolved), compared with the names as
        // bytes: no UTF-8 check needed.
        d.deserialize_bytes(self)
    }
}

impl serde::de::Visitor<'_> for KeySeed<'_> {
    type Value = Key;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a feature name")
    }
    fn visit_bytes<E: serde::de::Error>(self, k: &[u8]) -> Result<Key, E> {
        let n = self.names.len();
        for i in 0..n {
            let j = (self.hint + i) % n;
            if self.names[j].as_bytes() == k {
                return Ok(Key::Feature(j));
            }
        }
        if k == b"customer_id" {
            Ok(Key::Customer)
        } else {
            Err(give_up())
        }
    }
    fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Key, E> {
        self.visit_bytes(k.as_bytes())
    }
}

/// A feature value as `feature_value` accepts it.
fn check_value<E: serde::de::Error>(x: f64, share: bool) -> Result<f64, E> {
    if !x.is_finite() || x < 0.0 || x > f64::from(f32::MAX) || (share && x > 1.0) {
        return Err(give_up());
    }
    Ok(x)
}

struct RecordSeed<'a> {
    names: &'a [String],
    share: &'a [bool],
    rows: &'a mut Vec<f64>,
}

impl<'de> serde::de::DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = FastRecord;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<FastRecord, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RecordSeed<'_> {
    type Value = FastRecord;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<FastRecord, A::Error> {
        let p = self.names.len();
        let start = self.rows.len();
        self.rows.resize(start + p, 0.0);
        let row = &mut self.rows[start..];
        // Fields seen (at most 128 features on this path).
        if p > 128 {
            return Err(give_up());
        }
        let mut seen = 0u128;
        let mut customer: Option<String> = None;
        let mut hint = 0;
        while let Some(key) = map.next_key_seed(KeySeed {
            names: self.names,
            hint,
        })? {
            match key {
                Key::Feature(j) => {
                    let x: f64 = map.next_value()?;
                    row[j] = check_value(x, self.share[j])?;
                    seen |= 1 << j;
                    hint = j + 1;
                }
                Key::Customer => {
                    let id: String = map.next_value()?;
                    if id.trim().is_empty() {
                        return Err(give_up());
                    }
                    customer = Some(id);
                }
            }
        }
        match customer {
            Some(id) if seen == 0 => {
                row.iter_mut().for_each(|v| *v = 0.0);
                Ok(FastRecord::Customer(id))
            }
            None if seen.count_ones() as usize == p => Ok(FastRecord::Features),
            _ => Err(give_up()),
        }
    }
}

struct BatchSeed<'a> {
    names: &'a [String],
    share: &'a [bool],
    max: usize,
    out: &'a mut FastRecords,
}

impl<'de> serde::de::DeserializeSeed<'de> for BatchSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for BatchSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("{\"records\": [ … ]}")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut done = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            // A second `records` would replace the first in a `Value`.
            if key != "records" || done {
                return Err(give_up());
            }
            map.next_value_seed(RecordsSeed {
                names: self.names,
                share: self.share,
                max: self.max,
                out: &mut *self.out,
            })?;
            done = true;
        }
        if done { Ok(()) } else { Err(give_up()) }
    }
}

struct RecordsSeed<'a> {
    names: &'a [String],
    share: &'a [bool],
    max: usize,
    out: &'a mut FastRecords,
}

impl<'de> serde::de::DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RecordsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            if self.out.records.len() == self.max {
                // One more would be over the limit: the slow path says so.
                return match seq.next_element::<serde::de::IgnoredAny>()? {
                    None => Ok(()),
                    Some(_) => Err(give_up()),
                };
            }
            let seed = RecordSeed {
                names: self.names,
                share: self.share,
                rows: &mut self.out.rows,
            };
            match seq.next_element_seed(seed)? {
                Some(r) => self.out.records.push(r),
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> Vec<String> {
        vec!["frequency".into(), "share_books".into()]
    }

    #[test]
    fn features_in_model_order() {
        let r = parse_record(&json!({"share_books": 0.5, "frequency": 3}), &names(), "");
        assert_eq!(r, Ok(Record::Features(vec![3.0, 0.5])));
    }

    #[test]
    fn customer_lookup() {
        let r = parse_record(&json!({"customer_id": "C1"}), &names(), "");
        assert_eq!(r, Ok(Record::Customer("C1".into())));
    }

    fn err(v: Value, prefix: &str) -> ErrorBody {
        match parse_record(&v, &names(), prefix) {
            Err(InputError(b)) => b,
            Ok(r) => panic!("accepted {v}: {r:?}"),
        }
    }

    #[test]
    fn every_problem_names_its_field() {
        let b = err(json!({"frequency": 1}), "");
        assert_eq!(b.field.as_deref(), Some("share_books"));
        assert!(b.error.contains("missing"));
        let b = err(json!({"frequency": "3", "share_books": 0}), "records[2]");
        assert_eq!(b.field.as_deref(), Some("records[2].frequency"));
        assert_eq!(b.found.as_deref(), Some("the string \"3\""));
        let b = err(json!({"frequency": -1, "share_books": 0}), "");
        assert!(b.error.contains("invalid"));
        let b = err(json!({"frequency": 1, "share_books": 1.5}), "");
        assert_eq!(b.expected.as_deref(), Some("a share between 0 and 1"));
        let b = err(json!({"frequency": 1, "share_books": 0, "x": 1}), "");
        assert_eq!(b.field.as_deref(), Some("x"));
        let b = err(json!({"customer_id": 7}), "");
        assert_eq!(b.field.as_deref(), Some("customer_id"));
        let b = err(json!({"customer_id": "C1", "frequency": 1}), "");
        assert_eq!(b.field.as_deref(), Some("frequency"));
        let b = err(json!([1, 2]), "");
        assert_eq!(b.found.as_deref(), Some("an array of 2 items"));
    }

    #[test]
    fn segment_records_need_rfm_only() {
        let names: Vec<String> = [
            "recency_days",
            "frequency",
            "monetary",
            "average_ticket",
            "share_books",
        ]
        .map(String::from)
        .to_vec();
        let r = parse_segment_record(
            &json!({"recency_days": 3, "frequency": 2, "monetary": 10.5}),
            &names,
            "",
        );
        let want: BTreeMap<String, f64> = [
            ("recency_days", 3.0),
            ("frequency", 2.0),
            ("monetary", 10.5),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        assert_eq!(r, Ok(SegmentRecord::Features(want)));
        let e = parse_segment_record(
            &json!({"recency_days": 3, "frequency": 2}),
            &names,
            "records[1]",
        )
        .expect_err("missing monetary");
        assert_eq!(e.0.field.as_deref(), Some("records[1].monetary"));
        let e = parse_segment_record(
            &json!({"recency_days": 3, "frequency": 2, "monetary": 1, "share_books": 2}),
            &names,
            "",
        )
        .expect_err("share above 1");
        assert_eq!(e.0.field.as_deref(), Some("share_books"));
        let e = parse_segment_record(
            &json!({"recency_days": 3, "frequency": 2, "monetary": 1, "tenure_days": 2}),
            &names,
            "",
        )
        .expect_err("not a segment feature");
        assert_eq!(e.0.field.as_deref(), Some("tenure_days"));
        assert_eq!(
            parse_segment_record(&json!({"customer_id": "C9"}), &names, ""),
            Ok(SegmentRecord::Customer("C9".into()))
        );
    }

    fn scan(v: Value, max: usize) -> Result<usize, BatchError> {
        scan_batch(v.to_string().as_bytes(), max)
    }

    #[test]
    fn batch_shape() {
        assert_eq!(scan(json!({"records": [{}]}), 2), Ok(1));
        let field = |r: Result<usize, BatchError>| match r {
            Err(BatchError::Invalid(InputError(b))) => (400, b.field, b.found),
            Err(BatchError::TooLarge(InputError(b))) => (413, b.field, b.found),
            Ok(n) => panic!("accepted {n}"),
        };
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            field(scan(json!({"records": []}), 2)),
            (400, some("records"), some("0 records"))
        );
        assert_eq!(
            field(scan(json!({"records": [1, 2, 3]}), 2)),
            (413, some("records"), some("3 records"))
        );
        assert_eq!(
            field(scan(json!({"records": [1], "extra": 1}), 2)).1,
            some("extra")
        );
        assert_eq!(
            field(scan(json!({"records": [], "extra": 1}), 2)).1,
            some("extra")
        );
        assert_eq!(field(scan(json!({"rows": [1]}), 2)).1, some("rows"));
        assert_eq!(
            field(scan(json!({}), 2)),
            (400, some("records"), some("nothing"))
        );
        assert_eq!(
            field(scan(json!({"records": {"a": 1}}), 2)),
            (400, some("records"), some("an object with 1 fields"))
        );
        assert_eq!(
            field(scan(json!({"records": "x"}), 2)).2,
            some("the string \"x\"")
        );
        assert_eq!(field(scan(json!([1, 2]), 2)).2, some("an array of 2 items"));
        assert_eq!(field(scan(json!(null), 2)).2, some("null"));
        let dup = br#"{"records": [1], "records": [2]}"#;
        assert_eq!(field(scan_batch(dup, 2)).2, some("`records` twice"));
        let bad = br#"{"records": [1, 2"#;
        let (status, _, found) = field(scan_batch(bad, 2));
        assert!(status == 400 && found.is_some_and(|f| f.contains("ends early")));
        assert_eq!(field(scan_batch(br#"{"records": [1]} x"#, 2)).0, 400);
        // Records are counted, not kept: a long string is never copied whole.
        let long = format!("{{\"records\": \"{}\"}}", "y".repeat(10_000));
        let found = field(scan_batch(long.as_bytes(), 2)).2.expect("found");
        assert!(found.len() < 80, "{found}");
    }

    #[test]
    fn records_are_handed_over_one_at_a_time_in_order() {
        let body = br#"{"records": [{"a": 1}, 2, "three"]}"#;
        let mut seen = Vec::new();
        for_each_record::<()>(body, |i, v| {
            seen.push((i, v.clone()));
            Ok(())
        })
        .expect("read");
        assert_eq!(
            seen,
            vec![(0, json!({"a": 1})), (1, json!(2)), (2, json!("three"))]
        );
        let r = for_each_record(body, |i, _| if i == 1 { Err(i) } else { Ok(()) });
        assert!(matches!(r, Err(RecordsError::Record(1))));
    }

    /// The fast reader agrees with `parse_record` on every body: the same
    /// row when both accept, `None` (the slow path decides) otherwise.
    #[test]
    fn the_fast_path_reads_what_parse_record_reads_or_gives_up() {
        let names = names();
        let share = [false, true];
        let bodies = [
            r#"{"frequency": 3, "share_books": 0.5}"#,
            r#"{"share_books": 0.5, "frequency": 3e0}"#,
            r#"{"fr\u0065quency": 3, "share_books": 1}"#,
            r#"{"frequency": "x", "share_books": 0.5, "frequency": 2}"#,
            r#"{"frequency": 2, "share_books": 0.5, "frequency": -2}"#,
            r#"{"frequency": 3}"#,
            r#"{"frequency": 3, "share_books": 1.5}"#,
            r#"{"frequency": 3, "share_books": 0, "x": 1}"#,
            r#"{"frequency": 1e39, "share_books": 0}"#,
            r#"{"customer_id": "C1"}"#,
            r#"{"customer_id": " "}"#,
            r#"{"customer_id": "C1", "frequency": 1}"#,
            r#"[1, 2]"#,
            r#"{"frequency": 3, "share_books": 0} trailing"#,
        ];
        for body in bodies {
            let fast = fast_record(body.as_bytes(), &names, &share);
            let slow = serde_json::from_str::<Value>(body)
                .ok()
                .map(|v| parse_record(&v, &names, ""));
            match (fast, slow) {
                (Some(f), Some(Ok(Record::Features(row)))) => {
                    assert_eq!(f.records, vec![FastRecord::Features], "{body}");
                    assert_eq!(f.rows, row, "{body}");
                }
                (Some(f), Some(Ok(Record::Customer(id)))) => {
                    assert_eq!(f.records, vec![FastRecord::Customer(id)], "{body}");
                    assert_eq!(f.rows, vec![0.0; 2], "{body}");
                }
                (Some(f), slow) => panic!("{body}: fast read {f:?}, slow {slow:?}"),
                (None, Some(Ok(r))) => {
                    // Allowed (the slow path answers), but only for duplicates.
                    assert!(
                        body.matches("frequency").count() > 1,
                        "{body}: gave up on {r:?}"
                    );
                }
                (None, _) => {}
            }
        }
        let batch = br#"{"records": [{"frequency": 1, "share_books": 0}, {"customer_id": "C2"}]}"#;
        let f = fast_batch(batch, &names, &share, 2).expect("a valid batch");
        assert_eq!(f.rows, vec![1.0, 0.0, 0.0, 0.0]);
        assert_eq!(
            f.records,
            vec![FastRecord::Features, FastRecord::Customer("C2".into())]
        );
        assert!(fast_batch(batch, &names, &share, 1).is_none(), "over max");
        assert!(fast_batch(br#"{"records": []}"#, &names, &share, 2).is_none());
        assert!(fast_batch(br#"{"records": [], "x": 1}"#, &names, &share, 2).is_none());
        assert!(fast_batch(br#"{"rows": [{}]}"#, &names, &share, 2).is_none());
    }
}
