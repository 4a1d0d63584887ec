//! Joining nodes the real way, in one lab shared by every case: the lab's
//! nodes joined with a bootstrap token from `keelctl token create` over TLS
//! and are Ready; joins with an unknown, wrong, expired or deleted token
//! or a wrong CA hash are refused with clear errors; a node credential may
//! write its own Node and its pods' status, read the Secrets its pods use,
//! and gets 403 for anything else;
//! after `keelctl delete node` its credential is refused and a re-join with
//! a new token works; plain HTTP to the TLS port gets nowhere.

use std::{path::Path, process::Command, time::Duration};

use keel_api::{
    Node, Pod, Secret, Service,
    client::{Client, ClientConfig, ClientError, ListParams},
};
use keel_lab::{Bins, Lab, LabGuard, Mode, Options, Spec, block_on, join_flags};
use keel_tests::{
    process::{bin, wait_for},
    require_root,
};

fn keelctl(lab: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin("keelctl"))
        .args(["--lab", lab])
        .args(args)
        .output()
        .expect("keelctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `keelctl token create`'s join flags (`--server … --token … --ca-hash …`).
fn create_token(lab: &str, ttl: &str, description: &str) -> Vec<String> {
    let (ok, out, err) = keelctl(
        lab,
        &[
            "token",
            "create",
            "--ttl",
            ttl,
            "--description",
            description,
        ],
    );
    assert!(ok, "token create: {err}");
    join_flags(&out).unwrap_or_else(|| panic!("no join command in {out:?}"))
}

fn flag<'a>(flags: &'a [String], name: &str) -> &'a str {
    let at = flags.iter().position(|f| f == name).expect(name);
    &flags[at + 1]
}

/// Runs `keel-agent join` in node-1's namespace for a node that does not
/// exist, with a fresh data dir; it must exit (a refused join) within 30 s.
/// Returns its stderr.
fn refused_join(lab: &Lab, server: &str, token: &str, ca_hash: &str) -> String {
    let dir = tempfile::Builder::new()
        .prefix("keel-t-join-")
        .tempdir()
        .unwrap();
    let log = dir.path().join("stderr");
    let mut cmd = lab
        .command("node-1", bin("keel-agent").to_str().unwrap())
        .unwrap();
    cmd.args([
        "join",
        "--server",
        server,
        "--token",
        token,
        "--ca-hash",
        ca_hash,
    ])
    .args(["--node-name", "joiner", "--node-ip", "10.255.0.1"])
    // Only the join is under test: the node features stay off, and the
    // machine's /etc/keel plays no part.
    .args(
        keel_tests::process::AGENT_FEATURES_OFF
            .iter()
            .flat_map(|(flag, value)| [*flag, *value]),
    )
    .env("KEEL_AGENT_CONFIG", "/dev/null")
    .arg("--data-dir")
    .arg(dir.path().join("data"))
    .stdout(std::process::Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    let mut child = cmd.spawn().unwrap();
    let status = wait_for("the refused join to exit", Duration::from_secs(30), || {
        child.try_wait().unwrap()
    });
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "the join succeeded: {stderr}");
    assert!(
        !dir.path().join("data/credential/node.pem").exists(),
        "a refused join stores no credential"
    );
    stderr
}

/// A client presenting `node`'s stored credential, from the control namespace.
fn node_client(lab: &Lab, node: &str) -> Client {
    let path = lab.state.dir.join(node).join("credential/client.json");
    let config = ClientConfig::load(&path).unwrap();
    assert!(config.token.is_empty(), "a node has no bearer token");
    assert!(config.identity.is_some());
    let control = keel_sys::ns::NetNs::named_path(&lab.topology().control.netns);
    Client::with_connector(&config, keel_lab::connect::in_netns(&control)).unwrap()
}

fn api_error(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Api(s) => (s.code, s.message),
        other => panic!("not an API error: {other}"),
    }
}

fn pod_on(name: &str, node: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap()
}

