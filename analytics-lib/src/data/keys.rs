//! String keys (order, customer and product ids) resolved to row numbers.
//!
//! The checks across tables in final cleaning ("is this line's order
//! known?") and the joins of the sales view look each id up once in a hash
//! map of the other table's ids and from then on work with row numbers:
//! integer codes that index plain vectors. This replaces polars' `is_in`
//! against large id lists and its string joins, whose cost grew faster than
//! the data (a 10 M-line cleaning spent most of its 29 s there).

use std::borrow::Cow;
use std::hash::BuildHasher;

use hashbrown::hash_table::{Entry, HashTable};
use polars::prelude::*;
use rayon::prelude::*;

/// The row number given to a null or unknown key.
pub const NONE: IdxSize = IdxSize::MAX;

/// Rows per parallel task when resolving keys.
const TASK_ROWS: usize = 1 << 15;

/// How far past the previous value's row a lookup in sequence looks: the
/// orders of a customer come together in the customers' order, but some
/// customers have no order (at 10 M generated lines 6.5 % of the orders
/// are 2 or more customers on from the previous order's, 0.0005 % 5 or
/// more), and each miss is a probe at random in a table larger than the
/// caches.
const AHEAD: usize = 4;

/// The row of every distinct value of a string column: its first
/// occurrence.
///
/// A hash table of row numbers, not of the values: a slot is 4 bytes (the
/// row holding the value) and a probe compares against the column itself.
/// The row the index answers is that row, or its new number once the rows
/// are renumbered ([`KeyIndex::retain_rows`]). A map keyed by `&str` took
/// 24 bytes a slot, about 200 MB of fresh memory for the 6.4 M orders of
/// 10 M lines, and its probes read farther apart.
pub struct KeyIndex<'a> {
    /// The indexed values, one chunk (a column in several is indexed on a
    /// one-chunk copy).
    ids: Cow<'a, StringChunked>,
    /// One table per part of the hash space ([`part_of`]), built in
    /// parallel.
    slots: Vec<HashTable<IdxSize>>,
    hasher: PlRandomState,
    /// Each row's first-occurrence flag. Order lines usually come in the
    /// order of their orders, so a probe first tries the row its
    /// predecessor found and the few after it ([`AHEAD`]): the same text at
    /// a row holding its first occurrence is exactly the row the table
    /// would give, found by reading the column in order instead of a hash
    /// probe at random (at 10 M lines the table outgrows the caches and the
    /// probes were most of cleaning's CPU time). Any other order falls back
    /// to the table.
    sequence: Vec<bool>,
    /// The row the index answers for each row of the column, once the rows
    /// are renumbered ([`KeyIndex::retain_rows`]; [`NONE`] for a removed
    /// one); until then a row answers itself.
    renumbered: Option<Vec<IdxSize>>,
}

/// At most this many tables in a [`KeyIndex`] (one per thread, rounded up
/// to a power of two).
const MAX_PARTS: usize = 16;

/// The part of the hash space `hash` falls in, of `parts` (a power of two):
/// bits the tables themselves do not use (hashbrown places a value by the
/// low bits and tags it with the top seven).
#[inline]
fn part_of(hash: u64, parts: usize) -> usize {
    (hash >> 32) as usize & (parts - 1)
}

/// The values of a one-chunk string column (none for an empty one).
fn one_array(ids: &StringChunked) -> Option<&<StringType as PolarsDataType>::Array> {
    debug_assert!(ids.chunks().len() <= 1);
    ids.downcast_iter().next()
}

impl<'a> KeyIndex<'a> {
    /// Index the values of `column` (nulls are not indexed).
    pub fn new(column: &'a StringChunked) -> Self {
        Self::with_first_flags(column).0
    }

