//! Times final cleaning's id index (`KeyIndex::with_first_flags`) on a data
//! folder's order and customer ids, on one thread (one table) and on every
//! thread (one table per thread), in turn.
//!
//!   cargo run --profile release -p analytics-lib --example keyindex_bench -- DATA [ROUNDS]
use std::path::Path;
use std::time::Instant;

use analytics_lib::data::keys::KeyIndex;

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
    Ok(())
}
