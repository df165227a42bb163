;; call_indirect of a function with another signature.
;; Expect: "chaincode trapped: indirect call type mismatch".
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (type $t (func (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $f64)
  (func $f64 (result f64) (f64.const 1))
  (func (export "cchost_invoke") (param i32) (result i32)
    (call_indirect (type $t) (i32.const 0)))
)
