//! The `phantomdb` binary: runs a node on real I/O. See `phantomdb --help`.

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    real::main()
}

#[cfg(madsim)]
fn main() {
    eprintln!("phantomdb is the real-I/O build; the simulated build runs through `cargo sim`.");
    std::process::exit(2);
}

#[cfg(not(madsim))]
mod real {
    use phantomdb::io::storage::FjallStorage;
    use phantomdb::io::transport::TcpTransport;
    use phantomdb::io::SystemClock;
    use phantomdb::node::{LogObserver, Node, NodeConfig};
    use phantomdb::server::cli::{self, NodeArgs, Parsed};
    use std::process::ExitCode;
    use std::sync::Arc;

    pub fn main() -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let node = match cli::parse(&args) {
            Ok(Parsed::Help) => {
                println!("{}", cli::USAGE);
                return ExitCode::SUCCESS;
            }
            Ok(Parsed::Node(n)) => n,
            Err(e) => {
                eprintln!("error: {e}\n\n{}", cli::USAGE);
                return ExitCode::from(2);
            }
        };
        // The storage engine's own progress lines are for its developers, not operators.
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,fjall=warn,lsm_tree=warn"));
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
        let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: cannot start the runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        match rt.block_on(run(node)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                ExitCode::FAILURE
            }
        }
    }

    async fn run(args: NodeArgs) -> Result<(), String> {
        std::fs::create_dir_all(&args.data_dir).map_err(|e| format!("--data-dir {}: {e}", args.data_dir.display()))?;
        let storage =
            FjallStorage::open(&args.data_dir).map_err(|e| format!("--data-dir {}: {e}", args.data_dir.display()))?;
        let peers = args.initial_cluster.clone();
        let (transport, inbox, bound) = TcpTransport::start(args.id, args.peer_addr, peers.clone())
            .await
            .map_err(|e| format!("--peer-addr {}: {e}", args.peer_addr))?;
        // A fresh seed per process: forwarded-request ids must not repeat across restarts.
        let seed: u64 = rand::random();
        let cfg = NodeConfig::new(args.id, peers.keys().copied().collect(), seed);
        let (node, _handle) =
            Node::new(cfg, transport, inbox, storage, Arc::new(SystemClock::new()), Arc::new(LogObserver))
                .map_err(|e| e.to_string())?;
        tracing::info!(node = args.id, peer_addr = %bound, data_dir = %args.data_dir.display(), "node started");
        tokio::select! {
            result = node.run() => result.map_err(|e| e.to_string()),
            _ = tokio::signal::ctrl_c() => {
                tracing::info!(node = args.id, "interrupted; stopping");
                Ok(())
            }
        }
    }
}
