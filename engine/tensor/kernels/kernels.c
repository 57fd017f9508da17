// Kernels of our own for TensorFlow.js's wasm backend (engine/tensor/wasm-kernels.ts registers them). They run
// in tfjs-backend-wasm's own linear memory, which this module imports: the arguments are byte offsets of
// tensors in that heap, so nothing is copied in or out. Nothing here may use a stack, globals or static data
// (the heap belongs to tfjs's allocator): build.sh checks the built module has none. Scratch space comes in
// as an argument, allocated through tfjs's malloc.
//
// WebAssembly SIMD has 4-lane float vectors and (without relaxed SIMD) no fused multiply-add, so the matrix
// product's inner kernel keeps a 4 × 8 block of the output in 8 vector accumulators and adds one rank-1
// update per step of the shared dimension: 4 broadcast loads of A, 2 vector loads of B, 8 multiplies and
// 8 adds. Both operands are first packed into the order that kernel reads (which is also where a transposed
// operand is transposed), in blocks that stay in cache.
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))

static inline int min_int(int a, int b) { return a < b ? a : b; }

static inline v128_t splat(float v) { return wasm_f32x4_splat(v); }

static inline float hsum(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) +
         wasm_f32x4_extract_lane(v, 3);
}

static inline float hmax(v128_t v) {
  float a = wasm_f32x4_extract_lane(v, 0), b = wasm_f32x4_extract_lane(v, 1);
  float c = wasm_f32x4_extract_lane(v, 2), d = wasm_f32x4_extract_lane(v, 3);
  a = a > b ? a : b;
  c = c > d ? c : d;
  return a > c ? a : c;
}

// Block sizes of the product: a KC × NC block of B (packed: at most 512 KiB) and an MC × KC block of A (64 KiB)
// stay in cache while the 4 × 8 kernel runs over them.
#define MR 4
#define NR 8
#define KC 256
#define MC 64
#define NC 512
// Up to this many rows of A, a product with a transposed B takes dot products of rows (gemm_rows_dot) instead.
#define ROWS_DOT 16

// 4 rows of 4 floats (row stride `from`) written as 4 columns (row stride `to`): a 4 × 4 transpose in registers.
static inline void transpose4x4(const float* x, int from, float* y, int to) {
  v128_t r0 = wasm_v128_load(x), r1 = wasm_v128_load(x + from), r2 = wasm_v128_load(x + 2 * from), r3 = wasm_v128_load(x + 3 * from);
  v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
  v128_t t2 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
  wasm_v128_store(y, wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5));
  wasm_v128_store(y + to, wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7));
  wasm_v128_store(y + 2 * to, wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5));
  wasm_v128_store(y + 3 * to, wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7));
}

// Rows [0, mc) × shared [0, kc) of A, A(i, kk) = a[i * ai + kk * ak], packed in panels of 4 rows:
// ap[(i / 4) * kc * 4 + kk * 4 + i % 4], rows past mc zero.
static void pack_a(const float* a, float* ap, int mc, int kc, int ai, int ak) {
  for (int i = 0; i < mc; i += MR, ap += kc * MR) {
    int h = min_int(MR, mc - i);
    const float* src = a + i * ai;
    if (h == MR && ai == 1) {  // A stored transposed: 4 rows are 4 adjacent floats
      for (int kk = 0; kk < kc; kk++) wasm_v128_store(ap + kk * MR, wasm_v128_load(src + kk * ak));
    } else if (h == MR && ak == 1) {
      int kk = 0;
      for (; kk + 4 <= kc; kk += 4) transpose4x4(src + kk, ai, ap + kk * MR, MR);
      for (; kk < kc; kk++)
        for (int r = 0; r < MR; r++) ap[kk * MR + r] = src[r * ai + kk];
    } else {
      for (int kk = 0; kk < kc; kk++)
        for (int r = 0; r < MR; r++) ap[kk * MR + r] = r < h ? src[r * ai + kk * ak] : 0.0f;
    }
  }
}

// Shared [0, kc) × columns [0, nc) of B, B(kk, j) = b[kk * bk + j * bj], packed in panels of 8 columns:
// bp[(j / 8) * kc * 8 + kk * 8 + j % 8], columns past nc zero.
static void pack_b(const float* b, float* bp, int kc, int nc, int bk, int bj) {
  for (int j = 0; j < nc; j += NR, bp += kc * NR) {
    int w = min_int(NR, nc - j);
    const float* src = b + j * bj;
    if (w == NR && bj == 1) {
      for (int kk = 0; kk < kc; kk++) {
        wasm_v128_store(bp + kk * NR, wasm_v128_load(src + kk * bk));
        wasm_v128_store(bp + kk * NR + 4, wasm_v128_load(src + kk * bk + 4));
      }
    } else if (w == NR && bk == 1) {  // B stored transposed: a column is contiguous
      int kk = 0;
      for (; kk + 4 <= kc; kk += 4) {
        transpose4x4(src + kk, bj, bp + kk * NR, NR);
        transpose4x4(src + 4 * bj + kk, bj, bp + kk * NR + 4, NR);
      }
      for (; kk < kc; kk++)
        for (int jj = 0; jj < NR; jj++) bp[kk * NR + jj] = src[jj * bj + kk];
    } else {
      for (int kk = 0; kk < kc; kk++)
        for (int jj = 0; jj < NR; jj++) bp[kk * NR + jj] = jj < w ? src[kk * bk + jj * bj] : 0.0f;
    }
  }
}

// The first w (1..8) columns of a row of the 4 × 8 block, added to what is there when `add`.
static inline void store_row(float* c, v128_t lo, v128_t hi, int w, int add) {
  if (w == NR) {
    if (add) {
      lo = wasm_f32x4_add(lo, wasm_v128_load(c));
      hi = wasm_f32x4_add(hi, wasm_v128_load(c + 4));
    }
    wasm_v128_store(c, lo);
    wasm_v128_store(c + 4, hi);
    return;
  }
  for (int j = 0; j < w; j++) {
    float v = j < 4 ? wasm_f32x4_extract_lane(lo, 0) : wasm_f32x4_extract_lane(hi, 0);
    c[j] = add ? c[j] + v : v;
    // Shift the next lane down (lane indices of extract_lane must be constants).
    if (j < 4) lo = wasm_i32x4_shuffle(lo, lo, 1, 2, 3, 0);
    else hi = wasm_i32x4_shuffle(hi, hi, 1, 2, 3, 0);
  }
}

