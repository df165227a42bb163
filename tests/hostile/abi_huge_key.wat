;; get_state with a 10 MB key.
;; Expect: "chaincode broke the cchost ABI: a length of 10000000 bytes exceeds the limit of 65536".
(module
  (import "cchost" "get_state" (func $get_state (param i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (drop (memory.grow (i32.const 160)))
    (drop (call $get_state (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 10000000)))
    (i32.const 0))
)
