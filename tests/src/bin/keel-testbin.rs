//! keel-testbin: small network tools the integration tests run inside test
//! namespaces and cgroups (and, later, inside test images).
//!
//!   keel-testbin connect ADDR            one TCP connect, exit 0 on success
//!   keel-testbin join-cgroup DIR -- CMD  move into a cgroup, then exec CMD
//!   keel-testbin http-serve --port N [--healthy-for SECS] [--linger SECS]
//!                                        HTTP server: `/healthz` answers 200 (500
//!                                        once SECS have passed), `/` the hostname;
//!                                        prints "listening"; on SIGTERM serves on
//!                                        for the --linger time, then exits 0
//!   keel-testbin grpc-health-serve --port N [--serving-for SECS]
//!                                        gRPC health server (grpc.health.v1.Health/Check):
//!                                        service "" SERVING (NOT_SERVING once SECS
//!                                        have passed), any other NOT_FOUND;
//!                                        prints "listening"
//!   keel-testbin alloc MIB               allocates and touches MIB MiB, then sleeps
//!   keel-testbin id-serve ADDR...        TCP and UDP on each IP:PORT: a TCP client
//!                                        first reads "IP:PORT client=IP:PORT\n" (the
//!                                        address it reached, the address it came
//!                                        from), then gets its lines echoed; a
//!                                        UDP datagram is answered "IP:PORT payload";
//!                                        prints "listening" once bound
//!   keel-testbin lb-dial tcp|udp|udp-connected ADDR [N]
//!                                        N dials (new socket each), one line each:
//!                                        "peer=P server=S" (P: getpeername, or the
//!                                        reply's source for UDP) or "error=KIND"
//!   keel-testbin lb-bench N ADDR...      N transactions round robin over the ADDRs:
//!                                        connect, read the greeting, one line
//!                                        echoed, close with RST (no TIME_WAIT);
//!                                        prints "ok=K errors=E secs=S lat_us=a,b,…"
//!   keel-testbin lb-hold ADDR            one TCP connection; prints its first line,
//!                                        then each stdin line is sent and the echo
//!                                        printed; exits when stdin closes
//!   keel-testbin dns-reflect ADDR         UDP on IP:PORT: every datagram of 12 bytes
//!                                        or more is sent back as a DNS response
//!                                        (QR and RA set, NOERROR, nothing added): the
//!                                        least any DNS server does, a floor for
//!                                        benchmarks; runs until killed
//!   keel-testbin sys-clone plain|newuser|newnet
//!                                        one raw clone(2) with those flags (the
//!                                        child exits at once); prints "ok" and
//!                                        exits 0, or prints the errno and exits 1

use std::{net::TcpStream, os::unix::process::CommandExt, process::Command, time::Duration};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("connect") if args.len() == 2 => connect(&args[1]),
        Some("join-cgroup") if args.len() >= 4 && args[2] == "--" => {
            join_cgroup(&args[1], &args[3..])
        }
        Some("http-serve") => http_serve(&args[1..]),
        Some("grpc-health-serve") => grpc_health_serve(&args[1..]),
        Some("alloc") if args.len() == 2 => alloc(&args[1]),
        Some("id-serve") if args.len() >= 2 => id_serve(&args[1..]),
        Some("lb-dial") if (3..=4).contains(&args.len()) => {
            lb_dial(&args[1], &args[2], args.get(3))
        }
        Some("lb-hold") if args.len() == 2 => lb_hold(&args[1]),
        Some("lb-bench") if args.len() >= 3 => lb_bench(&args[1], &args[2..]),
        Some("sys-clone") if args.len() == 2 => sys_clone(&args[1]),
        Some("dns-reflect") if args.len() == 2 => dns_reflect(&args[1]),
        _ => {
            eprintln!(
                "usage: keel-testbin connect ADDR | join-cgroup DIR -- CMD... | http-serve --port N [--healthy-for SECS] | grpc-health-serve --port N [--serving-for SECS] | alloc MIB | id-serve ADDR... | lb-dial tcp|udp|udp-connected ADDR [N] | lb-hold ADDR | lb-bench N ADDR... | sys-clone plain|newuser|newnet | dns-reflect ADDR"
            );
            2
        }
    };
    std::process::exit(code);
}

fn dns_reflect(addr: &str) -> i32 {
    let sock = match std::net::UdpSocket::bind(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dns-reflect: binding {addr}: {e}");
            return 1;
        }
    };
    let mut buf = [0u8; 65_535];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf) else {
            continue;
        };
        if n < 12 {
            continue;
        }
        // QR (response) and RA; the opcode, id and RD stay; RCODE 0.
        buf[2] |= 0x80;
        buf[3] = 0x80;
        let _ = sock.send_to(&buf[..n], peer);
    }
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

