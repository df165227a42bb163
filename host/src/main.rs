//! The `cchost` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod devnode;
mod node_cli;
mod remote;
mod template;

use anyhow::Context;
use cchost::ids::PackageId;
use cchost::operations::LogSpec;
use cchost::packaging;
use cchost::runtime::external::ExternalBuilder;
use cchost::runtime::wasm::builder;
use clap::{Parser, Subcommand};
use devnode::DevnodeConfig;

/// cchost: a WebAssembly-sandboxed Hyperledger Fabric chaincode host.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the version and the Fabric gRPC methods cchost serves and calls today.
    Version,
    /// Run the node in Fabric's dev mode driven from standard input: chaincode you start
    /// yourself dials in (or packages the node installs), each defined through
    /// _lifecycle at start, and invocations are read from standard input, one JSON array
    /// per line: ["chaincode", "function", "arg", ...]; each is endorsed, ordered and
    /// committed.
    Devnode {
        /// Chaincode listener address (Fabric's peer.chaincodeListenAddress).
        #[arg(long, default_value = "127.0.0.1:7052")]
        listen: SocketAddr,
        /// Channel the invocations run on.
        #[arg(long, default_value = "mychannel")]
        channel: String,
        /// NAME=PACKAGE_ID: chaincode NAME is served by the process registering with
        /// CORE_CHAINCODE_ID_NAME=PACKAGE_ID. Repeat for several chaincodes.
        #[arg(long = "chaincode", value_parser = parse_definition)]
        chaincodes: Vec<(String, PackageId)>,
        /// NAME=FILE: install the package FILE (a wasm package from `cchost package`,
        /// or a `ccaas` package with connection.json) and serve chaincode NAME with it;
        /// the node launches (or dials) it itself.
        #[arg(long = "package", value_parser = parse_package)]
        packages: Vec<(String, PathBuf)>,
        /// The node's data directory: ledger, installed packages, compiled artifacts
        /// (a temporary directory, removed at exit, when omitted).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Seconds an invocation waits for its chaincode to register (Fabric: 300).
        #[arg(long, default_value_t = 300)]
        startup_timeout: u64,
        /// Seconds a transaction may run (Fabric's chaincode.executetimeout: 30).
        #[arg(long, default_value_t = 30)]
        execute_timeout: u64,
        /// Serve the operations endpoints (/healthz, /metrics, /logspec, /version) on this
        /// address (Fabric's operations.listenAddress, e.g. 127.0.0.1:9443).
        #[arg(long)]
        operations_listen: Option<SocketAddr>,
        /// Mutual TLS on the chaincode listener: launched chaincode gets a client
        /// certificate bound to its package id. Chaincode you start yourself cannot
        /// register then.
        #[arg(long)]
        tls: bool,
        /// NAME=DIR: an external builder (Fabric's chaincode.externalBuilders), tried in
        /// order before the built-in runtimes; DIR holds bin/detect and bin/build (e.g.
        /// written by `cchost builder install DIR`). Its programs see only PATH,
        /// LD_LIBRARY_PATH, LIBPATH and TMPDIR of this environment.
        #[arg(long = "external-builder", value_parser = parse_builder)]
        external_builders: Vec<(String, PathBuf)>,
        #[command(flatten)]
        docker: Box<DockerArgs>,
    },
    /// Build a chaincode crate for wasm32-wasip1 (release) and write it as a Fabric-style
    /// package: a .tar.gz with metadata.json ({"path","type":"wasm","label"}) and
    /// code.tar.gz. Prints the wasm size and the package id, LABEL:sha256(package).
    /// With --lang node, package a Node chaincode directory instead.
    Package {
        /// Directory of the chaincode crate (holding its Cargo.toml), or of the Node
        /// chaincode (holding its package.json).
        crate_dir: PathBuf,
        /// The package label (Fabric's rule: letters, digits and `_ . + -`).
        #[arg(long)]
        label: String,
        /// The package file to write.
        #[arg(long)]
        output: PathBuf,
        /// Cargo's target directory (default: the crate's).
        #[arg(long)]
        target_dir: Option<PathBuf>,
        /// `wasm`: a Rust chaincode crate; `node`: a Node chaincode directory with its
        /// package.json and node_modules, packaged as Fabric's `node` type for the
        /// Docker runtime.
        #[arg(long, default_value = "wasm", value_parser = ["wasm", "node"])]
        lang: String,
    },
    /// Create a chaincode crate: one contract with two transactions and a native test,
    /// ready for `cargo test` and `cchost package`.
    New {
        /// The crate directory to create; its last component is the crate name.
        dir: PathBuf,
        /// The cchost-sdk source the crate depends on (default: the SDK of the source
        /// tree this cchost was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Benchmark wasm against container chaincode in one run: the Rust asset-transfer
    /// chaincode in wasm and compiled natively as a process over gRPC, its Node twin in a
    /// Docker container and as a process (dev mode). Measures install, cold and warm launch to READY, the first invoke, warm
    /// invoke latency and throughput (TransferAsset = 1 get + 1 put, ReadAsset) at each
    /// concurrency, memory and artifact sizes. Prints a table with the wasm advantage and
    /// writes bench.json, bench.csv and launch.svg into --out. `cchost bench commit`
    /// measures the commit pipeline instead.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        suite: Option<BenchSuite>,
        /// Runtimes to measure, comma separated: wasm, native (the same Rust contract
        /// compiled natively, a process over the gRPC shim), docker, process (the Node
        /// chaincode started by hand), and external (the wasm chaincode run by `cchost
        /// chaincode run` through the external builder, over gRPC).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "wasm,native,docker,process"
        )]
        runtime: Vec<String>,
        /// Install and launch repetitions per runtime.
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        /// Measured transactions per transaction type and concurrency.
        #[arg(long, default_value_t = 2000)]
        transactions: usize,
        /// Transactions in flight, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
        concurrency: Vec<usize>,
        /// Where to write bench.json, bench.csv and launch.svg.
        #[arg(long, default_value = "bench-results")]
        out: PathBuf,
        /// The asset-transfer wasm module (default: build examples/asset-transfer of this
        /// source tree).
        #[arg(long)]
        wasm: Option<PathBuf>,
        /// The Node chaincode directory, with node_modules (default: this source tree's
        /// examples/node-asset).
        #[arg(long)]
        node_dir: Option<PathBuf>,
        /// The native asset-transfer program (default: build
        /// examples/asset-transfer/native of this source tree).
        #[arg(long)]
        native: Option<PathBuf>,
        /// Seconds a launch may take.
        #[arg(long, default_value_t = 120)]
        startup_timeout: u64,
        /// How long the Gateway evaluate and submit runs each last (a node with the wasm
        /// chaincode, loaded through its Gateway); 0s: not measured.
        #[arg(long, default_value = "10s", value_parser = node_cli::parse_duration)]
        gateway_duration: Duration,
        /// Transactions in flight in the Gateway runs.
        #[arg(long, default_value_t = 64)]
        gateway_concurrency: usize,
        #[command(flatten)]
        docker: Box<DockerArgs>,
    },
    /// Fabric external builder for wasm chaincode: `install` writes the builder's
    /// programs; detect, build and release are what they run for the peer.
    Builder {
        #[command(subcommand)]
        command: BuilderCommand,
    },
    /// Run a single-node peer.
    Node {
        #[command(subcommand)]
        command: node_cli::NodeCommand,
    },
    /// Chaincode on a node, as `peer chaincode` and `peer lifecycle chaincode` do it
    /// (invoke, query, package, install, queryinstalled, approveformyorg, commit,
    /// querycommitted, and deploy: all of it in one step); and wasm chaincode for a
    /// Fabric peer in another process: dialing it (`run`, an external builder's bin/run)
    /// or dialed by it (`serve`, chaincode-as-a-service).
    Chaincode {
        #[command(subcommand)]
        command: ChaincodeCommand,
        #[command(flatten)]
        client: node_cli::ClientArgs,
    },
    /// A node's channel (`peer channel getinfo`).
    Channel {
        #[command(subcommand)]
        command: node_cli::ChannelCommand,
        #[command(flatten)]
        client: node_cli::ClientArgs,
    },
    /// Stream a node's blocks, filtered blocks or chaincode events, one JSON line each.
    Events {
        #[command(flatten)]
        args: node_cli::EventsArgs,
        #[command(flatten)]
        client: node_cli::ClientArgs,
    },
    /// Work with block files (Fabric's on-disk format).
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Install a chaincode package into a data directory: validate it and precompile it.
    /// Prints the package id.
    Install {
        /// The package file.
        package: PathBuf,
        /// Where installed packages and compiled artifacts are kept.
        #[arg(long, default_value = "cchost-data")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BenchSuite {
    /// Load on a Fabric Gateway (this node's or a Fabric peer's), as Tape does: fresh
    /// signed proposals, evaluate or submit (endorse, sign, submit, wait for the commit
    /// status, which must be VALID), at a fixed concurrency or rate, for a duration or a
    /// count. Prints tx/s, p50/p95/p99 and errors by gRPC code or validation code;
    /// writes load.json, load.csv and load.svg into --out. Without --address, it loads
    /// the node of --data-dir (default: the one this user started last) as its user.
    Load(Box<node_cli::LoadArgs>),
    /// A node in this process driven over gRPC as the CLI drives it: endorse
    /// (ReadAsset) and endorse + commit (TransferAsset, waited for) throughput and
    /// latency at each concurrency, beside this build's ECDSA P-256 sign and verify
    /// rates. Prints a table and writes node.json into --out.
    Node {
        /// Measured transactions per figure and concurrency.
        #[arg(long, default_value_t = 2000)]
        transactions: usize,
        /// Transactions in flight, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        concurrency: Vec<usize>,
        /// The orderer's BatchTimeout in milliseconds.
        #[arg(long, default_value_t = 10)]
        batch_timeout_ms: u64,
        /// The asset-transfer wasm module (default: build examples/asset-transfer).
        #[arg(long)]
        wasm: Option<PathBuf>,
        /// Where to write node.json.
        #[arg(long, default_value = "bench-results")]
        out: PathBuf,
    },
    /// Commit throughput and latency through the commit pipeline (validation, block file
    /// with fdatasync, state database), with signature checks on and off, on a new ledger
    /// and on one preloaded with --keys keys in --blocks blocks; then reads and restarts
    /// (clean, index deleted, torn append, damaged last block, state behind) on both. Prints a table and
    /// writes commit.json into --out.
    Commit {
        /// Transactions per block size, signature setting and ledger.
        #[arg(long, default_value_t = 2000)]
        transactions: usize,
        /// Transactions per block, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
        block_sizes: Vec<usize>,
        /// Keys preloaded into the large ledger.
        #[arg(long, default_value_t = 1_000_000)]
        keys: usize,
        /// Blocks the preload commits them in.
        #[arg(long, default_value_t = 10_000)]
        blocks: usize,
        /// Timed reads of each kind.
        #[arg(long, default_value_t = 10_000)]
        reads: usize,
        /// Blocks the state database is behind in the replay restart.
        #[arg(long, default_value_t = 100)]
        replay: usize,
        /// Where the ledgers are written (on the disk to measure; replaced each run).
        #[arg(long, default_value = "bench-ledgers")]
        dir: PathBuf,
        /// Where to write commit.json.
        #[arg(long, default_value = "bench-results")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BuilderCommand {
    /// Write the builder into DIR (DIR/bin/detect, build, release, run); point a peer's
    /// core.yaml chaincode.externalBuilders entry at DIR. The programs run this cchost
    /// binary by its absolute path.
    Install {
        /// The builder directory to write.
        dir: PathBuf,
    },
    /// Exit 0 for a package whose metadata.json type is `wasm`, 1 otherwise.
    Detect {
        /// The unpacked code.tar.gz.
        source_dir: PathBuf,
        /// Holds the package's metadata.json.
        metadata_dir: PathBuf,
    },
    /// Validate the module as `cchost install` does and precompile it into
    /// BUILD_OUTPUT_DIR.
    Build {
        /// The unpacked code.tar.gz.
        source_dir: PathBuf,
        /// Holds the package's metadata.json.
        metadata_dir: PathBuf,
        /// Where the build goes.
        build_output_dir: PathBuf,
    },
    /// Copy the package's CouchDB index definitions into RELEASE_OUTPUT_DIR.
    Release {
        /// What `build` wrote.
        build_output_dir: PathBuf,
        /// Where the peer reads statedb/couchdb/ from.
        release_output_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Check a chain of blocks as Fabric's `ledgerutil verify` does: each block's data
    /// hash against its transactions, and its previous hash against the previous block's
    /// header hash. Prints one line per block; exits 1 when a block is bad.
    Verify {
        /// A block file, or a directory holding block files (`blockfile_000000`, ...),
        /// cchost's or a Fabric peer's (`ledgersData/chains/chains/<channel>`).
        path: PathBuf,
        /// Print the erroneous blocks as Fabric writes them in blocks.json instead.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ChaincodeCommand {
    #[command(flatten)]
    Client(node_cli::ChaincodeClientCommand),
    /// Dial the peer named in RUN_METADATA_DIR/chaincode.json (mutual TLS with its
    /// certificates, plaintext when they are empty), register, and run each transaction
    /// in a fresh wasm instance. Exits 0 at SIGTERM once the transactions in flight are
    /// answered, with an error when the peer closes the stream.
    Run {
        /// What `cchost builder build` wrote.
        build_output_dir: PathBuf,
        /// Holds chaincode.json.
        run_metadata_dir: PathBuf,
    },
    /// Serve a wasm package as chaincode-as-a-service: a peer using Fabric's ccaas
    /// builder dials /protos.Chaincode/Connect at --address.
    Serve {
        /// The wasm package file (from `cchost package`).
        package: PathBuf,
        /// Where to listen, host:port (port 0: any free port, printed).
        #[arg(long, env = "CHAINCODE_SERVER_ADDRESS")]
        address: SocketAddr,
        /// The package id to register as: that of the ccaas package installed on the
        /// peer.
        #[arg(long, env = "CHAINCODE_ID")]
        package_id: String,
        /// Serve TLS with this certificate (PEM); needs --tls-key.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The TLS certificate's private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Require client certificates issued by this CA (PEM).
        #[arg(long, requires = "tls_cert")]
        client_ca: Option<PathBuf>,
    },
}

/// Where Go, Node and Java chaincode is built and run (Fabric's `vm.endpoint` and
/// `chaincode.*` image settings).
#[derive(Debug, clap::Args)]
pub(crate) struct DockerArgs {
    /// The Docker engine's socket.
    #[arg(long, default_value = "/var/run/docker.sock")]
    docker_socket: String,
    /// The image Go chaincode is built in (chaincode.builder).
    #[arg(long, default_value = "hyperledger/fabric-ccenv:2.5")]
    builder_image: String,
    /// The image Go chaincode runs in (chaincode.golang.runtime).
    #[arg(long, default_value = "hyperledger/fabric-baseos:2.5")]
    golang_image: String,
    /// The image Node chaincode is built and runs in (chaincode.node.runtime).
    #[arg(long, default_value = "hyperledger/fabric-nodeenv:2.5")]
    node_image: String,
    /// The image Java chaincode is built and runs in (chaincode.java.runtime).
    #[arg(long, default_value = "hyperledger/fabric-javaenv:2.5")]
    java_image: String,
}

impl DockerArgs {
    pub(crate) fn config(self) -> cchost::runtime::docker::DockerConfig {
        use cchost::runtime::docker::{DockerConfig, Images};
        DockerConfig {
            socket: self.docker_socket,
            images: Images {
                builder: self.builder_image,
                golang: self.golang_image,
                node: self.node_image,
                java: self.java_image,
            },
            ..DockerConfig::default()
        }
    }
}

/// Logs to stderr with the filter from `CCHOST_LOG` (default `level`, and the progress
/// of chaincode image builds), which the operations endpoint `/logspec` can change while
/// running.
fn init_logging(level: &str) -> Arc<LogSpec> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, reload};

    let spec = std::env::var("CCHOST_LOG")
        .unwrap_or_else(|_| format!("{level},{}=info", cchost::runtime::docker::BUILD_LOG));
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("warn"));
    let (filter, handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .init();
    Arc::new(LogSpec::new(spec, move |new: &str| {
        let filter =
            EnvFilter::try_new(new).map_err(|e| format!("invalid log spec {new:?}: {e}"))?;
        handle.reload(filter).map_err(|e| e.to_string())
    }))
}

/// The benchmark's progress lines, on stderr.
fn print_progress(line: &str) {
    eprintln!("{line}");
}

/// `NAME=VALUE`, both non-empty; `form` and `example` go into the error.
fn parse_named(value: &str, form: &str, example: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((name, rest)) if !name.is_empty() && !rest.is_empty() => {
            Ok((name.to_owned(), rest.to_owned()))
        }
        _ => Err(format!("expected {form}, e.g. {example}, got {value:?}")),
    }
}

