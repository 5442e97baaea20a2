//! Snowflake's Arrow encodings → polars, in one place.
//!
//! Snowflake sends query results as Arrow IPC, but its Arrow types are not
//! the logical types: each field carries metadata (`logicalType`, `scale`,
//! `precision`) that says how to read the physical array. This module is the
//! only code that interprets them:
//!
//! | `logicalType` | physical Arrow type | polars result |
//! |---|---|---|
//! | `FIXED` (NUMBER(p, s)) | Int8/16/32/64 holding `value × 10^s` | Int64 when `s = 0`, else Float64 (`v / 10^s`) |
//! | `FIXED` | Decimal128(p, s) | Int64 when `s = 0` and it fits, else Float64 |
//! | `REAL` | Float64 (or Float32) | Float64 |
//! | `TEXT` (and other text-like types) | Utf8 / LargeUtf8 / Utf8View | String |
//! | `BOOLEAN` | Boolean | Boolean |
//! | `DATE` | Date32 (or Int32/Int64 day counts) | Date |
//! | `TIMESTAMP_NTZ`, `TIMESTAMP_LTZ` | Int64 holding `seconds × 10^scale` | Datetime(µs, no zone) |
//! | `TIMESTAMP_NTZ`, `TIMESTAMP_LTZ` | struct {`epoch`: Int64 seconds, `fraction`: Int32 ns} | Datetime(µs, no zone) |
//! | `TIMESTAMP_TZ` | struct {`epoch` (scaled), `timezone`} or {`epoch`, `fraction`, `timezone`} | the wall-clock time at its offset, Datetime(µs, no zone) |
//!
//! A field without Snowflake metadata is read by its Arrow type alone. A
//! timestamp finer than a microsecond is truncated (floor) to the microsecond;
//! `LTZ` values are read in UTC. Anything else is an error that names the
//! column, what was expected and what was found.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch, StructArray};
use arrow_schema::{DataType as ArrowType, Field, TimeUnit as ArrowUnit};
use polars::prelude::{Column, DataFrame, DataType, NamedFrom, Series, TimeUnit};

use super::SourceError;

type Result<T> = std::result::Result<T, SourceError>;

/// The Snowflake logical type of a field, from its metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logical {
    Fixed,
    Real,
    Text,
    Boolean,
    Date,
    /// TIMESTAMP_NTZ or TIMESTAMP_LTZ: no offset to apply.
    TimestampPlain,
    TimestampTz,
    /// No metadata: go by the Arrow type.
    Unknown,
}

fn logical(field: &Field) -> Logical {
    let meta = field.metadata();
    let Some(t) = get_ci(meta, "logicalType") else {
        return Logical::Unknown;
    };
    match t.to_ascii_uppercase().as_str() {
        "FIXED" | "NUMBER" | "DECIMAL" => Logical::Fixed,
        "REAL" | "FLOAT" | "DOUBLE" => Logical::Real,
        "TEXT" | "VARCHAR" | "STRING" | "CHAR" | "VARIANT" | "OBJECT" | "ARRAY" => Logical::Text,
        "BOOLEAN" => Logical::Boolean,
        "DATE" => Logical::Date,
        "TIMESTAMP_NTZ" | "TIMESTAMP_LTZ" | "TIMESTAMP" => Logical::TimestampPlain,
        "TIMESTAMP_TZ" => Logical::TimestampTz,
        _ => Logical::Unknown,
    }
}

fn get_ci<'a>(meta: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    meta.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// The `scale` of a field's metadata (0 when absent).
fn meta_scale(field: &Field) -> Result<i32> {
    match get_ci(field.metadata(), "scale") {
        None => Ok(0),
        Some(s) => s
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|s| (0..=38).contains(s))
            .ok_or_else(|| SourceError::Encoding {
                column: field.name().clone(),
                expected: "a `scale` between 0 and 38 in the field metadata".into(),
                found: format!("{s:?}"),
            }),
    }
}

