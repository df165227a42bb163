;; A table of 10,000,000 elements.
;; Expect: refused at install (over the per-instance table limit).
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (table 10000000 funcref)
  (func (export "cchost_invoke") (param i32) (result i32) (i32.const 0))
)