#ifdef __wasm_relaxed_simd__
// kernels-relaxed.wasm: relaxed SIMD's multiply-add, one fused instruction on a CPU with FMA (rounded once).
typedef float f32x4 __attribute__((__vector_size__(16), __aligned__(16)));
#define FMA(acc, x, y) acc = (v128_t)__builtin_wasm_relaxed_madd_f32x4((f32x4)(x), (f32x4)(y), (f32x4)(acc))
#else
#define FMA(acc, x, y) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(x, y))
#endif

// C[0:h, 0:w] (row stride ldc) = (or +=, with `add`) a 4-row panel of A times an 8-column panel of B over kc.
static inline void kernel_4x8(int kc, const float* ap, const float* bp, float* c, int ldc, int h, int w, int add) {
  v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (int kk = 0; kk < kc; kk++, ap += MR, bp += NR) {
    v128_t b0 = wasm_v128_load(bp), b1 = wasm_v128_load(bp + 4);
    v128_t x0 = wasm_v128_load32_splat(ap), x1 = wasm_v128_load32_splat(ap + 1);
    v128_t x2 = wasm_v128_load32_splat(ap + 2), x3 = wasm_v128_load32_splat(ap + 3);
    FMA(c00, x0, b0);
    FMA(c01, x0, b1);
    FMA(c10, x1, b0);
    FMA(c11, x1, b1);
    FMA(c20, x2, b0);
    FMA(c21, x2, b1);
    FMA(c30, x3, b0);
    FMA(c31, x3, b1);
  }
  store_row(c, c00, c01, w, add);
  if (h > 1) store_row(c + ldc, c10, c11, w, add);
  if (h > 2) store_row(c + 2 * ldc, c20, c21, w, add);
  if (h > 3) store_row(c + 3 * ldc, c30, c31, w, add);
}

// C (row stride ldc) = A · B for one matrix (C += A · B with `add`), A(i, kk) = a[i * ai + kk * ak],
// B(kk, j) = b[kk * bk + j * bj], blocked for the cache and packed (scratch: MC · KC + KC · NC floats).
static void gemm(const float* a, const float* b, float* c, int m, int k, int n, int ai, int ak, int bk, int bj, int ldc,
                 int add, float* scratch) {
  float* ap = scratch;
  float* bp = scratch + MC * KC;
  if (k == 0) {
    if (!add)
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[i * ldc + j] = 0.0f;
    return;
  }
  for (int j0 = 0; j0 < n; j0 += NC) {
    int nc = min_int(NC, n - j0);
    for (int p0 = 0; p0 < k; p0 += KC) {
      int kc = min_int(KC, k - p0);
      pack_b(b + p0 * bk + j0 * bj, bp, kc, nc, bk, bj);
      for (int i0 = 0; i0 < m; i0 += MC) {
        int mc = min_int(MC, m - i0);
        pack_a(a + i0 * ai + p0 * ak, ap, mc, kc, ai, ak);
        // A 4-row panel against every 8-column panel of B: the panel's rows of C are written whole, one
        // after the other, instead of 32 bytes of each of MC rows at a time (2-3% faster on cold outputs).
        for (int i = 0; i < mc; i += MR) {
          for (int j = 0; j < nc; j += NR) {
            kernel_4x8(kc, ap + i * kc, bp + j * kc, c + (i0 + i) * ldc + j0 + j, ldc, min_int(MR, mc - i),
                       min_int(NR, nc - j), add || p0 > 0);
          }
        }
      }
    }
  }
}

// Sum of each of 4 vectors, as one vector: [Σ a, Σ b, Σ c, Σ d].
static inline v128_t hsum4(v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t ab0 = wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), ab1 = wasm_i32x4_shuffle(a, b, 2, 6, 3, 7);
  v128_t cd0 = wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), cd1 = wasm_i32x4_shuffle(c, d, 2, 6, 3, 7);
  v128_t ab = wasm_f32x4_add(ab0, ab1), cd = wasm_f32x4_add(cd0, cd1);  // [a01 b01 a23 b23] halves
  return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

// Dot product of two rows of k floats.
static inline float dot_row(const float* x, const float* y, int k) {
  v128_t acc = splat(0.0f);
  int kk = 0;
  for (; kk + 4 <= k; kk += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(x + kk), wasm_v128_load(y + kk)));
  float s = hsum(acc);
  for (; kk < k; kk++) s += x[kk] * y[kk];
  return s;
}

// C [m, n] = A [m, k] · Bᵀ with B stored [n, k], for few rows of A (decoding: one row per sequence): every output
// is a dot product of two contiguous rows, so nothing is packed. 2 rows of A × 4 rows of B at a time.
static void gemm_rows_dot(const float* a, const float* b, float* c, int m, int k, int n) {
  int k4 = k & ~3;
  int i = 0;
  for (; i + 2 <= m; i += 2) {
    const float* a0 = a + i * k;
    const float* a1 = a0 + k;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
      const float* b0 = b + j * k;
      const float* b1 = b0 + k;
      const float* b2 = b1 + k;
      const float* b3 = b2 + k;
      v128_t s00 = splat(0.0f), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
      for (int kk = 0; kk < k4; kk += 4) {
        v128_t x0 = wasm_v128_load(a0 + kk), x1 = wasm_v128_load(a1 + kk);
        v128_t y0 = wasm_v128_load(b0 + kk), y1 = wasm_v128_load(b1 + kk), y2 = wasm_v128_load(b2 + kk), y3 = wasm_v128_load(b3 + kk);
        FMA(s00, x0, y0);
        FMA(s01, x0, y1);
        FMA(s02, x0, y2);
        FMA(s03, x0, y3);
        FMA(s10, x1, y0);
        FMA(s11, x1, y1);
        FMA(s12, x1, y2);
        FMA(s13, x1, y3);
      }
      v128_t r0 = hsum4(s00, s01, s02, s03), r1 = hsum4(s10, s11, s12, s13);
      if (k4 < k) {
        for (int kk = k4; kk < k; kk++) {
          v128_t y = wasm_f32x4_make(b0[kk], b1[kk], b2[kk], b3[kk]);
          r0 = wasm_f32x4_add(r0, wasm_f32x4_mul(wasm_f32x4_splat(a0[kk]), y));
          r1 = wasm_f32x4_add(r1, wasm_f32x4_mul(wasm_f32x4_splat(a1[kk]), y));
        }
      }
      wasm_v128_store(c + i * n + j, r0);
      wasm_v128_store(c + (i + 1) * n + j, r1);
    }
    for (; j < n; j++) {
      c[i * n + j] = dot_row(a0, b + j * k, k);
      c[(i + 1) * n + j] = dot_row(a1, b + j * k, k);
    }
  }
  for (; i < m; i++)
    for (int j = 0; j < n; j++) c[i * n + j] = dot_row(a + i * k, b + j * k, k);
}

