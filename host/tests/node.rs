//! The node: a `RunningNode` on a temporary data directory, driven over gRPC by the
//! client library as the CLI drives it. The endorser's checks with Fabric's texts,
//! `_lifecycle` (deploy, upgrade, init-required), Deliver's seek positions and
//! statuses, and a subscriber that never reads while commits go on.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use cchost::client::{Client, Committed};
use cchost::endorser::INITIALIZED_KEY;
use cchost::msp::{DevCa, Role};
use cchost::node::identities::load_msp;
use cchost::node::{RunningNode, StartOptions};
use cchost::proposal::{BuiltProposal, DevIdentity, ProposalBuilder};
use cchost_proto::common::{
    ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader, Status,
};
use cchost_proto::orderer::{
    SeekInfo, SeekNewest, SeekNextCommit, SeekOldest, SeekPosition, SeekSpecified, seek_info,
    seek_position,
};
use cchost_proto::protos::{
    ChaincodeAction, DeliverResponse, Proposal, ProposalResponsePayload, TxValidationCode,
    deliver_client::DeliverClient, deliver_response,
};
use cchost_proto::rwset::TxReadWriteSet;
use prost::Message;

const WAIT: Duration = Duration::from_secs(30);

/// A node on a temporary data directory (ports chosen by the system, a 50 ms batch
/// timeout, no operations endpoints).
struct TestNode {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    node: Option<RunningNode>,
}

fn asset_transfer_package(label: &str) -> Vec<u8> {
    let wasm = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/guests/wasm32-wasip1/release/asset_transfer.wasm"),
    )
    .unwrap();
    cchost::package::build_wasm_package(label, "asset_transfer.wasm", &wasm).unwrap()
}

/// tests/guests/asset (`asset:*` functions: events, spinning, chaincode calls) as a wasm
/// package labelled `label`.
fn guest_asset_package(label: &str) -> Vec<u8> {
    let wasm = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/guests/wasm32-wasip1/release/guest_asset.wasm"),
    )
    .unwrap();
    cchost::package::build_wasm_package(label, "guest_asset.wasm", &wasm).unwrap()
}

/// A signed ChaincodeEvents request of `user` for `chaincode` from block `start`.
fn events_request(
    user: &DevIdentity,
    chaincode: &str,
    start: u64,
) -> cchost_proto::gateway::SignedChaincodeEventsRequest {
    let request = cchost_proto::gateway::ChaincodeEventsRequest {
        channel_id: "mychannel".into(),
        chaincode_id: chaincode.into(),
        identity: user.creator(),
        start_position: Some(SeekPosition {
            r#type: Some(seek_position::Type::Specified(SeekSpecified {
                number: start,
            })),
        }),
        after_transaction_id: String::new(),
    }
    .encode_to_vec();
    cchost_proto::gateway::SignedChaincodeEventsRequest {
        signature: user.sign(&request),
        request,
    }
}

fn write_config(dir: &Path, extra: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("core.toml"),
        format!(
            "[peer]\nlistenAddress = \"127.0.0.1:0\"\nchaincodeListenAddress = \"127.0.0.1:0\"\n\
             [operations]\nlistenAddress = \"\"\n[rest]\nenabled = false\n[orderer]\nBatchTimeout = \"50ms\"\n{extra}"
        ),
    )
    .unwrap();
}

impl TestNode {
    async fn start() -> Self {
        Self::start_with("").await
    }

    /// A node whose `core.toml` ends with `extra`.
    async fn start_with(extra: &str) -> Self {
        Self::start_with_options(extra, StartOptions::default()).await
    }

    async fn start_with_options(extra: &str, options: StartOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node");
        write_config(&path, extra);
        let node = RunningNode::start(&path, options).await.unwrap();
        Self {
            _dir: dir,
            dir: path,
            node: Some(node),
        }
    }

    fn node(&self) -> &RunningNode {
        self.node.as_ref().unwrap()
    }

    async fn client(&self) -> Client {
        Client::connect(self.node().profile.clone()).await.unwrap()
    }

    async fn restart(&mut self) {
        self.node.take().unwrap().stop().await.unwrap();
        self.node = Some(
            RunningNode::start(&self.dir, StartOptions::default())
                .await
                .unwrap(),
        );
    }

    /// Deploys asset-transfer as `basic` and runs InitLedger.
    async fn with_basic(&self) -> Client {
        let client = self.client().await;
        client
            .deploy(
                asset_transfer_package("basic_1.0"),
                "basic",
                "1.0",
                false,
                Vec::new(),
                WAIT,
            )
            .await
            .unwrap();
        invoke(&client, &["InitLedger"]).await;
        client
    }
}

fn proposal(client: &Client, chaincode: &str, args: &[&str]) -> BuiltProposal {
    ProposalBuilder::new(client.profile.channel.clone(), chaincode)
        .args(args)
        .build(&client.user().unwrap())
        .unwrap()
}

/// Endorses and submits; waits for the commit.
async fn invoke(client: &Client, args: &[&str]) -> Committed {
    let built = proposal(client, "basic", args);
    let response = client.endorse(&built).await.unwrap();
    assert_eq!(
        response.response.as_ref().unwrap().status,
        200,
        "{response:?}"
    );
    client
        .submit(&built, &[response], &client.user().unwrap(), Some(WAIT))
        .await
        .unwrap()
        .unwrap()
}

async fn query(client: &Client, args: &[&str]) -> (i32, String, String) {
    let built = proposal(client, "basic", args);
    let response = client.endorse(&built).await.unwrap();
    let r = response.response.unwrap();
    (r.status, r.message, String::from_utf8(r.payload).unwrap())
}

/// The gRPC error text of a proposal the endorser refuses.
async fn refused(client: &Client, built: &BuiltProposal) -> String {
    let status = client.endorse(built).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unknown, "{status:?}");
    status.message().to_owned()
}

/// Re-signs `built` after `change` altered its proposal.
fn altered(
    built: &BuiltProposal,
    signer: &DevIdentity,
    change: impl FnOnce(&mut ChannelHeader),
) -> BuiltProposal {
    let mut proposal = Proposal::decode(built.signed_proposal.proposal_bytes.as_slice()).unwrap();
    let mut header = Header::decode(proposal.header.as_slice()).unwrap();
    let mut channel_header = ChannelHeader::decode(header.channel_header.as_slice()).unwrap();
    change(&mut channel_header);
    header.channel_header = channel_header.encode_to_vec();
    proposal.header = header.encode_to_vec();
    let mut out = built.clone();
    out.signed_proposal.proposal_bytes = proposal.encode_to_vec();
    out.signed_proposal.signature = signer.sign(&out.signed_proposal.proposal_bytes);
    out
}

#[tokio::test]
async fn a_deployed_chaincode_is_invoked_and_queried_and_survives_a_restart() {
    let mut node = TestNode::start().await;
    let client = node.with_basic().await;
    let expected = r#"{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5,"docType":"asset"}"#;
    assert_eq!(
        query(&client, &["ReadAsset", "asset1"]).await,
        (200, String::new(), expected.to_owned())
    );
    let height = node.node().ledger.height();
    node.restart().await;
    let client = node.client().await;
    assert_eq!(node.node().ledger.height(), height);
    assert_eq!(
        query(&client, &["ReadAsset", "asset1"]).await,
        (200, String::new(), expected.to_owned())
    );
    assert_eq!(client.current_sequence("basic").await.unwrap(), 1);
}

