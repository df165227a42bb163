;; WASI clock_time_get asked to write its 8-byte result 4 bytes before the end of memory
;; (found by `scripts/campaign modules`, seed 686, as a raw wasmtime-wasi text).
;; Expect: "chaincode broke the WASI ABI: Pointer out of bounds: Region { start: 65532, len: 8 }".
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 65532)))
    (i32.const 0))
)
