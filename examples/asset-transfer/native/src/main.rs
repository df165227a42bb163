//! The asset-transfer contract as a native chaincode process (Fabric's dev mode, or a
//! chaincode a launcher starts): `CORE_CHAINCODE_ID_NAME=ID asset-transfer-native
//! --peer.address HOST:PORT`. The same code as the wasm module, another backend.

fn main() -> std::process::ExitCode {
    cchost_sdk::shim::start(asset_transfer::chaincode)
}
