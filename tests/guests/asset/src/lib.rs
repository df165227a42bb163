//! Test chaincode for cchost's wasm runtime, built by `tests/build.rs` for
//! `wasm32-wasip1`. Its functions mirror `examples/node-asset` so the read/write sets of
//! the two can be compared; `entropy` reads the clock and random numbers (determinism);
//! `panic`, `spin`, `rewrite` and `flood` misbehave on purpose; `reads` and `contexts`
//! are for benchmarks.
#![cfg(target_arch = "wasm32")]
// `asset:panic` panics on purpose: the host must survive it.
#![allow(clippy::panic)]

use std::hash::BuildHasher;

use cchost_sdk::{Response, ResponseExt, Stub};

fn run(stub: &Stub) -> Result<Vec<u8>, cchost_sdk::Error> {
    let arg = |i| stub.string_arg(i);
    match stub.function().as_str() {
        "asset:put" => {
            stub.put_state(&arg(1), arg(2).as_bytes())?;
            let event = format!(r#"{{"key":"{}","value":"{}"}}"#, arg(1), arg(2));
            stub.set_event("Put", event.as_bytes())?;
            Ok(b"ok".to_vec())
        }
        "asset:get" => stub.get_state(&arg(1)),
        "asset:touch" => {
            let value = stub.get_state(&arg(1))?;
            let mut next = value.clone();
            next.push(b'+');
            stub.put_state(&arg(1), &next)?;
            Ok(value)
        }
        "asset:del" => {
            stub.del_state(&arg(1))?;
            Ok(b"ok".to_vec())
        }
        "asset:range" => {
            let mut out = Vec::new();
            for kv in stub.get_state_by_range(&arg(1), &arg(2))? {
                let kv = kv?;
                out.push(format!(
                    "\"{}={}\"",
                    kv.key,
                    String::from_utf8_lossy(&kv.value)
                ));
            }
            Ok(format!("[{}]", out.join(",")).into_bytes())
        }
        "asset:history" => {
            let mut out = Vec::new();
            for m in stub.get_history_for_key(&arg(1))? {
                let m = m?;
                out.push(format!(
                    r#"{{"txId":"{}","value":"{}","isDelete":{}}}"#,
                    m.tx_id,
                    String::from_utf8_lossy(&m.value),
                    m.is_delete
                ));
            }
            Ok(format!("[{}]", out.join(",")).into_bytes())
        }
        "asset:invoke" => {
            // Every argument after the target goes to the callee, so calls can nest.
            let args: Vec<&[u8]> = stub.args().iter().skip(2).map(Vec::as_slice).collect();
            let response = stub.invoke_chaincode(&arg(1), &args, "")?;
            Ok(format!(
                r#"{{"status":{},"message":"{}","payload":"{}"}}"#,
                response.status,
                response.message,
                String::from_utf8_lossy(&response.payload)
            )
            .into_bytes())
        }
        "asset:whoami" => {
            let binding: String = stub.binding().iter().map(|b| format!("{b:02x}")).collect();
            Ok(format!(
                r#"{{"txid":"{}","channel":"{}","binding":"{binding}"}}"#,
                stub.tx_id(),
                stub.channel_id()
            )
            .into_bytes())
        }
        "asset:entropy" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let random = std::collections::hash_map::RandomState::new().hash_one("cchost");
            stub.put_state("entropy", format!("{now}:{random}").as_bytes())?;
            Ok(format!("{now}:{random}").into_bytes())
        }
        // Benchmarks: N reads of one key through the handler, or N transaction-context
        // calls that never leave the host function.
        "asset:reads" => {
            let n: u32 = arg(2).parse().unwrap_or(0);
            for _ in 0..n {
                stub.get_state(&arg(1))?;
            }
            Ok(n.to_string().into_bytes())
        }
        "asset:contexts" => {
            let n: u32 = arg(1).parse().unwrap_or(0);
            let mut total = 0;
            for _ in 0..n {
                total += stub.tx_id().len();
            }
            Ok(total.to_string().into_bytes())
        }
        // Hostile on purpose: N writes of a B-byte value to one key, and 16 MiB values
        // to new keys until the host refuses one.
        "asset:rewrite" => {
            let (n, bytes): (u32, usize) =
                (arg(1).parse().unwrap_or(0), arg(2).parse().unwrap_or(0));
            let value = vec![b'x'; bytes];
            for _ in 0..n {
                stub.put_state("rewritten", &value)?;
            }
            Ok(n.to_string().into_bytes())
        }
        "asset:flood" => {
            let value = vec![b'f'; 16 * 1024 * 1024];
            for i in 0.. {
                stub.put_state(&format!("flood{i}"), &value)?;
            }
            Ok(Vec::new())
        }
        // Private data: the host refuses collections (MockStub must answer the same).
        "asset:private" => {
            stub.put_private_data(&arg(1), &arg(2), arg(3).as_bytes())?;
            Ok(b"ok".to_vec())
        }
        "asset:panic" => panic!("asset:panic was called"),
        // A trap: the instance ends at an `unreachable` instruction.
        "asset:trap" => std::process::abort(),
        // Memory until the instance's limit refuses more; the allocator then aborts.
        "asset:hog" => {
            let mut held: Vec<Vec<u8>> = Vec::new();
            loop {
                held.push(std::hint::black_box(vec![1u8; 1 << 20]));
            }
        }
        "asset:spin" => {
            // A host call first, so a test can tell the spinning has begun.
            stub.get_state("spin")?;
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        other => Err(cchost_sdk::Error(format!("unknown function {other}"))),
    }
}

fn invoke(stub: &Stub) -> Response {
    match run(stub) {
        Ok(payload) => Response::ok(payload),
        Err(e) => Response::error(e.to_string()),
    }
}

cchost_sdk::chaincode!(init = invoke, invoke = invoke);
