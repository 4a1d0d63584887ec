use super::*;

#[test]
fn uri_escapes_what_a_url_query_would_eat() {
    assert_eq!(
        stdio_uri(
            Path::new("/usr/bin/keel-agent"),
            Path::new("/l/a b&c=d.log")
        ),
        "binary:///usr/bin/keel-agent?containerd-log=/l/a%20b%26c%3Dd.log"
    );
}
