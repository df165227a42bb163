;; Built for a future ABI.
;; Expect: refused at install, naming both versions.
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v2"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32) (i32.const 0))
)