/// Convert Snowflake Arrow record batches (one result, same schema) to a
/// polars DataFrame. Column names are kept as sent. With no batch at all
/// (Snowflake sends no schema for an empty result) the frame has no columns:
/// callers that know the expected schema supply it.
pub fn batches_to_frame(batches: &[RecordBatch]) -> Result<DataFrame> {
    let Some(first) = batches.first() else {
        return Ok(DataFrame::empty());
    };
    let schema = first.schema();
    let height: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let arrays: Vec<&ArrayRef> = batches.iter().map(|b| b.column(i)).collect();
        let series = column_to_series(field, &arrays)?;
        columns.push(Column::from(series));
    }
    DataFrame::new(height, columns).map_err(|e| SourceError::Encoding {
        column: "(all)".into(),
        expected: "columns of equal length".into(),
        found: e.to_string(),
    })
}

fn found(field: &Field, logical: Logical) -> String {
    format!(
        "Arrow type {} with logicalType {}",
        field.data_type(),
        match logical {
            Logical::Unknown => "(none)".to_string(),
            l => format!("{l:?}"),
        }
    )
}

fn unsupported(field: &Field, logical: Logical, expected: &str) -> SourceError {
    SourceError::Encoding {
        column: field.name().clone(),
        expected: expected.to_string(),
        found: found(field, logical),
    }
}

/// One column of a result, normalised by its field metadata.
pub fn column_to_series(field: &Field, arrays: &[&ArrayRef]) -> Result<Series> {
    let name = field.name().as_str();
    let lt = logical(field);
    let dt = field.data_type();
    match (lt, dt) {
        (
            Logical::Text | Logical::Unknown,
            ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View,
        )
        | (_, ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View) => {
            Ok(Series::new(name.into(), strings(arrays)))
        }
        (Logical::Boolean | Logical::Unknown, ArrowType::Boolean) => {
            let v: Vec<Option<bool>> = arrays
                .iter()
                .flat_map(|a| a.as_boolean().iter().collect::<Vec<_>>())
                .collect();
            Ok(Series::new(name.into(), v))
        }
        (
            Logical::Real | Logical::Unknown | Logical::Fixed,
            ArrowType::Float64 | ArrowType::Float32,
        ) => Ok(Series::new(name.into(), floats(arrays))),
        (
            Logical::Fixed | Logical::Unknown,
            ArrowType::Int8 | ArrowType::Int16 | ArrowType::Int32 | ArrowType::Int64,
        ) => {
            let scale = meta_scale(field)?;
            let ints = ints(arrays);
            if scale == 0 {
                Ok(Series::new(name.into(), ints))
            } else {
                let div = 10f64.powi(scale);
                let v: Vec<Option<f64>> = ints
                    .into_iter()
                    .map(|x| x.map(|x| x as f64 / div))
                    .collect();
                Ok(Series::new(name.into(), v))
            }
        }
        (Logical::Fixed | Logical::Unknown, ArrowType::Decimal128(_, scale)) => {
            let scale = i32::from(*scale);
            let raw: Vec<Option<i128>> = arrays
                .iter()
                .flat_map(|a| {
                    a.as_primitive::<arrow_array::types::Decimal128Type>()
                        .iter()
                        .collect::<Vec<_>>()
                })
                .collect();
            let fits = raw.iter().flatten().all(|v| i64::try_from(*v).is_ok());
            if scale == 0 && fits {
                let v: Vec<Option<i64>> = raw.into_iter().map(|x| x.map(|x| x as i64)).collect();
                Ok(Series::new(name.into(), v))
            } else {
                let div = 10f64.powi(scale);
                let v: Vec<Option<f64>> =
                    raw.into_iter().map(|x| x.map(|x| x as f64 / div)).collect();
                Ok(Series::new(name.into(), v))
            }
        }
        (Logical::Date | Logical::Unknown, ArrowType::Date32) => {
            let v: Vec<Option<i32>> = arrays
                .iter()
                .flat_map(|a| a.as_primitive::<Date32Type>().iter().collect::<Vec<_>>())
                .collect();
            to_date(name, v)
        }
        (Logical::Date, ArrowType::Int32 | ArrowType::Int64) => {
            let v: Vec<Option<i32>> = ints(arrays)
                .into_iter()
                .map(|x| x.and_then(|x| i32::try_from(x).ok()))
                .collect();
            to_date(name, v)
        }
        (Logical::TimestampPlain | Logical::TimestampTz, ArrowType::Int64) => {
            let scale = meta_scale(field)?;
            let v: Vec<Option<i64>> = ints(arrays)
                .into_iter()
                .map(|x| x.map(|x| scaled_to_micros(x, scale)))
                .collect();
            to_datetime(name, v)
        }
        (Logical::TimestampPlain | Logical::TimestampTz, ArrowType::Struct(_)) => {
            let scale = meta_scale(field)?;
            let mut v = Vec::new();
            for a in arrays {
                v.extend(struct_timestamps(field, a.as_struct(), scale)?);
            }
            to_datetime(name, v)
        }
        (Logical::TimestampPlain | Logical::Unknown, ArrowType::Timestamp(unit, None)) => {
            let per_second: i64 = match unit {
                ArrowUnit::Second => 1,
                ArrowUnit::Millisecond => 1_000,
                ArrowUnit::Microsecond => 1_000_000,
                ArrowUnit::Nanosecond => 1_000_000_000,
            };
            let v: Vec<Option<i64>> = arrays
                .iter()
                .flat_map(|a| timestamp_values(a))
                .map(|x| x.map(|x| rescale(x, per_second, 1_000_000)))
                .collect();
            to_datetime(name, v)
        }
        _ => Err(unsupported(
            field,
            lt,
            "a Snowflake Arrow encoding of NUMBER, FLOAT, TEXT, BOOLEAN, DATE or TIMESTAMP",
        )),
    }
}