// Batched matrix product C[t] = op(A[t]) · op(B[t]), C [batch, m, n] contiguous; A [batch, m, k] or, with ta,
// [batch, k, m]; B [batch, k, n] or, with tb, [batch, n, k]. sa / sb: floats between batch items (0 broadcasts).
// scratch: MATMUL_SCRATCH floats.
EXPORT(matmul)
void matmul(const float* a, const float* b, float* c, int batch, int m, int k, int n, int ta, int tb, int sa, int sb,
            float* scratch) {
  int ai = ta ? 1 : k, ak = ta ? m : 1;
  int bk = tb ? 1 : n, bj = tb ? k : 1;
  // Few rows against a [n, k] matrix: packing B would cost more than the product.
  int rows_dot = !ta && tb && m <= ROWS_DOT;
  for (int t = 0; t < batch; t++) {
    if (rows_dot) gemm_rows_dot(a + t * sa, b + t * sb, c + t * m * n, m, k, n);
    else gemm(a + t * sa, b + t * sb, c + t * m * n, m, k, n, ai, ak, bk, bj, n, 0, scratch);
  }
}

EXPORT(matmul_scratch)
int matmul_scratch(void) { return MC * KC + KC * NC; }

#define TILE 32

// y [rows_c, rows_b] = x [rows_b, rows_c]ᵀ for one matrix, in 32 × 32 tiles of 4 × 4 register transposes.
static void transpose_matrix(const int* x, int* y, int nb, int nc) {
  for (int b0 = 0; b0 < nb; b0 += TILE) {
    int b1 = min_int(nb, b0 + TILE);
    for (int c0 = 0; c0 < nc; c0 += TILE) {
      int c1 = min_int(nc, c0 + TILE);
      int b = b0;
      for (; b + 4 <= b1; b += 4) {
        int c = c0;
        for (; c + 4 <= c1; c += 4) transpose4x4((const float*)(x + b * nc + c), nc, (float*)(y + c * nb + b), nb);
        for (; c < c1; c++)
          for (int i = 0; i < 4; i++) y[c * nb + b + i] = x[(b + i) * nc + c];
      }
      for (; b < b1; b++)
        for (int c = c0; c < c1; c++) y[c * nb + b] = x[b * nc + c];
    }
  }
}

// y [na, nc, nb, nd] = x [na, nb, nc, nd] with axes 1 and 2 swapped: every transpose that exchanges two adjacent
// groups of axes (a matrix transpose, swapping the last two axes of a batch, [batch, time, heads, dim] to
// [batch, heads, time, dim]). 4-byte elements of any type.
EXPORT(swap_axes)
void swap_axes(const int* x, int* y, int na, int nb, int nc, int nd) {
  int block = nb * nc * nd;
  for (int a = 0; a < na; a++) {
    const int* xa = x + a * block;
    int* ya = y + a * block;
    if (nd == 1) {
      transpose_matrix(xa, ya, nb, nc);
      continue;
    }
    for (int b = 0; b < nb; b++) {
      for (int c = 0; c < nc; c++) {
        const int* src = xa + (b * nc + c) * nd;
        int* dst = ya + (c * nb + b) * nd;
        int d = 0;
        for (; d + 4 <= nd; d += 4) wasm_v128_store(dst + d, wasm_v128_load(src + d));
        for (; d < nd; d++) dst[d] = src[d];
      }
    }
  }
}

// Rotary embedding of x [na, nh, nt, nd] (nd = 2 · half) by angles cos, sin [na, nt, nd] shared by the nh heads:
// y = x · cos + rotate_half(x) · sin · sign, rotate_half(x) = [−x2, x1]. sign −1 rotates back (the gradient).
EXPORT(rope)
void rope(const float* x, const float* cos, const float* sin, float* y, int na, int nh, int nt, int nd, float sign) {
  int half = nd / 2;
  v128_t s = wasm_f32x4_splat(sign);
  for (int a = 0; a < na; a++) {
    for (int h = 0; h < nh; h++) {
      for (int t = 0; t < nt; t++) {
        int row = ((a * nh + h) * nt + t) * nd;
        int angle = (a * nt + t) * nd;
        const float* x1 = x + row;
        const float* x2 = x1 + half;
        const float* c = cos + angle;
        const float* sn = sin + angle;
        float* y1 = y + row;
        float* y2 = y1 + half;
        int d = 0;
        for (; d + 4 <= half; d += 4) {
          v128_t u = wasm_v128_load(x1 + d), v = wasm_v128_load(x2 + d);
          v128_t s1 = wasm_f32x4_mul(wasm_v128_load(sn + d), s), s2 = wasm_f32x4_mul(wasm_v128_load(sn + half + d), s);
          wasm_v128_store(y1 + d, wasm_f32x4_sub(wasm_f32x4_mul(u, wasm_v128_load(c + d)), wasm_f32x4_mul(v, s1)));
          wasm_v128_store(y2 + d, wasm_f32x4_add(wasm_f32x4_mul(v, wasm_v128_load(c + half + d)), wasm_f32x4_mul(u, s2)));
        }
        for (; d < half; d++) {
          y1[d] = x1[d] * c[d] - x2[d] * sn[d] * sign;
          y2[d] = x2[d] * c[half + d] + x1[d] * sn[half + d] * sign;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Elementwise and row kernels: each replaces a chain of tfjs ops (one pass over memory instead of one per op).


// e^x for 4 lanes: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor polynomial to r^7 (relative error below
// 1e-7 in float), times 2^n built in the exponent bits. Lanes below −87.3 give 0, above 88 give e^88.
static inline v128_t exp4(v128_t x) {
  v128_t under = wasm_f32x4_lt(x, splat(-87.3f));
  x = wasm_f32x4_min(x, splat(88.0f));
  x = wasm_f32x4_max(x, splat(-87.3f));
  v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, splat(-2.12194440e-4f)));
  v128_t p = splat(1.0f / 5040);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat(1.0f / 720));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat(1.0f / 120));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat(1.0f / 24));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat(1.0f / 6));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat(0.5f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat(1.0f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), splat(1.0f));
  v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_v128_andnot(wasm_f32x4_mul(p, scale), under);
}

