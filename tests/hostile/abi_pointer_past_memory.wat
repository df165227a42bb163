;; get_state with a key pointer near the end of the address space.
;; Expect: "chaincode broke the cchost ABI: a pointer and length reach past the end of memory".
(module
  (import "cchost" "get_state" (func $get_state (param i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (drop (call $get_state (i32.const 0) (i32.const 0) (i32.const 0xFFFFFFF0) (i32.const 100)))
    (i32.const 0))
)
