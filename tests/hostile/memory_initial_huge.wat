;; A memory of 65,536 initial pages (4 GiB).
;; Expect: refused at install (over the per-instance memory limit).
(module
  (memory (export "memory") 65536)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32) (i32.const 0))
)
