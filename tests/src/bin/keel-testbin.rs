//! keel-testbin: small network tools the integration tests run inside test
//! namespaces and cgroups (and, later, inside test images).
//!
//!   keel-testbin connect ADDR            one TCP connect, exit 0 on success
//!   keel-testbin join-cgroup DIR -- CMD  move into a cgroup, then exec CMD
//!   keel-testbin http-serve --port N [--healthy-for SECS]
//!                                        HTTP server: `/healthz` answers 200 (500
//!                                        once SECS have passed), `/` the hostname;
//!                                        prints "listening" and exits 0 on SIGTERM
//!   keel-testbin alloc MIB               allocates and touches MIB MiB, then sleeps

use std::{net::TcpStream, os::unix::process::CommandExt, process::Command, time::Duration};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("connect") if args.len() == 2 => connect(&args[1]),
        Some("join-cgroup") if args.len() >= 4 && args[2] == "--" => {
            join_cgroup(&args[1], &args[3..])
        }
        Some("http-serve") => http_serve(&args[1..]),
        Some("alloc") if args.len() == 2 => alloc(&args[1]),
        _ => {
            eprintln!(
                "usage: keel-testbin connect ADDR | join-cgroup DIR -- CMD... | http-serve --port N [--healthy-for SECS] | alloc MIB"
            );
            2
        }
    };
    std::process::exit(code);
}

fn connect(addr: &str) -> i32 {
    let Ok(addr) = addr.parse() else {
        eprintln!("connect: {addr:?} is not IP:PORT");
        return 2;
    };
    match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("connect {addr}: {e}");
            1
        }
    }
}

fn join_cgroup(dir: &str, cmd: &[String]) -> i32 {
    if let Err(e) = std::fs::write(
        format!("{dir}/cgroup.procs"),
        std::process::id().to_string(),
    ) {
        eprintln!("join-cgroup {dir}: {e}");
        return 1;
    }
    let err = Command::new(&cmd[0]).args(&cmd[1..]).exec();
    eprintln!("exec {}: {err}", cmd[0]);
    127
}

static TERM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_term(_: i32) {
    TERM.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn http_serve(args: &[String]) -> i32 {
    use std::io::{Read, Write};
    let mut port = None;
    let mut healthy_for = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = it.next().and_then(|p| p.parse::<u16>().ok()),
            "--healthy-for" => healthy_for = it.next().and_then(|s| s.parse::<u64>().ok()),
            other => {
                eprintln!("http-serve: unknown argument {other:?}");
                return 2;
            }
        }
    }
    let Some(port) = port else {
        eprintln!("http-serve: --port N is required");
        return 2;
    };
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t);
    }
    let listener = match std::net::TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("http-serve: bind :{port}: {e}");
            return 1;
        }
    };
    listener.set_nonblocking(true).expect("nonblocking");
    let start = std::time::Instant::now();
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    println!("listening on :{port}");
    loop {
        if TERM.load(std::sync::atomic::Ordering::SeqCst) {
            println!("SIGTERM: exiting");
            return 0;
        }
        let mut s = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => {
                eprintln!("http-serve: accept: {e}");
                return 1;
            }
        };
        let _ = s.set_nonblocking(false);
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 2048];
        let n = s.read(&mut buf).unwrap_or(0);
        let req = String::from_utf8_lossy(&buf[..n]);
        let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
        let (code, body) = if path == "/healthz" {
            match healthy_for {
                Some(secs) if start.elapsed() >= Duration::from_secs(secs) => {
                    (500, "unhealthy\n".to_string())
                }
                _ => (200, "ok\n".to_string()),
            }
        } else {
            (200, format!("{host}\n"))
        };
        let _ = write!(
            s,
            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

fn alloc(mib: &str) -> i32 {
    let Ok(mib) = mib.parse::<usize>() else {
        eprintln!("alloc: {mib:?} is not a number of MiB");
        return 2;
    };
    let mut chunks = Vec::new();
    for i in 0..mib {
        let mut v = vec![0u8; 1 << 20];
        for j in (0..v.len()).step_by(4096) {
            v[j] = (i + j) as u8;
        }
        chunks.push(v);
        if i % 16 == 0 {
            println!("allocated {i} MiB");
        }
    }
    println!("allocated {mib} MiB");
    std::thread::sleep(Duration::from_secs(3600));
    0
}
