//! Fast path: records read straight from the JSON text into feature rows.
//!
//! The happy path of `/predict` and `/predict/batch`, without building a
//! `serde_json::Value` (one map and one `String` per field). It accepts
//! exactly what `parse_record` accepts and reads the same numbers (serde_json
//! parses a number the same way for a `Value` and for an `f64`); on anything
//! else it gives up (`None`) and the route reads the body again the slow way,
//! whose errors name the field. Duplicate keys: the last one wins, as in a
//! `Value`.

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