    /// Index the values of `column` and flag each row that holds the first
    /// occurrence of its value, as polars' `is_first_distinct` does (the
    /// first null counts as a value too).
    pub fn with_first_flags(column: &'a StringChunked) -> (Self, Vec<bool>) {
        let ids = if column.chunks().len() <= 1 {
            Cow::Borrowed(column)
        } else {
            Cow::Owned(column.rechunk().into_owned())
        };
        let hasher = PlRandomState::default();
        let mut first = vec![false; column.len()];
        let mut slots = Vec::new();
        if let Some(arr) = one_array(&ids) {
            // One table per part of the hash space, built side by side: each
            // task reads every value and keeps those of its part (the
            // inserts, at random places in a table larger than the caches,
            // are the cost; hashing a value twice is not).
            let parts = rayon::current_num_threads()
                .next_power_of_two()
                .min(MAX_PARTS);
            let expected = (ids.len() - ids.null_count()) / parts;
            let built: Vec<(HashTable<IdxSize>, Vec<IdxSize>)> = (0..parts)
                .into_par_iter()
                .map(|part| {
                    let mut table = HashTable::with_capacity(expected + expected / 8);
                    let mut firsts = Vec::with_capacity(expected);
                    for (row, value) in arr.iter().enumerate() {
                        let Some(v) = value else { continue };
                        let hash = hasher.hash_one(v);
                        if part_of(hash, parts) != part {
                            continue;
                        }
                        if let Entry::Vacant(slot) = table.entry(
                            hash,
                            |&at: &IdxSize| arr.value(at as usize) == v,
                            |&at: &IdxSize| hasher.hash_one(arr.value(at as usize)),
                        ) {
                            let row = row as IdxSize;
                            slot.insert(row);
                            firsts.push(row);
                        }
                    }
                    (table, firsts)
                })
                .collect();
            for (table, firsts) in built {
                for row in firsts {
                    first[row as usize] = true;
                }
                slots.push(table);
            }
            // The first null counts as a first occurrence too.
            if ids.null_count() > 0
                && let Some(row) = arr.iter().position(|v| v.is_none())
            {
                first[row] = true;
            }
        }
        let index = KeyIndex {
            ids,
            slots,
            hasher,
            sequence: first.clone(),
            renumbered: None,
        };
        (index, first)
    }

    /// The index of the rows `keep` flags, renumbered among them
    /// ([`positions_after_filter`]); a value whose indexed row is removed
    /// is no longer indexed. This is the index of the kept rows built
    /// anew when no value keeps a row other than its first (as after a
    /// duplicate check that keeps first occurrences only), without hashing
    /// every value again.
    /// Lookups in sequence still apply: a value found at a first
    /// occurrence answers that row's new number.
    pub fn retain_rows(mut self, keep: &[bool]) -> Self {
        let new = positions_after_filter(keep);
        // Renumbered again, the answers compose.
        let renumbered = match self.renumbered.take() {
            None => new,
            Some(before) => before
                .into_iter()
                .map(|r| if r == NONE { NONE } else { new[r as usize] })
                .collect(),
        };
        for table in &mut self.slots {
            table.retain(|&mut at| renumbered[at as usize] != NONE);
        }
        self.renumbered = Some(renumbered);
        self
    }

    /// Distinct values indexed.
    pub fn len(&self) -> usize {
        self.slots.iter().map(HashTable::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(HashTable::is_empty)
    }

    /// The row of `key`, if indexed.
    pub fn get(&self, key: &str) -> Option<IdxSize> {
        let arr = one_array(&self.ids)?;
        self.find(arr, key).and_then(|at| self.answer(at))
    }

    /// The row of the column holding `key`, if indexed.
    #[inline]
    fn find(&self, arr: &<StringType as PolarsDataType>::Array, key: &str) -> Option<IdxSize> {
        let hash = self.hasher.hash_one(key);
        self.slots[part_of(hash, self.slots.len())]
            .find(hash, |&at| arr.value(at as usize) == key)
            .copied()
    }

    /// The row the index answers for the value at row `at` of the column
    /// (`None` for a row renumbering removed).
    #[inline]
    fn answer(&self, at: IdxSize) -> Option<IdxSize> {
        match &self.renumbered {
            None => Some(at),
            Some(rows) => Some(rows[at as usize]).filter(|&r| r != NONE),
        }
    }

    /// The row holding `v` when it is `previous` or one of the [`AHEAD`]
    /// rows after it, at the first occurrence of its value: the row the
    /// table holds too, if any.
    #[inline]
    fn in_sequence(
        &self,
        arr: &<StringType as PolarsDataType>::Array,
        previous: usize,
        v: &str,
    ) -> Option<IdxSize> {
        (0..=AHEAD)
            .map(|d| previous.wrapping_add(d))
            .find(|&r| r < arr.len() && self.sequence[r] && arr.get(r) == Some(v))
            .map(|r| r as IdxSize)
    }

    /// The row of each value of `column` ([`NONE`] for a null or a value
    /// not indexed), looked up in parallel.
    pub fn resolve(&self, column: &StringChunked) -> Vec<IdxSize> {
        let mut out = vec![NONE; column.len()];
        let Some(indexed) = one_array(&self.ids) else {
            return out;
        };
        let mut start = 0;
        for arr in column.downcast_iter() {
            let len = arr.len();
            out[start..start + len]
                .par_chunks_mut(TASK_ROWS)
                .enumerate()
                .for_each(|(task, slots)| {
                    let base = task * TASK_ROWS;
                    // The indexed row the previous value found (none yet).
                    let mut previous = usize::MAX;
                    for (j, out) in slots.iter_mut().enumerate() {
                        let Some(v) = arr.get(base + j) else {
                            continue;
                        };
                        let at = self
                            .in_sequence(indexed, previous, v)
                            .or_else(|| self.find(indexed, v));
                        if let Some(at) = at {
                            // A removed row's value is not indexed.
                            *out = self.answer(at).unwrap_or(NONE);
                            previous = at as usize;
                        }
                    }
                });
            start += len;
        }
        out
    }
}

/// The row of every distinct value of a categorical column (product ids,
/// loaded as codes of one shared dictionary), by its code: a vector, not a
/// hash map; a line's product is one load.
pub struct CodeIndex {
    /// By code: the first row holding it, [`NONE`] when none does.
    rows: Vec<IdxSize>,
}

impl CodeIndex {
    /// Index the codes of `column` (nulls are not indexed).
    pub fn new(column: &UInt32Chunked) -> Self {
        Self::with_first_flags(column).0
    }

