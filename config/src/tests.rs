use std::path::PathBuf;

use clap::Parser;

use super::*;

/// A daemon's flags in small: a scalar with a default, one with an
/// environment variable, a checked value, a list, an on/off flag.
#[derive(Parser, Debug)]
struct Daemon {
    #[arg(long)]
    config_file: Option<PathBuf>,
    #[arg(long, default_value = "none", value_parser = ["none", "vxlan", "route"])]
    mode: String,
    #[arg(long, env = "KEEL_CONFIG_TEST_LISTEN", default_value = "127.0.0.1:1")]
    listen: std::net::SocketAddr,
    #[arg(long, default_value_t = 24)]
    prefix: u8,
    #[arg(long, value_delimiter = ':')]
    bin_dir: Vec<PathBuf>,
    #[arg(long)]
    log_json: bool,
    #[arg(long)]
    node_ip: Option<std::net::Ipv4Addr>,
}

const NO_FILE: FileFlag = FileFlag {
    id: "config_file",
    default_path: "/nonexistent/keel-config-test.yaml",
};

fn with_file(yaml: &str, args: &[&str]) -> Result<(Daemon, Effective), Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut argv = vec![
        "d".to_string(),
        "--config-file".into(),
        path.display().to_string(),
    ];
    argv.extend(args.iter().map(|s| s.to_string()));
    load_from(argv, NO_FILE)
}

fn key_error(r: Result<(Daemon, Effective), Error>) -> (String, String) {
    match r {
        Err(Error::Key { key, reason, .. }) => (key, reason),
        other => panic!("expected a key error, got {other:?}"),
    }
}

