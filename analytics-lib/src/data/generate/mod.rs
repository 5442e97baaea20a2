//! Synthetic curated sales data that behaves like Brazilian e-commerce.
//!
//! The generator stands in for the upstream data platform. It writes the four
//! contract tables as Parquet, streaming customers in chunks so that memory
//! stays flat whatever the size.
//!
//! # The model
//!
//! * **Customers** arrive over time (a growing business: arrival intensity
//!   rises by [`GROWTH_PER_YEAR`]), a quarter of them already signed up before
//!   the window opens. Each lives in a real Brazilian city drawn by population
//!   × regional e-commerce propensity ([`super::geo`]).
//! * **Purchasing** follows the BG/NBD story: while alive, a customer buys at
//!   their own rate λ ~ Gamma(1.2, 2.5) orders per year; after each purchase
//!   they drop out with their own probability p ~ Beta(1.5, 5). So recency
//!   and churn mean something, and a few customers are heavy buyers.
//! * **Seasonality** thins each customer's Poisson process by a daily factor:
//!   weekday × month × Brazilian retail events (Black Friday week, Christmas,
//!   Mother's Day, Children's Day, Consumer's Day). Events also tilt the
//!   category mix (toys before Christmas, phones on Black Friday).
//! * **Orders** carry a channel and a payment type (customer habits with some
//!   variety), ~5% are canceled and ~2.5% returned; 1 + Poisson(0.55) lines,
//!   categories from the customer's favourite and the season, products by a
//!   Zipf popularity within the category, prices that rise with inflation and
//!   discounts that are deeper on Black Friday.
//! * **Defects** (share `defect_rate` of rows) are planted for final cleaning
//!   to find: duplicate keys in every table, lines with an unknown order or
//!   product, non-positive quantity or price, discounts outside [0, 1), and
//!   orders without lines.
//!
//! # Determinism
//!
//! Every customer draws from its own ChaCha8 stream (seed, customer index),
//! so chunks can be simulated in parallel and the same seed always gives
//! byte-identical files. Exactly `lines` order lines are written.

mod tables;
use tables::*;

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma, LogNormal, Normal, Poisson};
use rayon::prelude::*;

use super::catalog::{CATEGORIES, Category};
use super::geo::{CITIES, city_weights};
use crate::contract::{CHANNELS, CUSTOMERS, ORDER_ITEMS, ORDERS, PRODUCTS, TableSpec};
use crate::error::{DataError, Result};

/// Yearly growth of the customer arrival rate (a growing shop).
pub const GROWTH_PER_YEAR: f64 = 0.35;
/// Yearly price inflation applied to list prices at sale time.
pub const INFLATION_PER_YEAR: f64 = 0.045;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// Exact number of order lines to write (defective lines included).
    pub lines: u64,
    pub seed: u64,
    /// Share of rows given a cleaning defect; 0 gives perfectly clean data.
    pub defect_rate: f64,
    /// First day of the sales window.
    pub start: NaiveDate,
    /// Last day of the sales window (inclusive).
    pub end: NaiveDate,
    /// Customers simulated per chunk (memory vs. parallelism).
    pub chunk_customers: usize,
    /// Show a progress bar on stderr (only drawn on a terminal).
    pub progress: bool,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            lines: 100_000,
            seed: 42,
            defect_rate: 0.01,
            start: NaiveDate::from_ymd_opt(2023, 1, 1).expect("valid date"),
            end: NaiveDate::from_ymd_opt(2025, 12, 31).expect("valid date"),
            chunk_customers: 20_000,
            progress: false,
        }
    }
}

impl GeneratorConfig {
    /// Check the parameters before any work is done.
    pub fn check(&self) -> Result<()> {
        if self.lines == 0 {
            return Err(invalid("lines", "a positive number of order lines", "0"));
        }
        if !(0.0..=0.5).contains(&self.defect_rate) || !self.defect_rate.is_finite() {
            return Err(invalid(
                "defect_rate",
                "a share between 0 and 0.5",
                &self.defect_rate.to_string(),
            ));
        }
        if self.end <= self.start + Duration::days(60) {
            return Err(invalid(
                "end",
                &format!("a date at least 60 days after the start {}", self.start),
                &self.end.to_string(),
            ));
        }
        if self.chunk_customers == 0 {
            return Err(invalid("chunk_customers", "a positive number", "0"));
        }
        Ok(())
    }
}