fn parse_definition(value: &str) -> Result<(String, PackageId), String> {
    let (name, id) = parse_named(value, "NAME=PACKAGE_ID", "asset=asset_1.0:dev")?;
    Ok((name, PackageId::new(id)))
}

pub(crate) fn parse_builder(value: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = parse_named(value, "NAME=DIR", "wasm=/opt/cchost/builder")?;
    Ok((name, PathBuf::from(dir)))
}

fn parse_package(value: &str) -> Result<(String, PathBuf), String> {
    let (name, file) = parse_named(value, "NAME=FILE", "asset=asset.tar.gz")?;
    Ok((name, PathBuf::from(file)))
}

/// Prints `Error: <what failed: why>` and exits 1 on an error.
fn exit_on_error(result: anyhow::Result<()>) {
    if let Err(e) = result {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    // The benchmark stops chaincode on purpose all the time: only errors, and progress.
    let level = match command {
        Command::Bench { .. } => "error",
        Command::Chaincode {
            command: ChaincodeCommand::Run { .. } | ChaincodeCommand::Serve { .. },
            ..
        } => "info",
        Command::Node { .. } => "info",
        _ => "warn",
    };
    let logspec = init_logging(level);
    match command {
        Command::Builder { command } => match command {
            BuilderCommand::Install { dir } => {
                let cchost = std::env::current_exe().context("finding this cchost binary")?;
                for program in builder::install(&dir, &cchost)? {
                    println!("{}", program.display());
                }
            }
            BuilderCommand::Detect { metadata_dir, .. } => {
                if !builder::detect(&metadata_dir)? {
                    std::process::exit(1);
                }
            }
            BuilderCommand::Build {
                source_dir,
                metadata_dir,
                build_output_dir,
            } => builder::build(&source_dir, &metadata_dir, &build_output_dir)?,
            BuilderCommand::Release {
                build_output_dir,
                release_output_dir,
            } => builder::release(&build_output_dir, &release_output_dir)?,
        },
        Command::Ledger {
            command: LedgerCommand::Verify { path, json },
        } => {
            use cchost::ledger::blockfile;
            let blocks = if path.is_dir() {
                blockfile::read_dir(&path)?
            } else {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                blockfile::read_blocks(&bytes)?
            };
            let checks = blockfile::verify(&blocks);
            let bad: Vec<_> = checks.iter().filter(|c| !c.valid).collect();
            if json {
                println!("{}", serde_json::to_string(&bad)?);
            } else {
                for check in &checks {
                    let verdict = if check.valid {
                        "valid".to_owned()
                    } else {
                        check.errors.join(", ")
                    };
                    println!("block {}: {verdict}", check.block_num);
                }
                println!(
                    "{} blocks: {} valid, {} erroneous",
                    checks.len(),
                    checks.len() - bad.len(),
                    bad.len()
                );
            }
            if !bad.is_empty() {
                std::process::exit(1);
            }
        }
        Command::Node { command } => node_cli::node(command).await?,
        // The client commands end as the `peer` CLI's do: `Error: ...`, exit status 1.
        Command::Channel { command, client } => {
            exit_on_error(node_cli::channel(command, &client).await);
        }
        Command::Events { args, client } => exit_on_error(node_cli::events(args, &client).await),
        Command::Chaincode { command, client } => match command {
            ChaincodeCommand::Client(command) => {
                exit_on_error(node_cli::chaincode(command, &client).await);
            }
            ChaincodeCommand::Run {
                build_output_dir,
                run_metadata_dir,
            } => remote::run(&build_output_dir, &run_metadata_dir).await?,
            ChaincodeCommand::Serve {
                package,
                address,
                package_id,
                tls_cert,
                tls_key,
                client_ca,
            } => {
                let tls = tls_cert.zip(tls_key).map(|(cert, key)| remote::ServeTls {
                    cert,
                    key,
                    client_ca,
                });
                remote::serve(&package, address, PackageId::new(package_id), tls).await?;
            }
        },
        Command::Package {
            crate_dir,
            label,
            output,
            target_dir,
            lang,
        } => {
            if lang == "node" {
                let (files, id) = packaging::package_node_dir(&crate_dir, &label, &output)?;
                println!("node: {files} files");
                println!("package: {}", output.display());
                println!("package id: {id}");
            } else {
                let packaged =
                    packaging::package_crate(&crate_dir, &label, &output, target_dir.as_deref())?;
                println!("wasm: {} bytes", packaged.wasm_size);
                println!("package: {}", output.display());
                println!("package id: {}", packaged.package_id);
            }
        }
        Command::New { dir, sdk } => {
            let sdk = sdk.unwrap_or_else(template::default_sdk_path);
            let contract = template::new_crate(&dir, &sdk)?;
            println!("created {} with contract {contract}", dir.display());
            println!("test it:    cd {} && cargo test", dir.display());
            println!(
                "package it: cchost package {} --label {}_1 --output {}.tar.gz",
                dir.display(),
                dir.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("chaincode"),
                dir.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("chaincode"),
            );
        }
        Command::Install { package, data_dir } => {
            let bytes = std::fs::read(&package)
                .with_context(|| format!("reading {}", package.display()))?;
            let started = std::time::Instant::now();
            let (packages, runtimes) = cchost::node::runtimes(
                &data_dir,
                cchost::runtime::docker::DockerConfig::default(),
                None,
                cchost::support::DEFAULT_EXECUTE_TIMEOUT,
                &[],
                "Org1MSP",
                cchost::runtime::wasm::PackageLimits::default(),
            )?;
            let id = cchost::launcher::install(&packages, &runtimes, &bytes)?;
            let kind = cchost::package::ChaincodePackage::parse(&bytes)?
                .metadata()
                .kind
                .clone();
            println!("installed: {id}");
            println!(
                "{} in {} ms into {}",
                if kind == cchost::package::WASM_TYPE {
                    "validated and precompiled"
                } else if cchost::runtime::docker::Platform::of(&kind).is_some() {
                    "validated (its image is built at its first launch)"
                } else {
                    "validated"
                },
                started.elapsed().as_millis(),
                data_dir.display()
            );
        }
        Command::Bench {
            suite:
                Some(BenchSuite::Commit {
                    transactions,
                    block_sizes,
                    keys,
                    blocks,
                    reads,
                    replay,
                    dir,
                    out,
                }),
            ..
        } => {
            let config = cchost::bench::commit::CommitBenchConfig {
                dir,
                transactions,
                block_sizes,
                keys,
                blocks,
                reads,
                replay,
            };
            let started = std::time::Instant::now();
            let report = tokio::task::spawn_blocking(move || {
                cchost::bench::commit::run(&config, &print_progress)
            })
            .await??;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let path = out.join("commit.json");
            std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("{}", report.table());
            println!(
                "commit benchmark in {:.0} s; results in {}",
                started.elapsed().as_secs_f64(),
                path.display()
            );
        }
        Command::Bench {
            suite: Some(BenchSuite::Load(args)),
            ..
        } => exit_on_error(node_cli::load(*args).await),
        Command::Bench {
            suite:
                Some(BenchSuite::Node {
                    transactions,
                    concurrency,
                    batch_timeout_ms,
                    wasm,
                    out,
                }),
            ..
        } => {
            let wasm = match wasm {
                Some(wasm) => wasm,
                None => {
                    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
                    eprintln!("building examples/asset-transfer for wasm32-wasip1");
                    packaging::build_wasm(&source.join("examples/asset-transfer"), None)?
                }
            };
            let config = cchost::bench::node::NodeBenchConfig {
                wasm,
                transactions,
                concurrency,
                batch_timeout: Duration::from_millis(batch_timeout_ms),
            };
            let report =
                tokio::spawn(
                    async move { cchost::bench::node::run(&config, &print_progress).await },
                )
                .await??;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let path = out.join("node.json");
            std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("{}", report.table());
            println!("results in {}", path.display());
        }
        Command::Bench {
            suite: None,
            runtime,
            rounds,
            transactions,
            concurrency,
            out,
            wasm,
            node_dir,
            native,
            startup_timeout,
            gateway_duration,
            gateway_concurrency,
            docker,
        } => {
            let runtimes = runtime
                .iter()
                .map(|r| cchost::bench::Runtime::parse(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let wasm = match wasm {
                Some(wasm) => wasm,
                None if runtimes.iter().any(|r| {
                    matches!(
                        r,
                        cchost::bench::Runtime::Wasm | cchost::bench::Runtime::External
                    )
                }) =>
                {
                    eprintln!("building examples/asset-transfer for wasm32-wasip1");
                    packaging::build_wasm(&source.join("examples/asset-transfer"), None)?
                }
                None => PathBuf::new(),
            };
            let native = match native {
                Some(native) => native,
                None if runtimes.contains(&cchost::bench::Runtime::Native) => {
                    eprintln!("building examples/asset-transfer/native");
                    packaging::build_native(&source.join("examples/asset-transfer/native"))?
                }
                None => PathBuf::new(),
            };
            let config = cchost::bench::BenchConfig {
                runtimes,
                rounds,
                transactions,
                concurrency,
                wasm,
                node_dir: node_dir.unwrap_or_else(|| source.join("examples/node-asset")),
                native,
                docker: docker.config(),
                startup_timeout: Duration::from_secs(startup_timeout),
                cchost: std::env::current_exe().ok(),
                gateway: (!gateway_duration.is_zero()).then_some(
                    cchost::bench::gateway::GatewayBenchConfig {
                        concurrency: gateway_concurrency,
                        duration: gateway_duration,
                        batch_timeout: Duration::from_millis(10),
                    },
                ),
            };
            let started = std::time::Instant::now();
            // On a runtime worker, as a peer's launches and transactions run (a call from
            // the main thread would add a cross-thread wake-up to every launch).
            let report =
                tokio::spawn(async move { cchost::bench::run(&config, &print_progress).await })
                    .await??;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let write = |name: &str, contents: &[u8]| {
                let path = out.join(name);
                std::fs::write(&path, contents)
                    .with_context(|| format!("writing {}", path.display()))
            };
            write("bench.json", &serde_json::to_vec_pretty(&report)?)?;
            write("bench.csv", report.csv().as_bytes())?;
            write(
                "launch.svg",
                report
                    .launch_chart()
                    .map_err(anyhow::Error::msg)?
                    .as_bytes(),
            )?;
            println!("{}", report.table());
            if let Some(summary) = &report.summary {
                println!(
                    "wasm launches {:.0}× faster than a container (warm, p50 {:.0} µs vs {:.0} µs);\n TransferAsset at concurrency {}: {:.0} vs {:.0} tx/s ({:.1}×)",
                    summary.launch_ratio,
                    summary.wasm_warm_launch_p50_us,
                    summary.container_warm_launch_p50_us,
                    summary.at_concurrency,
                    summary.wasm_invoke_tps_c32,
                    summary.node_invoke_tps_c32,
                    summary.invoke_ratio
                );
            }
            println!(
                "{} runtimes in {:.0} s; results in {}",
                report.runtimes.len(),
                started.elapsed().as_secs_f64(),
                out.display()
            );
        }
        Command::Version => {
            println!("cchost {}", env!("CARGO_PKG_VERSION"));
            println!(
                "Fabric protocol: fabric-protos v0.3 (a Fabric 3.x peer's chaincode protocol, \
                 2.5 shims included)"
            );
            let methods = cchost::descriptors::grpc_methods()?;
            for (heading, paths) in [
                ("gRPC methods served:", cchost::descriptors::SERVED),
                ("gRPC methods called:", cchost::descriptors::DIALED),
            ] {
                println!("{heading}");
                for m in methods.iter().filter(|m| paths.contains(&m.path.as_str())) {
                    let stream = |on: bool| if on { "stream " } else { "" };
                    println!(
                        "  {} ({}{}) -> {}{}",
                        m.path,
                        stream(m.client_streaming),
                        m.request,
                        stream(m.server_streaming),
                        m.response
                    );
                }
            }
            println!("HTTP endpoints served:");
            println!("  POST /chaincode (JSON-RPC 2.0: deploy, invoke, query; rest.address)");
            println!(
                "  GET /healthz, GET /metrics, GET|PUT /logspec, GET /version (operations.listenAddress)"
            );
        }
        Command::Devnode {
            listen,
            channel,
            chaincodes,
            packages,
            data_dir,
            startup_timeout,
            execute_timeout,
            operations_listen,
            tls,
            external_builders,
            docker,
        } => {
            if chaincodes.is_empty() && packages.is_empty() {
                anyhow::bail!(
                    "name at least one chaincode: --chaincode NAME=PACKAGE_ID or --package NAME=FILE"
                );
            }
            devnode::run(DevnodeConfig {
                listen,
                channel,
                chaincodes,
                packages,
                data_dir,
                startup_timeout: Duration::from_secs(startup_timeout),
                execute_timeout: Duration::from_secs(execute_timeout),
                operations_listen,
                logspec,
                tls,
                docker: docker.config(),
                external_builders: external_builders
                    .into_iter()
                    .map(|(name, path)| ExternalBuilder {
                        name,
                        path,
                        propagate_environment: Vec::new(),
                    })
                    .collect(),
            })
            .await?;
        }
    }
    Ok(())
}
