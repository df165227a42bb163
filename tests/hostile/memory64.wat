;; A 64-bit memory.
;; Expect: refused at install (memory64 is not supported).
(module
  (memory (export "memory") i64 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32) (i32.const 0))
)