fn invalid(name: &'static str, expected: &str, found: &str) -> DataError {
    DataError::InvalidArgument {
        name,
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

/// Row counts of what was written.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GenerationSummary {
    pub customers: u64,
    pub products: u64,
    pub orders: u64,
    pub order_items: u64,
    /// Planted defects, by kind (what final cleaning should find).
    pub planted_defects: PlantedDefects,
}

/// Defects the generator planted, per kind.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
pub struct PlantedDefects {
    pub duplicate_customers: u64,
    pub duplicate_products: u64,
    pub duplicate_orders: u64,
    pub duplicate_order_lines: u64,
    pub lines_unknown_order: u64,
    pub lines_unknown_product: u64,
    pub lines_non_positive_quantity: u64,
    pub lines_non_positive_price: u64,
    pub lines_discount_out_of_range: u64,
    pub orders_without_lines: u64,
}

// ---------------------------------------------------------------------------
// Calendar: daily demand factor and the event of each day.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    None,
    BlackFriday,
    Christmas,
    MothersDay,
    ChildrensDay,
}

const WEEKDAY_FACTOR: [f64; 7] = [1.10, 1.08, 1.05, 1.02, 0.97, 0.84, 0.94]; // Mon..Sun
const MONTH_FACTOR: [f64; 12] = [
    0.92, 0.86, 0.97, 0.95, 1.04, 0.97, 1.00, 1.00, 0.97, 1.02, 1.10, 1.22,
];
/// Hour-of-day weights of order placement (local time).
const HOUR_WEIGHT: [f64; 24] = [
    0.6, 0.35, 0.2, 0.12, 0.1, 0.15, 0.35, 0.8, 1.4, 2.0, 2.5, 2.6, 2.4, 2.3, 2.4, 2.5, 2.5, 2.4,
    2.5, 2.9, 3.3, 3.4, 2.8, 1.6,
];

fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n).expect("valid nth weekday")
}

struct Calendar {
    start_us: i64,
    days: usize,
    factor: Vec<f64>,
    event: Vec<Event>,
    max_factor: f64,
}

impl Calendar {
    fn new(start: NaiveDate, end: NaiveDate) -> Self {
        let days = (end - start).num_days() as usize + 1;
        let mut factor = Vec::with_capacity(days);
        let mut event = Vec::with_capacity(days);
        for i in 0..days {
            let d = start + Duration::days(i as i64);
            let y = d.year();
            // The Friday after the fourth Thursday of November (US Thanksgiving).
            let black_friday = nth_weekday(y, 11, Weekday::Thu, 4) + Duration::days(1);
            let mothers_day = nth_weekday(y, 5, Weekday::Sun, 2);
            let childrens_day = NaiveDate::from_ymd_opt(y, 10, 12).expect("valid date");
            let christmas = NaiveDate::from_ymd_opt(y, 12, 25).expect("valid date");
            let consumers_day = NaiveDate::from_ymd_opt(y, 3, 15).expect("valid date");

            let mut f = WEEKDAY_FACTOR[d.weekday().num_days_from_monday() as usize]
                * MONTH_FACTOR[d.month0() as usize];
            let mut e = Event::None;
            let to_bf = (d - black_friday).num_days();
            if to_bf == 0 {
                f *= 5.0;
                e = Event::BlackFriday;
            } else if (-4..=3).contains(&to_bf) {
                // Black week, and Cyber Monday three days after.
                f *= if to_bf == 3 { 2.8 } else { 2.2 };
                e = Event::BlackFriday;
            } else if (-20..=-1).contains(&(d - christmas).num_days()) {
                f *= 1.45;
                e = Event::Christmas;
            } else if (-10..=0).contains(&(d - mothers_day).num_days()) {
                f *= 1.55;
                e = Event::MothersDay;
            } else if (-8..=0).contains(&(d - childrens_day).num_days()) {
                f *= 1.3;
                e = Event::ChildrensDay;
            } else if d == consumers_day {
                f *= 1.6;
            } else if d.month() == 12 && d.day() >= 26 {
                f *= 0.7; // the post-Christmas lull
            }
            factor.push(f);
            event.push(e);
        }
        let max_factor = factor.iter().cloned().fold(0.0, f64::max);
        let start_us = start
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_micros();
        Calendar {
            start_us,
            days,
            factor,
            event,
            max_factor,
        }
    }
}

