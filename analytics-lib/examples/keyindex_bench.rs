//! Times final cleaning's id index (`KeyIndex::with_first_flags`) on a data
//! folder's order and customer ids, on one thread (one table) and on every
//! thread (one table per thread), in turn. Then, against it, what the
//! alternative of ids as dictionary codes from load on would cost: each
//! round, the order lines' and orders' `order_id` cast to categoricals of
//! one fresh dictionary (polars' own hashing of every id, which the load
//! would then do), beside the index's build on the orders and lookup of
//! every line (`KeyIndex::resolve`, cleaning's work on the same ids).
//!
//!   cargo run --profile release -p analytics-lib --example keyindex_bench -- DATA [ROUNDS]
use std::path::Path;
use std::time::Instant;

use analytics_lib::contract::categorical_dtype;
use analytics_lib::data::keys::KeyIndex;
use polars::prelude::*;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: keyindex_bench DATA [ROUNDS]");
    let rounds: usize = args.next().map_or(Ok(3), |r| r.parse())?;
    let data = analytics_lib::data::load(Path::new(&dir))?.collect()?;
    let all = rayon::current_num_threads();
    for (table, frame, id) in [
        ("orders", &data.orders, "order_id"),
        ("customers", &data.customers, "customer_id"),
    ] {
        let ids = frame.column(id)?.str()?.clone();
        for round in 0..rounds {
            for threads in [1, all] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()?;
                let t = Instant::now();
                let (index, first) = pool.install(|| KeyIndex::with_first_flags(&ids));
                let seconds = t.elapsed().as_secs_f64();
                println!(
                    "{table} round {round} threads {threads}: {seconds:.3} s for {} ids ({} distinct, {} first)",
                    ids.len(),
                    index.len(),
                    first.iter().filter(|f| **f).count()
                );
            }
        }
    }
    let lines = data.order_items.column("order_id")?.str()?.clone();
    let orders = data.orders.column("order_id")?.str()?.clone();
    for round in 0..rounds {
        let t = Instant::now();
        let index = KeyIndex::new(&orders);
        let rows = index.resolve(&lines);
        let indexed = t.elapsed().as_secs_f64();
        let found = rows
            .iter()
            .filter(|&&r| r != analytics_lib::data::keys::NONE)
            .count();
        drop((index, rows));
        let t = Instant::now();
        // A dictionary of its own each round (named apart from the
        // contract's columns), as a load would start from.
        let dtype = categorical_dtype(&format!("keyindex_bench_{round}"));
        let coded_orders = orders.clone().into_series().cast(&dtype)?;
        let coded_lines = lines.clone().into_series().cast(&dtype)?;
        let coded = t.elapsed().as_secs_f64();
        println!(
            "order ids round {round}: index + lookup {indexed:.3} s ({found} of {} lines found); \
             as codes of one dictionary {coded:.3} s ({} + {} codes)",
            lines.len(),
            coded_orders.len(),
            coded_lines.len()
        );
    }
    Ok(())
}
