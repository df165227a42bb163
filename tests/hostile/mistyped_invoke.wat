;; cchost_invoke with the wrong signature.
;; Expect: refused at install.
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i64) (result i32) (i32.const 0))
)
