//! The Olist Brazilian e-commerce dataset (Kaggle "olist") → the curated
//! contract.
//!
//! Olist is a marketplace; the dataset is ~100 k orders of 2016–2018 in nine
//! CSV files. Seven are read, from one folder, under their Kaggle names:
//!
//! | file | columns read |
//! |---|---|
//! | `olist_orders_dataset.csv` | order_id, customer_id, order_status, order_purchase_timestamp |
//! | `olist_order_items_dataset.csv` | order_id, order_item_id, product_id, price |
//! | `olist_products_dataset.csv` | product_id, product_category_name |
//! | `olist_customers_dataset.csv` | customer_id, customer_unique_id, customer_zip_code_prefix, customer_city, customer_state |
//! | `olist_geolocation_dataset.csv` | geolocation_zip_code_prefix, geolocation_lat, geolocation_lng |
//! | `olist_order_payments_dataset.csv` | order_id, payment_sequential, payment_type, payment_value |
//! | `product_category_name_translation.csv` | product_category_name (checked to exist; categories stay Portuguese) |
//!
//! Other columns (Olist's own misspelt `product_name_lenght`, the delivery
//! dates, sellers, reviews) are ignored. Timestamps are `YYYY-MM-DD
//! HH:MM:SS` (`YYYY-MM-DD HH:MM`, as re-saved by spreadsheets, is accepted),
//! Brazilian local time, kept as is.
//!
//! # Mapping decisions
//!
//! * **Customer** = Olist's `customer_unique_id`. Olist's `customer_id` is
//!   one per order; all rows of one `customer_unique_id` become one curated
//!   customer (`customers_merged` counts the extra rows).
//! * **City / state** from the customers file, as written there (city lower
//!   case without accents, state the UF code). A customer seen with several
//!   addresses takes the address of their latest order (`customers_moved`).
//! * **Latitude / longitude** = mean of the geolocation rows of the customer's
//!   zip-code prefix (prefixes compared as five digits, so `1037` and `01037`
//!   match). Geolocation rows outside Brazil's bounding box (lat −34…5.5, lng
//!   −74…−28.5, which keeps the oceanic islands) are left out of the mean
//!   (`geolocation_outside_brazil`): Olist has a few points in Europe and
//!   Africa. No row for the prefix → null (`customers_without_geolocation`).
//! * **signup_date** = the date of the customer's first written order. Olist
//!   has no registration date; the first purchase is the closest lower bound
//!   we have, so tenure is "customer since first order".
//! * **Status** (`order_status`, compared lower-cased):
//!   `delivered` → completed; `shipped`, `invoiced`, `processing`, `approved`
//!   → completed too: the payment was approved and the sale stands, the
//!   order was only still in fulfilment when the snapshot was taken (leaving
//!   them out would undercount the last months, counting them as canceled
//!   would be wrong); `canceled` and `unavailable` (the seller could not
//!   fulfil it) → canceled; `created` (never approved, never paid) is neither
//!   a sale nor a cancellation → set aside with its items; any other value →
//!   set aside. Each status is counted (`status_<name>`). Olist has no
//!   returns, so no order is `returned`.
//! * **Channel** = `web` (Olist is an online marketplace).
//! * **payment_type** = the type of the order's largest payment
//!   (`payment_value`; the lowest `payment_sequential` wins a tie), Olist's
//!   names kept (`credit_card`, `boleto`, `voucher`, `debit_card`, and
//!   `not_defined` as is). An order with no payment row gets `unknown`.
//! * **Order lines**: one per item row; `line_no` = `order_item_id`,
//!   quantity 1 (Olist repeats the row for each unit), `unit_price` =
//!   `price`, discount 0. **Freight is excluded**: `freight_value` is a
//!   shipping charge, not the product's price, so revenue is merchandise
//!   value (payments, which include freight and card interest, will not sum
//!   to it).
//! * **Products**: `list_price` = the median `price` of the product's written
//!   lines (Olist has no catalogue price); `category` = the Portuguese
//!   `product_category_name` (the Brazilian users read it; the translation
//!   file is not needed), empty → `sem_categoria`; a product sold but missing
//!   from the products file is written with `sem_categoria`.
//! * Keys seen twice: the first row is kept, later copies set aside.
//! * Orders left with no written item are set aside (`orders_without_items`):
//!   they carry no revenue and final cleaning would reject them. Customers
//!   and products with no written order or line are not written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use chrono::NaiveDateTime;

