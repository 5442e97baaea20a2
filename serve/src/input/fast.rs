//! Fast path: records read straight from the JSON text into feature rows.
//!
//! The happy path of `/predict` and `/predict/batch`, without building a
//! `serde_json::Value` (one map and one `String` per field): a scanner of
//! the one shape these bodies have. It accepts a subset of what
//! `parse_record` accepts and reads the same numbers: a JSON number is
//! checked against JSON's grammar and read as `f64::from_str` reads it
//! (`Scan::number`: its exact fast path in place, else `from_str`), correctly
//! rounded as serde_json (with `float_roundtrip`) parses it, integers
//! included (serde_json reads them as `u64` and converts, which rounds to
//! nearest too). On anything else (escapes in a string, a minus sign, keys
//! it does not know, other types) it gives up (`None`) and the route reads
//! the body again the slow way, whose errors name the field. Duplicate keys:
//! the last one wins, as in a `Value`. (It replaced a serde visitor over
//! serde_json, which took about twice as long per record.)

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
    let mut sc = Scan::new(body)?;
    let plain = plain_names(names);
    let r = record(&mut sc, names, plain, share, &mut out.rows)?;
    sc.end()?;
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
    // Rows of ~20 features take ≥ 200 bytes of JSON: a safe first guess.
    let guess = (body.len() / 200).clamp(1, max.max(1));
    let mut out = FastRecords {
        rows: Vec::with_capacity(guess * names.len()),
        records: Vec::with_capacity(guess),
    };
    let mut sc = Scan::new(body)?;
    let plain = plain_names(names);
    sc.eat(b'{')?;
    // One key, `records` (another key, or a second `records`, which would
    // replace the first in a `Value`: the slow path).
    if sc.plain_str()? != "records" {
        return None;
    }
    sc.eat(b':')?;
    sc.eat(b'[')?;
    if sc.peek()? == b']' {
        // No records: the slow path says so.
        return None;
    }
    loop {
        if out.records.len() == max {
            // One more would be over the limit: the slow path says so.
            return None;
        }
        let r = record(&mut sc, names, plain, share, &mut out.rows)?;
        out.records.push(r);
        match sc.next()? {
            b',' => {}
            b']' => break,
            _ => return None,
        }
    }
    sc.eat(b'}')?;
    sc.end()?;
    Some(out)
}

/// A cursor over a body (valid UTF-8: JSON text is).
struct Scan<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn new(body: &'a [u8]) -> Option<Self> {
        let text = std::str::from_utf8(body).ok()?;
        Some(Scan {
            text,
            b: text.as_bytes(),
            i: 0,
        })
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// The next byte after whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// Nothing but whitespace left.
    fn end(&mut self) -> Option<()> {
        self.ws();
        (self.i == self.b.len()).then_some(())
    }

    /// A string without escapes or control characters: its text.
    fn plain_str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let rest = &self.b[self.i..];
        let end = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[end] != b'"' {
            return None;
        }
        let s = self.text.get(self.i..self.i + end)?;
        self.i += end + 1;
        Some(s)
    }

    /// A key that is `name` (a plain name: no quote, backslash or control
    /// character) is consumed, quotes included; anything else is left.
    fn key_is(&mut self, name: &str) -> bool {
        let n = name.len();
        let at = &self.b[self.i..];
        if at.len() > n + 1 && at[0] == b'"' && at[n + 1] == b'"' && &at[1..=n] == name.as_bytes() {
            self.i += n + 2;
            true
        } else {
            false
        }
    }

    /// A non-negative JSON number (`int frac? exp?`, no sign).
    ///
    /// Its value is `f64::from_str`'s: when the digits make an integer
    /// `m ≤ 2^53` and the power of ten `e` is within ±22, both are exact
    /// `f64`s and `m × 10^e` (or `m / 10^−e`) is one correctly rounded
    /// operation, the fast path `from_str` itself takes first (Clinger's);
    /// other numbers go through `from_str`.
    fn number(&mut self) -> Option<f64> {
        self.ws();
        let b = self.b;
        let start = self.i;
        // The digits' value (while it fits: at most 19 digits counted) and
        // how many there were.
        let (mut m, mut n) = (0u64, 0u32);
        let digits = |mut i: usize, m: &mut u64, n: &mut u32| {
            while let Some(&c @ b'0'..=b'9') = b.get(i) {
                if *n < 19 {
                    *m = *m * 10 + u64::from(c - b'0');
                }
                *n += 1;
                i += 1;
            }
            i
        };
        let mut i = match b.get(start)? {
            // A leading zero is the whole integer part.
            b'0' => {
                n = 1;
                start + 1
            }
            b'1'..=b'9' => digits(start, &mut m, &mut n),
            _ => return None,
        };
        let int_digits = n;
        if b.get(i) == Some(&b'.') {
            let d = digits(i + 1, &mut m, &mut n);
            if d == i + 1 {
                return None;
            }
            i = d;
        }
        let frac_digits = n - int_digits;
        // The power of ten the exponent gives, when it is small enough to
        // matter to the exact path (a larger one sends the number to
        // `from_str`).
        let mut exp = Some(0i64);
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            let negative = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let (mut e, mut e_digits) = (0u64, 0u32);
            let d = digits(i, &mut e, &mut e_digits);
            if d == i {
                return None;
            }
            i = d;
            exp = (e_digits <= 4).then(|| if negative { -(e as i64) } else { e as i64 });
        }
        self.i = i;
        const POW10: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
        ];
        if let Some(e) = exp
            && n <= 19
            && m <= 1 << 53
        {
            let e = e - i64::from(frac_digits);
            if (0..=22).contains(&e) {
                return Some(m as f64 * POW10[e as usize]);
            }
            if (-22..0).contains(&e) {
                return Some(m as f64 / POW10[(-e) as usize]);
            }
        }
        self.text.get(start..i)?.parse().ok()
    }
}

