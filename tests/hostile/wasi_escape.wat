;; Escapes through WASI: open a file, send on a socket, flood stdout with 1 MiB.
;; Expect: the calls fail with errno values instead of reaching the host (EBADF: no
;; preopened directories, no sockets; stdout keeps 64 KiB), and the chaincode answers with
;; the three errnos as its payload: [8, 8, errno of the flood].
(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $sock_send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "cchost" "set_response" (func $set_response (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cchost_abi_v1"))
  (func (export "cchost_init") (param i32) (result i32) (i32.const 0))
  ;; Response: status 200, payload of 3 bytes at offset 5.
  (data (i32.const 0) "\08\c8\01\1a\03")
  (data (i32.const 16) "secret.txt")
  (func (export "cchost_invoke") (param i32) (result i32)
    (local $i i32) (local $errno i32)
    ;; path_open(fd 3, flags 0, "secret.txt", oflags 0, rights, rights, fdflags 0, &fd)
    (i32.store8 (i32.const 5)
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 10)
        (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 64)))
    ;; sock_send(fd 3, no buffers, flags 0, &sent)
    (i32.store8 (i32.const 6)
      (call $sock_send (i32.const 3) (i32.const 128) (i32.const 0) (i32.const 0) (i32.const 64)))
    ;; fd_write(stdout, one iovec of 32 KiB at 0x1000) 32 times; keep the last errno
    (i32.store (i32.const 128) (i32.const 0x1000))
    (i32.store (i32.const 132) (i32.const 0x8000))
    (loop $flood
      (local.set $errno
        (call $fd_write (i32.const 1) (i32.const 128) (i32.const 1) (i32.const 64)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $flood (i32.lt_u (local.get $i) (i32.const 32))))
    (i32.store8 (i32.const 7) (local.get $errno))
    (call $set_response (i32.const 0) (i32.const 8)))
)
