;; memory.grow to 4 GiB, then a million grows of one page.
;; Expect: every grow past the memory limit returns -1 (deterministic), and the chaincode
;; answers "grow refused".
(module
  (import "cchost" "set_response" (func $set_response (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (data (i32.const 0) "\08\c8\01\1a\0c\67\72\6f\77\20\72\65\66\75\73\65\64")
  (func (export "cchost_invoke") (param i32) (result i32)
    (local $i i32)
    (if (i32.ne (memory.grow (i32.const 65535)) (i32.const -1)) (then unreachable))
    (block $refused
      (loop $grow
        (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $grow (i32.lt_u (local.get $i) (i32.const 1000000))))
      unreachable)
    (call $set_response (i32.const 0) (i32.const 17)))
)
