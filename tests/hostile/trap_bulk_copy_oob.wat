;; memory.copy past the end of memory. Expect: "chaincode trapped: out of bounds memory access".
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (memory.copy (i32.const 0) (i32.const 65000) (i32.const 1000))
    (i32.const 0))
)
