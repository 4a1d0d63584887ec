//! keelctl: the command-line client for keel-control, shaped like kubectl.

mod apply;
mod attach;
mod connect;
mod describe;
mod get;
mod jsonpath;
mod kubeconfig;
mod lab;
mod lb;
mod logs;
mod net;
mod portforward;
mod token;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use keel_api::client::ClientError;

/// keelctl: talk to keel-control as you would to a Kubernetes API server.
#[derive(Parser, Debug)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    conn: connect::ConnectArgs,
    /// Namespace for namespaced objects.
    #[arg(
        short = 'n',
        long,
        global = true,
        default_value = "default",
        env = "KEEL_NAMESPACE"
    )]
    namespace: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or update objects from YAML/JSON files (several documents per file; a directory applies every file in it).
    Apply {
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
    },
    /// List objects of a kind, or show one.
    Get {
        /// node(s), pod(s), service(s)/svc, endpoints/ep, deployment(s)/deploy;
        /// several separated by commas (deploy,svc,pods).
        kind: String,
        name: Option<String>,
        /// Output: table (default), wide, yaml, json, name,
        /// jsonpath=TEMPLATE (kubectl's), jsonpath-file=FILE.
        #[arg(short = 'o', long, default_value = "table")]
        output: String,
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Label selector, e.g. app=web,tier!=db.
        #[arg(short = 'l', long)]
        selector: Option<String>,
        /// Field selector, e.g. spec.nodeName=node-1.
        #[arg(long)]
        field_selector: Option<String>,
        /// After listing, print each change as it happens (one kind, no name).
        #[arg(short = 'w', long)]
        watch: bool,
    },
    /// Delete objects: by kind and names, by kind and label selector, or
    /// those in files (`-f FILE|DIR`).
    Delete {
        kind: Option<String>,
        names: Vec<String>,
        /// Label selector, e.g. app=web.
        #[arg(short = 'l', long)]
        selector: Option<String>,
        /// Delete the objects these files (or directories) describe.
        #[arg(short = 'f', long = "filename")]
        files: Vec<PathBuf>,
        /// Succeed if the object does not exist.
        #[arg(long)]
        ignore_not_found: bool,
    },
    /// Show one object in detail.
    Describe { kind: String, name: String },
    /// Print a shell completion script (e.g. `source <(keelctl completion bash)`).
    Completion { shell: clap_complete::Shell },
    /// Write a kubeconfig for kubectl (server, CA, token) from keelctl's
    /// connection settings.
    Kubeconfig {
        /// Where to write it (`-`: stdout).
        #[arg(short = 'o', long = "output", default_value = "-")]
        output: PathBuf,
        /// The name of its cluster, user and context.
        #[arg(long, default_value = "keel")]
        name: String,
    },
    /// Bootstrap tokens for joining nodes (`token create` prints the join command).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// A multi-node keel cluster in network namespaces on this machine.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// A node's Service load balancer, through its agent's local socket.
    #[command(subcommand)]
    Lb(lb::LbCommand),
    /// A node's host routing (BPF or kernel), through its agent's local socket.
    #[command(subcommand)]
    Net(net::NetCommand),
    /// Print a container's logs (through keel-control, which asks the
    /// agent of the pod's node; `--local` for the agent's local socket).
    Logs {
        #[command(flatten)]
        target: logs::Target,
        /// Keep printing new lines.
        #[arg(short = 'f', long)]
        follow: bool,
        /// The previous run of the container (after a restart).
        #[arg(short = 'p', long)]
        previous: bool,
        #[command(flatten)]
        select: logs::Select,
        /// Straight to the agent's local socket (root, on the pod's node or
        /// with --lab) instead of through keel-control.
        #[arg(long)]
        local: bool,
    },
    /// Forward local ports to a pod's ports through keel-control, as
    /// `kubectl port-forward` (LOCAL:REMOTE, REMOTE, or :REMOTE for any
    /// free local port); listens on 127.0.0.1 until interrupted.
    PortForward {
        /// The pod.
        pod: String,
        /// LOCAL:REMOTE, REMOTE or :REMOTE.
        #[arg(required = true)]
        ports: Vec<String>,
    },
    /// Run a command in a container (through the agent of the pod's node);
    /// with -i/-t interactively, through keel-control.
    Exec {
        #[command(flatten)]
        target: logs::Target,
        /// Pass stdin to the command.
        #[arg(short = 'i', long)]
        stdin: bool,
        /// Give the command a terminal (when stdin is one).
        #[arg(short = 't', long)]
        tty: bool,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = run(cli).await;
    match result {
        Ok(code) => code,
        Err(e) => {
            match e.downcast_ref::<ClientError>() {
                Some(ClientError::Api(s)) => {
                    eprintln!("Error from server ({}): {}", s.reason, s.message)
                }
                _ => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ns = cli.namespace.clone();
    match cli.command {
        Command::Lab(cmd) => lab::run(cmd),
        Command::Token(cmd) => token::run(&cli.conn.client()?, cmd).await,
        Command::Lb(cmd) => lb::run(cmd, &cli.conn).await,
        Command::Net(cmd) => net::run(cmd, &cli.conn).await,
        Command::Logs {
            target,
            follow,
            previous,
            select,
            local: false,
        } => {
            logs::logs_through_control(&cli.conn.client()?, &ns, &target, follow, previous, &select)
                .await
        }
        Command::Logs {
            target,
            follow,
            previous,
            select: _,
            local: true,
        } => {
            logs::logs(
                &cli.conn.client()?,
                cli.conn.lab(),
                &ns,
                &target,
                follow,
                previous,
            )
            .await
        }
        Command::Exec {
            target,
            command,
            stdin,
            tty,
        } => {
            if stdin || tty {
                attach::run(&cli.conn.client()?, &ns, &target, command, stdin, tty).await
            } else {
                logs::exec(&cli.conn.client()?, cli.conn.lab(), &ns, &target, command).await
            }
        }

        Command::PortForward { pod, ports } => {
            portforward::run(&cli.conn.client()?, &ns, &pod, &ports).await
        }

        Command::Apply { files } => apply::run(&cli.conn.client()?, &ns, &files).await,
        Command::Get {
            kind,
            name,
            output,
            all_namespaces,
            selector,
            field_selector,
            watch,
        } => {
            // Several kinds at once (`get deploy,svc,pods`), one after
            // the other, as kubectl does.
            let kinds = kind
                .split(',')
                .map(connect::parse_kind)
                .collect::<anyhow::Result<Vec<_>>>()?;
            anyhow::ensure!(
                name.is_none() || kinds.len() == 1,
                "a name needs exactly one kind (got {kind})"
            );
            let opts = get::Options {
                output: output.parse()?,
                all_namespaces,
                selector,
                field_selector,
            };
            let client = cli.conn.client()?;
            if watch {
                anyhow::ensure!(
                    kinds.len() == 1 && name.is_none(),
                    "-w watches one kind, without a name (got {kind})"
                );
                anyhow::ensure!(
                    matches!(opts.output, get::Output::Table | get::Output::Wide),
                    "-w prints tables (-o wide or the default)"
                );
                return get::watch(&client, kinds[0], &ns, &opts).await;
            }
            let mut code = ExitCode::SUCCESS;
            for (i, kind) in kinds.into_iter().enumerate() {
                if i > 0 && matches!(opts.output, get::Output::Table | get::Output::Wide) {
                    println!();
                }
                if get::run(&client, kind, &ns, name.as_deref(), &opts).await? != ExitCode::SUCCESS
                {
                    code = ExitCode::FAILURE;
                }
            }
            Ok(code)
        }
        Command::Delete {
            kind,
            names,
            selector,
            files,
            ignore_not_found,
        } => {
            let client = cli.conn.client()?;
            // What to delete: the objects in files, or a kind with names or
            // a label selector.
            let mut targets: Vec<(keel_api::Kind, String, String)> = Vec::new();
            if !files.is_empty() {
                anyhow::ensure!(
                    kind.is_none() && names.is_empty() && selector.is_none(),
                    "-f takes no kind, names or -l"
                );
                for (origin, doc) in apply::documents(&files)? {
                    let obj = keel_api::AnyObject::from_value(doc)
                        .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
                    let obj_ns = match obj.meta().namespace.as_str() {
                        "" => ns.clone(),
                        n => n.to_string(),
                    };
                    targets.push((obj.kind(), obj_ns, obj.meta().name.clone()));
                }
                anyhow::ensure!(!targets.is_empty(), "no objects passed to delete");
            } else {
                let Some(kind) = kind else {
                    anyhow::bail!("delete: give a kind with names or -l, or -f FILE|DIR");
                };
                let kind = connect::parse_kind(&kind)?;
                match (&selector, names.is_empty()) {
                    (Some(sel), true) => {
                        let params = keel_api::client::ListParams {
                            label_selector: Some(sel.clone()),
                            field_selector: None,
                        };
                        for o in client.list_any(kind, &ns, &params).await? {
                            targets.push((kind, ns.clone(), o.meta().name.clone()));
                        }
                        if targets.is_empty() {
                            eprintln!("No resources found");
                        }
                    }
                    (None, false) => {
                        targets.extend(names.into_iter().map(|n| (kind, ns.clone(), n)));
                    }
                    _ => anyhow::bail!("delete: give names or -l, not both (nor neither)"),
                }
            }
            let mut code = ExitCode::SUCCESS;
            for (kind, ns, name) in targets {
                match client.delete_any(kind, &ns, &name).await {
                    Ok(()) => println!("{}/{name} deleted", kind.as_str().to_lowercase()),
                    Err(e) if e.is_not_found() && ignore_not_found => {}
                    Err(ClientError::Api(s)) => {
                        eprintln!("Error from server ({}): {}", s.reason, s.message);
                        code = ExitCode::FAILURE;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(code)
        }
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "keelctl", &mut script);
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(ExitCode::SUCCESS)
        }
        Command::Kubeconfig { output, name } => {
            kubeconfig::write(&cli.conn.config()?, &name, &ns, &output)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Describe { kind, name } => {
            let kind = connect::parse_kind(&kind)?;
            let client = cli.conn.client()?;
            let obj = client.get_any(kind, &ns, &name).await?;
            print!("{}", describe::describe(&obj));
            if matches!(kind, keel_api::Kind::Pod | keel_api::Kind::Node) {
                // As kubectl: the object's events, found by field selector.
                let (events_ns, selector) = describe::events_query(&obj);
                let events = client
                    .list::<keel_api::Event>(
                        &events_ns,
                        &keel_api::client::ListParams::fields(selector),
                    )
                    .await?
                    .items;
                print!(
                    "{}",
                    describe::events_section(&events, std::time::SystemTime::now())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
