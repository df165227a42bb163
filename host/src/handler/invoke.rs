//! INVOKE_CHAINCODE: one chaincode calling another within the same transaction.

use std::sync::{Arc, Mutex};

use cchost_proto::protos::ChaincodeSpec;
use prost::Message;

use super::{RequestError, RequestResult, TxContext, TxParams};
use crate::ids::TxKey;
use crate::ledger::TxSimulator;
use crate::support::{Inner, InvokeError, execute_on};

/// Splits Fabric's target forms `name`, `name/channel` and `name:version/channel` (the
/// version is ignored) into name and channel; no channel means the caller's.
fn parse_target<'a>(target: &'a str, caller_channel: &'a str) -> (&'a str, &'a str) {
    let (name, channel) = match target.split_once('/') {
        Some((name, channel)) if !channel.is_empty() => (name, channel),
        Some((name, _)) => (name, caller_channel),
        None => (target, caller_channel),
    };
    let name = name.split_once(':').map_or(name, |(name, _version)| name);
    (name, channel)
}

/// Runs the callee with the caller's txid and proposal; a callee defined but not running
/// is launched first. On the same channel it shares the caller's simulator (its reads
/// and writes join the transaction); on another channel it gets a fresh one whose writes
/// are discarded, as in Fabric, and that channel must have a ledger here. The reply
/// carries the callee's COMPLETED (or ERROR) message.
pub(super) async fn invoke_chaincode(
    support: &Arc<Inner>,
    ctx: &TxContext,
    payload: &[u8],
) -> RequestResult {
    let spec = ChaincodeSpec::decode(payload)?;
    let target = spec.chaincode_id.map(|id| id.name).unwrap_or_default();
    let (name, channel) = parse_target(&target, &ctx.key.channel);
    if name.is_empty() {
        return Err(RequestError::new("the chaincode to invoke has no name"));
    }
    let simulator = if channel == ctx.key.channel {
        Arc::clone(&ctx.simulator)
    } else {
        let snapshot = support.ledger.snapshot(channel)?;
        Arc::new(Mutex::new(
            TxSimulator::new(snapshot, ctx.key.txid.clone())
                .with_max_bytes(support.config.max_rwset_bytes),
        ))
    };
    if support.config.lifecycle_reads {
        // Fabric's `CheckInvocation` looks the callee up through the transaction's
        // simulator: its definition's Sequence read joins the transaction.
        crate::lifecycle::read_sequence(
            &mut simulator.lock().unwrap_or_else(|e| e.into_inner()),
            name,
        )?;
    }
    let execute_failed = |e: InvokeError| RequestError::new(format!("execute failed: {e}"));
    let handler = support
        .handler_for(channel, name)
        .await
        .map_err(execute_failed)?;
    let params = TxParams {
        key: TxKey::new(channel, ctx.key.txid.clone()),
        namespace: name.to_owned(),
        simulator,
        proposal: ctx.proposal.clone(),
        is_init: false,
        nested: true,
        input: spec.input.unwrap_or_default(),
    };
    let reply = execute_on(support, &handler, params)
        .await
        .map_err(execute_failed)?;
    Ok(reply.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::parse_target;

    #[test]
    fn targets_parse_like_fabric() {
        assert_eq!(parse_target("other", "ch"), ("other", "ch"));
        assert_eq!(parse_target("other/ch2", "ch"), ("other", "ch2"));
        assert_eq!(parse_target("other:1.0/ch2", "ch"), ("other", "ch2"));
        assert_eq!(parse_target("other/", "ch"), ("other", "ch"));
    }
}
