;; Two memories.
;; Expect: refused at install (multi-memory is not supported).
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (memory $second 1)
  (func (export "cchost_invoke") (param i32) (result i32) (i32.const 0))
)
