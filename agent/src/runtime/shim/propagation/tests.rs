use super::*;
use serde_json::json;

#[test]
fn bind_mounts_get_their_propagation_and_nothing_else_does() {
    let config = json!({"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["rprivate"]},
        {"destination": "/a", "type": "bind", "source": "/x", "options": ["rbind", "rprivate", "ro"]},
        {"destination": "/b", "type": "bind", "source": "/x", "options": ["rbind", "rslave"]},
        {"destination": "/c", "source": "/x", "options": ["rbind", "rshared"]},
        {"destination": "/d", "type": "bind", "source": "/x", "options": ["rbind"]},
        {"destination": "/e", "type": "bind", "source": "/x", "options": ["bind", "rshared", "slave"]}
    ]});
    assert_eq!(
        plan(&config),
        vec![
            ("/a".to_string(), MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            ("/b".to_string(), MsFlags::MS_SLAVE | MsFlags::MS_REC),
            ("/c".to_string(), MsFlags::MS_SHARED | MsFlags::MS_REC),
            ("/e".to_string(), MsFlags::MS_SLAVE),
        ]
    );
    assert!(plan(&json!({})).is_empty());
}
