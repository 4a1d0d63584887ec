use super::*;

#[test]
fn top_layer_comes_first() {
    let o = overlay_options(
        &["/l/a".into(), "/l/b".into()],
        Path::new("/e"),
        Path::new("/u"),
        Path::new("/w"),
    );
    assert_eq!(o, "lowerdir=/l/b:/l/a,upperdir=/u,workdir=/w");
    let o = overlay_options(&[], Path::new("/e"), Path::new("/u"), Path::new("/w"));
    assert!(o.starts_with("lowerdir=/e,"));
}