fn strings(arrays: &[&ArrayRef]) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for a in arrays {
        match a.data_type() {
            ArrowType::Utf8 => {
                out.extend(a.as_string::<i32>().iter().map(|s| s.map(str::to_string)))
            }
            ArrowType::LargeUtf8 => {
                out.extend(a.as_string::<i64>().iter().map(|s| s.map(str::to_string)))
            }
            _ => out.extend(a.as_string_view().iter().map(|s| s.map(str::to_string))),
        }
    }
    out
}

fn floats(arrays: &[&ArrayRef]) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for a in arrays {
        match a.data_type() {
            ArrowType::Float32 => out.extend(
                a.as_primitive::<Float32Type>()
                    .iter()
                    .map(|x| x.map(f64::from)),
            ),
            _ => out.extend(a.as_primitive::<Float64Type>().iter()),
        }
    }
    out
}

/// Integer arrays of any width (the batches of one column may differ:
/// Snowflake picks the narrowest width per batch), as i64.
fn ints(arrays: &[&ArrayRef]) -> Vec<Option<i64>> {
    let mut out = Vec::new();
    for a in arrays {
        match a.data_type() {
            ArrowType::Int8 => out.extend(
                a.as_primitive::<Int8Type>()
                    .iter()
                    .map(|x| x.map(i64::from)),
            ),
            ArrowType::Int16 => out.extend(
                a.as_primitive::<Int16Type>()
                    .iter()
                    .map(|x| x.map(i64::from)),
            ),
            ArrowType::Int32 => out.extend(
                a.as_primitive::<Int32Type>()
                    .iter()
                    .map(|x| x.map(i64::from)),
            ),
            _ => out.extend(a.as_primitive::<Int64Type>().iter()),
        }
    }
    out
}

fn timestamp_values(a: &ArrayRef) -> Vec<Option<i64>> {
    use arrow_array::types::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
        TimestampSecondType,
    };
    match a.data_type() {
        ArrowType::Timestamp(ArrowUnit::Second, _) => {
            a.as_primitive::<TimestampSecondType>().iter().collect()
        }
        ArrowType::Timestamp(ArrowUnit::Millisecond, _) => a
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect(),
        ArrowType::Timestamp(ArrowUnit::Microsecond, _) => a
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect(),
        _ => a.as_primitive::<TimestampNanosecondType>().iter().collect(),
    }
}