/// `grpc-health-serve`: the standard health service, written out as
/// tonic's codegen would (the messages are the agent's probe's own).
fn grpc_health_serve(args: &[String]) -> i32 {
    use keel_agent::runtime::probe::grpc::{
        CHECK, HealthCheckRequest, HealthCheckResponse, NOT_SERVING, SERVING,
    };
    use std::{
        convert::Infallible,
        future::Future,
        pin::Pin,
        task::{Context, Poll},
        time::Instant,
    };
    use tonic::codegen::http;

    type Reply = Pin<
        Box<
            dyn Future<Output = Result<tonic::Response<HealthCheckResponse>, tonic::Status>> + Send,
        >,
    >;

    #[derive(Clone)]
    struct Health {
        until: Option<Instant>,
    }
    struct Check(Health);
    impl tonic::server::UnaryService<HealthCheckRequest> for Check {
        type Response = HealthCheckResponse;
        type Future = Reply;
        fn call(&mut self, req: tonic::Request<HealthCheckRequest>) -> Reply {
            let service = req.into_inner().service;
            let serving = self.0.until.is_none_or(|u| Instant::now() < u);
            Box::pin(async move {
                if !service.is_empty() {
                    return Err(tonic::Status::not_found("unknown service"));
                }
                let status = if serving { SERVING } else { NOT_SERVING };
                Ok(tonic::Response::new(HealthCheckResponse { status }))
            })
        }
    }
    impl tonic::codegen::Service<http::Request<tonic::body::Body>> for Health {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
            let me = self.clone();
            Box::pin(async move {
                if req.uri().path() != CHECK {
                    return Ok(tonic::Status::unimplemented("").into_http());
                }
                let codec =
                    tonic_prost::ProstCodec::<HealthCheckResponse, HealthCheckRequest>::default();
                Ok(tonic::server::Grpc::new(codec).unary(Check(me), req).await)
            })
        }
    }
    impl tonic::server::NamedService for Health {
        const NAME: &'static str = "grpc.health.v1.Health";
    }

    let mut port = None;
    let mut serving_for = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = it.next().and_then(|p| p.parse::<u16>().ok()),
            "--serving-for" => serving_for = it.next().and_then(|s| s.parse::<u64>().ok()),
            _ => {
                eprintln!("grpc-health-serve: unknown argument {a:?}");
                return 2;
            }
        }
    }
    let Some(port) = port else {
        eprintln!("grpc-health-serve: --port N is required");
        return 2;
    };
    let health = Health {
        until: serving_for.map(|s| Instant::now() + Duration::from_secs(s)),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("grpc-health-serve: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("grpc-health-serve: bind :{port}: {e}");
                return 1;
            }
        };
        println!("listening on :{port}");
        match tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
        {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("grpc-health-serve: {e}");
                1
            }
        }
    })
}

static TERM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_term(_: i32) {
    TERM.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn http_serve(args: &[String]) -> i32 {
    use std::io::{Read, Write};
    let mut port = None;
    let mut healthy_for = None;
    let mut linger: Option<u64> = None;
    let mut term_at: Option<std::time::Instant> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => port = it.next().and_then(|p| p.parse::<u16>().ok()),
            "--healthy-for" => healthy_for = it.next().and_then(|s| s.parse::<u64>().ok()),
            "--linger" => linger = it.next().and_then(|s| s.parse::<u64>().ok()),
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
            let since = *term_at.get_or_insert_with(|| {
                println!("SIGTERM");
                std::time::Instant::now()
            });
            if since.elapsed() >= Duration::from_secs(linger.unwrap_or(0)) {
                println!("SIGTERM: exiting");
                return 0;
            }
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

fn id_serve(addrs: &[String]) -> i32 {
    use std::io::{BufRead, BufReader, Write};
    let mut threads = Vec::new();
    for a in addrs {
        let Ok(addr) = a.parse::<std::net::SocketAddr>() else {
            eprintln!("id-serve: {a:?} is not IP:PORT");
            return 2;
        };
        let tcp = match std::net::TcpListener::bind(addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("id-serve: bind tcp {addr}: {e}");
                return 1;
            }
        };
        let udp = match std::net::UdpSocket::bind(addr) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("id-serve: bind udp {addr}: {e}");
                return 1;
            }
        };
        threads.push(std::thread::spawn(move || {
            for conn in tcp.incoming().flatten() {
                std::thread::spawn(move || {
                    // One write per message, no Nagle: a transaction costs
                    // round trips, not delayed-ACK timers.
                    let _ = conn.set_nodelay(true);
                    let mut w = conn.try_clone().expect("clone");
                    let client = conn.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                    if w.write_all(format!("{addr} client={client}\n").as_bytes())
                        .is_err()
                    {
                        return;
                    }
                    for line in BufReader::new(conn).lines() {
                        let Ok(line) = line else { return };
                        if w.write_all(format!("{line}\n").as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        }));
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                let reply = format!("{addr} {}", String::from_utf8_lossy(&buf[..n]));
                let _ = udp.send_to(reply.as_bytes(), from);
            }
        }));
    }
    println!("listening");
    let _ = std::io::stdout().flush();
    for t in threads {
        let _ = t.join();
    }
    0
}

