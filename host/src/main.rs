//! The `cchost` command.

use clap::{Parser, Subcommand};

/// cchost: a WebAssembly-sandboxed Hyperledger Fabric chaincode host.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the version and the Fabric gRPC services cchost speaks.
    Version,
}

fn main() -> anyhow::Result<()> {
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
    }
    Ok(())
}
