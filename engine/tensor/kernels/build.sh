#!/bin/sh
# Builds kernels.wasm from kernels.c with Debian's clang and lld (apt-get install clang-14 lld-14 wabt):
# WebAssembly SIMD, no libc, tfjs-backend-wasm's memory imported. The module must not touch a stack, globals
# or data segments of its own (that memory is tfjs's heap), so the build fails if the output has any.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-$(command -v clang-14 || command -v clang)}
"$CLANG" --target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -fno-builtin -Wall -Werror \
  -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all -o kernels.wasm.tmp kernels.c
if command -v wasm2wat >/dev/null; then
  if wasm2wat kernels.wasm.tmp | grep -Eq 'global\.(get|set)|\(data'; then
    echo "kernels.wasm uses a stack, globals or data: it must not (it runs in tfjs's heap)" >&2
    rm -f kernels.wasm.tmp
    exit 1
  fi
else
  echo "wasm2wat (Debian package wabt) not found: the no-stack check was skipped" >&2
fi
mv kernels.wasm.tmp kernels.wasm
chmod 644 kernels.wasm
ls -l kernels.wasm