fn lb_dial(kind: &str, addr: &str, n: Option<&String>) -> i32 {
    use std::io::{BufRead, BufReader};
    let Ok(addr) = addr.parse::<std::net::SocketAddr>() else {
        eprintln!("lb-dial: {addr:?} is not IP:PORT");
        return 2;
    };
    let n: usize = n.and_then(|n| n.parse().ok()).unwrap_or(1).clamp(1, 10_000);
    let timeout = Duration::from_secs(3);
    for _ in 0..n {
        let line = match kind {
            "tcp" => TcpStream::connect_timeout(&addr, timeout).and_then(|s| {
                s.set_read_timeout(Some(timeout))?;
                let peer = s.peer_addr()?;
                let mut first = String::new();
                BufReader::new(&s).read_line(&mut first)?;
                Ok(format!("peer={peer} server={}", first.trim()))
            }),
            "udp" | "udp-connected" => std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
                s.set_read_timeout(Some(timeout))?;
                if kind == "udp" {
                    s.send_to(b"ping", addr)?;
                } else {
                    s.connect(addr)?;
                    s.send(b"ping")?;
                }
                let mut buf = [0u8; 1500];
                let (len, from) = s.recv_from(&mut buf)?;
                let reply = String::from_utf8_lossy(&buf[..len]).to_string();
                let server = reply.split_whitespace().next().unwrap_or("").to_string();
                let peer = if kind == "udp" { from } else { s.peer_addr()? };
                Ok(format!("peer={peer} from={from} server={server}"))
            }),
            other => {
                eprintln!("lb-dial: unknown kind {other:?}");
                return 2;
            }
        };
        match line {
            Ok(l) => println!("{l}"),
            Err(e) => println!("error={:?}", e.kind()),
        }
    }
    0
}

fn lb_hold(addr: &str) -> i32 {
    use std::io::{BufRead, BufReader, Write};
    let Ok(addr) = addr.parse::<std::net::SocketAddr>() else {
        eprintln!("lb-hold: {addr:?} is not IP:PORT");
        return 2;
    };
    let s = match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(s) => s,
        Err(e) => {
            println!("error={:?}", e.kind());
            return 1;
        }
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    let mut first = String::new();
    if r.read_line(&mut first).is_err() {
        println!("error=read");
        return 1;
    }
    println!("server={}", first.trim());
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { break };
        let mut echo = String::new();
        let ok = writeln!(w, "{line}").is_ok() && r.read_line(&mut echo).is_ok_and(|n| n > 0);
        if ok {
            println!("echo={}", echo.trim());
        } else {
            println!("error=broken");
        }
        let _ = std::io::stdout().flush();
    }
    0
}

fn lb_bench(n: &str, addrs: &[String]) -> i32 {
    use std::io::{BufRead, BufReader, Write};
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("lb-bench: {n:?} is not a count");
        return 2;
    };
    let mut targets = Vec::new();
    for a in addrs {
        match a.parse::<std::net::SocketAddr>() {
            Ok(t) => targets.push(t),
            Err(_) => {
                eprintln!("lb-bench: {a:?} is not IP:PORT");
                return 2;
            }
        }
    }
    let one = |addr: &std::net::SocketAddr| -> std::io::Result<()> {
        let s = TcpStream::connect_timeout(addr, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.set_nodelay(true)?;
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid socket and a valid linger struct.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        let mut w = s.try_clone()?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line)?;
        w.write_all(b"x\n")?;
        line.clear();
        r.read_line(&mut line)?;
        if line != "x\n" {
            return Err(std::io::Error::other("bad echo"));
        }
        Ok(())
    };
    let mut lat = Vec::with_capacity(n);
    let mut errors = 0usize;
    let start = std::time::Instant::now();
    for i in 0..n {
        let t = std::time::Instant::now();
        match one(&targets[i % targets.len()]) {
            Ok(()) => lat.push(t.elapsed().as_micros() as u64),
            Err(_) => errors += 1,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let list: Vec<String> = lat.iter().map(u64::to_string).collect();
    println!(
        "ok={} errors={errors} secs={secs:.6} lat_us={}",
        lat.len(),
        list.join(",")
    );
    0
}

/// A raw `clone(2)` (not libc's wrapper, which may use clone3), so a
/// seccomp filter's clone rule is what answers.
fn sys_clone(what: &str) -> i32 {
    let ns = match what {
        "plain" => 0,
        "newuser" => libc::CLONE_NEWUSER,
        "newnet" => libc::CLONE_NEWNET,
        _ => {
            eprintln!("sys-clone: plain, newuser or newnet");
            return 2;
        }
    };
    let flags = (ns | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: a fork-like clone (no new stack): the child only calls _exit.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        // SAFETY: the child leaves at once.
        unsafe { libc::_exit(0) };
    }
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        println!(
            "{}",
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))
        );
        return 1;
    }
    let mut status = 0;
    // SAFETY: waiting for the child just made.
    unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
    println!("ok");
    0
}
