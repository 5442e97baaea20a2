//! Run-time search path for the prebuilt XGBoost library that serve links
//! through analytics-lib's `models` feature (see analytics-lib/build.rs).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=XGBOOST_LIB_DIR");
    let dir = match std::env::var_os("XGBOOST_LIB_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../third_party/xgboost-cpu/xgboost/lib"
        )),
    };
    let dir = dir.canonicalize().unwrap_or(dir);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
}
