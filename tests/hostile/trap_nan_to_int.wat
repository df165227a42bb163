;; Truncating NaN to an integer. Expect: "chaincode trapped: invalid conversion to integer".
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (i32.trunc_f32_s (f32.div (f32.const 0) (f32.const 0))))
)
