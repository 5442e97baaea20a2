//! Times the join of the cleaned tables into the per-line sales view
//! (`Sales::join`, the `join` stage of `analytics bench`) on a data folder:
//! the tables are loaded and cleaned once, then joined ROUNDS times in the
//! same process (each round on fresh copies of cleaning's row vectors).
//! The first round faults its memory in; the later ones reuse what the
//! allocator kept, so their spread shows the work apart from the kernel's.
//! Also prints the CPU time and page faults of each round.
//!
//!   cargo run --profile release -p analytics-lib --features cli --example join_bench -- DATA [ROUNDS]
use std::path::Path;

use analytics_lib::clean;
use analytics_lib::kpi::Sales;
use analytics_lib::process::measure;

/// The allocator `analytics` runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    analytics_lib::process::disable_transparent_huge_pages();
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: join_bench DATA [ROUNDS]");
    let rounds: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let data = analytics_lib::data::load(Path::new(&dir))?.collect()?;
    let (tables, _, keys) = clean::clean_owned(data)?.into_parts();
    println!(
        "{} lines, {} orders, {} customers",
        keys.line_order.len(),
        keys.order_customer.len(),
        tables.customers.height()
    );
    let mut kept = None;
    for round in 0..rounds {
        let keys = keys.clone();
        // The previous round's view is dropped before the next is built,
        // as a job holds one.
        drop(kept.take());
        let (sales, seconds, cpu) = measure(|| Sales::join(&tables, keys));
        let sales = sales?;
        let cpu = cpu.map_or_else(
            || "no CPU figures".to_string(),
            |c| {
                format!(
                    "user {:.3} s, system {:.3} s, {} minor faults",
                    c.user_seconds, c.system_seconds, c.minor_faults
                )
            },
        );
        println!("round {round}: {seconds:.3} s ({cpu})");
        kept = Some(sales);
    }
    Ok(())
}