// ---------------------------------------------------------------------------
// Static tables: products and sampling helpers.

/// Cumulative weights, sampled by binary search.
struct Cumulative(Vec<f64>);

impl Cumulative {
    fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut acc = 0.0;
        Cumulative(
            weights
                .into_iter()
                .map(|w| {
                    acc += w;
                    acc
                })
                .collect(),
        )
    }
    fn sample(&self, rng: &mut impl Rng) -> usize {
        let total = *self.0.last().expect("non-empty weights");
        let u = rng.random::<f64>() * total;
        self.0.partition_point(|&c| c <= u).min(self.0.len() - 1)
    }
}

struct Product {
    id: String,
    category: usize,
    list_price: f64,
}

struct Catalog {
    products: Vec<Product>,
    /// Product indices per category, most popular first.
    by_category: Vec<Vec<usize>>,
    zipf: Vec<Cumulative>,
    /// Category weights per event (index = Event as usize).
    category_mix: Vec<Cumulative>,
}

fn event_index(e: Event) -> usize {
    match e {
        Event::None => 0,
        Event::BlackFriday => 1,
        Event::Christmas => 2,
        Event::MothersDay => 3,
        Event::ChildrensDay => 4,
    }
}

fn category_boost(c: &Category, e: Event) -> f64 {
    match e {
        Event::None => 1.0,
        Event::BlackFriday => c.black_friday,
        Event::Christmas => c.christmas,
        Event::MothersDay => c.mothers_day,
        Event::ChildrensDay => c.childrens_day,
    }
}

/// Brazilian shelf prices end in ,90 (R$ 49,90).
fn shelf_price(x: f64) -> f64 {
    x.floor() + 0.9
}

impl Catalog {
    fn new(n_products: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(u64::MAX);
        let total_pop: f64 = CATEGORIES.iter().map(|c| c.popularity).sum();
        let mut products = Vec::with_capacity(n_products);
        let mut by_category = vec![Vec::new(); CATEGORIES.len()];
        for (ci, c) in CATEGORIES.iter().enumerate() {
            let n = ((n_products as f64 * c.popularity / total_pop).round() as usize).max(10);
            let price =
                LogNormal::new(c.median_price.ln(), c.price_sigma).expect("valid log-normal");
            for _ in 0..n {
                let idx = products.len();
                products.push(Product {
                    id: format!("P{:06}", idx + 1),
                    category: ci,
                    list_price: shelf_price(price.sample(&mut rng).clamp(2.0, 25_000.0)),
                });
                by_category[ci].push(idx);
            }
        }
        let zipf = by_category
            .iter()
            .map(|ids| Cumulative::new((1..=ids.len()).map(|r| 1.0 / (r as f64).powf(0.85))))
            .collect();
        let events = [
            Event::None,
            Event::BlackFriday,
            Event::Christmas,
            Event::MothersDay,
            Event::ChildrensDay,
        ];
        let category_mix = events
            .iter()
            .map(|&e| {
                Cumulative::new(
                    CATEGORIES
                        .iter()
                        .map(|c| c.popularity * category_boost(c, e)),
                )
            })
            .collect();
        Catalog {
            products,
            by_category,
            zipf,
            category_mix,
        }
    }
}

