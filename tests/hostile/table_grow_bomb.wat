;; table.grow by 10,000,000 elements.
;; Expect: the grow returns -1 (deterministic), and the chaincode answers "grow refused".
(module
  (import "cchost" "set_response" (func $set_response (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (table 1 funcref)
  (data (i32.const 0) "\08\c8\01\1a\0c\67\72\6f\77\20\72\65\66\75\73\65\64")
  (func (export "cchost_invoke") (param i32) (result i32)
    (if (i32.ne (table.grow (ref.null func) (i32.const 10000000)) (i32.const -1))
      (then unreachable))
    (call $set_response (i32.const 0) (i32.const 17)))
)