#[tokio::test]
async fn the_endorser_refuses_each_bad_proposal_with_fabrics_text() {
    let node = TestNode::start().await;
    let client = node.with_basic().await;
    let user = client.user().unwrap();
    let good = proposal(&client, "basic", &["ReadAsset", "asset1"]);

    // A signature by another key.
    let mut forged = good.clone();
    forged.signed_proposal.signature = DevIdentity::generate("Org1MSP", "Org1", "x")
        .unwrap()
        .sign(&good.signed_proposal.proposal_bytes);
    assert_eq!(
        refused(&client, &forged).await,
        "error validating proposal: access denied: channel [mychannel] creator org [Org1MSP]"
    );

    // A creator of an MSP the channel does not know.
    let stranger = DevIdentity::generate("Org9MSP", "Org9", "User1").unwrap();
    let built = ProposalBuilder::new("mychannel", "basic")
        .args(["ReadAsset", "asset1"])
        .build(&stranger)
        .unwrap();
    assert_eq!(
        refused(&client, &built).await,
        "error validating proposal: access denied: channel [mychannel] creator org unknown, creator is malformed"
    );

    // Org1MSP's name, another CA's certificate.
    let impostor = DevCa::new("Org1MSP", "Org1")
        .unwrap()
        .issue(Role::Client, "User1")
        .unwrap();
    let built = ProposalBuilder::new("mychannel", "basic")
        .args(["ReadAsset", "asset1"])
        .build(&impostor)
        .unwrap();
    assert_eq!(
        refused(&client, &built).await,
        "error validating proposal: access denied: channel [mychannel] creator org [Org1MSP]"
    );

    // A txid not computed from nonce and creator.
    let wrong = altered(&good, &user, |h| h.tx_id = "deadbeef".into());
    assert_eq!(
        refused(&client, &wrong).await,
        format!(
            "error validating proposal: incorrectly computed txid 'deadbeef' -- expected '{}'",
            good.txid
        )
    );

    // A header type an endorser does not take.
    let config_update = altered(&good, &user, |h| h.r#type = HeaderType::ConfigUpdate as i32);
    assert_eq!(
        refused(&client, &config_update).await,
        "error validating proposal: invalid header type CONFIG_UPDATE"
    );

    // A peer identity is not one of the channel's Writers.
    let peer = load_msp(
        &node.dir.join(
            "organizations/peerOrganizations/org1.example.com/peers/peer0.org1.example.com/msp",
        ),
        "Org1MSP",
    )
    .unwrap();
    let built = ProposalBuilder::new("mychannel", "basic")
        .args(["ReadAsset", "asset1"])
        .build(&peer)
        .unwrap();
    assert_eq!(
        refused(&client, &built).await,
        "Failed evaluating policy on signed data during check policy on channel [mychannel] with policy [/Channel/Application/Writers]: [implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Writers' sub-policies to be satisfied]"
    );

    // A txid already in the ledger.
    let committed = invoke(&client, &["TransferAsset", "asset1", "Christopher"]).await;
    assert_eq!(committed.code, TxValidationCode::Valid);
    let first = proposal(&client, "basic", &["TransferAsset", "asset2", "Max"]);
    let response = client.endorse(&first).await.unwrap();
    client
        .submit(&first, &[response], &user, Some(WAIT))
        .await
        .unwrap();
    assert_eq!(
        refused(&client, &first).await,
        format!(
            "duplicate transaction found [{}]. Creator [{}]",
            first.txid,
            hex::encode(&first.creator)
        )
    );

    // Answered with status 500 rather than refused: an unknown channel, an undefined
    // chaincode.
    let built = ProposalBuilder::new("otherchannel", "basic")
        .args(["ReadAsset", "asset1"])
        .build(&user)
        .unwrap();
    let response = client.endorse(&built).await.unwrap().response.unwrap();
    assert_eq!(
        (response.status, response.message.as_str()),
        (500, "channel 'otherchannel' not found")
    );
    let built = proposal(&client, "nope", &["ReadAsset", "asset1"]);
    let response = client.endorse(&built).await.unwrap().response.unwrap();
    assert_eq!(
        (response.status, response.message.as_str()),
        (
            500,
            "make sure the chaincode nope has been successfully defined on channel mychannel and try again: chaincode nope not found"
        )
    );
}

#[tokio::test]
async fn a_chaincode_error_is_returned_unendorsed_with_its_message() {
    let node = TestNode::start().await;
    let client = node.with_basic().await;
    let built = proposal(
        &client,
        "basic",
        &["UpdateAsset", "nope", "blue", "5", "Tom", "100"],
    );
    let response = client.endorse(&built).await.unwrap();
    assert_eq!(response.endorsement, None);
    let r = response.response.unwrap();
    assert_eq!(
        (r.status, r.message.as_str()),
        (500, "The asset nope does not exist")
    );
}

/// The reads an endorsement's read/write set holds in `namespace`: (key, version).
fn reads(
    response: &cchost_proto::protos::ProposalResponse,
    namespace: &str,
) -> Vec<(String, Option<(u64, u64)>)> {
    let prp = ProposalResponsePayload::decode(response.payload.as_slice()).unwrap();
    let action = ChaincodeAction::decode(prp.extension.as_slice()).unwrap();
    let rwset = TxReadWriteSet::decode(action.results.as_slice()).unwrap();
    rwset
        .ns_rwset
        .iter()
        .filter(|ns| ns.namespace == namespace)
        .flat_map(|ns| {
            cchost_proto::kvrwset::KvrwSet::decode(ns.rwset.as_slice())
                .unwrap()
                .reads
                .into_iter()
                .map(|r| (r.key, r.version.map(|v| (v.block_num, v.tx_num))))
        })
        .collect()
}

#[tokio::test]
async fn every_endorsement_reads_the_chaincodes_lifecycle_sequence_and_a_new_definition_invalidates_older_endorsements()
 {
    let node = TestNode::start().await;
    let client = node.with_basic().await;
    let user = client.user().unwrap();
    let old = proposal(&client, "basic", &["TransferAsset", "asset3", "Max"]);
    let endorsed = client.endorse(&old).await.unwrap();
    // Definition committed in block 2 (after the approval in block 1), transaction 0.
    assert_eq!(
        reads(&endorsed, "_lifecycle"),
        [("namespaces/fields/basic/Sequence".to_owned(), Some((2, 0)))]
    );

    // Sequence 2, running a package with another label.
    let (definition, package, _) = client
        .deploy(
            asset_transfer_package("basic_2.0"),
            "basic",
            "2.0",
            false,
            Vec::new(),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(definition.sequence, 2);
    assert!(package.starts_with("basic_2.0:"), "{package}");
    let committed = client
        .submit(&old, &[endorsed], &user, Some(WAIT))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(committed.code, TxValidationCode::MvccReadConflict);
    assert_eq!(
        query(&client, &["ReadAsset", "asset3"]).await.2,
        r#"{"AppraisedValue":500,"Color":"green","ID":"asset3","Owner":"Jin Soo","Size":10,"docType":"asset"}"#
    );
    // New transactions run under the new definition.
    let fresh = client
        .endorse(&proposal(&client, "basic", &["ReadAsset", "asset3"]))
        .await
        .unwrap();
    let prp = ProposalResponsePayload::decode(fresh.payload.as_slice()).unwrap();
    let action = ChaincodeAction::decode(prp.extension.as_slice()).unwrap();
    assert_eq!(action.chaincode_id.unwrap().version, "2.0");
}

#[tokio::test]
async fn an_init_required_chaincode_is_refused_until_initialised_and_initialised_once() {
    let node = TestNode::start().await;
    let client = node.client().await;
    client
        .deploy(
            asset_transfer_package("basic_1.0"),
            "basic",
            "1.0",
            true,
            Vec::new(),
            WAIT,
        )
        .await
        .unwrap();
    let built = proposal(&client, "basic", &["GetAllAssets"]);
    let r = client.endorse(&built).await.unwrap().response.unwrap();
    assert_eq!(
        (r.status, r.message),
        (
            500,
            format!(
                "error in simulation: failed to execute transaction {}: invalid invocation: chaincode 'basic' has not been initialized for this version, must call as init first",
                built.txid
            )
        )
    );
    let user = client.user().unwrap();
    let init = ProposalBuilder::new("mychannel", "basic")
        .args(["InitLedger"])
        .init(true)
        .build(&user)
        .unwrap();
    let response = client.endorse(&init).await.unwrap();
    assert_eq!(response.response.as_ref().unwrap().status, 200);
    let prp = ProposalResponsePayload::decode(response.payload.as_slice()).unwrap();
    let action = ChaincodeAction::decode(prp.extension.as_slice()).unwrap();
    let rwset = TxReadWriteSet::decode(action.results.as_slice()).unwrap();
    let writes: Vec<(String, Vec<u8>)> = rwset
        .ns_rwset
        .iter()
        .filter(|ns| ns.namespace == "basic")
        .flat_map(|ns| {
            cchost_proto::kvrwset::KvrwSet::decode(ns.rwset.as_slice())
                .unwrap()
                .writes
                .into_iter()
                .map(|w| (w.key, w.value))
        })
        .filter(|(k, _)| k == INITIALIZED_KEY)
        .collect();
    assert_eq!(writes, [(INITIALIZED_KEY.to_owned(), b"1.0".to_vec())]);
    client
        .submit(&init, &[response], &user, Some(WAIT))
        .await
        .unwrap();
    assert_eq!(query(&client, &["ReadAsset", "asset6"]).await.0, 200);
    let again = ProposalBuilder::new("mychannel", "basic")
        .args(["InitLedger"])
        .init(true)
        .build(&user)
        .unwrap();
    let r = client.endorse(&again).await.unwrap().response.unwrap();
    assert_eq!(
        r.message,
        format!(
            "error in simulation: failed to execute transaction {}: invalid invocation: chaincode 'basic' is already initialized but called as init",
            again.txid
        )
    );
}

#[tokio::test]
async fn lifecycle_refuses_sequences_out_of_order_and_non_admins_with_fabrics_texts() {
    let node = TestNode::start().await;
    let client = node.client().await;
    let spec = cchost::client::DefinitionSpec {
        name: "basic".into(),
        version: "1.0".into(),
        sequence: 2,
        init_required: false,
        validation_parameter: Vec::new(),
        wasm_fuel: 0,
        wasm_memory: 0,
    };
    let err = client
        .approve(&spec, "basic_1.0:00", WAIT)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "proposal failed with status: 500 - failed to invoke backing implementation of 'ApproveChaincodeDefinitionForMyOrg': requested sequence 2 is larger than the next available sequence number 1"
    );
    let err = client
        .commit(
            &cchost::client::DefinitionSpec {
                sequence: 1,
                ..spec.clone()
            },
            WAIT,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "proposal failed with status: 500 - failed to invoke backing implementation of 'CommitChaincodeDefinition': chaincode definition not agreed to by this org (Org1MSP)"
    );
    assert_eq!(
        client
            .lifecycle(
                "QueryChaincodeDefinition",
                &cchost_proto::lifecycle::QueryChaincodeDefinitionArgs {
                    name: "basic".into()
                },
                true,
            )
            .await
            .unwrap_err()
            .to_string(),
        "proposal failed with status: 404 - namespace basic is not defined"
    );
    // Install needs the organisation's admin.
    let user = client.user().unwrap();
    let built = ProposalBuilder::new("", "_lifecycle")
        .args([
            b"InstallChaincode".to_vec(),
            cchost_proto::lifecycle::InstallChaincodeArgs {
                chaincode_install_package: asset_transfer_package("basic_1.0"),
            }
            .encode_to_vec(),
        ])
        .build(&user)
        .unwrap();
    let r = client.endorse(&built).await.unwrap().response.unwrap();
    assert_eq!(
        (r.status, r.message.as_str()),
        (
            500,
            "Failed to authorize invocation due to failed ACL check: InstallChaincode needs an admin of Org1MSP, the creator is not one"
        )
    );
    let (id, label) = client
        .install(asset_transfer_package("basic_1.0"))
        .await
        .unwrap();
    assert_eq!(label, "basic_1.0");
    assert_eq!(
        client
            .install(asset_transfer_package("basic_1.0"))
            .await
            .unwrap_err()
            .to_string(),
        format!(
            "chaincode install failed with status: 500 - failed to invoke backing implementation of 'InstallChaincode': chaincode already successfully installed (package ID '{id}')"
        )
    );
}

/// A signed seek request.
fn seek(
    identity: &DevIdentity,
    channel: &str,
    start: seek_position::Type,
    stop: seek_position::Type,
    fail_if_not_ready: bool,
) -> Envelope {
    let header = Header {
        channel_header: ChannelHeader {
            r#type: HeaderType::DeliverSeekInfo as i32,
            channel_id: channel.into(),
            ..ChannelHeader::default()
        }
        .encode_to_vec(),
        signature_header: SignatureHeader {
            creator: identity.creator(),
            nonce: vec![1; 24],
        }
        .encode_to_vec(),
    };
    let payload = Payload {
        header: Some(header),
        data: SeekInfo {
            start: Some(SeekPosition {
                r#type: Some(start),
            }),
            stop: Some(SeekPosition { r#type: Some(stop) }),
            behavior: if fail_if_not_ready {
                seek_info::SeekBehavior::FailIfNotReady as i32
            } else {
                seek_info::SeekBehavior::BlockUntilReady as i32
            },
            ..SeekInfo::default()
        }
        .encode_to_vec(),
    }
    .encode_to_vec();
    Envelope {
        signature: identity.sign(&payload),
        payload,
    }
}

#[derive(Debug, PartialEq)]
enum Seen {
    Block(u64),
    Filtered(u64, Vec<(String, i32)>),
    Status(Status),
}

fn seen(response: DeliverResponse) -> Seen {
    match response.r#type.unwrap() {
        deliver_response::Type::Block(b) => Seen::Block(b.header.unwrap().number),
        deliver_response::Type::FilteredBlock(b) => Seen::Filtered(
            b.number,
            b.filtered_transactions
                .into_iter()
                .map(|t| (t.txid, t.tx_validation_code))
                .collect(),
        ),
        deliver_response::Type::Status(s) => Seen::Status(Status::try_from(s).unwrap()),
        other => panic!("{other:?}"),
    }
}

/// Everything a one-request Deliver stream answers, until its status.
async fn deliver_all(client: &Client, envelope: Envelope, filtered: bool) -> Vec<Seen> {
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", client.profile.address))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut deliver = DeliverClient::new(channel);
    let request = tokio_stream::once(envelope);
    let mut stream = if filtered {
        deliver
            .deliver_filtered(request)
            .await
            .unwrap()
            .into_inner()
    } else {
        deliver.deliver(request).await.unwrap().into_inner()
    };
    let mut out = Vec::new();
    while let Some(response) = stream.message().await.unwrap() {
        let item = seen(response);
        let end = matches!(item, Seen::Status(_));
        out.push(item);
        if end {
            break;
        }
    }
    out
}

#[tokio::test]
async fn deliver_answers_each_seek_position_and_refusal_as_fabric_does() {
    use seek_position::Type::{Newest, NextCommit, Oldest, Specified};
    let node = TestNode::start().await;
    let client = node.with_basic().await;
    // Blocks 0 (genesis), 1 (approve), 2 (commit), 3 (InitLedger).
    let user = client.user().unwrap();
    let n = |number| Specified(SeekSpecified { number });
    let blocks = |v: &[u64]| {
        let mut out: Vec<Seen> = v.iter().map(|n| Seen::Block(*n)).collect();
        out.push(Seen::Status(Status::Success));
        out
    };
    assert_eq!(
        deliver_all(
            &client,
            seek(
                &user,
                "mychannel",
                Oldest(SeekOldest {}),
                Newest(SeekNewest {}),
                false
            ),
            false
        )
        .await,
        blocks(&[0, 1, 2, 3])
    );
    assert_eq!(
        deliver_all(
            &client,
            seek(
                &user,
                "mychannel",
                Newest(SeekNewest {}),
                Newest(SeekNewest {}),
                false
            ),
            false
        )
        .await,
        blocks(&[3])
    );
    assert_eq!(
        deliver_all(&client, seek(&user, "mychannel", n(1), n(2), true), false).await,
        blocks(&[1, 2])
    );
    assert_eq!(
        deliver_all(&client, seek(&user, "mychannel", n(9), n(9), true), false).await,
        [Seen::Status(Status::NotFound)]
    );
    assert_eq!(
        deliver_all(&client, seek(&user, "mychannel", n(2), n(9), true), false).await,
        [
            Seen::Block(2),
            Seen::Block(3),
            Seen::Status(Status::NotFound)
        ]
    );
    assert_eq!(
        deliver_all(&client, seek(&user, "mychannel", n(3), n(2), false), false).await,
        [Seen::Status(Status::BadRequest)]
    );
    assert_eq!(
        deliver_all(
            &client,
            seek(&user, "otherchannel", n(0), n(0), false),
            false
        )
        .await,
        [Seen::Status(Status::NotFound)]
    );
    let stranger = DevCa::new("Org1MSP", "Org1")
        .unwrap()
        .issue(Role::Client, "x")
        .unwrap();
    assert_eq!(
        deliver_all(
            &client,
            seek(&stranger, "mychannel", n(0), n(0), false),
            false
        )
        .await,
        [Seen::Status(Status::Forbidden)]
    );
    let garbage = Envelope {
        payload: vec![0xff, 0xff],
        signature: Vec::new(),
    };
    assert_eq!(
        deliver_all(&client, garbage, false).await,
        [Seen::Status(Status::BadRequest)]
    );

    // The next commit, waited for: the transaction's filtered block.
    let waiting = {
        let client = client.clone();
        let user = client.user().unwrap();
        tokio::spawn(async move {
            deliver_all(
                &client,
                seek(
                    &user,
                    "mychannel",
                    NextCommit(SeekNextCommit {}),
                    NextCommit(SeekNextCommit {}),
                    false,
                ),
                true,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let committed = invoke(&client, &["TransferAsset", "asset1", "Max"]).await;
    assert_eq!(
        waiting.await.unwrap(),
        [
            Seen::Filtered(4, vec![(committed.txid, TxValidationCode::Valid as i32)]),
            Seen::Status(Status::Success)
        ]
    );
}

#[tokio::test]
async fn a_deliver_subscriber_that_never_reads_does_not_stall_commits() {
    let node = TestNode::start().await;
    let client = node.with_basic().await;
    let user = client.user().unwrap();
    // Subscribed to every block from 0 on, forever; never read.
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", client.profile.address))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let _stalled = DeliverClient::new(channel)
        .deliver(tokio_stream::once(seek(
            &user,
            "mychannel",
            seek_position::Type::Oldest(SeekOldest {}),
            seek_position::Type::Specified(SeekSpecified { number: u64::MAX }),
            false,
        )))
        .await
        .unwrap();
    let before = node.node().ledger.height();
    for i in 0..40 {
        let committed = invoke(&client, &["TransferAsset", "asset2", &format!("owner{i}")]).await;
        assert_eq!(committed.code, TxValidationCode::Valid);
    }
    assert_eq!(node.node().ledger.height(), before + 40);
    assert_eq!(
        query(&client, &["ReadAsset", "asset2"]).await.2,
        r#"{"AppraisedValue":400,"Color":"red","ID":"asset2","Owner":"owner39","Size":5,"docType":"asset"}"#
    );
}

#[tokio::test]
async fn with_tls_enabled_clients_need_the_tls_ca_and_with_client_auth_their_certificate() {
    let node =
        TestNode::start_with("[peer.tls]\nenabled = true\nclientAuthRequired = true\n").await;
    let profile = node.node().profile.clone();
    let tls = node
        .dir
        .join("organizations/peerOrganizations/org1.example.com/peers/peer0.org1.example.com/tls");
    assert_eq!(
        profile.tls_ca.as_deref(),
        Some(tls.join("ca.crt").as_path())
    );
    // Mutual TLS with the user's TLS certificate: served.
    let client = Client::connect(profile.clone()).await.unwrap();
    assert_eq!(client.current_sequence("basic").await.unwrap(), 0);
    // Without a client certificate: refused.
    let anonymous = Client::connect(cchost::node::ClientProfile {
        tls_client: None,
        ..profile.clone()
    })
    .await;
    let refused = match anonymous {
        Err(e) => e.to_string(),
        Ok(c) => c.current_sequence("basic").await.unwrap_err().to_string(),
    };
    assert!(refused.contains("CertificateRequired"), "{refused}");
    // Plaintext: refused.
    let plain = Client::connect(cchost::node::ClientProfile {
        tls_ca: None,
        tls_client: None,
        ..profile
    })
    .await;
    let refused = match plain {
        Err(e) => e.to_string(),
        Ok(c) => c.current_sequence("basic").await.unwrap_err().to_string(),
    };
    assert!(refused.contains("transport error"), "{refused}");
}

/// A process killed when the test ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn in_dev_mode_chaincode_started_by_hand_serves_the_definition_naming_its_package_id() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/node-asset");
    assert!(
        example.join("node_modules/fabric-shim/cli.js").is_file(),
        "fabric-shim is not installed: run scripts/test (or `npm ci --prefix examples/node-asset`)"
    );
    let node = TestNode::start_with_options(
        "",
        StartOptions {
            dev_mode: true,
            ..StartOptions::default()
        },
    )
    .await;
    let client = node.client().await;
    // Nothing installed: the definition names the id the chaincode registers with.
    let spec = cchost::client::DefinitionSpec {
        name: "asset".into(),
        version: "1.0".into(),
        sequence: 1,
        init_required: false,
        validation_parameter: Vec::new(),
        wasm_fuel: 0,
        wasm_memory: 0,
    };
    client.approve(&spec, "asset_1.0:dev", WAIT).await.unwrap();
    client.commit(&spec, WAIT).await.unwrap();
    let _chaincode = Killed(
        std::process::Command::new("node")
            .args(["node_modules/fabric-shim/cli.js", "start", "--peer.address"])
            .arg(node.node().chaincode_address.to_string())
            .current_dir(&example)
            .env("CORE_CHAINCODE_ID_NAME", "asset_1.0:dev")
            .env("CORE_PEER_TLS_ENABLED", "false")
            .env("CORE_PEER_LOCALMSPID", "Org1MSP")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let user = client.user().unwrap();
    let put = ProposalBuilder::new("mychannel", "asset")
        .args(["asset:put", "k1", "v1"])
        .build(&user)
        .unwrap();
    // Until the chaincode has registered, the endorser answers 500.
    let mut response = client.endorse(&put).await.unwrap();
    for _ in 0..300 {
        if response.response.as_ref().unwrap().status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        response = client.endorse(&put).await.unwrap();
    }
    assert_eq!(
        response.response.as_ref().unwrap().status,
        200,
        "{response:?}"
    );
    let committed = client
        .submit(&put, &[response], &user, Some(WAIT))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(committed.code, TxValidationCode::Valid);
    let get = ProposalBuilder::new("mychannel", "asset")
        .args(["asset:get", "k1"])
        .build(&user)
        .unwrap();
    let r = client.endorse(&get).await.unwrap().response.unwrap();
    assert_eq!((r.status, r.payload), (200, b"v1".to_vec()));
}

#[tokio::test]
async fn fifty_deliver_subscribers_each_see_every_committed_block_once_in_order() {
    let node = TestNode::start().await;
    let client = node.with_basic().await;
    let height = node.node().ledger.height();
    let mut subscribers = Vec::new();
    for _ in 0..50 {
        let client = client.clone();
        let user = client.user().unwrap();
        subscribers.push(tokio::spawn(async move {
            deliver_all(
                &client,
                seek(
                    &user,
                    "mychannel",
                    seek_position::Type::NextCommit(SeekNextCommit {}),
                    seek_position::Type::Specified(SeekSpecified { number: height + 4 }),
                    false,
                ),
                true,
            )
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut expected = Vec::new();
    for i in 0..5 {
        let committed = invoke(&client, &["TransferAsset", "asset4", &format!("o{i}")]).await;
        expected.push(Seen::Filtered(
            committed.block,
            vec![(committed.txid, TxValidationCode::Valid as i32)],
        ));
    }
    expected.push(Seen::Status(Status::Success));
    for subscriber in subscribers {
        assert_eq!(subscriber.await.unwrap(), expected);
    }
}

#[tokio::test]
async fn a_chaincode_called_by_chaincode_has_its_lifecycle_sequence_read_in_the_transaction() {
    let node = TestNode::start().await;
    let client = node.with_basic().await;
    let package = guest_asset_package("caller_1.0");
    client
        .deploy(package, "caller", "1.0", false, Vec::new(), WAIT)
        .await
        .unwrap();
    let built = proposal(
        &client,
        "caller",
        &["asset:invoke", "basic", "ReadAsset", "asset1"],
    );
    let response = client.endorse(&built).await.unwrap();
    assert_eq!(
        response.response.as_ref().unwrap().status,
        200,
        "{response:?}"
    );
    // basic: defined in block 2; caller: in block 5 (its approval in block 4).
    assert_eq!(
        reads(&response, "_lifecycle"),
        [
            ("namespaces/fields/basic/Sequence".to_owned(), Some((2, 0))),
            ("namespaces/fields/caller/Sequence".to_owned(), Some((5, 0))),
        ]
    );
}

#[tokio::test]
async fn with_tls_enabled_node_chaincode_in_docker_registers_over_mutual_tls_and_serves() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/node-asset");
    assert!(
        example.join("node_modules/fabric-shim/cli.js").is_file(),
        "fabric-shim is not installed: run scripts/test (or `npm ci --prefix examples/node-asset`)"
    );
    let node = TestNode::start_with_options(
        "[peer.tls]\nenabled = true\n",
        StartOptions {
            docker: cchost::runtime::docker::DockerConfig {
                images: cchost::runtime::docker::Images {
                    node: "cchost/nodeenv:local".into(),
                    ..cchost::runtime::docker::Images::default()
                },
                ..cchost::runtime::docker::DockerConfig::default()
            },
            ..StartOptions::default()
        },
    )
    .await;
    let package = node.dir.join("nodeasset.tar.gz");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cchost"))
        .args([
            "package",
            "--lang",
            "node",
            "--label",
            "nodeasset_1.0",
            "--output",
        ])
        .arg(&package)
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = node.client().await;
    client
        .deploy(
            std::fs::read(&package).unwrap(),
            "nodeasset",
            "1.0",
            false,
            Vec::new(),
            WAIT,
        )
        .await
        .unwrap();
    let user = client.user().unwrap();
    let put = ProposalBuilder::new("mychannel", "nodeasset")
        .args(["asset:put", "k1", "v1"])
        .build(&user)
        .unwrap();
    let response = client.endorse(&put).await.unwrap();
    assert_eq!(
        response.response.as_ref().unwrap().status,
        200,
        "{response:?}"
    );
    let committed = client
        .submit(&put, &[response], &user, Some(WAIT))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(committed.code, TxValidationCode::Valid);
    let get = ProposalBuilder::new("mychannel", "nodeasset")
        .args(["asset:get", "k1"])
        .build(&user)
        .unwrap();
    let r = client.endorse(&get).await.unwrap().response.unwrap();
    assert_eq!((r.status, r.payload), (200, b"v1".to_vec()));
    node.node.unwrap().stop().await.unwrap();
}

#[tokio::test]
async fn an_external_builder_runs_wasm_chaincode_deployed_through_the_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let builder = dir.path().join("builder");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cchost"))
        .arg("builder")
        .arg("install")
        .arg(&builder)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let node = TestNode::start_with_options(
        "",
        StartOptions {
            external_builders: vec![cchost::runtime::external::ExternalBuilder {
                name: "wasm".into(),
                path: builder,
                propagate_environment: Vec::new(),
            }],
            ..StartOptions::default()
        },
    )
    .await;
    let client = node.with_basic().await;
    assert_eq!(query(&client, &["ReadAsset", "asset6"]).await.0, 200);
    // The package was built by the builder (its build directory kept for the launch).
    let builds: Vec<_> = std::fs::read_dir(node.dir.join("externalbuilder/builds"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert!(builds[0].starts_with("basic_1.0"), "{builds:?}");
    node.node.unwrap().stop().await.unwrap();
}

#[tokio::test]
async fn a_definitions_wasm_fuel_and_memory_limits_hold_from_its_commit_and_a_later_definition_lifts_them()
 {
    let node = TestNode::start().await;
    let client = node.client().await;
    let spec = cchost::client::DefinitionSpec {
        name: "basic".into(),
        version: "1.0".into(),
        sequence: 0,
        init_required: false,
        validation_parameter: Vec::new(),
        wasm_fuel: 20_000,
        wasm_memory: 0,
    };
    client
        .deploy_definition(asset_transfer_package("basic_1.0"), spec.clone(), WAIT)
        .await
        .unwrap();
    let r = client
        .endorse(&proposal(&client, "basic", &["InitLedger"]))
        .await
        .unwrap()
        .response
        .unwrap();
    assert_eq!(r.status, 500);
    assert!(
        r.message.ends_with("chaincode ran out of fuel"),
        "{}",
        r.message
    );
    let definition = cchost_proto::lifecycle::QueryChaincodeDefinitionResult::decode(
        client
            .lifecycle(
                "QueryChaincodeDefinition",
                &cchost_proto::lifecycle::QueryChaincodeDefinitionArgs {
                    name: "basic".into(),
                },
                true,
            )
            .await
            .unwrap()
            .1
            .response
            .unwrap()
            .payload
            .as_slice(),
    )
    .unwrap();
    assert_eq!(
        (
            definition.sequence,
            definition.cchost_wasm_fuel,
            definition.cchost_wasm_memory
        ),
        (1, 20_000, 0)
    );
    // Sequence 2: fuel enough, one wasm page of memory (the module asks for more).
    client
        .deploy_definition(
            asset_transfer_package("basic_1.0"),
            cchost::client::DefinitionSpec {
                wasm_fuel: 0,
                wasm_memory: 65_536,
                ..spec.clone()
            },
            WAIT,
        )
        .await
        .unwrap();
    let r = client
        .endorse(&proposal(&client, "basic", &["InitLedger"]))
        .await
        .unwrap()
        .response
        .unwrap();
    assert_eq!(
        (r.status, r.message.as_str()),
        (
            500,
            "error in simulation: transaction returned with failure: chaincode cannot be instantiated: memory minimum size of 18 pages exceeds memory limits"
        )
    );
    // Sequence 3 without limits: the node's again.
    client
        .deploy_definition(
            asset_transfer_package("basic_1.0"),
            cchost::client::DefinitionSpec {
                wasm_fuel: 0,
                ..spec
            },
            WAIT,
        )
        .await
        .unwrap();
    invoke(&client, &["InitLedger"]).await;
    assert_eq!(query(&client, &["ReadAsset", "asset1"]).await.0, 200);
}

#[tokio::test]
async fn stopping_the_node_ends_waiting_deliver_streams_with_service_unavailable() {
    let mut node = TestNode::start().await;
    let client = node.client().await;
    let user = client.user().unwrap();
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move {
            deliver_all(
                &client,
                seek(
                    &user,
                    "mychannel",
                    seek_position::Type::NextCommit(SeekNextCommit {}),
                    seek_position::Type::Specified(SeekSpecified { number: u64::MAX }),
                    false,
                ),
                false,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.node.take().unwrap().stop().await.unwrap();
    assert_eq!(
        waiting.await.unwrap(),
        [Seen::Status(Status::ServiceUnavailable)]
    );
}

/// A Gateway client of the node.
async fn gateway(
    client: &Client,
) -> cchost_proto::gateway::gateway_client::GatewayClient<tonic::transport::Channel> {
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", client.profile.address))
            .unwrap()
            .connect()
            .await
            .unwrap();
    cchost_proto::gateway::gateway_client::GatewayClient::new(channel)
}

#[tokio::test]
async fn the_gateway_evaluates_endorses_submits_and_reports_commit_status_with_fabrics_errors() {
    use cchost_proto::gateway::{
        CommitStatusRequest, EndorseRequest, ErrorDetail, EvaluateRequest,
        SignedCommitStatusRequest, SubmitRequest,
    };
    let node = TestNode::start().await;
    let client = node.with_basic().await;
    let user = client.user().unwrap();
    let mut gateway = gateway(&client).await;

    let read = proposal(&client, "basic", &["ReadAsset", "asset1"]);
    let evaluated = gateway
        .evaluate(EvaluateRequest {
            transaction_id: read.txid.clone(),
            channel_id: "mychannel".into(),
            proposed_transaction: Some(read.signed_proposal.clone()),
            target_organizations: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(evaluated.status, 200);
    assert_eq!(
        String::from_utf8(evaluated.payload).unwrap(),
        r#"{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5,"docType":"asset"}"#
    );

    // A chaincode error: Unknown, with the endorser's detail.
    let missing = proposal(
        &client,
        "basic",
        &["UpdateAsset", "nope", "blue", "5", "Tom", "100"],
    );
    let status = gateway
        .evaluate(EvaluateRequest {
            proposed_transaction: Some(missing.signed_proposal.clone()),
            ..EvaluateRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert_eq!(
        status.message(),
        "evaluate call to endorser returned error: chaincode response 500, The asset nope does not exist"
    );
    assert_eq!(
        cchost::gateway::error_details(&status),
        [ErrorDetail {
            address: client.profile.address.clone(),
            msp_id: "Org1MSP".into(),
            message: "chaincode response 500, The asset nope does not exist".into(),
        }]
    );
    let status = gateway
        .endorse(EndorseRequest {
            proposed_transaction: Some(missing.signed_proposal),
            ..EndorseRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::Aborted,
            "failed to endorse transaction, see attached details for more info"
        )
    );
    let undefined = proposal(&client, "nope", &["x"]);
    let status = gateway
        .endorse(EndorseRequest {
            proposed_transaction: Some(undefined.signed_proposal),
            ..EndorseRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::FailedPrecondition,
            "no combination of peers can be derived which satisfy the endorsement policy: No metadata was found for chaincode nope in channel mychannel"
        )
    );

    // Endorse, sign, submit, wait.
    let transfer = proposal(&client, "basic", &["TransferAsset", "asset1", "Max"]);
    let mut prepared = gateway
        .endorse(EndorseRequest {
            transaction_id: transfer.txid.clone(),
            channel_id: "mychannel".into(),
            proposed_transaction: Some(transfer.signed_proposal.clone()),
            endorsing_organizations: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .prepared_transaction
        .unwrap();
    assert!(prepared.signature.is_empty());
    let status = gateway
        .submit(SubmitRequest {
            prepared_transaction: Some(prepared.clone()),
            ..SubmitRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::InvalidArgument,
            "prepared transaction must be signed"
        )
    );
    prepared.signature = user.sign(&prepared.payload);
    gateway
        .submit(SubmitRequest {
            transaction_id: transfer.txid.clone(),
            channel_id: "mychannel".into(),
            prepared_transaction: Some(prepared),
        })
        .await
        .unwrap();
    let request = CommitStatusRequest {
        transaction_id: transfer.txid.clone(),
        channel_id: "mychannel".into(),
        identity: user.creator(),
    }
    .encode_to_vec();
    let committed = gateway
        .commit_status(SignedCommitStatusRequest {
            signature: user.sign(&request),
            request: request.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(committed.result, TxValidationCode::Valid as i32);
    assert_eq!(committed.block_number, node.node().ledger.height() - 1);
    // A signature by another key.
    let status = gateway
        .commit_status(SignedCommitStatusRequest {
            signature: DevIdentity::generate("Org1MSP", "Org1", "x")
                .unwrap()
                .sign(&request),
            request,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn gateway_chaincode_events_stream_the_events_of_valid_transactions_per_block() {
    let node = TestNode::start().await;
    let client = node.client().await;
    let package = guest_asset_package("events_1.0");
    client
        .deploy(package, "events", "1.0", false, Vec::new(), WAIT)
        .await
        .unwrap();
    let user = client.user().unwrap();
    let start = node.node().ledger.height();
    let mut stream = gateway(&client)
        .await
        .chaincode_events(events_request(&user, "events", start))
        .await
        .unwrap()
        .into_inner();
    let mut txids = Vec::new();
    for i in 0..2 {
        let built = proposal(&client, "events", &["asset:put", &format!("k{i}"), "v"]);
        let response = client.endorse(&built).await.unwrap();
        client
            .submit(&built, &[response], &user, Some(WAIT))
            .await
            .unwrap();
        txids.push((built.txid, start + i));
    }
    for (txid, block) in txids {
        let response = stream.message().await.unwrap().unwrap();
        assert_eq!(response.block_number, block);
        let events: Vec<(String, String, String)> = response
            .events
            .into_iter()
            .map(|e| (e.chaincode_id, e.tx_id, e.event_name))
            .collect();
        assert_eq!(events, [("events".to_owned(), txid, "Put".to_owned())]);
    }
}

/// A gRPC codec of plain bytes: requests no valid client would send.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

struct RawCoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCoder;
    type Decoder = RawCoder;

    fn encoder(&mut self) -> RawCoder {
        RawCoder
    }

    fn decoder(&mut self) -> RawCoder {
        RawCoder
    }
}

impl tonic::codec::Encoder for RawCoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

/// Sends `message` as-is to gRPC method `path`.
async fn raw_call(
    channel: tonic::transport::Channel,
    path: &'static str,
    message: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(usize::MAX);
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(message),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

async fn connect(client: &Client) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{}", client.profile.address))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn evaluate_payload(
    gateway: &mut cchost_proto::gateway::gateway_client::GatewayClient<tonic::transport::Channel>,
    built: BuiltProposal,
) -> Result<String, tonic::Status> {
    let response = gateway
        .evaluate(cchost_proto::gateway::EvaluateRequest {
            transaction_id: built.txid,
            channel_id: "mychannel".into(),
            proposed_transaction: Some(built.signed_proposal),
            target_organizations: Vec::new(),
        })
        .await?
        .into_inner();
    Ok(String::from_utf8(response.result.unwrap().payload).unwrap())
}

#[tokio::test]
async fn malformed_misdirected_and_oversized_client_requests_get_fabrics_codes_and_the_node_keeps_serving()
 {
    use cchost_proto::gateway::{EndorseRequest, EvaluateRequest};
    use tonic::Code;
    let node = TestNode::start().await;
    let client = node.with_basic().await;
    let channel = connect(&client).await;
    let mut gateway = gateway(&client).await;
    let benign = async |gateway: &mut cchost_proto::gateway::gateway_client::GatewayClient<
        tonic::transport::Channel,
    >| {
        let read = proposal(&client, "basic", &["AssetExists", "asset1"]);
        assert_eq!(evaluate_payload(gateway, read).await.unwrap(), "true");
    };

    // Bytes that are no protobuf message at all, to each client service.
    let garbage = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
    for path in [
        "/gateway.Gateway/Evaluate",
        "/gateway.Gateway/Endorse",
        "/gateway.Gateway/Submit",
        "/gateway.Gateway/CommitStatus",
        "/protos.Endorser/ProcessProposal",
    ] {
        let status = raw_call(channel.clone(), path, garbage.clone())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Internal, "{path}: {status:?}");
        assert!(
            status
                .message()
                .starts_with("failed to decode Protobuf message"),
            "{path}: {status:?}"
        );
        benign(&mut gateway).await;
    }

    // Well-formed requests around malformed proposals.
    let unpack = |signed: Option<cchost_proto::protos::SignedProposal>| EvaluateRequest {
        transaction_id: String::new(),
        channel_id: "mychannel".into(),
        proposed_transaction: signed,
        target_organizations: Vec::new(),
    };
    let status = gateway.evaluate(unpack(None)).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::InvalidArgument,
            "failed to unpack transaction proposal: a signed proposal is required"
        )
    );
    let status = gateway
        .evaluate(unpack(Some(cchost_proto::protos::SignedProposal {
            proposal_bytes: garbage.clone(),
            signature: Vec::new(),
        })))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("failed to unpack transaction proposal: malformed proposal: proposal: failed to decode Protobuf message"),
        "{status:?}"
    );

    // A channel the node does not have.
    let elsewhere = ProposalBuilder::new("otherchannel", "basic")
        .args(["ReadAsset", "asset1"])
        .build(&client.user().unwrap())
        .unwrap();
    let no_channel = (
        Code::Unavailable,
        "failed to get config for channel [otherchannel]: could not get last config for channel otherchannel",
    );
    let status = gateway
        .evaluate(unpack(Some(elsewhere.signed_proposal.clone())))
        .await
        .unwrap_err();
    assert_eq!((status.code(), status.message()), no_channel);
    let status = gateway
        .endorse(EndorseRequest {
            transaction_id: elsewhere.txid.clone(),
            channel_id: "otherchannel".into(),
            proposed_transaction: Some(elsewhere.signed_proposal.clone()),
            endorsing_organizations: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!((status.code(), status.message()), no_channel);

    // Organisations the node is not part of.
    let read = proposal(&client, "basic", &["ReadAsset", "asset1"]);
    let status = gateway
        .evaluate(EvaluateRequest {
            target_organizations: vec!["Org2MSP".into()],
            ..unpack(Some(read.signed_proposal.clone()))
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::FailedPrecondition,
            "no peers available to evaluate chaincode basic in channel mychannel"
        )
    );
    let status = gateway
        .endorse(EndorseRequest {
            transaction_id: read.txid.clone(),
            channel_id: "mychannel".into(),
            proposed_transaction: Some(read.signed_proposal.clone()),
            endorsing_organizations: vec!["Org1MSP".into(), "Org2MSP".into(), "Org3MSP".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            Code::Unavailable,
            "failed to find any endorsing peers for org(s): Org2MSP, Org3MSP"
        )
    );

    // Larger than peer.maxRecvMsgSize (100 MiB): refused before it is decoded.
    let huge = ProposalBuilder::new("mychannel", "basic")
        .args(vec![b"CreateAsset".to_vec(), vec![b'x'; 101 << 20]])
        .build(&client.user().unwrap())
        .unwrap();
    let status = gateway
        .evaluate(unpack(Some(huge.signed_proposal)))
        .await
        .unwrap_err();
    // tonic's code for it; grpc-go (Fabric) answers RESOURCE_EXHAUSTED.
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().ends_with("the limit is: 104857600 bytes"),
        "{status:?}"
    );
    benign(&mut gateway).await;
    assert_eq!(
        evaluate_payload(&mut gateway, read).await.unwrap(),
        r#"{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5,"docType":"asset"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaincode_events_subscribers_that_never_read_do_not_stall_commits_or_other_clients() {
    let node = TestNode::start().await;
    let client = node.with_basic().await;
    let package = guest_asset_package("events_1.0");
    client
        .deploy(package, "events", "1.0", false, Vec::new(), WAIT)
        .await
        .unwrap();
    let user = client.user().unwrap();
    let start = node.node().ledger.height();
    let signed = events_request(&user, "events", start);
    // Three subscribers on their own connection, never reading.
    let mut stalled =
        cchost_proto::gateway::gateway_client::GatewayClient::new(connect(&client).await);
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(
            stalled
                .chaincode_events(signed.clone())
                .await
                .unwrap()
                .into_inner(),
        );
    }
    // 40 transactions whose events (32 KiB each) overflow every buffer on the way.
    let value = "v".repeat(32 << 10);
    let mut gateway = gateway(&client).await;
    for i in 0..40 {
        let built = proposal(&client, "events", &["asset:put", &format!("k{i}"), &value]);
        let response = client.endorse(&built).await.unwrap();
        let committed = client
            .submit(&built, &[response], &user, Some(WAIT))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(committed.code, TxValidationCode::Valid);
        // Other clients are answered meanwhile.
        let read = proposal(&client, "basic", &["AssetExists", "asset1"]);
        assert_eq!(evaluate_payload(&mut gateway, read).await.unwrap(), "true");
    }
    // A subscriber that reads sees all 40 events, in order.
    let mut stream = gateway.chaincode_events(signed).await.unwrap().into_inner();
    let mut keys = Vec::new();
    while keys.len() < 40 {
        let response = stream.message().await.unwrap().unwrap();
        for event in response.events {
            let payload: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
            keys.push(payload["key"].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    assert_eq!(keys, expected);
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_evaluate_streams_are_each_answered_with_their_own_result() {
    let node = TestNode::start().await;
    let client = node.with_basic().await;
    // Four connections, 250 concurrent streams on each.
    let mut connections = Vec::new();
    for _ in 0..4 {
        connections.push(cchost_proto::gateway::gateway_client::GatewayClient::new(
            connect(&client).await,
        ));
    }
    let owners = ["Tomoko", "Brad", "Jin Soo", "Max", "Adriana", "Michel"];
    let started = std::time::Instant::now();
    let calls = (0..1000).map(|i| {
        let mut gateway = connections[i % 4].clone();
        let id = format!("asset{}", i % 6 + 1);
        let built = proposal(&client, "basic", &["ReadAsset", &id]);
        async move { (i, evaluate_payload(&mut gateway, built).await) }
    });
    let results = futures_util::future::join_all(calls).await;
    let elapsed = started.elapsed();
    for (i, result) in results {
        let asset: serde_json::Value = serde_json::from_str(&result.unwrap()).unwrap();
        assert_eq!(asset["ID"], format!("asset{}", i % 6 + 1));
        assert_eq!(asset["Owner"], owners[i % 6]);
    }
    eprintln!("1,000 concurrent evaluates answered in {elapsed:?}");
    // And the node serves the next client.
    let mut gateway = gateway(&client).await;
    let read = proposal(&client, "basic", &["AssetExists", "asset6"]);
    assert_eq!(evaluate_payload(&mut gateway, read).await.unwrap(), "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_gateways_endorsement_timeout_evaluate_and_endorse_answer_deadline_exceeded_and_others_are_served()
 {
    use cchost_proto::gateway::{EndorseRequest, EvaluateRequest};
    let node = TestNode::start_with("[peer.gateway]\nendorsementTimeout = \"1s\"\n").await;
    let client = node.with_basic().await;
    let package = guest_asset_package("spinner_1.0");
    // Fuel for far longer than the timeout.
    let spec = cchost::client::DefinitionSpec {
        name: "spinner".into(),
        version: "1.0".into(),
        sequence: 0,
        init_required: false,
        validation_parameter: Vec::new(),
        wasm_fuel: 1 << 50,
        wasm_memory: 0,
    };
    client.deploy_definition(package, spec, WAIT).await.unwrap();
    let mut gateway = gateway(&client).await;
    let spin = proposal(&client, "spinner", &["asset:spin"]);
    let evaluating = {
        let mut gateway = gateway.clone();
        let spin = spin.clone();
        tokio::spawn(async move {
            gateway
                .evaluate(EvaluateRequest {
                    transaction_id: spin.txid,
                    channel_id: "mychannel".into(),
                    proposed_transaction: Some(spin.signed_proposal),
                    target_organizations: Vec::new(),
                })
                .await
        })
    };
    let spin = proposal(&client, "spinner", &["asset:spin"]);
    let endorsing = {
        let mut gateway = gateway.clone();
        tokio::spawn(async move {
            gateway
                .endorse(EndorseRequest {
                    transaction_id: spin.txid,
                    channel_id: "mychannel".into(),
                    proposed_transaction: Some(spin.signed_proposal),
                    endorsing_organizations: Vec::new(),
                })
                .await
        })
    };
    // While both spin, another chaincode is answered.
    let read = proposal(&client, "basic", &["AssetExists", "asset1"]);
    assert_eq!(evaluate_payload(&mut gateway, read).await.unwrap(), "true");
    let status = evaluating.await.unwrap().unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::DeadlineExceeded, "evaluate timeout expired")
    );
    let status = endorsing.await.unwrap().unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::DeadlineExceeded,
            "endorsement timeout expired while collecting first endorsement"
        )
    );
    let read = proposal(&client, "basic", &["AssetExists", "asset2"]);
    assert_eq!(evaluate_payload(&mut gateway, read).await.unwrap(), "true");
}

/// Seen while looking for the soak campaign's memory growth: a CommitStatus for a txid
/// nobody submits (as `scripts/campaign clients` sends) left its waiter in the ledger's
/// map forever. Waiters nobody listens to are dropped whenever the map reaches 1,024.
#[tokio::test]
async fn commit_waiters_nobody_listens_to_any_more_are_dropped() {
    let node = TestNode::start().await;
    let ledger = &node.node().ledger;
    for i in 0..3000 {
        // Waited for, then given up.
        drop(ledger.wait_for(&format!("never-{i}")).unwrap());
    }
    // Pruned as the 1,025th and the 2,049th were added: 3,000 - 2 × 1,024 remain.
    assert_eq!(ledger.pending_waiters(), 952);
    // One still listened to survives the prunings: after 72 more the map reaches 1,024
    // and keeps only it; 1,024 more, and again; then 2 more.
    let kept = ledger.wait_for("kept").unwrap();
    for i in 3000..4096 {
        drop(ledger.wait_for(&format!("never-{i}")).unwrap());
    }
    assert_eq!(ledger.pending_waiters(), 3);
    drop(kept);
}
