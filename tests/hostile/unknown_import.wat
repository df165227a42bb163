;; An import the host does not provide.
;; Expect: refused at install, naming `env::now`.
(module
  (import "env" "now" (func $now (result i64)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32) (drop (call $now)) (i32.const 0))
)
