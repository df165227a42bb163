;; INT_MIN / -1. Expect: "chaincode trapped: integer overflow".
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (i32.div_s (i32.const 0x80000000) (i32.const -1)))
)
