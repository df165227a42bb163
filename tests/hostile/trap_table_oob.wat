;; call_indirect past the end of the table.
;; Expect: "chaincode trapped: undefined element: out of bounds table access".
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (type $t (func (result i32)))
  (table 1 funcref)
  (func (export "cchost_invoke") (param i32) (result i32)
    (call_indirect (type $t) (i32.const 5)))
)
