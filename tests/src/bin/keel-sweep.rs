//! `keel-sweep [PREFIX]`: removes keel's leftovers by name prefix (default
//! "keel": every test and lab). See keel_tests::sweep.

fn main() {
    let prefix = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "keel".to_string());
    if !prefix.starts_with("keel") {
        eprintln!("keel-sweep: prefix {prefix:?} must start with \"keel\"");
        std::process::exit(2);
    }
    let swept = keel_tests::sweep::sweep(&prefix);
    println!("keel-sweep {prefix}: {swept}");
    if !swept.errors.is_empty() {
        std::process::exit(1);
    }
}
