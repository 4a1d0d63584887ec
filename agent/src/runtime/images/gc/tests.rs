use super::*;

#[test]
fn keeps_images_in_use_by_name_or_digest() {
    let e = |m: &str| RefEntry {
        manifest: m.into(),
        media_type: String::new(),
    };
    let refs: BTreeMap<_, _> = [
        ("r/a:1".to_string(), e("sha256:a")),
        ("r/b:1".to_string(), e("sha256:b")),
        ("r/c:1".to_string(), e("sha256:c")),
    ]
    .into();
    let in_use: BTreeSet<_> = ["r/a:1".to_string(), "sha256:c".to_string()].into();
    let kept = keep(&refs, &in_use);
    assert_eq!(kept, ["r/a:1".to_string(), "r/c:1".to_string()].into());
}
