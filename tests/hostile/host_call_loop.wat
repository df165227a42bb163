;; An endless loop of get_state calls: each host call costs fuel on top of the guest's
;; instructions, so the loop ends after at most fuel / HOST_CALL_FUEL calls.
;; Expect: "chaincode ran out of fuel".
(module
  (import "cchost" "get_state" (func $get_state (param i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (data (i32.const 0) "k")
  (func (export "cchost_invoke") (param i32) (result i32)
    (loop $l
      (drop (call $get_state (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1)))
      (br $l))
    (i32.const 0))
)
