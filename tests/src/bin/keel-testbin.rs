//! keel-testbin: small network tools the integration tests run inside test
//! namespaces and cgroups (and, later, inside test images).
//!
//!   keel-testbin connect ADDR            one TCP connect, exit 0 on success
//!   keel-testbin join-cgroup DIR -- CMD  move into a cgroup, then exec CMD

use std::{net::TcpStream, os::unix::process::CommandExt, process::Command, time::Duration};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("connect") if args.len() == 2 => connect(&args[1]),
        Some("join-cgroup") if args.len() >= 4 && args[2] == "--" => {
            join_cgroup(&args[1], &args[3..])
        }
        _ => {
            eprintln!("usage: keel-testbin connect ADDR | join-cgroup DIR -- CMD...");
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
