//! The wasm32 [`Backend`]: every method is one `cchost` import, and the entry glue.

use cchost_abi::{LogLevel, Status, TxField};
use cchost_proto::protos::{
    ChaincodeInput, ChaincodeMessage, QueryResponse, Response, StateMetadataResult,
    chaincode_message,
};
use prost::Message;

use crate::backend::Backend;
use crate::{Error, ResponseExt, Stub, sys};

/// Copies the pending result of `len` bytes.
fn read_pending(len: usize) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; len];
    // SAFETY: `buf` is `len` writable bytes of this module's memory.
    let status = unsafe { sys::result_read(buf.as_mut_ptr(), len as u32) };
    match Status::from_raw(i64::from(status)) {
        Some(Status::Ok) => Ok(buf),
        _ => Err(Error::new(format!(
            "result_read failed with status {status}"
        ))),
    }
}

/// The return of a byte-producing import: a length to copy, `NotFound` (no bytes), or
/// `Failed` with the peer's error text pending.
fn call(raw: i64) -> Result<Vec<u8>, Error> {
    if let Ok(len) = usize::try_from(raw) {
        return read_pending(len);
    }
    match Status::from_raw(raw) {
        Some(Status::NotFound) => Ok(Vec::new()),
        Some(Status::Failed) => {
            // SAFETY: result_len takes no pointers.
            let len = usize::try_from(unsafe { sys::result_len() }).unwrap_or(0);
            let text = read_pending(len)?;
            Err(Error::new(String::from_utf8_lossy(&text).into_owned()))
        }
        _ => Err(Error::new(format!("unexpected status {raw} from the host"))),
    }
}

fn ptr(bytes: &[u8]) -> (*const u8, u32) {
    (bytes.as_ptr(), bytes.len() as u32)
}

fn decode<M: Message + Default>(bytes: Result<Vec<u8>, Error>) -> Result<M, Error> {
    Ok(M::decode(bytes?.as_slice())?)
}

/// The peer, reached through the `cchost` imports.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Host;

impl Backend for Host {
    fn get_state(&self, collection: &str, key: &str) -> Result<Vec<u8>, Error> {
        let ((c, cl), (k, kl)) = (ptr(collection.as_bytes()), ptr(key.as_bytes()));
        // SAFETY: both regions are live borrowed slices.
        call(unsafe { sys::get_state(c, cl, k, kl) })
    }

    fn put_state(&self, collection: &str, key: &str, value: &[u8]) -> Result<(), Error> {
        let ((c, cl), (k, kl), (v, vl)) =
            (ptr(collection.as_bytes()), ptr(key.as_bytes()), ptr(value));
        // SAFETY: all regions are live borrowed slices.
        call(unsafe { sys::put_state(c, cl, k, kl, v, vl) }).map(drop)
    }

    fn del_state(&self, collection: &str, key: &str) -> Result<(), Error> {
        let ((c, cl), (k, kl)) = (ptr(collection.as_bytes()), ptr(key.as_bytes()));
        // SAFETY: both regions are live borrowed slices.
        call(unsafe { sys::del_state(c, cl, k, kl) }).map(drop)
    }

    fn get_private_data_hash(&self, collection: &str, key: &str) -> Result<Vec<u8>, Error> {
        let ((c, cl), (k, kl)) = (ptr(collection.as_bytes()), ptr(key.as_bytes()));
        // SAFETY: both regions are live borrowed slices.
        call(unsafe { sys::get_private_data_hash(c, cl, k, kl) })
    }

    fn purge_private_data(&self, collection: &str, key: &str) -> Result<(), Error> {
        let ((c, cl), (k, kl)) = (ptr(collection.as_bytes()), ptr(key.as_bytes()));
        // SAFETY: both regions are live borrowed slices.
        call(unsafe { sys::purge_private_data(c, cl, k, kl) }).map(drop)
    }

