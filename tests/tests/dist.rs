//! The release path as an admin meets it: `cargo xtask dist` (here from the
//! debug binaries, `--bin-dir`) makes the tarball; its `install.sh` installs
//! into a scratch root (twice: idempotent), the installed binaries run and
//! read the installed config files, the systemd units pass `systemd-analyze
//! verify`, the agent's start-up checks refuse a host missing what its
//! features need, and `install.sh --uninstall` removes exactly what was
//! installed (an admin-edited config file and foreign files stay).
//!
//! Everything lives in one temp dir removed on drop; nothing is installed
//! outside it and no agent runs past its start-up checks.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use keel_tests::process::bin;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every path under `root` (relative) with its mode and, for files, contents.
fn tree(root: &Path) -> BTreeMap<String, (u32, Option<Vec<u8>>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                stack.push(p);
                out.insert(rel, (mode, None));
            } else {
                out.insert(rel, (mode, Some(std::fs::read(&p).unwrap())));
            }
        }
    }
    out
}

/// The release directory unpacked from a fresh tarball.
struct Release {
    dir: tempfile::TempDir,
    unpacked: PathBuf,
}

fn make_release() -> Release {
    let dir = tempfile::Builder::new()
        .prefix("keel-t-dist-")
        .tempdir()
        .unwrap();
    let out = dir.path().join("out");
    let bins = bin("keel-agent").parent().unwrap().to_path_buf();
    let built = run(Command::new(bin("xtask"))
        .args(["dist", "--profile", "dev", "--bin-dir"])
        .arg(&bins)
        .arg("--out")
        .arg(&out));
    let name = format!("keel-{VERSION}-{}-linux", std::env::consts::ARCH);
    let tarball = out.join(format!("{name}.tar.gz"));
    assert_eq!(text(&built).trim(), tarball.display().to_string());
    // Exactly the documented layout, and nothing staged left behind.
    let listing = text(&run(Command::new("tar").arg("-tzf").arg(&tarball)));
    let mut entries: Vec<&str> = listing.lines().collect();
    entries.sort();
    let want: Vec<String> = [
        "",
        "bin/",
        "bin/keel-agent",
        "bin/keel-control",
        "bin/keelctl",
        "cni/",
        "cni/keel",
        "etc/",
        "etc/keel/",
        "etc/keel/agent.yaml",
        "etc/keel/control.yaml",
        "install.sh",
        "systemd/",
        "systemd/keel-agent.service",
        "systemd/keel-control.service",
    ]
    .iter()
    .map(|e| format!("{name}/{e}"))
    .collect();
    assert_eq!(entries, want);
    assert!(!out.join(&name).exists());
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&x));
    Release {
        unpacked: x.join(name),
        dir,
    }
}

fn install(rel: &Release, root: &Path, extra: &[&str]) -> String {
    text(&run(Command::new(rel.unpacked.join("install.sh"))
        .arg("--root")
        .arg(root)
        .args(extra)))
}

