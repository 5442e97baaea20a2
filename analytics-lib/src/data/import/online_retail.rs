//! The UCI Online Retail datasets (I: 2010-12 to 2011-12; II: 2009-12 to
//! 2011-12) → the curated contract.
//!
//! A UK online shop of gift-ware, many of its customers wholesalers; one row
//! per invoice line. The input is one CSV export with a header in either
//! layout (extra columns, such as a leading pandas index, are ignored):
//!
//! | contract use | Online Retail I | Online Retail II |
//! |---|---|---|
//! | order | `InvoiceNo` | `Invoice` |
//! | product | `StockCode` | `StockCode` |
//! | quantity | `Quantity` | `Quantity` |
//! | order_ts | `InvoiceDate` | `InvoiceDate` |
//! | unit price | `UnitPrice` | `Price` |
//! | customer | `CustomerID` | `Customer ID` |
//! | state | `Country` | `Country` |
//!
//! `InvoiceDate` is read as `2010-12-01 08:26:00` (also without seconds) or
//! as the US form `12/1/2010 8:26` of the Kaggle export. Bytes that are not
//! UTF-8 (that export is Latin-1) are replaced; only the unused
//! `Description` has any. The UCI files themselves are Excel workbooks:
//! export them as CSV first (an `.xlsx` given here is a clear error).
//!
//! # Mapping decisions
//!
//! Rows are checked in this order and a row is counted once, under the first
//! rule it breaks:
//!
//! 1. `repeated_invoice_block`: the rows of an invoice come together in the
//!    file; an invoice that appears again after other invoices is a second
//!    copy, set aside (the II workbook's two sheets both hold
//!    2010-12-01…09, so a concatenated export repeats those invoices).
//! 2. `missing_customer_id`: no customer, so no curated customer to attach
//!    the order to → set aside.
//! 3. `non_positive_price`: price ≤ 0 (bad-debt adjustments `B`, free or
//!    damaged stock, manual corrections) → set aside.
//! 4. `non_merchandise_code`: postage and carriage (`POST`, `DOT`, `C2`,
//!    excluded from revenue like Olist's freight), manual lines (`M`),
//!    discounts (`D`), samples (`S`), fees and charges (`BANK CHARGES`,
//!    `AMAZONFEE`, `CRUK`), adjustments and tests (`B`, `ADJUST*`, `TEST*`)
//!    and gift vouchers (`GIFT_*`) are not products → set aside.
//! 5. `quantity_sign_mismatch`: a sale with quantity ≤ 0 or a cancellation
//!    with quantity ≥ 0 → set aside.
//! 6. `invoice_customer_conflict`: a row whose customer differs from the one
//!    of its invoice's first written row → set aside.
//!
//! Every other row becomes an order line:
//!
//! * **Orders**: one per invoice; `order_ts` = the earliest `InvoiceDate`
//!   of its written rows; channel `web`; payment_type `unknown` (the data
//!   has none).
//! * **Status**: an invoice starting with `C` is a credit note for goods
//!   already invoiced; it becomes its own order with status **returned**
//!   (not canceled: the original sale happened and stays completed, the
//!   credit note records goods coming back) and positive quantities. The
//!   data does not link a credit note to its sale, so revenue is gross of
//!   returns; the returned orders measure them. Other invoices → completed.
//! * **Lines**: `line_no` = position of the row among the invoice's written
//!   rows (1, 2, …, no gaps); quantity = |Quantity|; unit_price = price;
//!   discount 0. Identical rows inside one invoice are kept as separate
//!   lines (the shop scanned the article twice).
//! * **Customers**: `customer_id` = the customer number, without the `.0`
//!   of float exports (`13085.0` → `13085`); signup_date = date of the
//!   first written invoice (no registration date in the data); state = the
//!   `Country` of the latest invoice, kept as is (`Unspecified` → null);
//!   city, latitude, longitude null.
//! * **Products**: `product_id` = `StockCode` upper-cased (the data has
//!   `85123a` next to `85123A`); category `sem_categoria` (the data has no
//!   category and a description-based one would be guesswork);
//!   `list_price` = the median unit price of the product's written lines.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use chrono::NaiveDateTime;

use super::rule;
use super::{
    FileRows, ImportError, ImportReport, NO_CATEGORY, Result, Rule, Tables, Tally, epoch_days,
    median, micros, read_csv, write, written_counts,
};
use crate::contract::{STATUS_COMPLETED, STATUS_RETURNED};
use crate::data::CuratedFrames;

const DATASET: &str = "Online Retail";
const TS_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
];
const TS_EXPECTED: &str = "a date and time such as 2010-12-01 08:26:00 or 12/1/2010 8:26";
const FILE: &str = "input CSV";

