;; 32 calls of WASI random_get, 1 MiB each: a few hundred instructions and 32 calls, but
;; 32 MiB of random bytes made for the guest, one unit of fuel per byte.
;; Expect: "chaincode ran out of fuel" (with 20 million fuel).
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 17)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (local $i i32)
    (loop $l
      (drop (call $random_get (i32.const 0) (i32.const 1048576)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 32))))
    (i32.const 0))
)
