//! `keel-bench SUITE [ARGS]`: runs one of keel's benchmark suites and prints
//! its table. `keel-bench list` shows them.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let suites = keel_tests::bench::suites();
    let Some(name) = args.first().filter(|n| *n != "list") else {
        println!("benchmark suites (cargo xtask bench SUITE):");
        for s in &suites {
            println!("  {:<12} {}", s.name, s.about);
        }
        return Ok(());
    };
    let suite = suites.iter().find(|s| s.name == name).ok_or_else(|| {
        anyhow::anyhow!("no benchmark suite {name:?}; `keel-bench list` shows them")
    })?;
    (suite.run)(&args[1..])
}
