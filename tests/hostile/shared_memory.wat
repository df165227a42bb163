;; A shared memory (threads).
;; Expect: refused at install.
(module
  (memory (export "memory") 1 1 shared)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32) (i32.const 0))
)