#[test]
fn missing_default_file_is_fine_missing_explicit_file_is_not() {
    let (d, eff) = load_from::<Daemon, _, _>(["d"], NO_FILE).unwrap();
    assert_eq!(d.mode, "none");
    assert!(eff.file.is_none());
    assert_eq!(eff.get("mode").unwrap().source, Source::Default);
    assert_eq!(eff.get("node-ip").unwrap().source, Source::Unset);
    let e = load_from::<Daemon, _, _>(["d", "--config-file", "/nonexistent/x.yaml"], NO_FILE)
        .unwrap_err();
    assert!(matches!(e, Error::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/x.yaml"), "{e}");
}

#[test]
fn file_values_fill_in_under_flags() {
    let yaml = "mode: vxlan\nprefix: 26\nbin-dir: [/opt/cni/bin, /usr/lib/cni]\nlog-json: true\n";
    let (d, eff) = with_file(yaml, &[]).unwrap();
    assert_eq!(d.mode, "vxlan");
    assert_eq!(d.prefix, 26);
    assert_eq!(
        d.bin_dir,
        vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]
    );
    assert!(d.log_json);
    for k in ["mode", "prefix", "bin-dir", "log-json"] {
        assert_eq!(eff.get(k).unwrap().source, Source::File, "{k}");
    }
    // A flag wins over the file, lists included (replaced, not appended).
    let (d, eff) = with_file(yaml, &["--mode", "route", "--bin-dir", "/x"]).unwrap();
    assert_eq!(d.mode, "route");
    assert_eq!(d.bin_dir, vec![PathBuf::from("/x")]);
    assert_eq!(eff.get("mode").unwrap().source, Source::Flag);
    assert_eq!(eff.get("prefix").unwrap().source, Source::File);
}

#[test]
fn env_wins_over_file_flag_over_env() {
    // The only test that sets this variable.
    // SAFETY: no other test reads or writes KEEL_CONFIG_TEST_LISTEN.
    unsafe { std::env::set_var("KEEL_CONFIG_TEST_LISTEN", "127.0.0.1:2") };
    let (d, eff) = with_file("listen: 127.0.0.1:3\n", &[]).unwrap();
    assert_eq!(d.listen.port(), 2);
    assert_eq!(
        eff.get("listen").unwrap().source,
        Source::Env("KEEL_CONFIG_TEST_LISTEN".into())
    );
    let (d, _) = with_file("listen: 127.0.0.1:3\n", &["--listen", "127.0.0.1:4"]).unwrap();
    assert_eq!(d.listen.port(), 4);
    // SAFETY: as above.
    unsafe { std::env::remove_var("KEEL_CONFIG_TEST_LISTEN") };
    let (d, _) = with_file("listen: 127.0.0.1:3\n", &[]).unwrap();
    assert_eq!(d.listen.port(), 3);
}

#[test]
fn bad_files_name_the_key_and_the_reason() {
    let (k, r) = key_error(with_file("mode: bogus\n", &[]));
    assert_eq!(k, "mode");
    assert!(r.contains("bogus") && r.contains("vxlan"), "{r}");
    let (k, r) = key_error(with_file("prefix: 300\n", &[]));
    assert_eq!(k, "prefix");
    assert!(r.contains("300"), "{r}");
    let (k, r) = key_error(with_file("nodeip: 10.0.0.1\n", &[]));
    assert_eq!(k, "nodeip");
    assert!(r.contains("did you mean node-ip"), "{r}");
    let (_, r) = key_error(with_file("flux-capacitor: 1\n", &[]));
    assert!(r.contains("unknown key"), "{r}");
    let (_, r) = key_error(with_file("mode: [vxlan]\n", &[]));
    assert!(r.contains("not a list"), "{r}");
    let (_, r) = key_error(with_file("log-json: yes please\n", &[]));
    assert!(r.contains("true or false"), "{r}");
    let (_, r) = key_error(with_file("mode:\n", &[]));
    assert!(r.contains("no value"), "{r}");
    let (_, r) = key_error(with_file("config-file: /x\n", &[]));
    assert!(r.contains("another config file"), "{r}");
    // Refused even where a flag overrides it.
    let (k, _) = key_error(with_file("mode: bogus\n", &["--mode", "vxlan"]));
    assert_eq!(k, "mode");
    let e = with_file("- mode\n", &[]).unwrap_err();
    assert!(matches!(e, Error::NotAMapping { .. }), "{e:?}");
    let e = with_file("mode: [\n", &[]).unwrap_err();
    assert!(matches!(e, Error::Yaml { .. }), "{e:?}");
    // The error text names the file.
    let e = with_file("mode: bogus\n", &[]).unwrap_err().to_string();
    assert!(e.contains("d.yaml: mode: "), "{e}");
}

#[test]
fn empty_file_is_all_defaults() {
    let (d, _) = with_file("# nothing set\n", &[]).unwrap();
    assert_eq!(d.mode, "none");
}

#[test]
fn shown_configuration_loads_back_the_same() {
    let (_, eff) = with_file(
        "mode: vxlan\nbin-dir: [/a, /b]\n",
        &["--node-ip", "10.1.2.3", "--log-json"],
    )
    .unwrap();
    let text = eff.to_yaml("d");
    assert!(text.contains("mode: vxlan  # file"), "{text}");
    assert!(text.contains("node-ip: 10.1.2.3  # flag"), "{text}");
    assert!(text.contains("prefix: '24'  # default"), "{text}");
    assert!(text.contains("log-json: true  # flag"), "{text}");
    assert!(text.contains("bin-dir:  # file\n- /a\n- /b\n"), "{text}");
    let (d, again) = with_file(&text, &[]).unwrap();
    assert_eq!(d.node_ip, Some("10.1.2.3".parse().unwrap()));
    assert!(d.log_json);
    let values = |e: &Effective| {
        e.entries
            .iter()
            .map(|e| (e.key.clone(), e.values.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&eff), values(&again));
    // Unset keys are commented out.
    let (_, eff) = with_file("", &[]).unwrap();
    assert!(eff.to_yaml("d").contains("# node-ip:  # unset"));
}