fn opaque_secret(name: &str) -> Secret {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "stringData": {"password": "s3cret"}
    }))
    .unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn nodes_join_with_bootstrap_tokens_and_are_authorized_as_nodes() {
    require_root();
    let name = format!("tjn{}", std::process::id() % 100_000);
    let spec = Spec {
        name: name.clone(),
        nodes: 2,
        mode: Mode::Route,
        segments: 1,
    };
    let bins = Bins::beside_current_exe().expect("binaries");
    let mut guard = LabGuard(Lab::up(&spec, &bins, &Options::default()).expect("lab up"));
    let admin = guard.client().unwrap();

    // The lab's nodes joined with a token (no admin token on them), hold
    // their own credential (key 0600) and are Ready.
    for n in ["node-1", "node-2"] {
        let cred = guard.state.dir.join(n).join("credential");
        assert_eq!(mode(&cred.join("node.pem")), 0o600);
        let agent = guard.state.processes.iter().find(|p| p.role == n).unwrap();
        assert_eq!(agent.command.get(1).map(String::as_str), Some("join"));
        assert!(!agent.command.iter().any(|a| a == "--config"));
        let node: Node = block_on(admin.get("", n)).unwrap();
        assert!(node.is_ready(), "{n} is Ready");
    }

    // `token list` shows the lab's token, never a secret.
    let flags = create_token(&name, "1h", "for the join test");
    let (server, token, ca_hash) = (
        flag(&flags, "--server").to_string(),
        flag(&flags, "--token").to_string(),
        flag(&flags, "--ca-hash").to_string(),
    );
    let (ok, list, err) = keelctl(&name, &["token", "list"]);
    assert!(ok, "{err}");
    let id = token.split('.').next().unwrap();
    let secret = token.split('.').nth(1).unwrap();
    assert!(
        list.contains(id) && list.contains("for the join test"),
        "{list}"
    );
    assert!(!list.contains(secret), "token list shows a secret: {list}");

    // Refused joins, each with a clear error.
    let err = refused_join(&guard, &server, "zzzzzz.zzzzzzzzzzzzzzzz", &ca_hash);
    assert!(
        err.contains("bootstrap token zzzzzz: no such token"),
        "{err}"
    );
    let wrong_secret = format!("{id}.zzzzzzzzzzzzzzzz");
    let err = refused_join(&guard, &server, &wrong_secret, &ca_hash);
    assert!(err.contains("wrong secret"), "{err}");
    let bad_hash = format!("sha256:{}", "0".repeat(64));
    let err = refused_join(&guard, &server, &token, &bad_hash);
    assert!(
        err.contains("refusing to join") && err.contains(&ca_hash),
        "{err}"
    );
    let short = create_token(&name, "1s", "short");
    std::thread::sleep(Duration::from_secs(2));
    let err = refused_join(&guard, &server, flag(&short, "--token"), &ca_hash);
    assert!(err.contains("expired at"), "{err}");
    let deleted = create_token(&name, "1h", "deleted");
    let deleted_token = flag(&deleted, "--token").to_string();
    let (ok, _, err) = keelctl(&name, &["token", "delete", &deleted_token]);
    assert!(ok, "{err}");
    let err = refused_join(&guard, &server, &deleted_token, &ca_hash);
    assert!(err.contains("no such token"), "{err}");

    // kubectl from the lab's control namespace, with the kubeconfig
    // `keelctl --lab N kubeconfig` writes (as `lab up` says): the server's
    // certificate verifies against the cluster CA it embeds.
    let kubeconfig = guard.state.dir.join("test.kubeconfig");
    let (ok, _, err) = keelctl(&name, &["kubeconfig", "-o", kubeconfig.to_str().unwrap()]);
    assert!(ok, "{err}");
    let out = guard
        .command("control", "kubectl")
        .unwrap()
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(guard.state.dir.join("kube-cache"))
        .args(["--request-timeout=20s", "get", "nodes", "-o", "name"])
        .output()
        .expect("kubectl on PATH");
    let nodes = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && nodes.contains("node/node-1"),
        "kubectl: {nodes} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What a node credential may do.
    let n1 = node_client(&guard, "node-1");
    block_on(n1.list::<Pod>("", &ListParams::default())).expect("nodes list pods");
    block_on(n1.list::<Service>("", &ListParams::default())).expect("nodes list services");
    // Another node's Node: 403 naming the user, the verb and the resource.
    let mut other: Node = block_on(admin.get("", "node-2")).unwrap();
    other.metadata.resource_version.clear();
    other.metadata.labels.insert("by".into(), "node-1".into());
    let (code, msg) = api_error(block_on(n1.update(&other)).unwrap_err());
    assert_eq!(code, 403, "{msg}");
    assert!(
        msg.contains("User \"system:node:node-1\" cannot update resource \"nodes\""),
        "{msg}"
    );
    // Its own Node: allowed.
    let mut own: Node = block_on(admin.get("", "node-1")).unwrap();
    own.metadata.resource_version.clear();
    own.metadata.labels.insert("by".into(), "node-1".into());
    block_on(n1.update(&own)).expect("a node updates its own Node");
    // A Service: 403.
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "sneaky", "namespace": "default"},
        "spec": {"ports": [{"port": 80}]}
    }))
    .unwrap();
    let (code, msg) = api_error(block_on(n1.create(&svc)).unwrap_err());
    assert_eq!(code, 403, "{msg}");
    assert!(msg.contains("cannot create resource \"services\""), "{msg}");
    // Pod status: only of pods bound to it.
    let mine: Pod = block_on(admin.create(&pod_on("mine", "node-1"))).unwrap();
    let theirs: Pod = block_on(admin.create(&pod_on("theirs", "node-2"))).unwrap();
    let mut st = theirs.clone();
    st.metadata.resource_version.clear();
    st.status.message = "written by node-1".into();
    let (code, msg) = api_error(block_on(n1.update_status(&st)).unwrap_err());
    assert_eq!(code, 403, "{msg}");
    assert!(msg.contains("bound to \"node-2\""), "{msg}");
    let mut st = mine.clone();
    st.metadata.resource_version.clear();
    st.status.message = "written by node-1".into();
    block_on(n1.update_status(&st)).expect("a node writes its own pod's status");
    // Secrets: only those its pods use, by name or a one-name watch.
    block_on(admin.create(&opaque_secret("used"))).unwrap();
    block_on(admin.create(&opaque_secret("unused"))).unwrap();
    let mut user = pod_on("uses-secret", "node-1");
    user.spec.image_pull_secrets = vec![keel_api::pod::LocalObjectReference {
        name: "used".into(),
    }];
    block_on(admin.create(&user)).unwrap();
    block_on(n1.get::<Secret>("default", "used")).expect("a node reads a Secret its pod uses");
    block_on(n1.list::<Secret>("default", &ListParams::fields("metadata.name=used")))
        .expect("a node lists a Secret its pod uses by name");
    let (code, msg) = api_error(block_on(n1.get::<Secret>("default", "unused")).unwrap_err());
    assert_eq!(code, 403, "{msg}");
    assert!(msg.contains("references secrets default/unused"), "{msg}");
    let (code, msg) =
        api_error(block_on(n1.list::<Secret>("default", &ListParams::default())).unwrap_err());
    assert_eq!(code, 403, "{msg}");

    // Deleting node-2's Node revokes its credential...
    let n2 = node_client(&guard, "node-2");
    block_on(n2.list::<Node>("", &ListParams::default())).expect("node-2's credential works");
    let (ok, _, err) = keelctl(&name, &["delete", "node", "node-2"]);
    assert!(ok, "{err}");
    let (code, msg) = api_error(block_on(n2.list::<Node>("", &ListParams::default())).unwrap_err());
    assert_eq!(code, 401, "{msg}");
    assert!(msg.contains("revoked"), "{msg}");
    // ... and the node, joined again with a new token, gets a new one that works.
    guard.stop_agent("node-2").unwrap();
    let rejoin = create_token(&name, "1h", "re-join node-2");
    guard.rejoin_agent("node-2", &rejoin).unwrap();
    wait_for(
        "node-2 to register again and be Ready",
        Duration::from_secs(60),
        || {
            block_on(admin.get::<Node>("", "node-2"))
                .ok()
                .filter(Node::is_ready)
        },
    );
    let n2 = node_client(&guard, "node-2");
    block_on(n2.list::<Node>("", &ListParams::default())).expect("the new credential works");
    // A restart uses the stored credential, with no token.
    guard.stop_agent("node-2").unwrap();
    guard.start_agent("node-2").unwrap();
    let agent = guard
        .state
        .processes
        .iter()
        .find(|p| p.role == "node-2")
        .unwrap();
    assert!(!agent.command.iter().any(|a| a == "join" || a == "--token"));
    let before = block_on(admin.get::<Node>("", "node-2")).unwrap();
    wait_for(
        "node-2's heartbeat after the restart",
        Duration::from_secs(30),
        || {
            let now = block_on(admin.get::<Node>("", "node-2")).ok()?;
            (now.metadata.resource_version != before.metadata.resource_version && now.is_ready())
                .then_some(())
        },
    );

    // Plain HTTP to the TLS port is refused.
    let plain_config = ClientConfig::from_parts(
        &server.replace("https://", "http://"),
        &guard.state.dir.join("control/token"),
        None,
    )
    .unwrap();
    let control = keel_sys::ns::NetNs::named_path(&guard.topology().control.netns);
    let plain =
        Client::with_connector(&plain_config, keel_lab::connect::in_netns(&control)).unwrap();
    assert!(block_on(plain.list::<Node>("", &ListParams::default())).is_err());
}
