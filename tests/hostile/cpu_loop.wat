;; An endless loop in the invoke export.
;; Expect: "chaincode ran out of fuel", the same on every peer (fuel counts instructions).
(module
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (func (export "cchost_invoke") (param i32) (result i32)
    (loop $spin (br $spin))
    (i32.const 0))
)