    /// Index the codes of `column` (nulls are not indexed) and flag each
    /// row that holds the first occurrence of its value, as
    /// [`KeyIndex::with_first_flags`] does for text.
    pub fn with_first_flags(column: &UInt32Chunked) -> (Self, Vec<bool>) {
        let size = column.max().map_or(0, |m| m as usize + 1);
        let mut rows = vec![NONE; size];
        let mut first = Vec::with_capacity(column.len());
        let mut seen_null = false;
        for (row, code) in column.iter().enumerate() {
            let is_first = match code {
                Some(c) => {
                    let slot = &mut rows[c as usize];
                    if *slot == NONE {
                        *slot = row as IdxSize;
                    }
                    *slot == row as IdxSize
                }
                None => !std::mem::replace(&mut seen_null, true),
            };
            first.push(is_first);
        }
        (CodeIndex { rows }, first)
    }

    /// As [`KeyIndex::retain_rows`].
    pub fn retain_rows(mut self, keep: &[bool]) -> Self {
        let renumbered = positions_after_filter(keep);
        for row in self.rows.iter_mut().filter(|r| **r != NONE) {
            *row = renumbered[*row as usize];
        }
        self
    }

    /// Distinct values indexed.
    pub fn len(&self) -> usize {
        self.rows.iter().filter(|&&r| r != NONE).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row of each code of `column` ([`NONE`] for a null or a code not
    /// indexed).
    pub fn resolve(&self, column: &UInt32Chunked) -> Vec<IdxSize> {
        column
            .iter()
            .map(|c| {
                c.and_then(|c| self.rows.get(c as usize).copied())
                    .unwrap_or(NONE)
            })
            .collect()
    }
}

/// The rows of a table as a polars index for `take`, [`NONE`] as null (a
/// row that is not found gives nulls, as a left join does). When every row
/// is found the vector becomes the index as it is (no copy: at 10 M lines
/// a copy is 40 MB of fresh memory).
pub fn take_index(rows: Vec<IdxSize>) -> IdxCa {
    if rows.contains(&NONE) {
        rows.iter()
            .map(|&r| (r != NONE).then_some(r))
            .collect::<IdxCa>()
    } else {
        IdxCa::from_vec(PlSmallStr::EMPTY, rows)
    }
}

/// [`take_index`]'s rows as a vector again, nulls as [`NONE`]: the index's
/// own buffer when nothing else holds it (no copy), else a copy.
pub fn index_rows(index: IdxCa) -> Vec<IdxSize> {
    if index.null_count() == 0 && index.chunks().len() == 1 {
        let (_, values, _) = index
            .downcast_into_iter()
            .next()
            .expect("one chunk")
            .into_inner();
        return values
            .into_mut()
            .either(|shared| shared.to_vec(), |own| own);
    }
    index.iter().map(|r| r.unwrap_or(NONE)).collect()
}

/// The rows of `ids` in ascending order of their values, nulls first, equal
/// values in row order (what polars' `arg_sort` gives), and the values in
/// that order (`ids.take(rows)`), without comparing strings at every step:
/// short ids as one integer each ([`sorted_short`]), others by packed
/// 16-byte prefixes ([`sorted_rows_by_prefix`]). Short ids come out of the
/// sort itself, written in order: a gather of the values at the sorted rows
/// reads them at random (at 10 M lines, 2.6 M customer ids over 41 MB).
pub fn sorted_with_values(ids: &StringChunked) -> (IdxCa, StringChunked) {
    sorted_short(ids).unwrap_or_else(|| {
        let rows = sorted_rows_by_prefix(ids);
        let values = ids.take(&rows).expect("sorted rows are rows of the ids");
        (rows, values)
    })
}

/// The id bytes of a short id's sort key ([`sorted_short`]).
const SHORT_ID_BYTES: usize = 16 - std::mem::size_of::<IdxSize>();

/// [`sorted_with_values`] when every id is at most 12 bytes without a NUL
/// byte (the generator's ids, and most systems' short codes): each row is
/// one integer, the id's bytes (zero-padded, big-endian: without NUL bytes
/// that is the text's order) above the row number, so equal ids fall in
/// row order and the sort compares plain integers, half the bytes of a
/// prefix-and-row pair; the sorted integers hold both the rows and the
/// values. `None` at the first id that does not fit.
fn sorted_short(ids: &StringChunked) -> Option<(IdxCa, StringChunked)> {
    let mut nulls = Vec::new();
    let mut keyed: Vec<u128> = Vec::with_capacity(ids.len() - ids.null_count());
    for (row, v) in ids.iter().enumerate() {
        match v {
            None => nulls.push(row as IdxSize),
            Some(v) => {
                let v = v.as_bytes();
                if v.len() > SHORT_ID_BYTES || v.contains(&0) {
                    return None;
                }
                let mut bytes = [0u8; 16];
                bytes[..v.len()].copy_from_slice(v);
                bytes[SHORT_ID_BYTES..].copy_from_slice(&(row as IdxSize).to_be_bytes());
                keyed.push(u128::from_be_bytes(bytes));
            }
        }
    }
    keyed.par_sort_unstable();
    let n_nulls = nulls.len();
    // The low bytes are the row (the truncating cast keeps them); the high
    // ones the id, up to its first NUL (padding: an id holds none).
    let mut rows = nulls;
    rows.extend(keyed.iter().map(|&k| k as IdxSize));
    let mut values = StringChunkedBuilder::new(ids.name().clone(), ids.len());
    for _ in 0..n_nulls {
        values.append_null();
    }
    for k in &keyed {
        let bytes = k.to_be_bytes();
        let id = &bytes[..SHORT_ID_BYTES];
        let len = id.iter().position(|&b| b == 0).unwrap_or(SHORT_ID_BYTES);
        // The bytes are a prefix of a `str`'s, cut at its end: valid UTF-8.
        let id = std::str::from_utf8(&id[..len]).expect("an id's own bytes");
        values.append_value(id);
    }
    Some((IdxCa::from_vec(PlSmallStr::EMPTY, rows), values.finish()))
}

/// The sorted rows of [`sorted_with_values`] for any ids: each value's
/// first 16 bytes packed into a big-endian integer (zero-padded), so most
/// comparisons are one integer comparison; only values that share those 16
/// bytes are compared whole.
fn sorted_rows_by_prefix(ids: &StringChunked) -> IdxCa {
    let mut nulls = Vec::new();
    let mut keyed: Vec<(u128, IdxSize)> = Vec::with_capacity(ids.len() - ids.null_count());
    for (row, v) in ids.iter().enumerate() {
        match v {
            None => nulls.push(row as IdxSize),
            Some(v) => {
                let mut bytes = [0u8; 16];
                let n = v.len().min(16);
                bytes[..n].copy_from_slice(&v.as_bytes()[..n]);
                keyed.push((u128::from_be_bytes(bytes), row as IdxSize));
            }
        }
    }
    let value = |row: IdxSize| ids.get(row as usize).unwrap_or_default();
    keyed.par_sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| value(a.1).cmp(value(b.1)))
            .then(a.1.cmp(&b.1))
    });
    nulls.extend(keyed.into_iter().map(|(_, row)| row));
    IdxCa::from_vec(PlSmallStr::EMPTY, nulls)
}