use super::rule;
use super::{
    FileRows, ImportReport, NO_CATEGORY, Result, Rule, SourceFile, Tables, Tally, check_file,
    epoch_days, median, micros, read_csv, write, written_counts,
};
use crate::contract::{STATUS_CANCELED, STATUS_COMPLETED};
use crate::data::CuratedFrames;

const DATASET: &str = "olist";

pub const ORDERS_FILE: &str = "olist_orders_dataset.csv";
pub const ITEMS_FILE: &str = "olist_order_items_dataset.csv";
pub const PRODUCTS_FILE: &str = "olist_products_dataset.csv";
pub const CUSTOMERS_FILE: &str = "olist_customers_dataset.csv";
pub const GEOLOCATION_FILE: &str = "olist_geolocation_dataset.csv";
pub const TRANSLATION_FILE: &str = "product_category_name_translation.csv";
pub const PAYMENTS_FILE: &str = "olist_order_payments_dataset.csv";

/// The files read, in reading order.
pub const FILES: [&str; 7] = [
    CUSTOMERS_FILE,
    ORDERS_FILE,
    ITEMS_FILE,
    PAYMENTS_FILE,
    GEOLOCATION_FILE,
    PRODUCTS_FILE,
    TRANSLATION_FILE,
];

const TS_FORMATS: &[&str] = &["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"];
const TS_EXPECTED: &str = "a timestamp YYYY-MM-DD HH:MM:SS";

/// Olist's order statuses and what they become.
const STATUSES: [(&str, Option<&str>, &str); 8] = [
    ("delivered", Some(STATUS_COMPLETED), "status_delivered"),
    ("shipped", Some(STATUS_COMPLETED), "status_shipped"),
    ("invoiced", Some(STATUS_COMPLETED), "status_invoiced"),
    ("processing", Some(STATUS_COMPLETED), "status_processing"),
    ("approved", Some(STATUS_COMPLETED), "status_approved"),
    ("canceled", Some(STATUS_CANCELED), "status_canceled"),
    ("unavailable", Some(STATUS_CANCELED), "status_unavailable"),
    ("created", None, "orders_created"),
];

/// Rows written under a mapping rule.
const MAPPED: &[Rule] = &[
    rule("status_delivered", ORDERS_FILE, "delivered → completed"),
    rule(
        "status_shipped",
        ORDERS_FILE,
        "shipped → completed (paid, in transit at the snapshot)",
    ),
    rule(
        "status_invoiced",
        ORDERS_FILE,
        "invoiced → completed (paid, in fulfilment at the snapshot)",
    ),
    rule(
        "status_processing",
        ORDERS_FILE,
        "processing → completed (paid, in fulfilment at the snapshot)",
    ),
    rule(
        "status_approved",
        ORDERS_FILE,
        "approved → completed (payment approved at the snapshot)",
    ),
    rule("status_canceled", ORDERS_FILE, "canceled → canceled"),
    rule(
        "status_unavailable",
        ORDERS_FILE,
        "unavailable → canceled (could not be fulfilled)",
    ),
    rule(
        "orders_split_payment",
        ORDERS_FILE,
        "several payments: payment_type of the largest payment_value (lowest payment_sequential on a tie)",
    ),
    rule(
        "orders_without_payment",
        ORDERS_FILE,
        "no payment row: payment_type `unknown`",
    ),
    rule(
        "customers_merged",
        CUSTOMERS_FILE,
        "another customer_id of the same customer_unique_id: merged into one customer",
    ),
    rule(
        "customers_moved",
        "customers",
        "several addresses: city/state/zip of the latest order",
    ),
    rule(
        "customers_without_geolocation",
        "customers",
        "zip prefix with no geolocation in Brazil: latitude/longitude null",
    ),
    rule(
        "products_without_category",
        "products",
        "empty product_category_name: category `sem_categoria`",
    ),
    rule(
        "products_not_in_products_file",
        "products",
        "sold but missing from the products file: category `sem_categoria`",
    ),
];

