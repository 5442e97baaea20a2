//! Batch bodies read without building them: the record count checked
//! against the limit before anything else ([`scan_batch`]), then the records
//! handed out one at a time ([`for_each_record`]).

use serde_json::Value;

use crate::error::invalid_json;

use super::*;

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