const MAPPED: &[Rule] = &[
    rule(
        "sale_lines",
        FILE,
        "row of an invoice → line of a completed order",
    ),
    rule(
        "cancellation_lines",
        FILE,
        "row of a C invoice (credit note) → line of a returned order, quantity made positive",
    ),
    rule(
        "customer_id_float",
        FILE,
        "customer number written as a float (13085.0) → 13085",
    ),
    rule(
        "stock_code_upper_cased",
        FILE,
        "lower-case StockCode upper-cased (85123a → 85123A)",
    ),
    rule(
        "orders_several_timestamps",
        "orders",
        "invoice rows with different InvoiceDate: order_ts = the earliest",
    ),
    rule(
        "customers_several_countries",
        "customers",
        "several countries: state = the country of the latest invoice",
    ),
    rule(
        "customers_unspecified_country",
        "customers",
        "Country `Unspecified`: state null",
    ),
];

const SET_ASIDE: &[Rule] = &[
    rule(
        "repeated_invoice_block",
        FILE,
        "invoice seen earlier in the file (overlapping sheets): second copy set aside",
    ),
    rule("missing_customer_id", FILE, "no customer id: row set aside"),
    rule(
        "non_positive_price",
        FILE,
        "price ≤ 0 (adjustment, bad debt, free stock): row set aside",
    ),
    rule(
        "non_merchandise_code",
        FILE,
        "postage, fee, discount, manual, sample or voucher code: row set aside",
    ),
    rule(
        "quantity_sign_mismatch",
        FILE,
        "sale with quantity ≤ 0 or cancellation with quantity ≥ 0: row set aside",
    ),
    rule(
        "invoice_customer_conflict",
        FILE,
        "customer differs from the invoice's first row: row set aside",
    ),
];

/// Stock codes that are not merchandise (compared upper-cased).
const NON_MERCHANDISE: &[&str] = &[
    "POST",
    "DOT",
    "C2",
    "M",
    "D",
    "S",
    "B",
    "CRUK",
    "BANK CHARGES",
    "AMAZONFEE",
];
const NON_MERCHANDISE_PREFIXES: &[&str] = &["ADJUST", "TEST", "GIFT_"];

fn is_non_merchandise(code: &str) -> bool {
    NON_MERCHANDISE.contains(&code) || NON_MERCHANDISE_PREFIXES.iter().any(|p| code.starts_with(p))
}

/// `13085.0` → (`13085`, true); `13085` → (`13085`, false).
fn customer_key(raw: &str) -> (&str, bool) {
    match raw.strip_suffix(".0") {
        Some(head) if !head.is_empty() && head.bytes().all(|b| b.is_ascii_digit()) => (head, true),
        _ => (raw, false),
    }
}

/// Import one Online Retail CSV export into `out` (Parquet, all-or-nothing).
pub fn import_online_retail(file: &Path, out: &Path) -> Result<ImportReport> {
    let started = Instant::now();
    let (frames, mut report) = read_online_retail(file)?;
    write(&frames, &mut report, out, started)?;
    Ok(report)
}

struct Invoice {
    order: usize,
    customer: String,
    next_line: i32,
    several_ts: bool,
}

struct CustomerAcc<'a> {
    first: NaiveDateTime,
    latest: (NaiveDateTime, usize),
    country: Option<&'a str>,
    countries: HashSet<Option<&'a str>>,
}