// ---------------------------------------------------------------------------
// Simulation of one customer.

#[derive(Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Ok,
    Duplicate,
    UnknownOrder,
    UnknownProduct,
    BadQuantity,
    BadPrice,
    BadDiscount,
}

struct SimLine {
    product: usize,
    quantity: i32,
    unit_price: f64,
    discount: f64,
    kind: LineKind,
}

struct SimOrder {
    ts_us: i64,
    channel: u8,
    payment: u8,
    status: u8,
    duplicate: bool,
    lines: Vec<SimLine>,
}

struct SimCustomer {
    signup_day: i32, // days since 1970-01-01
    city: Option<usize>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    duplicate: bool,
    orders: Vec<SimOrder>,
}

const PAYMENTS: [&str; 4] = ["credit_card", "pix", "boleto", "debit_card"];
const PAYMENT_WEIGHTS: [f64; 4] = [0.57, 0.23, 0.12, 0.08];
const CHANNEL_WEIGHTS: [f64; 3] = [0.55, 0.33, 0.12];
const STATUS_NAMES: [&str; 3] = ["completed", "canceled", "returned"];

struct Simulator<'a> {
    cfg: &'a GeneratorConfig,
    cal: Calendar,
    catalog: &'a Catalog,
    cities: Cumulative,
    payments: Cumulative,
    channels: Cumulative,
    hours: Cumulative,
    epoch_day_start: i32,
    rate: Gamma<f64>,
    dropout: Beta<f64>,
    first_gap: Exp<f64>,
    jitter: Normal<f64>,
    extra_lines: Poisson<f64>,
    extra_units: Vec<Poisson<f64>>,
}

fn epoch_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

impl<'a> Simulator<'a> {
    fn new(cfg: &'a GeneratorConfig, catalog: &'a Catalog) -> Self {
        Simulator {
            cfg,
            cal: Calendar::new(cfg.start, cfg.end),
            catalog,
            cities: Cumulative::new(city_weights()),
            payments: Cumulative::new(PAYMENT_WEIGHTS),
            channels: Cumulative::new(CHANNEL_WEIGHTS),
            hours: Cumulative::new(HOUR_WEIGHT),
            epoch_day_start: epoch_days(cfg.start),
            rate: Gamma::new(1.2, 2.5).expect("valid gamma"),
            dropout: Beta::new(1.5, 5.0).expect("valid beta"),
            first_gap: Exp::new(1.0 / 12.0).expect("valid exp"),
            jitter: Normal::new(0.0, 0.03).expect("valid normal"),
            extra_lines: Poisson::new(0.55).expect("valid poisson"),
            extra_units: CATEGORIES
                .iter()
                .map(|c| Poisson::new(c.extra_units).expect("valid poisson"))
                .collect(),
        }
    }

    /// Signup day relative to the window start (negative = before it).
    fn signup_offset(&self, rng: &mut ChaCha8Rng) -> f64 {
        let span = self.cal.days as f64;
        if rng.random::<f64>() < 0.25 {
            // The existing base: signed up in the two years before the window.
            -rng.random::<f64>() * 730.0
        } else {
            // Arrivals with exponentially growing intensity: inverse CDF.
            let g = GROWTH_PER_YEAR / 365.25;
            let u: f64 = rng.random();
            ((1.0 + u * ((g * span).exp() - 1.0)).ln() / g).min(span - 1.0)
        }
    }

    fn customer(&self, index: u64) -> SimCustomer {
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed);
        rng.set_stream(index);
        let r = self.cfg.defect_rate;

        let signup = self.signup_offset(&mut rng);
        let (city, latitude, longitude) = if rng.random::<f64>() < 0.004 {
            (None, None, None) // address not captured
        } else {
            let ci = self.cities.sample(&mut rng);
            let c = &CITIES[ci];
            let lat = c.latitude + self.jitter.sample(&mut rng);
            let lon = c.longitude + self.jitter.sample(&mut rng);
            (Some(ci), Some(round_to(lat, 5)), Some(round_to(lon, 5)))
        };
        let duplicate = rng.random::<f64>() < r / 4.0;