/// Rows not written, by reason (first rule broken).
const SET_ASIDE: &[Rule] = &[
    rule(
        "orders_duplicate_id",
        ORDERS_FILE,
        "order_id seen before: later copy set aside, first kept",
    ),
    rule(
        "orders_unknown_status",
        ORDERS_FILE,
        "status not one of Olist's eight: order and its items set aside",
    ),
    rule(
        "orders_created",
        ORDERS_FILE,
        "created (never approved, not paid): neither sale nor cancellation; order and its items set aside",
    ),
    rule(
        "orders_unknown_customer",
        ORDERS_FILE,
        "customer_id not in the customers file: order and its items set aside",
    ),
    rule(
        "orders_without_items",
        ORDERS_FILE,
        "no item could be written: order set aside (no revenue; cleaning would reject it)",
    ),
    rule(
        "items_unknown_order",
        ITEMS_FILE,
        "order_id not in the orders file: item set aside",
    ),
    rule(
        "items_of_set_aside_orders",
        ITEMS_FILE,
        "its order was set aside: item set aside with it",
    ),
    rule(
        "items_duplicate_line",
        ITEMS_FILE,
        "(order_id, order_item_id) seen before: later copy set aside",
    ),
    rule(
        "items_non_positive_price",
        ITEMS_FILE,
        "price ≤ 0: item set aside",
    ),
    rule(
        "payments_unknown_order",
        PAYMENTS_FILE,
        "order_id not in the orders file: payment ignored",
    ),
    rule(
        "customers_duplicate_id",
        CUSTOMERS_FILE,
        "customer_id seen before: later copy ignored, first kept",
    ),
    rule(
        "customers_without_orders",
        CUSTOMERS_FILE,
        "no written order: not written (no signup date)",
    ),
    rule(
        "products_duplicate_id",
        PRODUCTS_FILE,
        "product_id seen before: later copy ignored, first kept",
    ),
    rule(
        "products_without_lines",
        PRODUCTS_FILE,
        "no written order line: not written (no price for the median)",
    ),
    rule(
        "geolocation_outside_brazil",
        GEOLOCATION_FILE,
        "outside Brazil's bounding box: left out of the mean",
    ),
];

/// Brazil's bounding box, with the oceanic islands.
const LAT_RANGE: (f64, f64) = (-34.0, 5.5);
const LNG_RANGE: (f64, f64) = (-74.0, -28.5);

/// Import the Olist folder `dir` into `out` (Parquet, all-or-nothing).
pub fn import_olist(dir: &Path, out: &Path) -> Result<ImportReport> {
    let started = Instant::now();
    let (frames, mut report) = read_olist(dir)?;
    write(&frames, &mut report, out, started)?;
    Ok(report)
}

/// Zip-code prefixes as five digits: `1037` → `01037`.
fn zip5(z: &str) -> String {
    if z.len() < 5 && z.bytes().all(|b| b.is_ascii_digit()) {
        format!("{z:0>5}")
    } else {
        z.to_string()
    }
}

struct Customer<'a> {
    id: &'a str,
    unique_id: &'a str,
    zip: Option<&'a str>,
    city: Option<&'a str>,
    state: Option<&'a str>,
}

struct Order<'a> {
    id: &'a str,
    customer_row: usize,
    ts: NaiveDateTime,
    status: &'static str,
    status_kind: &'static str,
    has_items: bool,
}

#[derive(Clone, Copy)]
enum OrderState {
    Kept(usize),
    SetAside,
}