/// Read and map one Online Retail CSV without writing.
pub fn read_online_retail(file: &Path) -> Result<(CuratedFrames, ImportReport)> {
    let started = Instant::now();
    let f = read_csv(file, DATASET)?;
    let invoice_c = f.column(
        &["Invoice", "InvoiceNo"],
        "the invoice number (Online Retail II: Invoice, I: InvoiceNo)",
    )?;
    let stock_c = f.column(&["StockCode"], "the product code")?;
    let qty_c = f.column(&["Quantity"], "the quantity, a whole number")?;
    let date_c = f.column(&["InvoiceDate"], TS_EXPECTED)?;
    let price_c = f.column(
        &["Price", "UnitPrice"],
        "the unit price (Online Retail II: Price, I: UnitPrice)",
    )?;
    let customer_c = f.column(
        &["Customer ID", "CustomerID"],
        "the customer number (Online Retail II: Customer ID, I: CustomerID)",
    )?;
    let country_c = f.column(&["Country"], "the customer's country")?;

    let mut mapped = Tally::new(MAPPED);
    let mut aside = Tally::new(SET_ASIDE);
    let mut t = Tables::default();
    let mut invoices: HashMap<&str, Invoice> = HashMap::new();
    let mut closed: HashSet<&str> = HashSet::new();
    let mut current: Option<&str> = None;
    let mut current_repeated = false;
    let mut last_date: Option<(&str, NaiveDateTime)> = None;
    let mut prices: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut customers: BTreeMap<&str, CustomerAcc> = BTreeMap::new();

    for i in 0..f.rows() {
        // Parse every row first: a value the layout cannot hold is an error,
        // whatever rule the row would break.
        let invoice = invoice_c.required(i, "an invoice number")?;
        let stock = stock_c.required(i, "a stock code")?;
        let quantity = qty_c.i64(i, "a whole number")?;
        let raw_date = date_c.required(i, TS_EXPECTED)?;
        let ts = match last_date {
            Some((s, ts)) if s == raw_date => ts,
            _ => {
                let ts = date_c.timestamp(i, TS_FORMATS, TS_EXPECTED)?;
                last_date = Some((raw_date, ts));
                ts
            }
        };
        let price = price_c.f64(i, "a decimal number such as 2.55")?;
        let customer = customer_c.get(i);
        let country = country_c.get(i);

        if current != Some(invoice) {
            if let Some(prev) = current {
                closed.insert(prev);
            }
            current = Some(invoice);
            current_repeated = closed.contains(invoice);
        }
        if current_repeated {
            aside.add("repeated_invoice_block", 1);
            continue;
        }
        let Some(raw_customer) = customer else {
            aside.add("missing_customer_id", 1);
            continue;
        };
        if !(price > 0.0 && price.is_finite()) {
            aside.add("non_positive_price", 1);
            continue;
        }
        let upper = stock.to_uppercase();
        if is_non_merchandise(&upper) {
            aside.add("non_merchandise_code", 1);
            continue;
        }
        let cancellation = invoice.starts_with(['C', 'c']);
        let quantity = if cancellation { -quantity } else { quantity };
        if quantity <= 0 {
            aside.add("quantity_sign_mismatch", 1);
            continue;
        }
        let quantity = i32::try_from(quantity)
            .map_err(|_| qty_c.bad(i, "a whole number between -2147483647 and 2147483647"))?;
        let (customer, float_id) = customer_key(raw_customer);
        let status = if cancellation {
            STATUS_RETURNED
        } else {
            STATUS_COMPLETED
        };

        let inv = match invoices.entry(invoice) {
            Entry::Occupied(e) => {
                let inv = e.into_mut();
                if inv.customer != customer {
                    aside.add("invoice_customer_conflict", 1);
                    continue;
                }
                let order_ts = &mut t.order_ts[inv.order];
                if micros(ts) != *order_ts {
                    inv.several_ts = true;
                    *order_ts = (*order_ts).min(micros(ts));
                }
                inv
            }
            Entry::Vacant(e) => {
                t.order_id.push(invoice.to_string());
                t.order_customer.push(customer.to_string());
                t.order_ts.push(micros(ts));
                t.channel.push("web");
                t.payment_type.push("unknown".to_string());
                t.status.push(status);
                e.insert(Invoice {
                    order: t.order_id.len() - 1,
                    customer: customer.to_string(),
                    next_line: 1,
                    several_ts: false,
                })
            }
        };

        mapped.add(
            if cancellation {
                "cancellation_lines"
            } else {
                "sale_lines"
            },
            1,
        );
        if float_id {
            mapped.add("customer_id_float", 1);
        }
        if upper != stock {
            mapped.add("stock_code_upper_cased", 1);
        }
        t.line_order.push(invoice.to_string());
        t.line_no.push(inv.next_line);
        inv.next_line += 1;
        t.quantity.push(quantity);
        t.unit_price.push(price);
        t.discount.push(0.0);
        prices.entry(upper.clone()).or_default().push(price);
        t.line_product.push(upper);

        let acc = customers.entry(customer).or_insert_with(|| CustomerAcc {
            first: ts,
            latest: (ts, i),
            country,
            countries: HashSet::new(),
        });
        acc.first = acc.first.min(ts);
        if (ts, i) >= acc.latest {
            acc.latest = (ts, i);
            acc.country = country;
        }
        acc.countries.insert(country);
    }

    for inv in invoices.values() {
        if inv.several_ts {
            mapped.add("orders_several_timestamps", 1);
        }
    }
    for (id, acc) in &customers {
        if acc.countries.len() > 1 {
            mapped.add("customers_several_countries", 1);
        }
        let state = match acc.country {
            Some(c) if c.eq_ignore_ascii_case("unspecified") => {
                mapped.add("customers_unspecified_country", 1);
                None
            }
            other => other.map(str::to_string),
        };
        t.customer_id.push(id.to_string());
        t.signup_date.push(epoch_days(acc.first));
        t.city.push(None);
        t.state.push(state);
        t.latitude.push(None);
        t.longitude.push(None);
    }
    for (id, values) in prices.iter_mut() {
        t.product_id.push(id.clone());
        t.category.push(NO_CATEGORY.to_string());
        t.list_price.push(median(values).unwrap_or(0.0));
    }

    if t.line_order.is_empty() {
        return Err(ImportError::NothingToWrite {
            path: file.to_path_buf(),
            found: format!("{} rows, all set aside", f.rows()),
        });
    }
    let frames = t.frames()?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    let report = ImportReport {
        dataset: "online-retail",
        input: file.to_path_buf(),
        out: Default::default(),
        read: vec![FileRows {
            file: name,
            rows: f.rows() as u64,
        }],
        written: written_counts(&frames),
        mapped: mapped.finish(),
        set_aside: aside.finish(),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((frames, report))
}