/// `value` counted in `1/from` seconds, as `1/to` seconds (floor).
fn rescale(value: i64, from: i64, to: i64) -> i64 {
    if from == to {
        value
    } else if from > to {
        value.div_euclid(from / to)
    } else {
        value.saturating_mul(to / from)
    }
}

/// A value counted in `10^-scale` seconds, as microseconds.
fn scaled_to_micros(value: i64, scale: i32) -> i64 {
    if scale <= 6 {
        value.saturating_mul(10i64.pow((6 - scale) as u32))
    } else {
        value.div_euclid(10i64.pow((scale - 6).min(18) as u32))
    }
}

/// Timestamps sent as a struct: {epoch, fraction} (NTZ/LTZ, scale > 7:
/// seconds + nanoseconds), {epoch, timezone} (TZ, scale ≤ 3: epoch scaled by
/// `10^scale`) or {epoch, fraction, timezone} (TZ, scale > 3). The timezone
/// is the offset in minutes plus 1440; the result is the local wall clock.
fn struct_timestamps(field: &Field, s: &StructArray, scale: i32) -> Result<Vec<Option<i64>>> {
    let child = |n: &str| s.column_by_name(n);
    let bad = |what: &str| {
        SourceError::Encoding {
        column: field.name().clone(),
        expected: "a timestamp struct {epoch: Int64, fraction: Int32[, timezone: Int32]} or {epoch: Int64, timezone: Int32}".into(),
        found: format!("{what} in {}", field.data_type()),
    }
    };
    let epoch = child("epoch").ok_or_else(|| bad("no `epoch` child"))?;
    if epoch.data_type() != &ArrowType::Int64 {
        return Err(bad("an `epoch` that is not Int64"));
    }
    let epoch = epoch.as_primitive::<Int64Type>();
    let fraction = child("fraction").map(|f| ints(&[f]));
    let tz = child("timezone").map(|t| ints(&[t]));
    let mut out = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        if s.is_null(i) || epoch.is_null(i) {
            out.push(None);
            continue;
        }
        let e = epoch.value(i);
        let micros = match &fraction {
            Some(f) => {
                let ns = f[i].unwrap_or(0);
                e.saturating_mul(1_000_000)
                    .saturating_add(ns.div_euclid(1000))
            }
            None => scaled_to_micros(e, scale),
        };
        let offset_minutes = tz
            .as_ref()
            .and_then(|t| t[i])
            .map(|t| t - 1440)
            .unwrap_or(0);
        out.push(Some(micros.saturating_add(offset_minutes * 60_000_000)));
    }
    Ok(out)
}

fn to_date(name: &str, days: Vec<Option<i32>>) -> Result<Series> {
    Series::new(name.into(), days)
        .cast(&DataType::Date)
        .map_err(|e| SourceError::Encoding {
            column: name.to_string(),
            expected: "day counts since 1970-01-01".into(),
            found: e.to_string(),
        })
}

