//! A node for the campaigns that need one: started in this process on loopback with
//! embedded defaults (blocks cut every 10 ms), serving `kv`, a wasm chaincode that
//! writes its whole input under key `k`.

use std::path::PathBuf;
use std::time::Duration;

use cchost::client::Client;
use cchost::node::{RunningNode, StartOptions};
use cchost::proposal::{BuiltProposal, DevIdentity, ProposalBuilder};

/// `kv`: writes its whole input under key `k`, answers 200.
pub(crate) const KV: &str = r#"(module
  (import "cchost" "input_read" (func $input (param i32 i32) (result i32)))
  (import "cchost" "put_state" (func $put (param i32 i32 i32 i32 i32 i32) (result i64)))
  (import "cchost" "set_response" (func $respond (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "k")
  (data (i32.const 16) "\08\c8\01")
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param $len i32) (result i32)
    (if (i32.gt_u (local.get $len) (i32.const 60000)) (then (local.set $len (i32.const 60000))))
    (drop (call $input (i32.const 1024) (local.get $len)))
    (drop (call $put (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 1024) (local.get $len)))
    (drop (call $respond (i32.const 16) (i32.const 3)))
    (i32.const 0)))"#;

/// A node serving `kv`, its client and user.
pub(crate) struct KvNode {
    _dir: tempfile::TempDir,
    pub(crate) node: RunningNode,
    pub(crate) client: Client,
    pub(crate) channel: tonic::transport::Channel,
    pub(crate) user: DevIdentity,
    /// The package `kv` runs.
    pub(crate) package_id: cchost::ids::PackageId,
}

impl KvNode {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let data: PathBuf = dir.path().join("node");
        std::fs::create_dir_all(&data)?;
        std::fs::write(
            data.join(cchost::node::config::FILE),
            "[peer]\nlistenAddress = \"127.0.0.1:0\"\nchaincodeListenAddress = \"127.0.0.1:0\"\n\
             [operations]\nlistenAddress = \"\"\n[rest]\nenabled = false\n\
             [orderer]\nBatchTimeout = \"10ms\"\n",
        )?;
        let node = RunningNode::start(&data, StartOptions::default()).await?;
        let client = Client::connect(node.profile.clone()).await?;
        let package =
            cchost::package::build_wasm_package("kv_1.0", "kv.wasm", &wat::parse_str(KV)?)?;
        let package_id = cchost::package::ChaincodePackage::parse(&package)?
            .id()
            .clone();
        client
            .deploy(
                package,
                "kv",
                "1.0",
                false,
                Vec::new(),
                Duration::from_secs(60),
            )
            .await?;
        let user = client.user()?;
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", node.profile.address))?
                .connect()
                .await?;
        Ok(Self {
            _dir: dir,
            node,
            client,
            channel,
            user,
            package_id,
        })
    }

    pub(crate) fn proposal(&self, seed: u64) -> anyhow::Result<BuiltProposal> {
        Ok(
            ProposalBuilder::new(self.node.profile.channel.clone(), "kv")
                .args([format!("case-{seed}")])
                .build(&self.user)?,
        )
    }
}
