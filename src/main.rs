//! The `phantomdb` binary: runs a node on real I/O, or a local demo cluster. See
//! `phantomdb --help`.

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
    use phantomdb::server::cli::{self, DemoArgs, Parsed};
    use phantomdb::server::config::NodeSettings;
    use phantomdb::server::launch::run_node;
    use std::process::ExitCode;
    use tokio::sync::watch;

    pub fn main() -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let parsed = match cli::parse(&args) {
            Ok(Parsed::Help) => {
                println!("{}", cli::USAGE);
                return ExitCode::SUCCESS;
            }
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}\n\nrun `phantomdb --help` for the flags");
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
        let result = rt.block_on(async {
            let stop = stop_signal()?;
            match parsed {
                Parsed::Node(settings) => node(*settings, stop).await,
                Parsed::Demo(demo) => run_demo(demo, stop).await,
                Parsed::Help => unreachable!("answered above"),
            }
        });
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// Turns SIGTERM and SIGINT (Ctrl-C) into one "stop" that every node task can wait on.
    fn stop_signal() -> Result<watch::Receiver<bool>, String> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("cannot watch SIGINT: {e}"))?;
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "stopping");
            let _ = tx.send(true);
        });
        Ok(rx)
    }

    async fn stopped(mut stop: watch::Receiver<bool>) {
        let _ = stop.wait_for(|s| *s).await;
    }

    async fn node(settings: NodeSettings, stop: watch::Receiver<bool>) -> Result<(), String> {
        let span = tracing::info_span!("node", id = settings.id, group = 1);
        let result = tracing::Instrument::instrument(run_node(settings, stopped(stop), |_| {}), span).await;
        if result.is_ok() {
            tracing::info!("stopped cleanly");
        }
        result
    }

    async fn run_demo(demo: DemoArgs, stop: watch::Receiver<bool>) -> Result<(), String> {
        let (root, temporary) = match &demo.data_dir {
            Some(d) => (d.clone(), false),
            None => (std::env::temp_dir().join(format!("phantomdb-demo-{}", std::process::id())), true),
        };
        std::fs::create_dir_all(&root).map_err(|e| format!("--data-dir {}: {e}", root.display()))?;
        // One secret for the demo's nodes, so the demo runs the authenticated transport.
        let secret_path = root.join("cluster.secret");
        if !secret_path.exists() {
            let secret: [u8; 32] = rand::random();
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            std::fs::write(&secret_path, hex).map_err(|e| format!("{}: {e}", secret_path.display()))?;
        }
        let base = demo.port_base;
        let addr = |offset: u64, i: u64| format!("127.0.0.1:{}", u64::from(base) + offset + i);
        let cluster: Vec<String> = (1..=demo.nodes).map(|i| format!("{i}={}", addr(2000, i))).collect();
        let mut nodes = Vec::new();
        for i in 1..=demo.nodes {
            let raw = phantomdb::server::config::RawSettings {
                id: Some(i),
                data_dir: Some(root.join(format!("node-{i}"))),
                peer_addr: Some(addr(2000, i)),
                resp_addr: Some(addr(0, i)),
                admin_addr: Some(addr(1000, i)),
                initial_cluster: Some(cluster.join(",")),
                cluster_secret_file: Some(secret_path.clone()),
                ranges: Some(demo.ranges),
                ..Default::default()
            };
            let settings = NodeSettings::validate(raw)?;
            let span = tracing::info_span!("node", id = i, group = 1);
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let run = run_node(settings, stopped(stop.clone()), move |b| {
                let _ = ready_tx.send(b);
            });
            let task = tokio::spawn(tracing::Instrument::instrument(run, span));
            match ready_rx.await {
                Ok(b) => println!(
                    "node {i}: RESP {}  admin http://{}  (peers {})",
                    b.resp.expect("demo nodes serve RESP"),
                    b.admin.expect("demo nodes serve admin"),
                    b.peer
                ),
                // It failed before listening: its error says why.
                Err(_) => return task.await.map_err(|e| e.to_string())?.map_err(|e| format!("node {i}: {e}")),
            }
            nodes.push(task);
        }
        println!("data: {}{}", root.display(), if temporary { " (removed at exit)" } else { "" });
        println!(
            "try:  redis-cli -p {} SET k v && redis-cli -p {} GET k",
            u64::from(base) + 1,
            u64::from(base) + demo.nodes
        );
        println!("Ctrl-C stops the cluster.");
        let mut first_error = None;
        for (i, task) in nodes.into_iter().enumerate() {
            let r = task.await.map_err(|e| e.to_string()).and_then(|r| r);
            if let Err(e) = r {
                first_error.get_or_insert(format!("node {}: {e}", i + 1));
            }
        }
        if temporary {
            let _ = std::fs::remove_dir_all(&root);
        }
        match first_error {
            None => {
                println!("stopped.");
                Ok(())
            }
            Some(e) => Err(e),
        }
    }
}
