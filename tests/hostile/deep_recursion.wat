;; Unbounded recursion.
;; Expect: "chaincode trapped: call stack exhausted".
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func $down (param i32) (result i32)
    (call $down (i32.add (local.get 0) (i32.const 1))))
  (func (export "cchost_invoke") (param i32) (result i32)
    (call $down (i32.const 0)))
)
