;; A data segment at 0xFFFF0000 in a one-page memory.
;; Expect: instantiation fails with "chaincode trapped: out of bounds memory access".
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (data (i32.const 0xFFFF0000) "x")
  (func (export "cchost_invoke") (param i32) (result i32) (i32.const 0))
)