fn to_datetime(name: &str, micros: Vec<Option<i64>>) -> Result<Series> {
    Series::new(name.into(), micros)
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .map_err(|e| SourceError::Encoding {
            column: name.to_string(),
            expected: "microseconds since 1970-01-01".into(),
            found: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    //! Hand-built batches in the encodings real Snowflake sends (and the
    //! ones fakesnow sends), checked value by value.

    use std::sync::Arc;

    use arrow_array::{
        BooleanArray, Date32Array, Decimal128Array, Float64Array, Int8Array, Int16Array,
        Int32Array, Int64Array, StringArray,
    };
    use arrow_schema::{Fields, Schema};
    use chrono::{NaiveDate, NaiveDateTime};

    use super::*;

    fn sf_field(name: &str, dt: ArrowType, logical: &str, scale: i32, precision: i32) -> Field {
        Field::new(name, dt, true).with_metadata(HashMap::from([
            ("logicalType".to_string(), logical.to_string()),
            ("scale".to_string(), scale.to_string()),
            ("precision".to_string(), precision.to_string()),
            ("charLength".to_string(), "0".to_string()),
        ]))
    }

    fn batch(fields: Vec<Field>, arrays: Vec<ArrayRef>) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("valid batch")
    }

    fn micros(s: &str) -> i64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .expect("timestamp")
            .and_utc()
            .timestamp_micros()
    }

    fn f64s(df: &DataFrame, c: &str) -> Vec<Option<f64>> {
        df.column(c).expect(c).f64().expect("f64").iter().collect()
    }

    fn i64s(df: &DataFrame, c: &str) -> Vec<Option<i64>> {
        df.column(c).expect(c).i64().expect("i64").iter().collect()
    }

    fn datetimes(df: &DataFrame, c: &str) -> Vec<Option<i64>> {
        let col = df.column(c).expect(c);
        assert_eq!(
            col.dtype(),
            &DataType::Datetime(TimeUnit::Microseconds, None)
        );
        col.cast(&DataType::Int64)
            .expect("cast")
            .i64()
            .expect("i64")
            .iter()
            .collect()
    }

    #[test]
    fn number_scaled_integers_become_floats_by_the_metadata_scale() {
        // NUMBER(12,2) as Snowflake sends it: the narrowest integer holding value × 100.
        let b = batch(
            vec![
                sf_field("UNIT_PRICE", ArrowType::Int32, "FIXED", 2, 12),
                sf_field("DISCOUNT", ArrowType::Int16, "FIXED", 4, 5),
                sf_field("QTY", ArrowType::Int8, "FIXED", 0, 38),
            ],
            vec![
                Arc::new(Int32Array::from(vec![Some(123_456), None, Some(-5)])),
                Arc::new(Int16Array::from(vec![Some(1500), Some(0), Some(9999)])),
                Arc::new(Int8Array::from(vec![Some(3), Some(1), None])),
            ],
        );
        let df = batches_to_frame(&[b]).expect("normalised");
        assert_eq!(
            f64s(&df, "UNIT_PRICE"),
            vec![Some(1234.56), None, Some(-0.05)]
        );
        assert_eq!(
            f64s(&df, "DISCOUNT"),
            vec![Some(0.15), Some(0.0), Some(0.9999)]
        );
        assert_eq!(i64s(&df, "QTY"), vec![Some(3), Some(1), None]);
    }

    #[test]
    fn integer_widths_may_differ_between_batches_of_one_column() {
        let f = || vec![sf_field("N", ArrowType::Int8, "FIXED", 0, 38)];
        let f2 = || vec![sf_field("N", ArrowType::Int64, "FIXED", 0, 38)];
        let b1 = batch(f(), vec![Arc::new(Int8Array::from(vec![1i8, 2]))]);
        let b2 = RecordBatch::try_new(
            Arc::new(Schema::new(f2())),
            vec![Arc::new(Int64Array::from(vec![5_000_000_000i64]))],
        )
        .expect("batch");
        let df = batches_to_frame(&[b1, b2]).expect("normalised");
        assert_eq!(i64s(&df, "N"), vec![Some(1), Some(2), Some(5_000_000_000)]);
    }

    #[test]
    fn decimals_use_their_own_scale() {
        let prices = Decimal128Array::from(vec![Some(1999i128), None, Some(100_000)])
            .with_precision_and_scale(12, 2)
            .expect("decimal");
        let ids = Decimal128Array::from(vec![Some(7i128), Some(8), Some(9)])
            .with_precision_and_scale(38, 0)
            .expect("decimal");
        let b = batch(
            vec![
                sf_field("P", ArrowType::Decimal128(12, 2), "FIXED", 2, 12),
                sf_field("ID", ArrowType::Decimal128(38, 0), "FIXED", 0, 38),
            ],
            vec![Arc::new(prices), Arc::new(ids)],
        );
        let df = batches_to_frame(&[b]).expect("normalised");
        assert_eq!(f64s(&df, "P"), vec![Some(19.99), None, Some(1000.0)]);
        assert_eq!(i64s(&df, "ID"), vec![Some(7), Some(8), Some(9)]);
    }

    #[test]
    fn timestamp_ntz_as_scaled_int64() {
        // TIMESTAMP_NTZ(3) and TIMESTAMP_NTZ(9) as Int64 counts of 10^-scale seconds.
        let t = micros("2024-10-03 00:00:00.123456");
        let b = batch(
            vec![
                sf_field("MS", ArrowType::Int64, "TIMESTAMP_NTZ", 3, 0),
                sf_field("NS", ArrowType::Int64, "TIMESTAMP_NTZ", 9, 0),
                sf_field("S", ArrowType::Int64, "TIMESTAMP_LTZ", 0, 0),
            ],
            vec![
                Arc::new(Int64Array::from(vec![Some(t / 1000), None])),
                Arc::new(Int64Array::from(vec![Some(t * 1000 + 789), Some(-1)])),
                Arc::new(Int64Array::from(vec![Some(t / 1_000_000), Some(0)])),
            ],
        );
        let df = batches_to_frame(&[b]).expect("normalised");
        assert_eq!(datetimes(&df, "MS"), vec![Some(t / 1000 * 1000), None]);
        // Below a microsecond: floor, also before 1970.
        assert_eq!(datetimes(&df, "NS"), vec![Some(t), Some(-1)]);
        assert_eq!(
            datetimes(&df, "S"),
            vec![Some(t / 1_000_000 * 1_000_000), Some(0)]
        );
    }

    #[test]
    fn timestamp_ntz_as_epoch_fraction_struct() {
        let t = micros("2024-07-05 23:59:59.5");
        let fields = Fields::from(vec![
            Field::new("epoch", ArrowType::Int64, false),
            Field::new("fraction", ArrowType::Int32, false),
        ]);
        let s = StructArray::new(
            fields.clone(),
            vec![
                Arc::new(Int64Array::from(vec![t.div_euclid(1_000_000), -1])),
                Arc::new(Int32Array::from(vec![500_000_000, 999_999_000])),
            ],
            Some(vec![true, true].into()),
        );
        let nulls = StructArray::new(
            fields.clone(),
            vec![
                Arc::new(Int64Array::from(vec![0i64])),
                Arc::new(Int32Array::from(vec![0])),
            ],
            Some(vec![false].into()),
        );
        let f = sf_field("ORDER_TS", ArrowType::Struct(fields), "TIMESTAMP_NTZ", 9, 0);
        let df = batches_to_frame(&[
            batch(vec![f.clone()], vec![Arc::new(s)]),
            batch(vec![f], vec![Arc::new(nulls)]),
        ])
        .expect("normalised");
        assert_eq!(datetimes(&df, "ORDER_TS"), vec![Some(t), Some(-1), None]);
    }

    #[test]
    fn timestamp_tz_struct_is_read_as_its_wall_clock() {
        // 2024-01-10 10:00:00 at UTC−03:00 = 13:00:00 UTC; timezone = offset + 1440.
        let utc = micros("2024-01-10 13:00:00");
        let local = micros("2024-01-10 10:00:00");
        let fields = Fields::from(vec![
            Field::new("epoch", ArrowType::Int64, false),
            Field::new("timezone", ArrowType::Int32, false),
        ]);
        let s = StructArray::new(
            fields.clone(),
            vec![
                Arc::new(Int64Array::from(vec![utc / 1000])),
                Arc::new(Int32Array::from(vec![1440 - 180])),
            ],
            None,
        );
        let f = sf_field("TS", ArrowType::Struct(fields), "TIMESTAMP_TZ", 3, 0);
        let df = batches_to_frame(&[batch(vec![f], vec![Arc::new(s)])]).expect("normalised");
        assert_eq!(datetimes(&df, "TS"), vec![Some(local)]);
    }

    #[test]
    fn dates_strings_floats_and_booleans() {
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).expect("date");
        let days = (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32;
        let b = batch(
            vec![
                sf_field("D", ArrowType::Date32, "DATE", 0, 0),
                sf_field("D2", ArrowType::Int32, "DATE", 0, 0),
                sf_field("CITY", ArrowType::Utf8, "TEXT", 0, 0),
                sf_field("LAT", ArrowType::Float64, "REAL", 0, 0),
                sf_field("OK", ArrowType::Boolean, "BOOLEAN", 0, 0),
            ],
            vec![
                Arc::new(Date32Array::from(vec![Some(days), None])),
                Arc::new(Int32Array::from(vec![Some(days), Some(0)])),
                Arc::new(StringArray::from(vec![Some("São Paulo"), None])),
                Arc::new(Float64Array::from(vec![Some(-23.5505), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
            ],
        );
        let df = batches_to_frame(&[b]).expect("normalised");
        for c in ["D", "D2"] {
            let col = df.column(c).expect(c);
            assert_eq!(col.dtype(), &DataType::Date);
            let v: Vec<Option<i32>> = col
                .cast(&DataType::Int32)
                .expect("cast")
                .i32()
                .expect("i32")
                .iter()
                .collect();
            assert_eq!(v[0], Some(days), "{c}");
        }
        let city: Vec<Option<&str>> = df
            .column("CITY")
            .expect("city")
            .str()
            .expect("str")
            .iter()
            .collect();
        assert_eq!(city, vec![Some("São Paulo"), None]);
        assert_eq!(f64s(&df, "LAT"), vec![Some(-23.5505), None]);
        let ok: Vec<Option<bool>> = df
            .column("OK")
            .expect("ok")
            .bool()
            .expect("bool")
            .iter()
            .collect();
        assert_eq!(ok, vec![Some(true), None]);
    }

    #[test]
    fn fields_without_metadata_go_by_the_arrow_type() {
        let b = batch(
            vec![
                Field::new("n", ArrowType::Int64, true),
                Field::new(
                    "ts",
                    ArrowType::Timestamp(ArrowUnit::Nanosecond, None),
                    true,
                ),
            ],
            vec![
                Arc::new(Int64Array::from(vec![42i64])),
                Arc::new(arrow_array::TimestampNanosecondArray::from(vec![1_500i64])),
            ],
        );
        let df = batches_to_frame(&[b]).expect("normalised");
        assert_eq!(i64s(&df, "n"), vec![Some(42)]);
        assert_eq!(datetimes(&df, "ts"), vec![Some(1)]);
    }

    #[test]
    fn an_unknown_encoding_is_an_error_naming_the_column() {
        let b = batch(
            vec![sf_field("BLOB", ArrowType::Binary, "BINARY", 0, 0)],
            vec![Arc::new(arrow_array::BinaryArray::from(vec![&b"x"[..]]))],
        );
        let err = batches_to_frame(&[b])
            .expect_err("binary is not a contract type")
            .to_string();
        assert!(err.contains("BLOB") && err.contains("Binary"), "{err}");
    }

    #[test]
    fn a_bad_scale_is_an_error() {
        let b = batch(
            vec![
                sf_field("X", ArrowType::Int64, "FIXED", 0, 0).with_metadata(HashMap::from([
                    ("logicalType".to_string(), "FIXED".to_string()),
                    ("scale".to_string(), "two".to_string()),
                ])),
            ],
            vec![Arc::new(Int64Array::from(vec![1i64]))],
        );
        let err = batches_to_frame(&[b]).expect_err("bad scale").to_string();
        assert!(err.contains("scale") && err.contains("two"), "{err}");
    }

    #[test]
    fn no_batch_gives_an_empty_frame() {
        let df = batches_to_frame(&[]).expect("empty");
        assert_eq!((df.height(), df.width()), (0, 0));
    }
}
