//! Finds Hyperscan (`libhs`, Debian `libhyperscan-dev`) with pkg-config. When it
//! is there the spam engine scans all body-like rules in one pass (`src/spam/hyperscan.rs`);
//! without it the build still works and the engine falls back to its literal prefilter,
//! which is slower but gives the same results. The filter logs which one it uses.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(hyperscan)");
    println!("cargo::rerun-if-env-changed=AMAVISD_NO_HYPERSCAN");
    if std::env::var_os("AMAVISD_NO_HYPERSCAN").is_some() {
        return;
    }
    if pkg_config::Config::new()
        .atleast_version("5.4")
        .probe("libhs")
        .is_ok()
    {
        println!("cargo::rustc-cfg=hyperscan");
    }
}
