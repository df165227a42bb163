//! The raw imports: the crate's only `extern "C"` block. Names and signatures are
//! `cchost_abi::imports`; `(p, l)` pairs are pointers and lengths into this module's
//! memory.

#[link(wasm_import_module = "cchost")]
unsafe extern "C" {
    pub fn input_read(p: *mut u8, l: u32) -> i32;
    pub fn result_read(p: *mut u8, l: u32) -> i32;
    pub fn result_len() -> i64;
    pub fn set_response(p: *const u8, l: u32) -> i32;
    pub fn set_event(name: *const u8, name_len: u32, payload: *const u8, payload_len: u32) -> i32;
    pub fn tx_context(field: u32) -> i64;
    pub fn log(level: u32, p: *const u8, l: u32);
    pub fn abort(p: *const u8, l: u32);

    pub fn get_state(c: *const u8, cl: u32, k: *const u8, kl: u32) -> i64;
    pub fn put_state(c: *const u8, cl: u32, k: *const u8, kl: u32, v: *const u8, vl: u32) -> i64;
    pub fn del_state(c: *const u8, cl: u32, k: *const u8, kl: u32) -> i64;
    pub fn get_state_metadata(c: *const u8, cl: u32, k: *const u8, kl: u32) -> i64;
    #[allow(clippy::too_many_arguments)]
    pub fn put_state_metadata(
        c: *const u8,
        cl: u32,
        k: *const u8,
        kl: u32,
        m: *const u8,
        ml: u32,
        v: *const u8,
        vl: u32,
    ) -> i64;
    pub fn get_private_data_hash(c: *const u8, cl: u32, k: *const u8, kl: u32) -> i64;
    pub fn purge_private_data(c: *const u8, cl: u32, k: *const u8, kl: u32) -> i64;
    #[allow(clippy::too_many_arguments)]
    pub fn get_state_by_range(
        c: *const u8,
        cl: u32,
        s: *const u8,
        sl: u32,
        e: *const u8,
        el: u32,
        page_size: i32,
        b: *const u8,
        bl: u32,
    ) -> i64;
    pub fn query_state_next(id: *const u8, idl: u32) -> i64;
    pub fn query_state_close(id: *const u8, idl: u32) -> i64;
    pub fn get_history_for_key(k: *const u8, kl: u32) -> i64;
    pub fn get_query_result(
        c: *const u8,
        cl: u32,
        q: *const u8,
        ql: u32,
        page_size: i32,
        b: *const u8,
        bl: u32,
    ) -> i64;
    pub fn invoke_chaincode(t: *const u8, tl: u32, i: *const u8, il: u32) -> i64;
}
