//! The lab's etcd (with `--store etcd`): Debian's etcd-server 3.4, one
//! member per keel-control replica, each in its own namespace on the
//! fabric. Clients and peers talk TLS with certificates from an etcd CA of
//! the lab's own (kubeadm's `etcd/ca`), and members require a client
//! certificate from it; keel-control replicas get one client certificate
//! and the Secrets key they must share.
//!
//! [`member_args`] is pure (the test harness in `keel-tests` builds its
//! command lines with it too); [`Pki::create`] writes the files.

use std::{
    io::Read,
    net::Ipv4Addr,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// The etcd binary (`cargo xtask setup` installs Debian's etcd-server).
pub const ETCD: &str = "/usr/bin/etcd";

/// TLS files of one member (serving clients and peers) and its CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client and peer certificates must be signed by this CA.
    pub ca: PathBuf,
    /// Peers talk TLS too (the lab's members are on a fabric, not loopback).
    pub peers: bool,
}

/// One member's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member<'a> {
    pub name: &'a str,
    pub data_dir: &'a Path,
    /// `http(s)://IP:PORT`, listened on and advertised.
    pub client_url: &'a str,
    pub peer_url: &'a str,
    /// `--initial-cluster`: `name=peer-url,…` of every member.
    pub initial_cluster: &'a str,
    /// Same for every member of one cluster, different between clusters.
    pub cluster_token: &'a str,
    pub tls: Option<&'a MemberTls>,
}

/// etcd's arguments for `m`. Raft timing is short (heartbeat 50 ms,
/// election 500 ms) so a lost member is noticed fast under faults; a member
/// started again on its data directory ignores the `--initial-*` flags.
pub fn member_args(m: &Member) -> Vec<String> {
    let mut a: Vec<String> = [
        "--name",
        m.name,
        "--data-dir",
        &m.data_dir.display().to_string(),
        "--listen-client-urls",
        m.client_url,
        "--advertise-client-urls",
        m.client_url,
        "--listen-peer-urls",
        m.peer_url,
        "--initial-advertise-peer-urls",
        m.peer_url,
        "--initial-cluster",
        m.initial_cluster,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        m.cluster_token,
        "--heartbeat-interval",
        "50",
        "--election-timeout",
        "500",
        "--logger",
        "zap",
        "--log-outputs",
        "stderr",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(tls) = m.tls {
        let (cert, key, ca) = (
            tls.cert.display().to_string(),
            tls.key.display().to_string(),
            tls.ca.display().to_string(),
        );
        a.extend(
            [
                "--cert-file",
                &cert,
                "--key-file",
                &key,
                "--trusted-ca-file",
                &ca,
                "--client-cert-auth",
            ]
            .map(String::from),
        );
        if tls.peers {
            a.extend(
                [
                    "--peer-cert-file",
                    &cert,
                    "--peer-key-file",
                    &key,
                    "--peer-trusted-ca-file",
                    &ca,
                    "--peer-client-cert-auth",
                ]
                .map(String::from),
            );
        }
    }
    a
}

/// The lab's etcd PKI, under one directory (0700, files 0600).
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// A CA, one certificate per member (valid for its address, serving
    /// clients and peers and presented to peers), and keel-control's client
    /// certificate.
    pub fn create(dir: &Path, members: &[(String, Ipv4Addr)]) -> anyhow::Result<Pki> {
        make_private_dir(dir)?;
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "keel lab etcd CA");
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        write_private(&pki.ca(), ca_cert.pem().as_bytes())?;
        let leaf = |names: Vec<String>, cn: &str, file: &str| -> anyhow::Result<()> {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(names)?;
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
            let cert = params.signed_by(&key, &issuer)?;
            write_private(&dir.join(format!("{file}.crt")), cert.pem().as_bytes())?;
            write_private(
                &dir.join(format!("{file}.key")),
                key.serialize_pem().as_bytes(),
            )?;
            Ok(())
        };
        for (name, ip) in members {
            leaf(
                vec![ip.to_string(), "127.0.0.1".into(), "localhost".into()],
                name,
                name,
            )
            .with_context(|| format!("etcd certificate of {name}"))?;
        }
        leaf(vec!["keel-control".into()], "keel-control", "keel-control")
            .context("keel-control's etcd client certificate")?;
        Ok(pki)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A member's TLS files.
    pub fn member(&self, name: &str) -> MemberTls {
        MemberTls {
            cert: self.dir.join(format!("{name}.crt")),
            key: self.dir.join(format!("{name}.key")),
            ca: self.ca(),
            peers: true,
        }
    }

    /// keel-control's `--etcd-cafile/--etcd-certfile/--etcd-keyfile` flags.
    pub fn control_flags(&self) -> Vec<String> {
        vec![
            "--etcd-cafile".into(),
            self.ca().display().to_string(),
            "--etcd-certfile".into(),
            self.dir.join("keel-control.crt").display().to_string(),
            "--etcd-keyfile".into(),
            self.dir.join("keel-control.key").display().to_string(),
        ]
    }
}

