//! `keelctl kubeconfig`: a kubeconfig for kubectl and client-go tools from
//! keelctl's own connection settings — the server, the CA (embedded as
//! `certificate-authority-data`) and the bearer token — with one cluster,
//! user and context, all named after the cluster, and the namespace set.

use std::path::Path;

use keel_api::client::ClientConfig;

/// The kubeconfig document (YAML) for `config`.
///
/// kubectl takes one server per cluster: with several replicas the first is
/// the server and the others are named in a comment (put a load balancer in
/// front of them to fail over with kubectl).
pub fn render(config: &ClientConfig, name: &str, namespace: &str) -> String {
    let servers: Vec<&str> = config.servers().collect();
    let mut cluster = String::new();
    if servers.len() > 1 {
        cluster.push_str(&format!(
            "    # other keel-control replicas (kubectl takes one server): {}\n",
            servers[1..].join(", ")
        ));
    }
    cluster.push_str(&format!(
        "    server: {}\n",
        quote(servers.first().copied().unwrap_or(&config.server))
    ));
    if let Some(ca) = &config.ca_pem {
        cluster.push_str(&format!("    certificate-authority-data: {}\n", base64(ca)));
    }
    let name = quote(name);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n{cluster}users:\n- name: {name}\n  user:\n    token: {token}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n    namespace: {ns}\ncurrent-context: {name}\npreferences: {{}}\n",
        token = quote(&config.token),
        ns = quote(namespace),
    )
}

/// Writes `render(…)` to `path` (mode 0600: it holds the token), or to
/// stdout when `path` is `-`.
pub fn write(
    config: &ClientConfig,
    name: &str,
    namespace: &str,
    path: &Path,
) -> anyhow::Result<()> {
    let doc = render(config, name, namespace);
    if path == Path::new("-") {
        print!("{doc}");
        return Ok(());
    }
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    f.write_all(doc.as_bytes())?;
    eprintln!(
        "wrote {}: use it with `kubectl --kubeconfig {} get pods` or `export KUBECONFIG={}`",
        path.display(),
        path.display(),
        path.display()
    );
    Ok(())
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_as_the_standard_says() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn a_kubeconfig_names_server_ca_token_and_namespace() {
        let config = ClientConfig {
            server: "https://10.0.0.1:6443".into(),
            token: "t0k".into(),
            ca_pem: Some(b"PEM".to_vec()),
            identity: None,
        };
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&render(&config, "keel", "web")).unwrap();
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://10.0.0.1:6443"
        );
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert_eq!(doc["users"][0]["user"]["token"], "t0k");
        assert_eq!(doc["contexts"][0]["context"]["namespace"], "web");
        assert_eq!(doc["current-context"], "keel");
    }

    #[test]
    fn several_replicas_give_kubectl_the_first_as_its_server() {
        let config = ClientConfig {
            server: "https://10.0.0.1:6443,https://10.0.0.4:6443".into(),
            token: "t".into(),
            ca_pem: None,
            identity: None,
        };
        let text = render(&config, "keel", "default");
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://10.0.0.1:6443"
        );
        assert!(
            text.contains(
                "# other keel-control replicas (kubectl takes one server): https://10.0.0.4:6443"
            ),
            "{text}"
        );
    }
}
