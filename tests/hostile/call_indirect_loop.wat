;; An endless loop of indirect calls through the table.
;; Expect: "chaincode ran out of fuel".
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (type $nop (func))
  (table 1 funcref)
  (elem (i32.const 0) $nothing)
  (func $nothing)
  (func (export "cchost_invoke") (param i32) (result i32)
    (loop $l (call_indirect (type $nop) (i32.const 0)) (br $l))
    (i32.const 0))
)
