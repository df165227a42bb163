;; A start function that never returns: it would run at instantiation.
;; Expect: refused at install (cchost runs guest code only inside its entry points).
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func $spin (loop $l (br $l)))
  (start $spin)
  (func (export "cchost_invoke") (param i32) (result i32) (i32.const 0))
)
