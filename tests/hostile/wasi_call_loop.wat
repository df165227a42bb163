;; 4000 calls of WASI clock_time_get: its instructions alone cost some 40 000 fuel, but
;; every WASI call costs HOST_CALL_FUEL (10 000) too, 40 million in all.
;; Expect: "chaincode ran out of fuel" (with 20 million fuel).
(module
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (local $i i32)
    (loop $l
      (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 4000))))
    (i32.const 0))
)
