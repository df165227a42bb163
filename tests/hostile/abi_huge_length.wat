;; put_state with a value length of u32::MAX.
;; Expect: "chaincode broke the cchost ABI: a length of 4294967295 bytes exceeds the limit of 16777216".
(module
  (import "cchost" "put_state" (func $put_state (param i32 i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (data (i32.const 0) "k")
  (func (export "cchost_invoke") (param i32) (result i32)
    (drop (call $put_state (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1)
      (i32.const 0) (i32.const 0xFFFFFFFF)))
    (i32.const 0))
)