/// A key of a record: a feature's index, or `customer_id`. `hint`: where
/// the previous key was (records usually come in model order).
fn key(k: &str, names: &[String], hint: usize) -> Option<Key> {
    let hint = hint.min(names.len());
    let (earlier, later) = names.split_at(hint);
    if let Some(j) = later.iter().position(|n| n == k) {
        return Some(Key::Feature(hint + j));
    }
    if let Some(j) = earlier.iter().position(|n| n == k) {
        return Some(Key::Feature(j));
    }
    (k == "customer_id").then_some(Key::Customer)
}

/// Are all names plain (no quote, backslash or control character), so a
/// key can be matched against the expected name in place?
fn plain_names(names: &[String]) -> bool {
    names
        .iter()
        .all(|n| n.bytes().all(|c| c != b'"' && c != b'\\' && c >= 0x20))
}

/// A key of a record: a feature's index, or `customer_id`.
enum Key {
    Feature(usize),
    Customer,
}

/// One record `{…}`: its row appended to `rows` (zeros for a customer
/// lookup). On `None` the caller drops everything it read.
fn record(
    sc: &mut Scan<'_>,
    names: &[String],
    plain: bool,
    share: &[bool],
    rows: &mut Vec<f64>,
) -> Option<FastRecord> {
    let p = names.len();
    // Fields seen (at most 128 features on this path).
    if p > 128 {
        return None;
    }
    sc.eat(b'{')?;
    let start = rows.len();
    rows.resize(start + p, 0.0);
    let row = &mut rows[start..];
    let mut seen = 0u128;
    let mut customer: Option<&str> = None;
    let mut hint = 0;
    if sc.peek()? == b'}' {
        sc.i += 1;
    } else {
        loop {
            // Records usually come in model order: the expected name is
            // tried in place first.
            sc.ws();
            let expected = if plain && hint < p && sc.key_is(&names[hint]) {
                Some(Key::Feature(hint))
            } else {
                None
            };
            let k = match expected {
                Some(k) => k,
                None => key(sc.plain_str()?, names, hint)?,
            };
            sc.eat(b':')?;
            match k {
                Key::Feature(j) => {
                    let x = sc.number()?;
                    if !super::acceptable(x, share[j]) {
                        return None;
                    }
                    row[j] = x;
                    seen |= 1 << j;
                    hint = j + 1;
                }
                Key::Customer => {
                    let id = sc.plain_str()?;
                    if id.trim().is_empty() {
                        return None;
                    }
                    customer = Some(id);
                }
            }
            match sc.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    match customer {
        Some(id) if seen == 0 => Some(FastRecord::Customer(id.to_owned())),
        None if seen.count_ones() as usize == p => Some(FastRecord::Features),
        _ => None,
    }
}