static inline float exp1(float x) { return wasm_f32x4_extract_lane(exp4(splat(x)), 0); }

// Natural log of a positive double: x = 2^e · m with m in [√½, √2), log m = 2 atanh(s), s = (m − 1) / (m + 1).
static double log_positive(double x) {
  union {
    double d;
    unsigned long long u;
  } v = {x};
  int e = (int)((v.u >> 52) & 0x7ff) - 1023;
  v.u = (v.u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;  // m in [1, 2)
  double m = v.d;
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e += 1;
  }
  double s = (m - 1) / (m + 1), s2 = s * s;
  double series = s * (2 + s2 * (2.0 / 3 + s2 * (2.0 / 5 + s2 * (2.0 / 7 + s2 * (2.0 / 9 + s2 * (2.0 / 11))))));
  return e * 0.6931471805599453 + series;
}


// 1 / sqrt(mean(x²) + eps) of a row of d floats.
static float row_rstd(const float* x, int d, float eps) {
  v128_t acc = splat(0.0f);
  int j = 0;
  for (; j + 4 <= d; j += 4) {
    v128_t v = wasm_v128_load(x + j);
    acc = wasm_f32x4_add(acc, wasm_f32x4_mul(v, v));
  }
  float ss = hsum(acc);
  for (; j < d; j++) ss += x[j] * x[j];
  return 1.0f / __builtin_sqrtf(ss / d + eps);
}

// RMSNorm of rows of x [rows, d]: y = x · r · w with r = 1 / sqrt(mean(x²) + eps).
EXPORT(rms_norm)
void rms_norm(const float* x, const float* w, float* y, int rows, int d, float eps) {
  for (int i = 0; i < rows; i++) {
    const float* xr = x + i * d;
    float* yr = y + i * d;
    float r = row_rstd(xr, d, eps);
    v128_t rv = splat(r);
    int j = 0;
    for (; j + 4 <= d; j += 4)
      wasm_v128_store(yr + j, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(xr + j), rv), wasm_v128_load(w + j)));
    for (; j < d; j++) yr[j] = xr[j] * r * w[j];
  }
}

// Gradient of rms_norm: with g = dy · w, dx = r · g − x · r³ · mean(g · x); dw = Σ_rows dy · x · r.
EXPORT(rms_norm_grad)
void rms_norm_grad(const float* dy, const float* x, const float* w, float* dx, float* dw, int rows, int d, float eps) {
  for (int j = 0; j < d; j++) dw[j] = 0.0f;
  for (int i = 0; i < rows; i++) {
    const float* xr = x + i * d;
    const float* gr = dy + i * d;
    float* dxr = dx + i * d;
    float r = row_rstd(xr, d, eps);
    v128_t acc = splat(0.0f);
    int j = 0;
    for (; j + 4 <= d; j += 4)
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(gr + j), wasm_v128_load(w + j)), wasm_v128_load(xr + j)));
    float dot = hsum(acc);
    for (; j < d; j++) dot += gr[j] * w[j] * xr[j];
    float c = r * r * r * dot / d;
    v128_t rv = splat(r), cv = splat(c);
    for (j = 0; j + 4 <= d; j += 4) {
      v128_t xv = wasm_v128_load(xr + j), gv = wasm_v128_load(gr + j);
      wasm_v128_store(dxr + j, wasm_f32x4_sub(wasm_f32x4_mul(rv, wasm_f32x4_mul(gv, wasm_v128_load(w + j))), wasm_f32x4_mul(xv, cv)));
      wasm_v128_store(dw + j, wasm_f32x4_add(wasm_v128_load(dw + j), wasm_f32x4_mul(wasm_f32x4_mul(gv, xv), rv)));
    }
    for (; j < d; j++) {
      dxr[j] = r * gr[j] * w[j] - xr[j] * c;
      dw[j] += gr[j] * xr[j] * r;
    }
  }
}

// Mean and 1 / sqrt(variance + eps) of a row of d floats (two passes, as the stock ops compute them).
static void row_moments(const float* x, int d, float eps, float* mean, float* rstd) {
  v128_t acc = splat(0.0f);
  int j = 0;
  for (; j + 4 <= d; j += 4) acc = wasm_f32x4_add(acc, wasm_v128_load(x + j));
  float sum = hsum(acc);
  for (; j < d; j++) sum += x[j];
  float mu = sum / d;
  v128_t muv = splat(mu);
  acc = splat(0.0f);
  for (j = 0; j + 4 <= d; j += 4) {
    v128_t c = wasm_f32x4_sub(wasm_v128_load(x + j), muv);
    acc = wasm_f32x4_add(acc, wasm_f32x4_mul(c, c));
  }
  float ss = hsum(acc);
  for (; j < d; j++) ss += (x[j] - mu) * (x[j] - mu);
  *mean = mu;
  *rstd = 1.0f / __builtin_sqrtf(ss / d + eps);
}

// LayerNorm of rows of x [rows, d]: y = (x − μ) · r · w + b with r = 1 / sqrt(var(x) + eps).
EXPORT(layer_norm)
void layer_norm(const float* x, const float* w, const float* b, float* y, int rows, int d, float eps) {
  for (int i = 0; i < rows; i++) {
    const float* xr = x + i * d;
    float* yr = y + i * d;
    float mu, r;
    row_moments(xr, d, eps, &mu, &r);
    v128_t muv = splat(mu), rv = splat(r);
    int j = 0;
    for (; j + 4 <= d; j += 4) {
      v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), muv), rv);
      wasm_v128_store(yr + j, wasm_f32x4_add(wasm_f32x4_mul(xhat, wasm_v128_load(w + j)), wasm_v128_load(b + j)));
    }
    for (; j < d; j++) yr[j] = (xr[j] - mu) * r * w[j] + b[j];
  }
}

