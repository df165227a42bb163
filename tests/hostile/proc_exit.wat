;; WASI proc_exit(3).
;; Expect: "chaincode exited with code 3"; the host process does not exit.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (call $proc_exit (i32.const 3))
    (i32.const 0))
)
