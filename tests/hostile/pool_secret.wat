;; Reads what an earlier instance in the same pool slot left behind, then leaves a secret
;; itself: grows memory to two pages and writes at the end of each.
;; Expect: every run answers "clean" (memory back at one page, zeroed): nothing crosses
;; instances (the CVE-2022-39393 pattern).
(module
  (import "cchost" "set_response" (func $set_response (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  (data (i32.const 0) "\08\c8\01\1a\05\63\6c\65\61\6e")
  (data (i32.const 16) "\08\c8\01\1a\04\6c\65\61\6b")
  (func (export "cchost_invoke") (param i32) (result i32)
    (if (i32.or
          (i32.ne (memory.size) (i32.const 1))
          (i64.ne (i64.load (i32.const 65528)) (i64.const 0)))
      (then (return (call $set_response (i32.const 16) (i32.const 9)))))
    (drop (memory.grow (i32.const 1)))
    (i64.store (i32.const 65528) (i64.const 0x5345435245543131))
    (i64.store (i32.const 131064) (i64.const 0x5345435245543232))
    (call $set_response (i32.const 0) (i32.const 10)))
)
