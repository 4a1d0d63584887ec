//! Image layers (tar streams) unpacked by `images::unpack::unpack_layer`
//! into a fresh directory each run, then checked: nothing may appear
//! outside that directory.
//!
//! The unpacking runs on one thread that has its own mount namespace and
//! root: a private tmpfs (with a read-only, pid-only procfs, which the
//! in-root resolver reads `/proc/self/fd` from). A layer that escaped its
//! directory would write into that tmpfs, never the host, and is caught by
//! listing the tmpfs after the run. Needs root (as the agent does).
#![no_main]

use std::{
    ffi::CString,
    fs,
    path::Path,
    sync::{Mutex, OnceLock, mpsc},
};

use keel_agent::runtime::images::{manifest::Compression, unpack::unpack_layer};
use libfuzzer_sys::fuzz_target;

type Job = (Vec<u8>, mpsc::Sender<()>);

fn sys(what: &str, rc: libc::c_int) {
    assert!(
        rc == 0,
        "layer_unpack sandbox: {what}: {} (the target needs root)",
        std::io::Error::last_os_error()
    );
}

/// Enters a private mount namespace with a tmpfs as root, on this thread.
fn sandbox() {
    let c = |s: &str| CString::new(s).expect("no NUL");
    // SAFETY: plain syscalls on this thread's own namespace and root, with
    // valid NUL-terminated strings.
    unsafe {
        sys("unshare", libc::unshare(libc::CLONE_FS | libc::CLONE_NEWNS));
        sys(
            "make / private",
            libc::mount(
                std::ptr::null(),
                c("/").as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ),
        );
        sys(
            "tmpfs",
            libc::mount(
                c("keel-fuzz").as_ptr(),
                c("/tmp").as_ptr(),
                c("tmpfs").as_ptr(),
                libc::MS_NOSUID,
                c("size=64m,mode=0700").as_ptr().cast(),
            ),
        );
        sys("mkdir proc", libc::mkdir(c("/tmp/proc").as_ptr(), 0o555));
        sys(
            "procfs",
            libc::mount(
                c("proc").as_ptr(),
                c("/tmp/proc").as_ptr(),
                c("proc").as_ptr(),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                c("subset=pid").as_ptr().cast(),
            ),
        );
        sys("chroot", libc::chroot(c("/tmp").as_ptr()));
        sys("chdir", libc::chdir(c("/").as_ptr()));
    }
}

fn worker() -> &'static Mutex<mpsc::Sender<Job>> {
    static WORKER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    WORKER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            sandbox();
            ready_tx.send(()).expect("main thread waits");
            for (layer, done) in rx {
                unpack_once(&layer);
                let _ = done.send(());
            }
        });
        ready_rx.recv().expect("the sandbox thread starts");
        Mutex::new(tx)
    })
}

/// One run inside the sandbox (a panic here aborts: libFuzzer's hook).
fn unpack_once(layer: &[u8]) {
    let blob = Path::new("/layer.tar");
    let dest = Path::new("/rootfs");
    fs::write(blob, layer).expect("writing the layer blob");
    fs::create_dir(dest).expect("a fresh directory for the layer");
    let _ = unpack_layer(blob, Compression::None, dest);
    let mut outside: Vec<String> = fs::read_dir("/")
        .expect("listing the sandbox")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !matches!(n.as_str(), "layer.tar" | "rootfs" | "proc"))
        .collect();
    outside.sort();
    // Clean up before reporting, so the next run starts from nothing.
    for n in &outside {
        let p = Path::new("/").join(n);
        let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
    }
    fs::remove_dir_all(dest).expect("removing the unpacked layer");
    assert!(
        outside.is_empty(),
        "the layer wrote outside its directory: {outside:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let (done_tx, done_rx) = mpsc::channel();
    worker()
        .lock()
        .expect("worker lock")
        .send((data.to_vec(), done_tx))
        .expect("the sandbox thread runs");
    done_rx.recv().expect("the sandbox thread answers");
});