/// Read and map the Olist folder without writing: the curated frames and the
/// report (with no output folder yet).
pub fn read_olist(dir: &Path) -> Result<(CuratedFrames, ImportReport)> {
    let started = Instant::now();
    for f in FILES {
        check_file(&dir.join(f), DATASET)?;
    }
    let mut mapped = Tally::new(MAPPED);
    let mut aside = Tally::new(SET_ASIDE);
    let mut read = Vec::new();
    let mut note = |f: &SourceFile, name: &str| {
        read.push(FileRows {
            file: name.to_string(),
            rows: f.rows() as u64,
        })
    };

    // Customers: customer_id → its row.
    let cf = read_csv(&dir.join(CUSTOMERS_FILE), DATASET)?;
    note(&cf, CUSTOMERS_FILE);
    let c_id = cf.column(&["customer_id"], "the per-order customer id")?;
    let c_unique = cf.column(&["customer_unique_id"], "the customer's unique id")?;
    let c_zip = cf.column(&["customer_zip_code_prefix"], "a zip-code prefix")?;
    let c_city = cf.column(&["customer_city"], "a city name")?;
    let c_state = cf.column(&["customer_state"], "a UF code")?;
    let mut customers: Vec<Customer> = Vec::with_capacity(cf.rows());
    let mut customer_row: HashMap<&str, usize> = HashMap::with_capacity(cf.rows());
    for i in 0..cf.rows() {
        let id = c_id.required(i, "a customer_id")?;
        let unique_id = c_unique.required(i, "a customer_unique_id")?;
        if customer_row.contains_key(id) {
            aside.add("customers_duplicate_id", 1);
            continue;
        }
        customer_row.insert(id, customers.len());
        customers.push(Customer {
            id,
            unique_id,
            zip: c_zip.get(i),
            city: c_city.get(i),
            state: c_state.get(i),
        });
    }

    // Orders.
    let of = read_csv(&dir.join(ORDERS_FILE), DATASET)?;
    note(&of, ORDERS_FILE);
    let o_id = of.column(&["order_id"], "the order id")?;
    let o_customer = of.column(&["customer_id"], "the per-order customer id")?;
    let o_status = of.column(&["order_status"], "the order status")?;
    let o_ts = of.column(&["order_purchase_timestamp"], TS_EXPECTED)?;
    let mut orders: Vec<Order> = Vec::with_capacity(of.rows());
    let mut order_state: HashMap<&str, OrderState> = HashMap::with_capacity(of.rows());
    for i in 0..of.rows() {
        let id = o_id.required(i, "an order_id")?;
        let customer = o_customer.required(i, "a customer_id")?;
        let ts = o_ts.timestamp(i, TS_FORMATS, TS_EXPECTED)?;
        if order_state.contains_key(id) {
            aside.add("orders_duplicate_id", 1);
            continue;
        }
        let status = o_status.get(i).unwrap_or("").to_lowercase();
        let Some(&(_, to, kind)) = STATUSES.iter().find(|(s, _, _)| *s == status) else {
            aside.add("orders_unknown_status", 1);
            order_state.insert(id, OrderState::SetAside);
            continue;
        };
        let Some(to) = to else {
            aside.add(kind, 1);
            order_state.insert(id, OrderState::SetAside);
            continue;
        };
        let Some(&crow) = customer_row.get(customer) else {
            aside.add("orders_unknown_customer", 1);
            order_state.insert(id, OrderState::SetAside);
            continue;
        };
        order_state.insert(id, OrderState::Kept(orders.len()));
        orders.push(Order {
            id,
            customer_row: crow,
            ts,
            status: to,
            status_kind: kind,
            has_items: false,
        });
    }

    // Items → order lines.
    let itf = read_csv(&dir.join(ITEMS_FILE), DATASET)?;
    note(&itf, ITEMS_FILE);
    let i_order = itf.column(&["order_id"], "the order id")?;
    let i_line = itf.column(&["order_item_id"], "the item's position in the order")?;
    let i_product = itf.column(&["product_id"], "the product id")?;
    let i_price = itf.column(&["price"], "the item price")?;
    let mut t = Tables::default();
    let mut seen_lines: HashSet<(&str, i32)> = HashSet::with_capacity(itf.rows());
    let mut prices: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for i in 0..itf.rows() {
        let order = i_order.required(i, "an order_id")?;
        let line = i_line.i64(i, "a positive whole number")?;
        let line = i32::try_from(line)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| i_line.bad(i, "a positive whole number"))?;
        let product = i_product.required(i, "a product_id")?;
        let price = i_price.f64(i, "a decimal number such as 58.90")?;
        let idx = match order_state.get(order) {
            None => {
                aside.add("items_unknown_order", 1);
                continue;
            }
            Some(OrderState::SetAside) => {
                aside.add("items_of_set_aside_orders", 1);
                continue;
            }
            Some(OrderState::Kept(idx)) => *idx,
        };
        if !seen_lines.insert((order, line)) {
            aside.add("items_duplicate_line", 1);
            continue;
        }
        if !(price > 0.0 && price.is_finite()) {
            aside.add("items_non_positive_price", 1);
            continue;
        }
        orders[idx].has_items = true;
        prices.entry(product).or_default().push(price);
        t.line_order.push(order.to_string());
        t.line_no.push(line);
        t.line_product.push(product.to_string());
        t.quantity.push(1);
        t.unit_price.push(price);
        t.discount.push(0.0);
    }

    // Payments: the largest per order.
    let pf = read_csv(&dir.join(PAYMENTS_FILE), DATASET)?;
    note(&pf, PAYMENTS_FILE);
    let p_order = pf.column(&["order_id"], "the order id")?;
    let p_seq = pf.column(&["payment_sequential"], "the payment's sequence number")?;
    let p_type = pf.column(&["payment_type"], "the payment type")?;
    let p_value = pf.column(&["payment_value"], "the payment value")?;
    // order → (value, sequential, type, number of payments)
    let mut payments: HashMap<&str, (f64, i64, &str, u32)> = HashMap::with_capacity(pf.rows());
    for i in 0..pf.rows() {
        let order = p_order.required(i, "an order_id")?;
        let seq = p_seq.i64(i, "a whole number")?;
        let kind = p_type.required(i, "a payment type such as credit_card")?;
        let value = p_value.f64(i, "a decimal number such as 72.20")?;
        if !order_state.contains_key(order) {
            aside.add("payments_unknown_order", 1);
            continue;
        }
        payments
            .entry(order)
            .and_modify(|best| {
                best.3 += 1;
                if value > best.0 || (value == best.0 && seq < best.1) {
                    (best.0, best.1, best.2) = (value, seq, kind);
                }
            })
            .or_insert((value, seq, kind, 1));
    }

    // Orders written: those with at least one line.
    // Per customer_unique_id: first order, latest order (ts, customer_id).
    struct Acc<'a> {
        first: NaiveDateTime,
        latest: (NaiveDateTime, &'a str, usize),
        addresses: HashSet<(Option<String>, Option<&'a str>, Option<&'a str>)>,
        rows: HashSet<usize>,
    }
    let mut per_customer: BTreeMap<&str, Acc> = BTreeMap::new();
    for o in &orders {
        if !o.has_items {
            aside.add("orders_without_items", 1);
            continue;
        }
        mapped.add(o.status_kind, 1);
        let payment = match payments.get(o.id) {
            Some(&(_, _, kind, n)) => {
                if n > 1 {
                    mapped.add("orders_split_payment", 1);
                }
                kind
            }
            None => {
                mapped.add("orders_without_payment", 1);
                "unknown"
            }
        };
        let c = &customers[o.customer_row];
        t.order_id.push(o.id.to_string());
        t.order_customer.push(c.unique_id.to_string());
        t.order_ts.push(micros(o.ts));
        t.channel.push("web");
        t.payment_type.push(payment.to_string());
        t.status.push(o.status);

        let raw_id = c.id;
        let address = (c.zip.map(zip5), c.city, c.state);
        let acc = per_customer.entry(c.unique_id).or_insert_with(|| Acc {
            first: o.ts,
            latest: (o.ts, raw_id, o.customer_row),
            addresses: HashSet::new(),
            rows: HashSet::new(),
        });
        acc.first = acc.first.min(o.ts);
        if (o.ts, raw_id) > (acc.latest.0, acc.latest.1) {
            acc.latest = (o.ts, raw_id, o.customer_row);
        }
        acc.addresses.insert(address);
        acc.rows.insert(o.customer_row);
    }

    // Geolocation: mean per zip prefix, inside Brazil only.
    let gf = read_csv(&dir.join(GEOLOCATION_FILE), DATASET)?;
    let g_zip = gf.column(&["geolocation_zip_code_prefix"], "a zip-code prefix")?;
    let g_lat = gf.column(&["geolocation_lat"], "a latitude")?;
    let g_lng = gf.column(&["geolocation_lng"], "a longitude")?;
    note(&gf, GEOLOCATION_FILE);
    let mut geo: HashMap<String, (f64, f64, u32)> = HashMap::new();
    for i in 0..gf.rows() {
        let zip = g_zip.required(i, "a zip-code prefix")?;
        let lat = g_lat.f64(i, "a latitude in degrees")?;
        let lng = g_lng.f64(i, "a longitude in degrees")?;
        let inside = (LAT_RANGE.0..=LAT_RANGE.1).contains(&lat)
            && (LNG_RANGE.0..=LNG_RANGE.1).contains(&lng);
        if !inside {
            aside.add("geolocation_outside_brazil", 1);
            continue;
        }
        let e = geo.entry(zip5(zip)).or_insert((0.0, 0.0, 0));
        e.0 += lat;
        e.1 += lng;
        e.2 += 1;
    }

    // Customers written.
    let mut used_rows = 0u64;
    for (unique_id, acc) in &per_customer {
        used_rows += acc.rows.len() as u64;
        mapped.add("customers_merged", acc.rows.len() as u64 - 1);
        if acc.addresses.len() > 1 {
            mapped.add("customers_moved", 1);
        }
        let c = &customers[acc.latest.2];
        let coords = c
            .zip
            .and_then(|z| geo.get(&zip5(z)))
            .map(|&(la, lo, n)| (la / n as f64, lo / n as f64));
        if coords.is_none() {
            mapped.add("customers_without_geolocation", 1);
        }
        t.customer_id.push(unique_id.to_string());
        t.signup_date.push(epoch_days(acc.first));
        t.city.push(c.city.map(str::to_string));
        t.state.push(c.state.map(str::to_string));
        t.latitude.push(coords.map(|c| c.0));
        t.longitude.push(coords.map(|c| c.1));
    }
    aside.add(
        "customers_without_orders",
        customers.len() as u64 - used_rows,
    );

    // Products.
    let prf = read_csv(&dir.join(PRODUCTS_FILE), DATASET)?;
    note(&prf, PRODUCTS_FILE);
    let pr_id = prf.column(&["product_id"], "the product id")?;
    let pr_cat = prf.column(&["product_category_name"], "the Portuguese category name")?;
    let mut categories: HashMap<&str, Option<&str>> = HashMap::with_capacity(prf.rows());
    for i in 0..prf.rows() {
        let id = pr_id.required(i, "a product_id")?;
        if categories.contains_key(id) {
            aside.add("products_duplicate_id", 1);
            continue;
        }
        categories.insert(id, pr_cat.get(i));
        if !prices.contains_key(id) {
            aside.add("products_without_lines", 1);
        }
    }
    for (id, values) in prices.iter_mut() {
        let category = match categories.get(id) {
            Some(Some(c)) => *c,
            Some(None) => {
                mapped.add("products_without_category", 1);
                NO_CATEGORY
            }
            None => {
                mapped.add("products_not_in_products_file", 1);
                NO_CATEGORY
            }
        };
        t.product_id.push(id.to_string());
        t.category.push(category.to_string());
        t.list_price.push(median(values).unwrap_or(0.0));
    }

    // The translation file: read for its row count and layout only.
    let tf = read_csv(&dir.join(TRANSLATION_FILE), DATASET)?;
    tf.column(&["product_category_name"], "the Portuguese category name")?;
    note(&tf, TRANSLATION_FILE);

    if t.line_order.is_empty() {
        return Err(super::ImportError::NothingToWrite {
            path: dir.to_path_buf(),
            found: format!("{} rows set aside", aside.total()),
        });
    }
    let frames = t.frames()?;
    let report = ImportReport {
        dataset: "olist",
        input: dir.to_path_buf(),
        out: Default::default(),
        read,
        written: written_counts(&frames),
        mapped: mapped.finish(),
        set_aside: aside.finish(),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((frames, report))
}