        // Habits.
        let lambda = (self.rate.sample(&mut rng) + 0.25) / 365.25; // orders per day while alive
        let p_drop = self.dropout.sample(&mut rng);
        let favourite = self.catalog.category_mix[0].sample(&mut rng);
        let affinity = 0.25 + 0.5 * rng.random::<f64>();
        let channel_pref = self.channels.sample(&mut rng) as u8;
        let payment_pref = self.payments.sample(&mut rng) as u8;
        let never_buys = rng.random::<f64>() < 0.08;

        let mut orders = Vec::new();
        if !never_buys {
            let span = self.cal.days as f64;
            let mut t = signup + self.first_gap.sample(&mut rng);
            let thin = Exp::new(lambda * self.cal.max_factor).expect("positive rate");
            let mut first = true;
            loop {
                if !first {
                    // Next accepted day of the seasonally thinned process.
                    loop {
                        t += thin.sample(&mut rng);
                        if t >= span {
                            break;
                        }
                        let f = if t < 0.0 {
                            1.0
                        } else {
                            self.cal.factor[t as usize]
                        };
                        if rng.random::<f64>() * self.cal.max_factor < f {
                            break;
                        }
                    }
                }
                first = false;
                if t >= span {
                    break;
                }
                if t >= 0.0 {
                    orders.push(self.order(
                        &mut rng,
                        t as usize,
                        favourite,
                        affinity,
                        channel_pref,
                        payment_pref,
                    ));
                }
                if rng.random::<f64>() < p_drop {
                    break;
                }
            }
        }

        SimCustomer {
            signup_day: self.epoch_day_start + signup.floor() as i32,
            city,
            latitude,
            longitude,
            duplicate,
            orders,
        }
    }

    fn order(
        &self,
        rng: &mut ChaCha8Rng,
        day: usize,
        favourite: usize,
        affinity: f64,
        channel_pref: u8,
        payment_pref: u8,
    ) -> SimOrder {
        let r = self.cfg.defect_rate;
        let event = self.cal.event[day];
        let hour = self.hours.sample(rng) as i64;
        let second = rng.random_range(0..3600i64);
        let ts_us = self.cal.start_us + ((day as i64 * 24 + hour) * 3600 + second) * 1_000_000;
        let channel = if rng.random::<f64>() < 0.8 {
            channel_pref
        } else {
            self.channels.sample(rng) as u8
        };
        let payment = if rng.random::<f64>() < 0.85 {
            payment_pref
        } else {
            self.payments.sample(rng) as u8
        };
        let u: f64 = rng.random();
        let status = if u < 0.05 {
            1
        } else if u < 0.075 {
            2
        } else {
            0
        };
        let duplicate = rng.random::<f64>() < r / 5.0;
        if rng.random::<f64>() < r / 5.0 {
            // An order header whose lines never arrived.
            return SimOrder {
                ts_us,
                channel,
                payment,
                status,
                duplicate,
                lines: Vec::new(),
            };
        }

        let years = day as f64 / 365.25;
        let n_lines = 1 + (self.extra_lines.sample(rng) as usize).min(9);
        let mut lines = Vec::with_capacity(n_lines);
        let (discount_p, deep) = if event == Event::BlackFriday {
            (0.7, true)
        } else {
            (0.22, false)
        };
        for _ in 0..n_lines {
            let category = if rng.random::<f64>() < affinity {
                favourite
            } else {
                self.catalog.category_mix[event_index(event)].sample(rng)
            };
            let rank = self.catalog.zipf[category].sample(rng);
            let product = self.catalog.by_category[category][rank];
            let quantity = 1 + (self.extra_units[category].sample(rng) as i32).min(20);
            let list = self.catalog.products[product].list_price;
            let unit_price = round_to(list * (1.0 + INFLATION_PER_YEAR * years), 2);
            let discount = if rng.random::<f64>() < discount_p {
                let steps: &[f64] = if deep {
                    &[0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50]
                } else {
                    &[0.05, 0.05, 0.10, 0.10, 0.15, 0.20, 0.30]
                };
                steps[rng.random_range(0..steps.len())]
            } else {
                0.0
            };
            let mut line = SimLine {
                product,
                quantity,
                unit_price,
                discount,
                kind: LineKind::Ok,
            };
            if rng.random::<f64>() < r {
                plant_line_defect(rng, &mut line);
            }
            lines.push(line);
        }
        SimOrder {
            ts_us,
            channel,
            payment,
            status,
            duplicate,
            lines,
        }
    }
}

