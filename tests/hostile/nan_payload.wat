;; A NaN with a payload, made by arithmetic and returned as the response payload.
;; Expect: the canonical NaN 0x7fc00000 on every peer (NaN canonicalisation).
(module
  (import "cchost" "set_response" (func $set_response (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (data (i32.const 0) "\08\c8\01\1a\04")
  (func (export "cchost_invoke") (param i32) (result i32)
    (f32.store (i32.const 5)
      (f32.add (f32.reinterpret_i32 (i32.const 0x7fa00001)) (f32.const 1)))
    (call $set_response (i32.const 0) (i32.const 9)))
)