// Gradient of layer_norm: with x̂ = (x − μ) · r and g = dy · w, dx = r · (g − mean(g) − x̂ · mean(g · x̂));
// dw = Σ_rows dy · x̂; db = Σ_rows dy.
EXPORT(layer_norm_grad)
void layer_norm_grad(const float* dy, const float* x, const float* w, float* dx, float* dw, float* db, int rows, int d, float eps) {
  for (int j = 0; j < d; j++) dw[j] = db[j] = 0.0f;
  for (int i = 0; i < rows; i++) {
    const float* xr = x + i * d;
    const float* gr = dy + i * d;
    float* dxr = dx + i * d;
    float mu, r;
    row_moments(xr, d, eps, &mu, &r);
    v128_t muv = splat(mu), rv = splat(r);
    v128_t sg = splat(0.0f), sgx = splat(0.0f);
    int j = 0;
    for (; j + 4 <= d; j += 4) {
      v128_t g = wasm_f32x4_mul(wasm_v128_load(gr + j), wasm_v128_load(w + j));
      v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), muv), rv);
      sg = wasm_f32x4_add(sg, g);
      sgx = wasm_f32x4_add(sgx, wasm_f32x4_mul(g, xhat));
    }
    float mg = hsum(sg), mgx = hsum(sgx);
    for (; j < d; j++) {
      float g = gr[j] * w[j];
      mg += g;
      mgx += g * (xr[j] - mu) * r;
    }
    mg /= d;
    mgx /= d;
    v128_t mgv = splat(mg), mgxv = splat(mgx);
    for (j = 0; j + 4 <= d; j += 4) {
      v128_t dyv = wasm_v128_load(gr + j);
      v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), muv), rv);
      v128_t g = wasm_f32x4_mul(dyv, wasm_v128_load(w + j));
      wasm_v128_store(dxr + j, wasm_f32x4_mul(rv, wasm_f32x4_sub(wasm_f32x4_sub(g, mgv), wasm_f32x4_mul(xhat, mgxv))));
      wasm_v128_store(dw + j, wasm_f32x4_add(wasm_v128_load(dw + j), wasm_f32x4_mul(dyv, xhat)));
      wasm_v128_store(db + j, wasm_f32x4_add(wasm_v128_load(db + j), dyv));
    }
    for (; j < d; j++) {
      float xhat = (xr[j] - mu) * r;
      dxr[j] = r * (gr[j] * w[j] - mg - xhat * mgx);
      dw[j] += gr[j] * xhat;
      db[j] += gr[j];
    }
  }
}

// tanh(u) = 1 − 2 / (e^{2u} + 1): exact limits ±1 where e^{2u} saturates or vanishes.
static inline v128_t tanh4(v128_t u) {
  v128_t one = splat(1.0f);
  return wasm_f32x4_sub(one, wasm_f32x4_div(splat(2.0f), wasm_f32x4_add(exp4(wasm_f32x4_add(u, u)), one)));
}

#define GELU_C 0.7978845608028654f // √(2/π)
#define GELU_A 0.044715f

// GELU, tanh approximation: y = ½ x (1 + tanh(√(2/π) (x + 0.044715 x³))).
EXPORT(gelu_tanh)
void gelu_tanh(const float* x, float* y, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t xv = wasm_v128_load(x + i);
    v128_t u = wasm_f32x4_mul(splat(GELU_C), wasm_f32x4_add(xv, wasm_f32x4_mul(splat(GELU_A), wasm_f32x4_mul(xv, wasm_f32x4_mul(xv, xv)))));
    wasm_v128_store(y + i, wasm_f32x4_mul(wasm_f32x4_mul(splat(0.5f), xv), wasm_f32x4_add(splat(1.0f), tanh4(u))));
  }
  for (; i < n; i++) {
    float u = GELU_C * (x[i] + GELU_A * x[i] * x[i] * x[i]);
    y[i] = 0.5f * x[i] * (1.0f + wasm_f32x4_extract_lane(tanh4(splat(u)), 0));
  }
}

// Gradient of gelu_tanh: with t = tanh(u), dx = dy · (½ (1 + t) + ½ x (1 − t²) · √(2/π) (1 + 3 · 0.044715 x²)).
EXPORT(gelu_tanh_grad)
void gelu_tanh_grad(const float* dy, const float* x, float* dx, int n) {
  v128_t half = splat(0.5f), one = splat(1.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t xv = wasm_v128_load(x + i);
    v128_t x2 = wasm_f32x4_mul(xv, xv);
    v128_t t = tanh4(wasm_f32x4_mul(splat(GELU_C), wasm_f32x4_add(xv, wasm_f32x4_mul(splat(GELU_A), wasm_f32x4_mul(xv, x2)))));
    v128_t du = wasm_f32x4_mul(splat(GELU_C), wasm_f32x4_add(one, wasm_f32x4_mul(splat(3.0f * GELU_A), x2)));
    v128_t slope = wasm_f32x4_add(
      wasm_f32x4_mul(half, wasm_f32x4_add(one, t)),
      wasm_f32x4_mul(wasm_f32x4_mul(half, xv), wasm_f32x4_mul(wasm_f32x4_sub(one, wasm_f32x4_mul(t, t)), du)));
    wasm_v128_store(dx + i, wasm_f32x4_mul(wasm_v128_load(dy + i), slope));
  }
  for (; i < n; i++) {
    float xi = x[i];
    float t = wasm_f32x4_extract_lane(tanh4(splat(GELU_C * (xi + GELU_A * xi * xi * xi))), 0);
    float du = GELU_C * (1.0f + 3.0f * GELU_A * xi * xi);
    dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * xi * (1.0f - t * t) * du);
  }
}

// SwiGLU: y = silu(g) · u = g · σ(g) · u.
EXPORT(swiglu)
void swiglu(const float* g, const float* u, float* y, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t gv = wasm_v128_load(g + i);
    v128_t s = wasm_f32x4_div(splat(1.0f), wasm_f32x4_add(splat(1.0f), exp4(wasm_f32x4_neg(gv))));
    wasm_v128_store(y + i, wasm_f32x4_mul(wasm_f32x4_mul(gv, s), wasm_v128_load(u + i)));
  }
  for (; i < n; i++) {
    float s = 1.0f / (1.0f + exp1(-g[i]));
    y[i] = g[i] * s * u[i];
  }
}