fn plant_line_defect(rng: &mut ChaCha8Rng, line: &mut SimLine) {
    line.kind = match rng.random_range(0..6) {
        0 => LineKind::Duplicate,
        1 => LineKind::UnknownOrder,
        2 => LineKind::UnknownProduct,
        3 => {
            line.quantity = if rng.random::<bool>() { 0 } else { -1 };
            LineKind::BadQuantity
        }
        4 => {
            line.unit_price = if rng.random::<bool>() {
                0.0
            } else {
                -line.unit_price
            };
            LineKind::BadPrice
        }
        _ => {
            line.discount = [-0.1, 1.0, 1.5][rng.random_range(0..3)];
            LineKind::BadDiscount
        }
    };
}

fn round_to(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

/// A bijective 64-bit mix: unique, random-looking ids from a counter.
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A 64-bit value in 11 base-62 digits (62^11 > 2^64): ids of 12 bytes
/// with their prefix, short enough for Arrow string views to store inline,
/// which halves the memory of the id columns and speeds up joins on them.
fn base62(mut x: u64) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 11];
    for d in out.iter_mut().rev() {
        *d = DIGITS[(x % 62) as usize];
        x /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

fn customer_id(seed: u64, index: u64) -> String {
    format!("c{}", base62(mix64(index ^ seed.rotate_left(17))))
}

fn order_id(seed: u64, index: u64) -> String {
    format!(
        "o{}",
        base62(mix64(index ^ seed.rotate_left(33) ^ 0x5bd1_e995))
    )
}

/// Generate the four curated tables into `out` (created if needed). Files are
/// written under temporary names and renamed into place only when all four
/// are complete, so an interrupted run never leaves half a table behind.
pub fn generate(cfg: &GeneratorConfig, out: &Path) -> Result<GenerationSummary> {
    cfg.check()?;
    std::fs::create_dir_all(out).map_err(DataError::io(out, "creating the output folder"))?;

    let n_products = ((cfg.lines / 150) as usize).clamp(240, 24_000);
    let catalog = Catalog::new(n_products, cfg.seed);
    let sim = Simulator::new(cfg, &catalog);
    let mut summary = GenerationSummary::default();
    let mut planted = PlantedDefects::default();

    let mut w_customers = TableWriter::create(out, &CUSTOMERS)?;
    let mut w_products = TableWriter::create(out, &PRODUCTS)?;
    let mut w_orders = TableWriter::create(out, &ORDERS)?;
    let mut w_lines = TableWriter::create(out, &ORDER_ITEMS)?;

    // Products (with planted duplicate rows).
    {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(u64::MAX - 1);
        let (mut ids, mut cats, mut prices) = (Vec::new(), Vec::new(), Vec::new());
        for p in &catalog.products {
            let copies = if rng.random::<f64>() < cfg.defect_rate / 4.0 {
                planted.duplicate_products += 1;
                2
            } else {
                1
            };
            for _ in 0..copies {
                ids.push(p.id.clone());
                cats.push(CATEGORIES[p.category].name);
                prices.push(p.list_price);
            }
        }
        summary.products = ids.len() as u64;
        let n = ids.len();
        w_products.write(DataFrame::new(
            n,
            vec![
                Column::new("product_id".into(), ids),
                Column::new("category".into(), cats),
                Column::new("list_price".into(), prices),
            ],
        ))?;
    }

    let bar = progress_bar(cfg);
    let mut next_customer: u64 = 0;
    let mut next_order: u64 = 0;
    let mut phantom_order: u64 = 0;
    let mut lines_left = cfg.lines;
    while lines_left > 0 {
        let first = next_customer;
        let batch: Vec<SimCustomer> = (first..first + cfg.chunk_customers as u64)
            .into_par_iter()
            .map(|i| sim.customer(i))
            .collect();
        next_customer += batch.len() as u64;

        let mut cc = CustomerCols::default();
        let mut oc = OrderCols::default();
        let mut lc = LineCols::default();
        for (k, c) in batch.iter().enumerate() {
            if lines_left == 0 {
                break;
            }
            let cid = customer_id(cfg.seed, first + k as u64);
            cc.push(&cid, c);
            if c.duplicate {
                cc.push(&cid, c);
                planted.duplicate_customers += 1;
            }
            for o in &c.orders {
                if lines_left == 0 {
                    break;
                }
                let oid = order_id(cfg.seed, next_order);
                next_order += 1;
                oc.push(&oid, &cid, o);
                if o.duplicate {
                    oc.push(&oid, &cid, o);
                    planted.duplicate_orders += 1;
                }
                let mut real_lines = 0usize;
                for (li, l) in o.lines.iter().enumerate() {
                    if lines_left == 0 {
                        break;
                    }
                    let line_no = li as i32 + 1;
                    let product_id = if l.kind == LineKind::UnknownProduct {
                        format!("P9{:06}", (mix64(next_order ^ li as u64) % 1_000_000))
                    } else {
                        catalog.products[l.product].id.clone()
                    };
                    let order_ref = if l.kind == LineKind::UnknownOrder {
                        phantom_order += 1;
                        format!("x{}", base62(mix64(phantom_order ^ cfg.seed)))
                    } else {
                        oid.clone()
                    };
                    lc.push(&order_ref, line_no, product_id.clone(), l);
                    lines_left -= 1;
                    match l.kind {
                        LineKind::Ok => {}
                        LineKind::Duplicate => {
                            if lines_left > 0 {
                                lc.push(&order_ref, line_no, product_id, l);
                                lines_left -= 1;
                                planted.duplicate_order_lines += 1;
                            }
                        }
                        LineKind::UnknownOrder => planted.lines_unknown_order += 1,
                        LineKind::UnknownProduct => planted.lines_unknown_product += 1,
                        LineKind::BadQuantity => planted.lines_non_positive_quantity += 1,
                        LineKind::BadPrice => planted.lines_non_positive_price += 1,
                        LineKind::BadDiscount => planted.lines_discount_out_of_range += 1,
                    }
                    real_lines += usize::from(l.kind != LineKind::UnknownOrder);
                }
                // Planted empty orders, and orders whose every line points to
                // an unknown order: both arrive without lines.
                if real_lines == 0 {
                    planted.orders_without_lines += 1;
                }
            }
        }
        summary.customers += cc.id.len() as u64;
        summary.orders += oc.id.len() as u64;
        summary.order_items += lc.order.len() as u64;
        w_customers.write(cc.frame())?;
        w_orders.write(oc.frame())?;
        w_lines.write(lc.frame())?;
        bar.set_position(cfg.lines - lines_left);
        if next_customer > cfg.lines.saturating_mul(10) + 1_000_000 {
            return Err(invalid(
                "lines",
                "a size the customer simulation can reach",
                &cfg.lines.to_string(),
            ));
        }
    }
    bar.finish_and_clear();

    let done = [
        w_customers.finish()?,
        w_products.finish()?,
        w_orders.finish()?,
        w_lines.finish()?,
    ];
    super::writer::commit(done.into())?;
    summary.planted_defects = planted;
    Ok(summary)
}

fn progress_bar(cfg: &GeneratorConfig) -> indicatif::ProgressBar {
    if !cfg.progress {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(cfg.lines);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} generating [{bar:40}] {human_pos}/{human_len} order lines ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
mod tests;
