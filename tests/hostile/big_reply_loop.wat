;; 40 get_state calls of a 1 MiB value, none of them read: 400 000 fuel for the calls, but
;; each reply is paid per byte as it arrives, 40 MiB in all.
;; Expect: "chaincode ran out of fuel" (with 20 million fuel).
(module
  (import "cchost" "get_state" (func $get_state (param i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "big")
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (local $i i32)
    (loop $l
      (drop (call $get_state (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 3)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 40))))
    (i32.const 0))
)