#[test]
fn dist_installs_runs_verifies_and_uninstalls() {
    let rel = make_release();
    let root = rel.dir.path().join("root");
    // Something of the admin's own beside where keel goes.
    std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    std::fs::write(root.join("usr/local/bin/other-tool"), "#!/bin/sh\n").unwrap();
    let before = tree(&root);

    let lint = Command::new("shellcheck")
        .arg(rel.unpacked.join("install.sh"))
        .output()
        .expect("shellcheck (`cargo xtask setup` installs it)");
    assert!(
        lint.status.success(),
        "shellcheck install.sh:\n{}",
        String::from_utf8_lossy(&lint.stdout)
    );

    let first = install(&rel, &root, &[]);
    assert!(
        first.contains("installed  /usr/local/bin/keel-agent"),
        "{first}"
    );
    let installed = tree(&root);
    let mode = |p: &str| {
        installed
            .get(p)
            .unwrap_or_else(|| panic!("{p} not installed"))
            .0
    };
    for b in [
        "usr/local/bin/keel-control",
        "usr/local/bin/keel-agent",
        "usr/local/bin/keelctl",
        "opt/cni/bin/keel",
    ] {
        assert_eq!(mode(b), 0o755, "{b}");
    }
    for f in [
        "etc/systemd/system/keel-control.service",
        "etc/systemd/system/keel-agent.service",
        "etc/keel/control.yaml",
        "etc/keel/agent.yaml",
        "usr/local/share/keel/install-manifest",
    ] {
        assert_eq!(mode(f), 0o644, "{f}");
    }
    // The CNI plugin is keel-cni itself.
    assert_eq!(
        installed["opt/cni/bin/keel"].1,
        Some(std::fs::read(bin("keel-cni")).unwrap())
    );
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/keel-agent.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/keel-agent\n"),
        "{unit}"
    );
    assert!(unit.contains("KillMode=process"), "{unit}");

    // Again: nothing changes.
    let second = install(&rel, &root, &[]);
    assert!(
        second.contains("unchanged  /usr/local/bin/keel-agent"),
        "{second}"
    );
    assert!(!second.contains("installed  "), "{second}");
    assert_eq!(tree(&root), installed, "a second install changed the tree");

    installed_binaries_run(&root);
    units_verify(&root, rel.dir.path());
    start_up_checks_refuse(&root, rel.dir.path());

    // A newer release with another default control.yaml: the installed
    // one, never edited, is brought up to it.
    let shipped = rel.unpacked.join("etc/keel/control.yaml");
    let mut newer = std::fs::read_to_string(&shipped).unwrap();
    newer.push_str("# a newer release's default\n");
    std::fs::write(&shipped, &newer).unwrap();
    let upgraded = install(&rel, &root, &[]);
    assert!(
        upgraded.contains("updated    /etc/keel/control.yaml (it had the earlier default)"),
        "{upgraded}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/keel/control.yaml")).unwrap(),
        newer
    );

    // An admin edits agent.yaml: a new install keeps it, uninstall too.
    let agent_yaml = root.join("etc/keel/agent.yaml");
    let mut edited = std::fs::read_to_string(&agent_yaml).unwrap();
    edited.push_str("node-ip: 10.0.0.11\n");
    std::fs::write(&agent_yaml, &edited).unwrap();
    let third = install(&rel, &root, &[]);
    assert!(
        third.contains("kept       /etc/keel/agent.yaml (edited"),
        "{third}"
    );
    assert_eq!(std::fs::read_to_string(&agent_yaml).unwrap(), edited);

    let removed = install(&rel, &root, &["--uninstall"]);
    assert!(
        removed.contains("kept       /etc/keel/agent.yaml"),
        "{removed}"
    );
    let mut left = tree(&root);
    assert_eq!(
        left.remove("etc/keel/agent.yaml").and_then(|(_, c)| c),
        Some(edited.into_bytes())
    );
    left.remove("etc/keel");
    left.remove("etc");
    assert_eq!(left, before, "uninstall left or removed something else");
    // Uninstalling again finds nothing to do.
    let again = install(&rel, &root, &["--uninstall"]);
    assert!(again.contains("nothing to remove"), "{again}");
}

