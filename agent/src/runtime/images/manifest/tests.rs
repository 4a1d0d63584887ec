use super::*;

#[test]
fn tells_manifests_from_indexes() {
    let m =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"x","digest":"sha256:00","size":1},"layers":[]}"#;
    assert!(matches!(Document::parse("", m), Ok(Document::Manifest(_))));
    let i = br#"{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:00","size":1,
            "platform":{"architecture":"amd64","os":"linux"}}]}"#;
    let Ok(Document::Index(idx)) = Document::parse("application/json", i) else {
        panic!("index not recognised")
    };
    assert_eq!(idx.for_host().is_some(), host_arch() == "amd64");
    assert!(Document::parse("application/vnd.foo", m).is_err());
}

#[test]
fn layer_media_types() {
    assert_eq!(layer_compression(OCI_LAYER_GZIP), Some(Compression::Gzip));
    assert_eq!(layer_compression(OCI_LAYER_TAR), Some(Compression::None));
    assert_eq!(
        layer_compression("application/vnd.oci.image.layer.v1.tar+zstd"),
        None
    );
}