// Gradient of swiglu: du = dy · silu(g); dg = dy · u · σ(g) · (1 + g · (1 − σ(g))).
EXPORT(swiglu_grad)
void swiglu_grad(const float* dy, const float* g, const float* u, float* dg, float* du, int n) {
  int i = 0;
  v128_t one = splat(1.0f);
  for (; i + 4 <= n; i += 4) {
    v128_t gv = wasm_v128_load(g + i), dv = wasm_v128_load(dy + i);
    v128_t s = wasm_f32x4_div(one, wasm_f32x4_add(one, exp4(wasm_f32x4_neg(gv))));
    wasm_v128_store(du + i, wasm_f32x4_mul(dv, wasm_f32x4_mul(gv, s)));
    v128_t ds = wasm_f32x4_mul(s, wasm_f32x4_add(one, wasm_f32x4_mul(gv, wasm_f32x4_sub(one, s))));
    wasm_v128_store(dg + i, wasm_f32x4_mul(wasm_f32x4_mul(dv, wasm_v128_load(u + i)), ds));
  }
  for (; i < n; i++) {
    float s = 1.0f / (1.0f + exp1(-g[i]));
    du[i] = dy[i] * g[i] * s;
    dg[i] = dy[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
  }
}

// Column sums of x [rows, cols]: y[j] = Σ_i x[i, j] (a bias's gradient; tfjs's Sum over leading axes transposes
// first). Rows in order, each added to y, which stays in cache.
EXPORT(sum_rows)
void sum_rows(const float* x, float* y, int rows, int cols) {
  for (int j = 0; j < cols; j++) y[j] = 0.0f;
  for (int i = 0; i < rows; i++) {
    const float* xr = x + i * cols;
    int j = 0;
    for (; j + 4 <= cols; j += 4) wasm_v128_store(y + j, wasm_f32x4_add(wasm_v128_load(y + j), wasm_v128_load(xr + j)));
    for (; j < cols; j++) y[j] += xr[j];
  }
}

// Largest logit of a row and log Σ exp(logit − max) (accumulated in double).
static float row_max(const float* z, int v) {
  v128_t mv = splat(-3.4e38f);
  int j = 0;
  for (; j + 4 <= v; j += 4) mv = wasm_f32x4_max(mv, wasm_v128_load(z + j));
  float mx = hmax(mv);
  for (; j < v; j++) mx = z[j] > mx ? z[j] : mx;
  return mx;
}

static double row_sum_exp(const float* z, int v, float mx) {
  v128_t acc = splat(0.0f);
  v128_t m = splat(mx);
  double total = 0;
  int j = 0;
  for (; j + 4 <= v; j += 4) {
    acc = wasm_f32x4_add(acc, exp4(wasm_f32x4_sub(wasm_v128_load(z + j), m)));
    if ((j & 1023) == 1020) {  // flush into double every 1024 entries: vocabularies reach 256k
      total += hsum(acc);
      acc = splat(0.0f);
    }
  }
  total += hsum(acc);
  for (; j < v; j++) total += exp1(z[j] - mx);
  return total;
}

// Label log-probs of rows of logits z [rows, v]: out[i] = z[i, label[i]] − logsumexp(z[i]).
EXPORT(label_logprob)
void label_logprob(const float* z, const int* labels, float* out, int rows, int v) {
  for (int i = 0; i < rows; i++) {
    const float* zr = z + (long)i * v;
    float mx = row_max(zr, v);
    out[i] = (float)((double)zr[labels[i]] - mx - log_positive(row_sum_exp(zr, v, mx)));
  }
}

// Its gradient: dz[i, j] = dy[i] · (1[j = label] − softmax(z[i])_j).
EXPORT(label_logprob_grad)
void label_logprob_grad(const float* z, const int* labels, const float* dy, float* dz, int rows, int v) {
  for (int i = 0; i < rows; i++) {
    const float* zr = z + (long)i * v;
    float* dr = dz + (long)i * v;
    float mx = row_max(zr, v);
    float scale = (float)(-dy[i] / row_sum_exp(zr, v, mx));
    v128_t m = splat(mx), sv = splat(scale);
    int j = 0;
    for (; j + 4 <= v; j += 4) wasm_v128_store(dr + j, wasm_f32x4_mul(exp4(wasm_f32x4_sub(wasm_v128_load(zr + j), m)), sv));
    for (; j < v; j++) dr[j] = exp1(zr[j] - mx) * scale;
    dr[labels[i]] += dy[i];
  }
}

// One AdamW step of a parameter of n floats, written to p2, m2, v2: g' = g · gscale; m2 = b1 m + (1 − b1) g';
// v2 = b2 v + (1 − b2) g'²; p2 = p − lr · (m2 / c1 / (sqrt(v2 / c2) + eps) + decay · p).
EXPORT(adamw)
void adamw(const float* p, const float* m, const float* v, const float* g, float* p2, float* m2, float* v2, int n,
           float gscale, float lr, float b1, float b2, float c1, float c2, float eps, float decay) {
  v128_t gs = splat(gscale), vb1 = splat(b1), vb2 = splat(b2), nb1 = splat(1.0f - b1), nb2 = splat(1.0f - b2);
  v128_t ic1 = splat(1.0f / c1), ic2 = splat(1.0f / c2), ve = splat(eps), vd = splat(decay), vlr = splat(lr);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t gv = wasm_f32x4_mul(wasm_v128_load(g + i), gs);
    v128_t mv = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), vb1), wasm_f32x4_mul(gv, nb1));
    v128_t vv = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), vb2), wasm_f32x4_mul(wasm_f32x4_mul(gv, gv), nb2));
    v128_t pv = wasm_v128_load(p + i);
    v128_t update = wasm_f32x4_div(wasm_f32x4_mul(mv, ic1), wasm_f32x4_add(wasm_f32x4_sqrt(wasm_f32x4_mul(vv, ic2)), ve));
    update = wasm_f32x4_add(update, wasm_f32x4_mul(pv, vd));
    wasm_v128_store(m2 + i, mv);
    wasm_v128_store(v2 + i, vv);
    wasm_v128_store(p2 + i, wasm_f32x4_sub(pv, wasm_f32x4_mul(update, vlr)));
  }
  for (; i < n; i++) {
    float gv = g[i] * gscale;
    float mv = m[i] * b1 + gv * (1.0f - b1);
    float vv = v[i] * b2 + gv * gv * (1.0f - b2);
    float update = (mv / c1) / (__builtin_sqrtf(vv / c2) + eps) + p[i] * decay;
    m2[i] = mv;
    v2[i] = vv;
    p2[i] = p[i] - update * lr;
  }
}

