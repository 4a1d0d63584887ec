use super::*;

fn parse(args: &[&str]) -> Result<Args, clap::Error> {
    Args::try_parse_from(std::iter::once("keel-agent").chain(args.iter().copied()))
}

#[test]
fn node_policy_flags() {
    // Nothing given: no host paths, nothing privileged, profiles under the data dir.
    let a = parse(&[]).unwrap();
    assert!(a.allow_host_path.is_empty());
    assert!(!a.allow_privileged);
    assert!(a.seccomp_profile_dir.is_none());
    // Repeatable and ':'-separated.
    let a = parse(&[
        "--allow-host-path",
        "/srv/a:/srv/b",
        "--allow-host-path",
        "/data",
    ])
    .unwrap();
    assert_eq!(
        a.allow_host_path,
        vec![
            PathBuf::from("/srv/a"),
            PathBuf::from("/srv/b"),
            PathBuf::from("/data")
        ]
    );
    for bad in ["relative", "/srv/../etc"] {
        let e = parse(&["--allow-host-path", bad]).unwrap_err();
        assert!(e.to_string().contains("absolute path without '..'"), "{e}");
    }
    let a = parse(&[
        "--allow-privileged",
        "--seccomp-profile-dir",
        "/etc/keel/seccomp",
    ])
    .unwrap();
    assert!(a.allow_privileged);
    assert_eq!(
        a.seccomp_profile_dir,
        Some(PathBuf::from("/etc/keel/seccomp"))
    );
}

#[test]
fn production_defaults_and_their_off_switches() {
    use keel_agent::host::checks::CgroupRoot;
    let a = parse(&[]).unwrap();
    assert_eq!(a.runtime, "direct");
    assert_eq!(a.network_mode, keel_agent::net::plan::Mode::Auto);
    assert_eq!(a.host_routing, keel_agent::net::hostrouting::Mode::Auto);
    assert_eq!(a.cgroup_root, CgroupRoot::Auto);
    assert_eq!(a.cni_bin_dir, vec![PathBuf::from("/opt/cni/bin")]);
    assert_eq!(a.node_ip, None);
    let a = parse(&[
        "--runtime",
        "none",
        "--network-mode",
        "none",
        "--cgroup-root",
        "none",
        "--cni-bin-dir",
        "none",
    ])
    .unwrap();
    assert_eq!(a.runtime, "none");
    assert_eq!(a.network_mode, keel_agent::net::plan::Mode::None);
    assert_eq!(a.cgroup_root, CgroupRoot::None);
    // Taken out before the agent starts (agent_main).
    assert_eq!(a.cni_bin_dir, vec![PathBuf::from("none")]);
    let e = parse(&["--cgroup-root", "relative/dir"]).unwrap_err();
    assert!(
        e.to_string().contains("expected auto, none or an absolute"),
        "{e}"
    );
}

#[test]
fn node_port_defaults_to_10250_and_none_turns_it_off() {
    assert_eq!(parse(&[]).unwrap().node_port_listen.0, Some(10250));
    let a = parse(&["--node-port-listen", "none"]).unwrap();
    assert_eq!(a.node_port_listen.0, None);
    let a = parse(&["--server-port", "11250"]).unwrap();
    assert_eq!(a.node_port_listen.0, Some(11250));
    let e = parse(&["--node-port-listen", "0"]).unwrap_err();
    assert!(e.to_string().contains("1-65535 or none"), "{e}");
}

#[test]
fn cluster_dns_is_on_by_default_and_none_turns_it_off() {
    assert_eq!(
        parse(&[]).unwrap().cluster_dns.0,
        Some(Ipv4Addr::new(169, 254, 20, 10))
    );
    assert_eq!(
        parse(&["--cluster-dns", "none"]).unwrap().cluster_dns.0,
        None
    );
    let a = parse(&["--cluster-dns", "169.254.0.53"]).unwrap();
    assert_eq!(a.cluster_dns.0, Some(Ipv4Addr::new(169, 254, 0, 53)));
    for bad in ["0.0.0.0", "224.0.0.1", "255.255.255.255", "fd00::1", "dns"] {
        let e = parse(&["--cluster-dns", bad]).unwrap_err();
        assert!(
            e.to_string().contains("IPv4 unicast address or none"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn masquerade_is_on_by_default_and_takes_non_masquerade_cidrs() {
    let a = parse(&[]).unwrap();
    assert!(a.masquerade);
    assert!(a.non_masquerade_cidr.is_empty());
    let a = parse(&[
        "--masquerade=false",
        "--non-masquerade-cidr",
        "10.0.0.0/8,192.168.0.0/16",
        "--non-masquerade-cidr",
        "203.0.113.128/25",
    ])
    .unwrap();
    assert!(!a.masquerade);
    let cidrs: Vec<String> = a
        .non_masquerade_cidr
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(cidrs, ["10.0.0.0/8", "192.168.0.0/16", "203.0.113.128/25"]);
    let e = parse(&["--non-masquerade-cidr", "10.1.0.0/8"]).unwrap_err();
    assert!(
        e.to_string().contains("--non-masquerade-cidr") && e.to_string().contains("host bits"),
        "{e}"
    );
    // From the config file, as every other flag.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.yaml");
    std::fs::write(
        &file,
        "masquerade: false\nnon-masquerade-cidr: [100.64.0.0/10]\n",
    )
    .unwrap();
    let (a, _) = keel_config::load_from::<Args, _, _>(
        ["keel-agent", "--config-file", file.to_str().unwrap()],
        startup::CONFIG_FILE,
    )
    .unwrap();
    assert!(!a.masquerade);
    assert_eq!(a.non_masquerade_cidr[0].to_string(), "100.64.0.0/10");
    std::fs::write(&file, "non-masquerade-cidr: [100.64.0.1/10]\n").unwrap();
    let e = keel_config::load_from::<Args, _, _>(
        ["keel-agent", "--config-file", file.to_str().unwrap()],
        startup::CONFIG_FILE,
    )
    .unwrap_err();
    assert!(e.to_string().contains("non-masquerade-cidr"), "{e}");
}
