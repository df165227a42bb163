//! The `cchost` command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod devnode;

use cchost::ids::PackageId;
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
    /// Print the version and the Fabric gRPC methods cchost speaks.
    Version,
    /// Run a development peer (Fabric's dev mode): chaincode you start yourself dials in,
    /// and invocations are read from standard input, one JSON array per line:
    /// ["chaincode", "function", "arg", ...].
    Devnode {
        /// Chaincode listener address (Fabric's peer.chaincodeListenAddress).
        #[arg(long, default_value = "127.0.0.1:7052")]
        listen: SocketAddr,
        /// State database file (redb). In memory when omitted.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Channel the invocations run on.
        #[arg(long, default_value = "mychannel")]
        channel: String,
        /// NAME=PACKAGE_ID: chaincode NAME is served by the process registering with
        /// CORE_CHAINCODE_ID_NAME=PACKAGE_ID. Repeat for several chaincodes.
        #[arg(long = "chaincode", value_parser = parse_definition, required = true)]
        chaincodes: Vec<(String, PackageId)>,
        /// Seconds an invocation waits for its chaincode to register (Fabric: 300).
        #[arg(long, default_value_t = 300)]
        startup_timeout: u64,
        /// Seconds a transaction may run (Fabric's chaincode.executetimeout: 30).
        #[arg(long, default_value_t = 30)]
        execute_timeout: u64,
    },
}

fn parse_definition(value: &str) -> Result<(String, PackageId), String> {
    match value.split_once('=') {
        Some((name, package_id)) if !name.is_empty() && !package_id.is_empty() => {
            Ok((name.to_owned(), PackageId::new(package_id)))
        }
        _ => Err(format!(
            "expected NAME=PACKAGE_ID, e.g. asset=asset_1.0:dev, got {value:?}"
        )),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CCHOST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Version => {
            println!("cchost {}", env!("CARGO_PKG_VERSION"));
            println!("Fabric protocol: fabric-protos v0.3 (Fabric 2.5 peer, 3.x additions)");
            println!("gRPC methods:");
            for m in cchost::services::grpc_methods()? {
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
        Command::Devnode {
            listen,
            state,
            channel,
            chaincodes,
            startup_timeout,
            execute_timeout,
        } => {
            devnode::run(DevnodeConfig {
                listen,
                state,
                channel,
                chaincodes,
                startup_timeout: Duration::from_secs(startup_timeout),
                execute_timeout: Duration::from_secs(execute_timeout),
            })
            .await?;
        }
    }
    Ok(())
}