/// The installed agent and control service run and read the installed
/// config files, under flags and environment variables.
fn installed_binaries_run(root: &Path) {
    let agent = root.join("usr/local/bin/keel-agent");
    let v = text(&run(Command::new(&agent).arg("--version")));
    assert!(v.starts_with(&format!("keel-agent {VERSION}\n")), "{v}");
    assert!(v.contains("BPF programs: embedded ("), "{v}");

    let agent_yaml = root.join("etc/keel/agent.yaml");
    let shown = text(&run(Command::new(&agent)
        .arg("--config-file")
        .arg(&agent_yaml)
        .args(["--runtime", "none", "config", "show"])
        .env("KEEL_CGROUP_ROOT", "none")
        .env_remove("KEEL_AGENT_CONFIG")));
    for want in [
        format!("config file: {}", agent_yaml.display()),
        "runtime: none  # flag".into(),
        "cgroup-root: none  # env KEEL_CGROUP_ROOT".into(),
        "network-mode: auto  # file".into(),
        "cni-bin-dir:  # file\n- /opt/cni/bin\n".into(),
        "heartbeat-interval: 10s  # default".into(),
    ] {
        assert!(shown.contains(&want), "missing {want:?} in:\n{shown}");
    }
    // The node's hostPath allow-list from its environment variable,
    // ':'-separated as on the command line.
    let host_paths = text(&run(Command::new(&agent)
        .args(["config", "show"])
        .env("KEEL_AGENT_CONFIG", &agent_yaml)
        .env("KEEL_ALLOW_HOST_PATH", "/srv/keel-a:/srv/keel-b")));
    assert!(
        host_paths.contains(
            "allow-host-path:  # env KEEL_ALLOW_HOST_PATH\n- /srv/keel-a\n- /srv/keel-b\n"
        ),
        "{host_paths}"
    );
    let out = Command::new(&agent)
        .args(["config", "show"])
        .env("KEEL_AGENT_CONFIG", &agent_yaml)
        .env("KEEL_ALLOW_HOST_PATH", "relative/dir")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("absolute path without '..'"), "{err}");
    // The same through KEEL_AGENT_CONFIG.
    let via_env = text(&run(Command::new(&agent)
        .args(["config", "show"])
        .env("KEEL_AGENT_CONFIG", &agent_yaml)));
    assert!(via_env.contains("network-mode: auto  # file"), "{via_env}");

    // A bad file is refused with the file, the key and the reason.
    let bad = root.join("bad-agent.yaml");
    std::fs::write(&bad, "network-mode: sideways\n").unwrap();
    let out = Command::new(&agent)
        .arg("--config-file")
        .arg(&bad)
        .args(["config", "show"])
        .output()
        .unwrap();
    std::fs::remove_file(&bad).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}: network-mode: ", bad.display())) && err.contains("sideways"),
        "{err}"
    );
    // An explicit file that is missing is an error too.
    let out = Command::new(&agent)
        .args([
            "--config-file",
            "/nonexistent/keel-t-agent.yaml",
            "config",
            "show",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let control = root.join("usr/local/bin/keel-control");
    let shown = text(&run(Command::new(&control)
        .arg("--config")
        .arg(root.join("etc/keel/control.yaml"))
        .args(["--listen", "127.0.0.1:7443", "config", "show"])
        .env_remove("KEEL_CONTROL_LISTEN")));
    for want in [
        "listen: 127.0.0.1:7443  # flag",
        "data-dir: /var/lib/keel/control  # file",
        "store: redb  # file",
        "watch-history: '20000'  # default",
    ] {
        assert!(shown.contains(want), "missing {want:?} in:\n{shown}");
    }
    automatic_values_resolve(&agent);

    let keelctl = root.join("usr/local/bin/keelctl");
    run(Command::new(&keelctl).arg("--version"));
}

/// `config show` says what the automatic values are on this host: the node
/// IP from the default route (in a test namespace whose default route
/// leaves by its second link) and the cgroup v2 root from mountinfo.
fn automatic_values_resolve(agent: &Path) {
    let ns = keel_tests::TestNetns::new("dist").expect("netns");
    for args in [
        "link add lan0 type veth peer name lan0p",
        "link add wan0 type veth peer name wan0p",
        "addr add 10.9.0.5/24 dev lan0",
        "addr add 10.0.0.7/24 dev wan0",
        "link set lan0 up",
        "link set lan0p up",
        "link set wan0 up",
        "link set wan0p up",
        "route add default via 10.0.0.1 dev wan0",
    ] {
        let st = ns
            .command("ip")
            .args(args.split_whitespace())
            .status()
            .unwrap();
        assert!(st.success(), "ip {args}");
    }
    let shown = text(&run(ns
        .command(&agent.display().to_string())
        .args(["--config-file", "/dev/null", "config", "show"])
        .env_remove("KEEL_CGROUP_ROOT")));
    assert!(
        shown.contains("# node-ip resolves to 10.0.0.7\n"),
        "{shown}"
    );
    let cg = keel_tests::cgroup::cgroup2_root().expect("a cgroup2 mount");
    assert!(
        shown.contains(&format!("# cgroup-root resolves to {}\n", cg.display())),
        "{shown}"
    );
}

/// `systemd-analyze verify` on the installed units. The scratch root has no
/// systemd of its own (`--root` finds no sysinit.target), so each unit is
/// verified against the host's, from a copy whose ExecStart names the
/// binary installed in the scratch root: verify also checks it is executable.
fn units_verify(root: &Path, scratch: &Path) {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!(
            "systemd-analyze is missing (Debian's systemd package; `cargo xtask setup` installs it)"
        );
    }
    let dir = scratch.join("verify");
    std::fs::create_dir_all(&dir).unwrap();
    for u in ["keel-control.service", "keel-agent.service"] {
        let unit = std::fs::read_to_string(root.join("etc/systemd/system").join(u)).unwrap();
        let exec = format!("ExecStart={}/usr/local/bin/", root.display());
        let copy = unit.replace("ExecStart=/usr/local/bin/", &exec);
        assert_ne!(copy, unit, "{u} has no ExecStart in /usr/local/bin");
        std::fs::write(dir.join(u), copy).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.join(u))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // Warnings (an unknown key or value) exit 0 but name the unit.
        let about_unit: Vec<&str> = err.lines().filter(|l| l.contains(u)).collect();
        assert!(
            out.status.success() && about_unit.is_empty(),
            "systemd-analyze verify {u} ({}):\n{err}",
            out.status
        );
    }
}