/// A key file every replica shares (`--encryption-key-file`: replicas on
/// one etcd must seal Secrets with one key): `shared BASE64` (0600).
pub fn create_shared_key(path: &Path) -> anyhow::Result<()> {
    use base64::Engine;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .context("reading /dev/urandom")?;
    let line = format!(
        "shared {}\n",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    write_private(path, line.as_bytes())
}

fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(data))
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_serves_clients_and_peers_over_tls_with_client_certificates() {
        let tls = MemberTls {
            cert: "/p/etcd-1.crt".into(),
            key: "/p/etcd-1.key".into(),
            ca: "/p/ca.crt".into(),
            peers: true,
        };
        let a = member_args(&Member {
            name: "etcd-1",
            data_dir: Path::new("/d/etcd-1"),
            client_url: "https://172.30.0.101:2379",
            peer_url: "https://172.30.0.101:2380",
            initial_cluster: "etcd-1=https://172.30.0.101:2380",
            cluster_token: "keel-lab-x",
            tls: Some(&tls),
        });
        let after = |flag: &str| {
            let i = a
                .iter()
                .position(|x| x == flag)
                .unwrap_or_else(|| panic!("{flag}"));
            a[i + 1].clone()
        };
        assert_eq!(after("--listen-client-urls"), "https://172.30.0.101:2379");
        assert_eq!(after("--initial-cluster-token"), "keel-lab-x");
        assert_eq!(after("--trusted-ca-file"), "/p/ca.crt");
        assert_eq!(after("--peer-trusted-ca-file"), "/p/ca.crt");
        assert!(a.iter().any(|x| x == "--client-cert-auth"));
        assert!(a.iter().any(|x| x == "--peer-client-cert-auth"));

        let plain = member_args(&Member {
            tls: None,
            ..Member {
                name: "m0",
                data_dir: Path::new("/d"),
                client_url: "http://127.0.0.1:2379",
                peer_url: "http://127.0.0.1:2480",
                initial_cluster: "m0=http://127.0.0.1:2480",
                cluster_token: "t",
                tls: None,
            }
        });
        assert!(!plain.iter().any(|x| x.contains("cert")));
    }

    #[test]
    fn the_pki_holds_a_ca_member_certificates_and_a_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(
            &dir.path().join("pki"),
            &[("etcd-1".into(), Ipv4Addr::new(172, 30, 0, 101))],
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        for f in [
            "ca.crt",
            "etcd-1.crt",
            "etcd-1.key",
            "keel-control.crt",
            "keel-control.key",
        ] {
            let m = std::fs::metadata(pki.dir.join(f)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
        }
        let flags = pki.control_flags();
        assert_eq!(flags[0], "--etcd-cafile");
        assert!(flags[3].ends_with("keel-control.crt"));
        let key = dir.path().join("k");
        create_shared_key(&key).unwrap();
        let line = std::fs::read_to_string(&key).unwrap();
        assert!(line.starts_with("shared ") && line.len() > 40, "{line}");
    }
}
