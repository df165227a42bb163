;; WASI proc_exit(200): past the largest status WASI allows (125)
;; (found by `scripts/campaign modules`, seed 208, as a raw wasmtime-wasi text).
;; Expect: "chaincode broke the WASI ABI: exit with invalid exit status outside of [0..126)".
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (call $proc_exit (i32.const 200))
    (i32.const 0))
)
