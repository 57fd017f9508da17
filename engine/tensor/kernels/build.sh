#!/bin/sh
# Builds kernels.wasm from kernels.c with Debian's clang and lld (apt-get install clang-14 lld-14 wabt):
# WebAssembly SIMD, no libc, tfjs-backend-wasm's memory imported. The module must not touch a stack, globals
# or data segments of its own (that memory is tfjs's heap), so the build fails if the output has any.
# With clang-16 (apt-get install clang-16 lld-16) it also builds kernels-relaxed.wasm, the same source with
# relaxed SIMD's fused multiply-add in the matrix products (wasm-kernels.ts uses it where V8 accepts it).
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-$(command -v clang-14 || command -v clang)}
build() { # output, clang, extra flags
  out=$1 cc=$2
  shift 2
  "$cc" --target=wasm32 -O3 -msimd128 "$@" -nostdlib -ffreestanding -fno-builtin -Wall -Werror \
    -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all -o "$out.tmp" kernels.c
  if command -v wasm2wat >/dev/null; then
    wasm2wat --enable-relaxed-simd "$out.tmp" > "$out.wat"
    if grep -Eq 'global\.(get|set)|\(data' "$out.wat"; then
      echo "$out uses a stack, globals or data: it must not (it runs in tfjs's heap)" >&2
      rm -f "$out.tmp" "$out.wat"
      exit 1
    fi
    rm -f "$out.wat"
  else
    echo "wasm2wat (Debian package wabt) not found: the no-stack check was skipped" >&2
  fi
  mv "$out.tmp" "$out"
  chmod 644 "$out"
  ls -l "$out"
}
build kernels.wasm "$CLANG"
if command -v clang-16 >/dev/null; then
  build kernels-relaxed.wasm clang-16 -mrelaxed-simd
else
  echo "clang-16 not found: kernels-relaxed.wasm was not rebuilt" >&2
fi
