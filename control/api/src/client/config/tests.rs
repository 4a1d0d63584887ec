//! Server URLs in a client config: one, or several replicas.

use super::*;

fn token_file(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("keel-api-{name}-{}", std::process::id()));
    fs::write(&path, "t0k\n").unwrap();
    path
}

#[test]
fn several_replicas_are_comma_separated_and_each_is_checked() {
    let token = token_file("replicas");
    let c = ClientConfig::from_parts("http://a:6443, https://b:6443/", &token, None).unwrap();
    assert_eq!(
        c.servers().collect::<Vec<_>>(),
        ["http://a:6443", "https://b:6443/"]
    );
    assert_eq!(c.token, "t0k");
    let err = ClientConfig::from_parts("http://a:6443,b:6443", &token, None).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Scheme { server } if server == "b:6443"),
        "{err}"
    );
    assert!(ClientConfig::from_parts("http://a:6443,", &token, None).is_err());
    fs::remove_file(token).unwrap();
}