// Rows of a table [*, d] at int32 indices: out[i] = table[idx[i]] (d floats each).
EXPORT(gather_rows)
void gather_rows(const int* table, const int* idx, int* out, int n, int d) {
  for (int i = 0; i < n; i++) {
    const int* src = table + (long)idx[i] * d;
    int* dst = out + (long)i * d;
    int j = 0;
    for (; j + 4 <= d; j += 4) wasm_v128_store(dst + j, wasm_v128_load(src + j));
    for (; j < d; j++) dst[j] = src[j];
  }
}

// The embedding gradient: out [rows, d] = 0, then out[idx[i]] += dy[i] for each of n rows of dy [n, d].
EXPORT(scatter_add_rows)
void scatter_add_rows(const float* dy, const int* idx, float* out, int n, int rows, int d) {
  for (long j = 0; j < (long)rows * d; j++) out[j] = 0.0f;
  for (int i = 0; i < n; i++) {
    float* dst = out + (long)idx[i] * d;
    const float* src = dy + (long)i * d;
    int j = 0;
    for (; j + 4 <= d; j += 4) wasm_v128_store(dst + j, wasm_f32x4_add(wasm_v128_load(dst + j), wasm_v128_load(src + j)));
    for (; j < d; j++) dst[j] += src[j];
  }
}

// ---------------------------------------------------------------------------------------------------------
// Attention of one layer in one kernel: q [nb, nh, nt, nd], k and v [nb, nkv, ns, nd] (query head h reads
// key/value head h / (nh / nkv)), an additive bias [nbias (1 or nb), 1, nt, ns], scores q·kᵀ·scale + bias,
// softmax over keys, out [nb, nt, nh · nd] (the heads side by side, as the output projection reads them).
// The probabilities are not kept: the gradient recomputes them from q, k and the bias.

// p [nt, ns] = softmax(q_bh · k_bᵀ · scale + bias rows) for one (batch, head).
// Only the first `ns` keys are scored; rows of p and of the bias are `ld` apart (ld ≥ ns).
static void attention_probs(const float* q, const float* k, const float* bias, float* p, int nt, int ns, int nd, float scale,
                            int ld, float* scratch) {
  gemm(q, k, p, nt, nd, ns, nd, 1, 1, nd, ld, 0, scratch);
  v128_t sv = splat(scale);
  for (int t = 0; t < nt; t++) {
    float* row = p + t * ld;
    const float* br = bias + t * ld;
    int j = 0;
    for (; j + 4 <= ns; j += 4) wasm_v128_store(row + j, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row + j), sv), wasm_v128_load(br + j)));
    for (; j < ns; j++) row[j] = row[j] * scale + br[j];
    float mx = row_max(row, ns);
    v128_t m = splat(mx);
    v128_t acc = splat(0.0f);
    for (j = 0; j + 4 <= ns; j += 4) {
      v128_t e = exp4(wasm_f32x4_sub(wasm_v128_load(row + j), m));
      wasm_v128_store(row + j, e);
      acc = wasm_f32x4_add(acc, e);
    }
    float total = hsum(acc);
    for (; j < ns; j++) {
      row[j] = exp1(row[j] - mx);
      total += row[j];
    }
    v128_t inv = splat(1.0f / total);
    for (j = 0; j + 4 <= ns; j += 4) wasm_v128_store(row + j, wasm_f32x4_mul(wasm_v128_load(row + j), inv));
    for (; j < ns; j++) row[j] *= 1.0f / total;
  }
}

EXPORT(attention_scratch)
int attention_scratch(int nt, int ns) { return MC * KC + KC * NC + 2 * nt * ns; }

// The keys a block of query rows [t0, t1) can see: 1 + the last key whose bias is not masked in any of its
// rows. A row that sees no key at all (padding) needs every key: its softmax is uniform over all of them.
static int keys_seen(const float* bias, int t0, int t1, int ns) {
  int need = 0;
  for (int t = t0; t < t1; t++) {
    const float* br = bias + t * ns;
    int j = ns;
    while (j > 0 && br[j - 1] < -5e8f) j--;
    if (j == 0) return ns;
    if (j > need) need = j;
  }
  return need;
}

// The forward computes blocks of ATTENTION_ROWS query rows against only the keys the block sees: causal rows
// see none after their own position, so about half the products of a causal layer are skipped. The result is
// the same to the bit: a masked score's exp is exactly 0 (exp4 flushes below −87.3), and so is its term.
#define ATTENTION_ROWS 16

EXPORT(attention)
void attention(const float* q, const float* k, const float* v, const float* bias, float* out, int nb, int nh, int nkv, int nt,
               int ns, int nd, int nbias, float scale, float* scratch) {
  float* p = scratch + MC * KC + KC * NC;
  int group = nh / nkv;
  for (int b = 0; b < nb; b++) {
    const float* br = bias + (nbias == 1 ? 0 : b) * nt * ns;
    for (int t0 = 0; t0 < nt; t0 += ATTENTION_ROWS) {
      int rows = min_int(ATTENTION_ROWS, nt - t0);
      int seen = keys_seen(br, t0, t0 + rows, ns);
      for (int h = 0; h < nh; h++) {
        const float* qh = q + ((b * nh + h) * nt + t0) * nd;
        int kv = (b * nkv + h / group) * ns * nd;
        attention_probs(qh, k + kv, br + t0 * ns, p, rows, seen, nd, scale, ns, scratch);
        gemm(p, v + kv, out + (b * nt + t0) * nh * nd + h * nd, rows, seen, nd, ns, 1, nd, 1, nh * nd, 0, scratch);
      }
    }
  }
}