/// For each row kept by `keep`, its position among the kept rows; [`NONE`]
/// for a removed row. Maps row numbers of a table to row numbers of its
/// filtered copy.
pub fn positions_after_filter(keep: &[bool]) -> Vec<IdxSize> {
    let mut next: IdxSize = 0;
    keep.iter()
        .map(|&k| {
            if k {
                next += 1;
                next - 1
            } else {
                NONE
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What polars' `is_first_distinct` flags for `key` over `df`: the
    /// reference the first-occurrence flags of cleaning are held to.
    pub(crate) fn polars_first_distinct(df: &DataFrame, key: Expr) -> Vec<bool> {
        df.clone()
            .lazy()
            .select([key.is_first_distinct()])
            .collect()
            .expect("is_first_distinct")
            .columns()[0]
            .bool()
            .expect("bool")
            .iter()
            .map(|v| v == Some(true))
            .collect()
    }

    fn strings(v: &[Option<&str>]) -> StringChunked {
        StringChunked::from_iter_options(PlSmallStr::EMPTY, v.iter().copied())
    }

    /// A seeded xorshift stream for the randomised tests.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// What a plain map from each id to its first row answers for each
    /// probe ([`NONE`] for a null or an id never indexed): the reference the
    /// index must match.
    fn first_rows_of<S: AsRef<str>>(indexed: &[Option<S>], probes: &[Option<S>]) -> Vec<IdxSize> {
        let mut first: std::collections::HashMap<&str, IdxSize> = Default::default();
        for (row, v) in indexed.iter().enumerate() {
            if let Some(v) = v {
                first.entry(v.as_ref()).or_insert(row as IdxSize);
            }
        }
        probes
            .iter()
            .map(|p| {
                p.as_ref()
                    .and_then(|p| first.get(p.as_ref()).copied())
                    .unwrap_or(NONE)
            })
            .collect()
    }

    /// Probes that follow the indexed rows in order (the sequence path)
    /// give the map's rows exactly: a later copy of an id met in sequence
    /// resolves to its first row, nulls and unknown ids to nothing, jumps
    /// and reversals fall back to the table, also once the rows are
    /// renumbered; a chunked column (indexed on a one-chunk copy) gives the
    /// same.
    #[test]
    fn resolving_in_sequence_gives_the_first_rows_as_the_map_does() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let indexed: Vec<Option<String>> = (0..2_000)
            .map(|i| match next() % 20 {
                0 => None,
                // A copy of an earlier id (or of the one just before).
                1 | 2 if i > 0 => Some(format!("o{}", next() % i)),
                _ => Some(format!("o{i}")),
            })
            .collect();
        // Probes: mostly the indexed rows in order, some repeated (lines of
        // one order), some jumps, unknown ids and nulls.
        let mut probes: Vec<Option<String>> = Vec::new();
        let mut at = 0usize;
        while at < indexed.len() {
            match next() % 10 {
                0 => at = (next() % indexed.len() as u64) as usize,
                1 => probes.push(Some("unknown".into())),
                2 => probes.push(None),
                3 | 4 => probes.push(indexed[at].clone()),
                _ => {
                    probes.push(indexed[at].clone());
                    at += 1;
                }
            }
        }
        let expected = first_rows_of(&indexed, &probes);
        let one_chunk = strings(&indexed.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
        let probe = strings(&probes.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
        let (index, first) = KeyIndex::with_first_flags(&one_chunk);
        assert_eq!(index.resolve(&probe), expected);
        // Renumbered to the rows a cleaning keeps (first occurrences, some
        // removed), once and then again: the lookups in sequence answer the
        // new numbers, and nothing for a removed row's id.
        let keep: Vec<bool> = first
            .iter()
            .map(|&f| f && !next().is_multiple_of(7))
            .collect();
        let again: Vec<bool> = (0..keep.iter().filter(|k| **k).count())
            .map(|_| !next().is_multiple_of(9))
            .collect();
        let number = |rows: &[IdxSize], keep: &[bool]| -> Vec<IdxSize> {
            let new = positions_after_filter(keep);
            rows.iter()
                .map(|&r| if r == NONE { NONE } else { new[r as usize] })
                .collect()
        };
        let once = number(&expected, &keep);
        assert!(once.iter().filter(|&&r| r != NONE).count() > probes.len() / 2);
        let index = index.retain_rows(&keep);
        assert_eq!(index.resolve(&probe), once);
        let index = index.retain_rows(&again);
        assert_eq!(index.resolve(&probe), number(&once, &again));
        let mut chunked = one_chunk.slice(0, 700);
        chunked
            .append(&one_chunk.slice(700, 2_000))
            .expect("append");
        // A column in several chunks is indexed on a one-chunk copy.
        let index = KeyIndex::new(&chunked);
        assert_eq!(index.resolve(&probe), expected);
    }

    /// The index by categorical code flags, keeps and resolves as the index
    /// by text does on the same ids.
    #[test]
    fn code_index_agrees_with_the_text_index() {
        let ids = [
            Some("p3"),
            None,
            Some("p1"),
            Some("p3"),
            Some("p2"),
            None,
            Some("p1"),
            Some("p9"),
        ];
        let categorical = |text: &StringChunked| {
            crate::kpi::categorical(&text.clone().with_name("product_id".into()).into_column())
                .expect("categorical")
        };
        let codes_of = |c: &Column| crate::kpi::category_codes(c).expect("codes");
        // Both held while coded: one dictionary (see `category_codes`).
        let text = strings(&ids);
        let probes = strings(&[Some("p1"), Some("p2"), Some("p3"), Some("p9"), None]);
        let (held, held_probes) = (categorical(&text), categorical(&probes));
        let codes = codes_of(&held);
        let (by_text, first_text) = KeyIndex::with_first_flags(&text);
        let (by_code, first_code) = CodeIndex::with_first_flags(&codes);
        assert_eq!(first_code, first_text);
        assert_eq!(by_code.len(), by_text.len());
        let keep = [true, true, false, true, true, false, true, false];
        let (by_text, by_code) = (by_text.retain_rows(&keep), by_code.retain_rows(&keep));
        let probe_codes = codes_of(&held_probes);
        assert_eq!(by_code.resolve(&probe_codes), by_text.resolve(&probes));
        // p1's first row (2) was removed: unknown; p3 at 0, p2 at 4 → 3.
        assert_eq!(by_code.resolve(&probe_codes), [NONE, 3, 0, NONE, NONE]);
        // A code beyond the indexed ones is unknown, not a panic.
        let other = UInt32Chunked::from_slice(PlSmallStr::EMPTY, &[u32::MAX - 1]);
        assert_eq!(by_code.resolve(&other), [NONE]);
    }

    /// Ids longer than a view holds inline (Olist's are 32 hex digits) are
    /// compared through the column's buffers, in a column of several
    /// chunks too; a slot stays 8 bytes whatever the id's length; one
    /// table or eight give the same flags, rows and renumbered rows.
    #[test]
    fn long_ids_in_chunks_resolve_as_a_map_does_with_any_number_of_tables() {
        let id = |i: u64| format!("{:032x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let values: Vec<Option<String>> = (0..3_000u64)
            .map(|i| match i % 11 {
                0 => None,
                // A later copy of an earlier id.
                5 => Some(id(i / 2)),
                _ => Some(id(i)),
            })
            .collect();
        let refs: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
        let mut column = strings(&refs[..1_000]);
        column.append(&strings(&refs[1_000..])).expect("append");
        assert_eq!(column.chunks().len(), 2);
        let distinct: std::collections::HashSet<&str> = refs.iter().flatten().copied().collect();
        let (index, first) = KeyIndex::with_first_flags(&column);
        let polars = polars_first_distinct(
            &column.clone().into_series().into_frame(),
            col(PlSmallStr::EMPTY),
        );
        assert_eq!(first, polars);
        assert_eq!(index.len(), distinct.len());
        let probes: Vec<Option<String>> = (0..4_000u64)
            .map(|i| (i % 13 != 0).then(|| id(i)))
            .collect();
        let probe = strings(&probes.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
        let expected = first_rows_of(&values, &probes);
        assert_eq!(index.resolve(&probe), expected);
        let seventh = first_rows_of(&values, &[Some(id(7))])[0];
        assert_ne!(seventh, NONE);
        assert_eq!(index.get(&id(7)), Some(seventh));
        // The same index whatever the number of tables (one per thread).
        for threads in [1, 3, 5] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            let (other, other_first) = pool.install(|| KeyIndex::with_first_flags(&column));
            assert_eq!(other.slots.len(), threads.next_power_of_two());
            assert_eq!(other_first, first);
            assert_eq!(other.resolve(&probe), expected);
            let keep: Vec<bool> = (0..column.len()).map(|r| first[r] && r % 3 != 0).collect();
            assert_eq!(
                other.retain_rows(&keep).resolve(&probe),
                KeyIndex::new(&column).retain_rows(&keep).resolve(&probe)
            );
        }
    }

    #[test]
    fn first_flags_match_polars_is_first_distinct() {
        let ca = strings(&[
            Some("a"),
            None,
            Some("b"),
            Some("a"),
            None,
            Some("c"),
            Some("b"),
        ]);
        let (index, first) = KeyIndex::with_first_flags(&ca);
        let polars = polars_first_distinct(
            &ca.clone().into_series().into_frame(),
            col(PlSmallStr::EMPTY),
        );
        assert_eq!(first, polars);
        assert_eq!(index.len(), 3);
        assert_eq!(index.get("a"), Some(0));
        assert_eq!(index.get("b"), Some(2));
        assert_eq!(index.get("z"), None);
    }

    #[test]
    fn retained_rows_index_as_the_kept_rows_built_anew() {
        let ca = strings(&[
            Some("a"),
            Some("b"),
            None,
            Some("a"),
            Some("c"),
            Some("d"),
            Some("b"),
        ]);
        let (index, first) = KeyIndex::with_first_flags(&ca);
        // Keep first occurrences only, and of those not "c" (row 4).
        let keep: Vec<bool> = first
            .iter()
            .enumerate()
            .map(|(r, &f)| f && r != 4 && ca.get(r).is_some())
            .collect();
        let retained = index.retain_rows(&keep);
        let kept = ca
            .filter(&BooleanChunked::from_slice(PlSmallStr::EMPTY, &keep))
            .expect("filter");
        let anew = KeyIndex::new(&kept);
        let probe = strings(&[Some("a"), Some("b"), Some("c"), Some("d"), Some("z"), None]);
        assert_eq!(retained.resolve(&probe), anew.resolve(&probe));
        assert_eq!(retained.resolve(&probe), vec![0, 1, NONE, 2, NONE, NONE]);
        assert_eq!(retained.len(), anew.len());
    }

    #[test]
    fn resolve_spans_chunks_and_marks_unknowns() {
        let keys = strings(&[Some("x"), Some("y")]);
        let index = KeyIndex::new(&keys);
        let mut probe = strings(&[Some("y"), None]);
        probe
            .append(&strings(&[Some("q"), Some("x")]))
            .expect("append");
        assert_eq!(probe.chunks().len(), 2);
        assert_eq!(index.resolve(&probe), vec![1, NONE, NONE, 0]);
    }

    #[test]
    fn positions_and_take_index() {
        assert_eq!(
            positions_after_filter(&[true, false, true, true]),
            vec![0, NONE, 1, 2]
        );
        let idx = take_index(vec![2, NONE, 0]);
        assert_eq!(idx.null_count(), 1);
        assert_eq!(idx.iter().collect::<Vec<_>>(), [Some(2), None, Some(0)]);
        assert_eq!(
            take_index(vec![3, 1, 0, 1]).iter().collect::<Vec<_>>(),
            [Some(3), Some(1), Some(0), Some(1)]
        );
        assert!(take_index(vec![]).is_empty());
        // Every row found: the rows are moved into the index, not copied.
        let rows: Vec<IdxSize> = vec![5, 4, 3];
        let at = rows.as_ptr();
        let idx = take_index(rows);
        let slice = idx.cont_slice().expect("one chunk without nulls");
        assert_eq!(slice, [5, 4, 3]);
        assert_eq!(slice.as_ptr(), at, "the rows are moved, not copied");
    }

    /// `index_rows` gives `take_index` its rows back: the same buffer when
    /// every row is found, `NONE` for the nulls otherwise.
    #[test]
    fn index_rows_undo_take_index() {
        let rows: Vec<IdxSize> = vec![3, 1, 4, 1, 5];
        let at = rows.as_ptr();
        let back = index_rows(take_index(rows));
        assert_eq!(back, [3, 1, 4, 1, 5]);
        assert_eq!(back.as_ptr(), at, "the rows are moved, not copied");
        let held = take_index(vec![7, 8]);
        assert_eq!(index_rows(held.clone()), [7, 8], "a shared index is copied");
        assert_eq!(held.get(1), Some(8));
        assert_eq!(index_rows(take_index(vec![2, NONE, 0])), [2, NONE, 0]);
    }

    /// `sorted_with_values` gives polars' `arg_sort` (nulls first, ties in row
    /// order), including values that share their first 16 bytes, values
    /// that differ only past them, a prefix of another value and an empty
    /// string.
    #[test]
    fn sorted_rows_match_polars_arg_sort_with_their_values() {
        let values = [
            Some("c8NUekybeUtY"),
            Some("0123456789abcdef-b"),
            None,
            Some("0123456789abcdef-a"),
            Some("0123456789abcdef"),
            Some("ab"),
            Some("ab\0"),
            Some(""),
            Some("c8NUekybeUtY"),
            None,
            Some("Zz"),
            Some("é"),
        ];
        let ca = StringChunked::from_iter_options(PlSmallStr::EMPTY, values.iter().copied());
        let ours: Vec<Option<IdxSize>> = sorted_with_values(&ca).0.iter().collect();
        let polars: Vec<Option<IdxSize>> = ca
            .clone()
            .into_series()
            .arg_sort(SortOptions::default().with_maintain_order(true))
            .iter()
            .collect();
        assert_eq!(ours, polars);
        assert_eq!(
            ours.iter().map(|r| r.expect("row")).collect::<Vec<_>>(),
            [2, 9, 7, 4, 3, 1, 10, 5, 6, 0, 8, 11]
        );
        assert!(sorted_short(&ca).is_none());
        let (rows, values) = sorted_with_values(&ca);
        assert_values_in_order(&ca, &rows, &values);
    }

    /// `values` is `ids` taken at `rows`, nulls included, under the ids'
    /// name.
    fn assert_values_in_order(ids: &StringChunked, rows: &IdxCa, values: &StringChunked) {
        let taken: Vec<Option<String>> = ids
            .take(rows)
            .expect("rows")
            .iter()
            .map(|v| v.map(str::to_string))
            .collect();
        let got: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_string)).collect();
        assert_eq!(got, taken);
        assert_eq!(values.name(), ids.name());
    }

    /// Ids of at most 12 bytes (the generator's customer ids are 12) take
    /// the one-integer path and sort as polars does: repeats in row order,
    /// nulls first, the empty id, a prefix before its extensions, bytes
    /// above ASCII; a 13-byte id or a NUL byte sends the column to the
    /// general path, with the same order.
    #[test]
    fn short_ids_sort_as_polars_arg_sort() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let alphabet = b"09AZaz_-";
        let mut values: Vec<Option<String>> = (0..5_000)
            .map(|_| {
                let len = (next() % 13) as usize;
                (!next().is_multiple_of(17)).then(|| {
                    (0..len)
                        .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                        .collect()
                })
            })
            .collect();
        values.extend([
            Some("é".into()),
            Some("".into()),
            Some("c8NUekybeUtY".into()),
        ]);
        let polars_order = |ca: &StringChunked| -> Vec<Option<IdxSize>> {
            ca.clone()
                .into_series()
                .arg_sort(SortOptions::default().with_maintain_order(true))
                .iter()
                .collect()
        };
        let ca = StringChunked::from_iter_options(
            "customer_id".into(),
            values.iter().map(|v| v.as_deref()),
        );
        let (short, sorted) = sorted_short(&ca).expect("every id fits");
        assert_eq!(short.iter().collect::<Vec<_>>(), polars_order(&ca));
        assert_values_in_order(&ca, &short, &sorted);
        assert_eq!(
            sorted_with_values(&ca).0.iter().collect::<Vec<_>>(),
            polars_order(&ca)
        );
        for odd in ["0123456789abc", "ab\0"] {
            let mut with_odd = values.clone();
            with_odd.insert(100, Some(odd.into()));
            let ca = StringChunked::from_iter_options(
                PlSmallStr::EMPTY,
                with_odd.iter().map(|v| v.as_deref()),
            );
            assert!(sorted_short(&ca).is_none());
            let (rows, sorted) = sorted_with_values(&ca);
            assert_values_in_order(&ca, &rows, &sorted);
            assert_eq!(
                sorted_with_values(&ca).0.iter().collect::<Vec<_>>(),
                polars_order(&ca)
            );
        }
    }
}