/// The installed agent refuses to start on what this scratch setup lacks,
/// listing all of it at once with the flags that turn each feature off.
fn start_up_checks_refuse(root: &Path, scratch: &Path) {
    let agent = root.join("usr/local/bin/keel-agent");
    let empty = scratch.join("no-plugins");
    std::fs::create_dir_all(&empty).unwrap();
    let pins = scratch.join("pins");
    let out = Command::new(&agent)
        .args(["--config-file", "/dev/null"])
        .args(["--node-name", "keel-t-dist", "--node-ip", "192.0.2.1"])
        .arg("--data-dir")
        .arg(scratch.join("agent-data"))
        .args(["--network-mode", "none", "--runtime", "none"])
        .args(["--cgroup-root", "/nonexistent/keel-t-dist-cgroup"])
        .arg("--cni-bin-dir")
        .arg(&empty)
        .arg("--bpffs")
        .arg(&pins)
        .env_remove("KEEL_AGENT_CONFIG")
        .env_remove("KEEL_CGROUP_ROOT")
        .env_remove("KEEL_BPFFS")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    for want in [
        "keel-agent cannot start: this host lacks what the enabled features need (3 problems)".to_string(),
        "load balancer: --cgroup-root /nonexistent/keel-t-dist-cgroup: no such directory (turn it off with --cgroup-root none)".into(),
        format!(
            "load balancer: {} is not on a bpf filesystem",
            pins.display()
        ),
        format!(
            "pods: no CNI plugin \"keel\" (an executable) in --cni-bin-dir {} (turn it off with --cni-bin-dir none)",
            empty.display()
        ),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    // Nothing was touched: not even the data directory.
    assert!(!scratch.join("agent-data").exists());
    assert!(!pins.exists());
}

#[test]
fn dist_refuses_an_agent_without_bpf_programs() {
    let dir = tempfile::Builder::new()
        .prefix("keel-t-dist-")
        .tempdir()
        .unwrap();
    let bins = dir.path().join("bins");
    std::fs::create_dir(&bins).unwrap();
    for b in ["keel-control", "keelctl", "keel-cni"] {
        std::fs::copy(bin(b), bins.join(b)).unwrap();
    }
    // What an agent built without the BPF toolchain says.
    let agent = bins.join("keel-agent");
    std::fs::write(
        &agent,
        format!("#!/bin/sh\nprintf 'keel-agent {VERSION}\\nBPF programs: missing\\n'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(bin("xtask"))
        .args(["dist", "--bin-dir"])
        .arg(&bins)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("has no BPF programs embedded (BPF programs: missing)"),
        "{err}"
    );
    assert!(
        !dir.path().join("out").exists()
            || std::fs::read_dir(dir.path().join("out"))
                .unwrap()
                .next()
                .is_none()
    );
}
