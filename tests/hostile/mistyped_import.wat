;; get_state imported with the wrong signature.
;; Expect: refused at install, showing both signatures.
(module
  (import "cchost" "get_state" (func $get_state (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32) (call $get_state (i32.const 0)))
)