    fn get_state_metadata(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<StateMetadataResult, Error> {
        let ((c, cl), (k, kl)) = (ptr(collection.as_bytes()), ptr(key.as_bytes()));
        // SAFETY: both regions are live borrowed slices.
        decode(call(unsafe { sys::get_state_metadata(c, cl, k, kl) }))
    }

    fn put_state_metadata(
        &self,
        collection: &str,
        key: &str,
        metakey: &str,
        value: &[u8],
    ) -> Result<(), Error> {
        let ((c, cl), (k, kl), (m, ml), (v, vl)) = (
            ptr(collection.as_bytes()),
            ptr(key.as_bytes()),
            ptr(metakey.as_bytes()),
            ptr(value),
        );
        // SAFETY: all regions are live borrowed slices.
        call(unsafe { sys::put_state_metadata(c, cl, k, kl, m, ml, v, vl) }).map(drop)
    }

    fn get_state_by_range(
        &self,
        collection: &str,
        start: &str,
        end: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<QueryResponse, Error> {
        let ((c, cl), (s, sl), (e, el), (b, bl)) = (
            ptr(collection.as_bytes()),
            ptr(start.as_bytes()),
            ptr(end.as_bytes()),
            ptr(bookmark.as_bytes()),
        );
        // SAFETY: all regions are live borrowed slices.
        decode(call(unsafe {
            sys::get_state_by_range(c, cl, s, sl, e, el, page_size, b, bl)
        }))
    }

    fn get_query_result(
        &self,
        collection: &str,
        query: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<QueryResponse, Error> {
        let ((c, cl), (q, ql), (b, bl)) = (
            ptr(collection.as_bytes()),
            ptr(query.as_bytes()),
            ptr(bookmark.as_bytes()),
        );
        // SAFETY: all regions are live borrowed slices.
        decode(call(unsafe {
            sys::get_query_result(c, cl, q, ql, page_size, b, bl)
        }))
    }

    fn query_state_next(&self, id: &str) -> Result<QueryResponse, Error> {
        let (p, l) = ptr(id.as_bytes());
        // SAFETY: the region is a live borrowed slice.
        decode(call(unsafe { sys::query_state_next(p, l) }))
    }

    fn query_state_close(&self, id: &str) {
        let (p, l) = ptr(id.as_bytes());
        // SAFETY: the region is a live borrowed slice. Fabric answers CLOSE for any id.
        let _ = call(unsafe { sys::query_state_close(p, l) });
    }

    fn get_history_for_key(&self, key: &str) -> Result<QueryResponse, Error> {
        let (k, kl) = ptr(key.as_bytes());
        // SAFETY: the region is a live borrowed slice.
        decode(call(unsafe { sys::get_history_for_key(k, kl) }))
    }

    fn set_event(&self, name: &str, payload: &[u8]) -> Result<(), Error> {
        let ((n, nl), (p, pl)) = (ptr(name.as_bytes()), ptr(payload));
        // SAFETY: both regions are live borrowed slices.
        let status = unsafe { sys::set_event(n, nl, p, pl) };
        match Status::from_raw(i64::from(status)) {
            Some(Status::Ok) => Ok(()),
            _ => Err(Error::new(format!("set_event failed with status {status}"))),
        }
    }

    fn invoke_chaincode(&self, target: &str, input: &ChaincodeInput) -> Result<Response, Error> {
        let input = input.encode_to_vec();
        let ((t, tl), (i, il)) = (ptr(target.as_bytes()), ptr(&input));
        // SAFETY: both regions are live borrowed slices.
        let message: ChaincodeMessage =
            decode(call(unsafe { sys::invoke_chaincode(t, tl, i, il) }))?;
        if message.r#type() == chaincode_message::Type::Completed {
            Ok(Response::decode(message.payload.as_slice())?)
        } else {
            Err(Error::new(
                String::from_utf8_lossy(&message.payload).into_owned(),
            ))
        }
    }

    fn tx_field(&self, field: TxField) -> Vec<u8> {
        // SAFETY: tx_context takes no pointers.
        call(unsafe { sys::tx_context(field as u32) }).unwrap_or_default()
    }

    fn log(&self, level: LogLevel, message: &str) {
        log(level, message);
    }
}

/// Logs through the host, which tags the line with chaincode and txid.
pub(crate) fn log(level: LogLevel, message: &str) {
    let (p, l) = ptr(message.as_bytes());
    // SAFETY: the region is a live borrowed slice.
    unsafe { sys::log(level as u32, p, l) };
}

/// Ends the invocation with `message` as a status-500 response (the panic hook's exit).
pub(crate) fn abort(message: &str) -> ! {
    let (p, l) = ptr(message.as_bytes());
    // SAFETY: the region is a live borrowed slice; the host traps and never returns.
    unsafe { sys::abort(p, l) };
    // A host that returned anyway: end here.
    std::process::abort()
}

/// Installs the panic hook (once): a panic ends the invocation with its message as the
/// response's error message, instead of an opaque `unreachable` trap.
fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = info.payload_as_str().unwrap_or("Box<dyn Any>");
            if let Some(at) = info.location() {
                log(
                    LogLevel::Error,
                    &format!(
                        "panicked at {}:{}:{}: {message}",
                        at.file(),
                        at.line(),
                        at.column()
                    ),
                );
            }
            abort(message)
        }));
    });
}

/// Entry glue behind [`chaincode!`](crate::chaincode) and
/// [`contracts!`](crate::contracts): reads the input, runs `f`, sets the response.
#[doc(hidden)]
pub fn __entry(input_len: u32, f: impl FnOnce(Stub) -> Response) -> i32 {
    install_panic_hook();
    let mut input = vec![0u8; input_len as usize];
    // SAFETY: `input` is `input_len` writable bytes.
    let status = unsafe { sys::input_read(input.as_mut_ptr(), input_len) };
    if status != Status::Ok as i32 {
        return status;
    }
    let response = match ChaincodeInput::decode(input.as_slice()) {
        Ok(input) => f(Stub::new(input, std::rc::Rc::new(Host))),
        Err(e) => Response::error(format!("malformed ChaincodeInput: {e}")),
    };
    let bytes = response.encode_to_vec();
    // SAFETY: `bytes` is a live borrowed slice.
    unsafe { sys::set_response(bytes.as_ptr(), bytes.len() as u32) }
}