// The gradient: with P recomputed, dP = dO · vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale, dq = dS · k,
// dk = Σ_group dSᵀ · q, dv = Σ_group Pᵀ · dO.
EXPORT(attention_grad)
void attention_grad(const float* dout, const float* q, const float* k, const float* v, const float* bias, float* dq, float* dk,
                    float* dv, int nb, int nh, int nkv, int nt, int ns, int nd, int nbias, float scale, float* scratch) {
  float* p = scratch + MC * KC + KC * NC;
  float* ds = p + nt * ns;
  int group = nh / nkv;
  for (int b = 0; b < nb; b++) {
    const float* br = bias + (nbias == 1 ? 0 : b) * nt * ns;
    for (int kvh = 0; kvh < nkv; kvh++) {
      int kv = (b * nkv + kvh) * ns * nd;
      for (int g = 0; g < group; g++) {
        int h = kvh * group + g;
        const float* qh = q + (b * nh + h) * nt * nd;
        const float* doh = dout + b * nt * nh * nd + h * nd;
        attention_probs(qh, k + kv, br, p, nt, ns, nd, scale, ns, scratch);
        gemm(doh, v + kv, ds, nt, nd, ns, nh * nd, 1, 1, nd, ns, 0, scratch);  // dP = dO · vᵀ
        for (int t = 0; t < nt; t++) {
          float* dr = ds + t * ns;
          const float* pr = p + t * ns;
          v128_t acc = splat(0.0f);
          int j = 0;
          for (; j + 4 <= ns; j += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(dr + j), wasm_v128_load(pr + j)));
          float dot = hsum(acc);
          for (; j < ns; j++) dot += dr[j] * pr[j];
          v128_t dv4 = splat(dot), sv = splat(scale);
          for (j = 0; j + 4 <= ns; j += 4)
            wasm_v128_store(dr + j, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(pr + j), wasm_f32x4_sub(wasm_v128_load(dr + j), dv4)), sv));
          for (; j < ns; j++) dr[j] = pr[j] * (dr[j] - dot) * scale;
        }
        gemm(ds, k + kv, dq + (b * nh + h) * nt * nd, nt, ns, nd, ns, 1, nd, 1, nd, 0, scratch);      // dq = dS · k
        gemm(ds, qh, dk + kv, ns, nt, nd, 1, ns, nd, 1, nd, g > 0, scratch);                          // dk += dSᵀ · q
        gemm(p, doh, dv + kv, ns, nt, nd, 1, ns, nh * nd, 1, nd, g > 0, scratch);                     // dv += Pᵀ · dO
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// What every forward pass derives from its attention mask: the additive bias, the position ids and the rotary
// angles. Each was a chain of 5 to 8 small tfjs ops; a decoding step (one token) runs them once per step.

// Mask entry j of row b as a number, from a float32 or int32 mask.
static inline float mask_at(const void* mask, int is_int, int index) {
  return is_int ? (float)((const int*)mask)[index] : ((const float*)mask)[index];
}

// bias [nrows, 1, time, past + time] = (1 − allowed) · MASKED, allowed = causal (and within `window` when > 0)
// times the key mask of the row (nrows = nb with a mask, 1 without: mask = 0).
EXPORT(attention_bias)
void attention_bias(const void* mask, int is_int, float* bias, int nrows, int time, int past, int window) {
  int total = past + time;
  for (int b = 0; b < nrows; b++) {
    for (int i = 0; i < time; i++) {
      float* row = bias + (b * time + i) * total;
      int first = window > 0 && past + i - window + 1 > 0 ? past + i - window + 1 : 0;
      for (int j = 0; j < total; j++) {
        float allowed = j >= first && j <= past + i ? 1.0f : 0.0f;
        if (mask) allowed *= mask_at(mask, is_int, b * total + j);
        row[j] = (1.0f - allowed) * -1e9f;
      }
    }
  }
}

// Position ids [nb, time] as Hugging Face derives them from a mask [nb, total]: cumsum(mask) − 1, padded positions
// 1, keeping the last `time` columns.
EXPORT(mask_positions)
void mask_positions(const void* mask, int is_int, int* pos, int nb, int total, int time) {
  for (int b = 0; b < nb; b++) {
    int sum = 0;
    for (int j = 0; j < total; j++) {
      int m = (int)mask_at(mask, is_int, b * total + j);
      sum += m;
      if (j >= total - time) pos[b * time + j - (total - time)] = m == 0 ? 1 : sum - 1;
    }
  }
}

// sin and cos of a double: x = k·π/2 + r with |r| ≤ π/4 (π/2 in two parts, exact products for |k| < 2^20), then
// Taylor polynomials of r to degree 15 and 14, rotated by the quadrant k mod 4.
static void sin_cos(double x, double* s, double* c) {
  double k = __builtin_rint(x * 0.63661977236758134308);
  double r = (x - k * 1.57079632673412561417) - k * 6.07710050650619224932e-11;
  double r2 = r * r;
  double sr = r * (1 + r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (1.0 / 362880 + r2 * (-1.0 / 39916800 + r2 * (1.0 / 6227020800 + r2 * (-1.0 / 1307674368000))))))));
  double cr = 1 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320 + r2 * (-1.0 / 3628800 + r2 * (1.0 / 479001600 + r2 * (-1.0 / 87178291200)))))));
  int q = (int)((long long)k & 3);
  if (q == 0) {
    *s = sr;
    *c = cr;
  } else if (q == 1) {
    *s = cr;
    *c = -sr;
  } else if (q == 2) {
    *s = -sr;
    *c = -cr;
  } else {
    *s = -cr;
    *c = sr;
  }
}

// Rotary angles of positions [n] (int32): angle = float(position) · inv_freq[i] in float32, as tfjs multiplies
// them; cos and sin [n, 2 · half] hold each angle's value twice ([freqs, freqs]).
EXPORT(rope_angles)
void rope_angles(const int* pos, const float* inv, float* cos, float* sin, int n, int half) {
  for (int p = 0; p < n; p++) {
    float* cr = cos + p * 2 * half;
    float* sr = sin + p * 2 * half;
    for (int i = 0; i < half; i++) {
      float angle = (float)pos[p] * inv[i];
      double s, c;
      sin_cos((double)angle, &s, &c);
      cr[i] = cr[i + half] = (float)c;
      sr[i] = sr[i + half] = (float)s;
    }
  }
}
