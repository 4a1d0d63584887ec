use super::*;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n";
const GROUP: &str = "root:x:0:\nwww:x:33:\nstaff:x:50:www,bob\n";

#[test]
fn resolves_names_numbers_and_groups() {
    assert_eq!(
        resolve("www", PASSWD, GROUP).unwrap(),
        ExecUser {
            uid: 33,
            gid: 33,
            additional_gids: vec![50]
        }
    );
    assert_eq!(resolve("1000", PASSWD, GROUP).unwrap().uid, 1000);
    assert_eq!(resolve("1000:7", PASSWD, GROUP).unwrap().gid, 7);
    assert_eq!(resolve("www:staff", PASSWD, GROUP).unwrap().gid, 50);
    assert_eq!(resolve("0", PASSWD, GROUP).unwrap().gid, 0);
    assert!(
        resolve("nobody", PASSWD, GROUP)
            .unwrap_err()
            .contains("nobody")
    );
    assert!(resolve("www:nogroup", PASSWD, GROUP).is_err());
}
