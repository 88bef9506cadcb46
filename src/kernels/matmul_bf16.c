/*
 * matmul_bf16.c: mixed precision for the layers' matrix products (kernels.h,
 * "mixed precision"): the process-wide matmul precision, cllm_gemm (what
 * every layer calls), the bf16 product on f32 operands, its scalar
 * reference, and the bf16 mirror of the weights.
 *
 * A bf16 product C = alpha op(A) op(B) + beta C takes f32 A and B, rounds
 * every element to bf16 (nearest even, NaN kept), multiplies exactly (a
 * bf16 x bf16 product fits f32's 24-bit significand) and accumulates in
 * f32; C stays f32. The rounded copies live in per-thread scratch, except
 * for operands inside a registered weight tensor: those come from the
 * mirror, a bf16 copy of the tensor that AdamW rewrites as it updates the
 * tensor (cllm_bf16_mirror_claim, called by optim.c's cllm_vadamw) and that
 * is remade at its next product after any other change marked it stale,
 * so each weight is rounded once per step instead of once per product.
 * The product itself runs on oneDNN's bf16 matmul (gemm_bf16_onednn.c: AMX
 * tiles or AVX512-BF16, oneDNN's choice at run time), or on the reference
 * loop under CLLM_KERNELS=reference (what the tests compare with).
 * Does not: decide where bf16 is used (the caller sets the precision for a
 * run), keep activations in bf16 between layers, or change cllm_sgemm.
 */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "kernels_internal.h"

static cllm_precision matmul_precision = CLLM_PRECISION_FP32;

static const char *const precision_names[CLLM_PRECISION_COUNT] = {
    [CLLM_PRECISION_FP32] = "fp32",
    [CLLM_PRECISION_BF16] = "bf16",
};

const char *cllm_precision_name(cllm_precision p) {
    return (int)p >= 0 && p < CLLM_PRECISION_COUNT ? precision_names[p] : "?";
}

int cllm_precision_from_name(const char *name, cllm_precision *out) {
    for (int p = 0; p < CLLM_PRECISION_COUNT; p++)
        if (!strcmp(name, precision_names[p])) {
            *out = (cllm_precision)p;
            return 1;
        }
    return 0;
}

cllm_status cllm_precision_check(cllm_precision p, cllm_error *err) {
    if (p == CLLM_PRECISION_FP32) return CLLM_OK;
    const cllm_kernels_table *t = cllm_kernels_get();
    if (t->reference) return CLLM_OK; /* the scalar reference runs anywhere */
    if (t->cpu_features & (CLLM_CPU_AVX512_BF16 | CLLM_CPU_AMX)) return CLLM_OK;
    char features[256];
    cllm_kernels_features_string(features, sizeof features);
    return cllm_error_set(err, CLLM_ERR_ARG,
                          "bf16 needs a CPU with AVX512-BF16 or AMX instructions and this one has neither "
                          "(features: %s); use fp32",
                          features[0] ? features : "none");
}

const char *cllm_precision_bf16_path(void) {
    const cllm_kernels_table *t = cllm_kernels_get();
    if (t->reference) return "reference (scalar, double accumulation)";
    if (t->cpu_features & CLLM_CPU_AMX) return "oneDNN bf16 matmul on AMX tiles";
    if (t->cpu_features & CLLM_CPU_AVX512_BF16) return "oneDNN bf16 matmul on AVX512-BF16";
    return "none (no AVX512-BF16 or AMX)";
}

void cllm_matmul_set_precision(cllm_precision p) {
    CLLM_ASSERT((int)p >= 0 && p < CLLM_PRECISION_COUNT);
    matmul_precision = p;
}

cllm_precision cllm_matmul_get_precision(void) { return matmul_precision; }

/* ---- the bf16 weight mirror ------------------------------------------------------ */

typedef struct {
    const float *w;  /* [n] the f32 tensor (borrowed) */
    size_t n;
    uint16_t *b;     /* [n] its bf16 copy (owned) */
    int fresh;       /* b holds w's current values */
} mirror_entry;

static mirror_entry *mirrors; /* [n_mirrors], unsorted; lookups are a short scan per product */
static int n_mirrors, cap_mirrors;

void cllm_bf16_round_span(const float *x, uint16_t *y, size_t n) {
    const cllm_quant_kernels *k = cllm_quant_kernels_get();
    if (k->round_bf16) {
        k->round_bf16(x, y, (int64_t)n);
        return;
    }
    for (size_t i = 0; i < n; i++) y[i] = cllm_fp32_to_bf16(x[i]);
}

/* y = x rounded, in chunks over the threads (one thread inside a parallel region). */
static void round_parallel(const float *x, uint16_t *y, size_t n) {
    enum { CHUNK = 1 << 16 };
    const long chunks = (long)((n + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (long c = 0; c < chunks; c++) {
        const size_t i0 = (size_t)c * CHUNK, len = n - i0 < CHUNK ? n - i0 : CHUNK;
        cllm_bf16_round_span(x + i0, y + i0, len);
    }
}

int cllm_bf16_mirror_add(const float *w, size_t n) {
    for (int i = 0; i < n_mirrors; i++)
        if (mirrors[i].w == w && mirrors[i].n == n) return 1;
    if (n_mirrors == cap_mirrors) {
        int cap = cap_mirrors ? 2 * cap_mirrors : 64;
        mirror_entry *grown = realloc(mirrors, (size_t)cap * sizeof *grown);
        if (!grown) return 0;
        mirrors = grown;
        cap_mirrors = cap;
    }
    uint16_t *b = aligned_alloc(64, ((n * sizeof *b) + 63) / 64 * 64);
    if (!b) return 0;
    mirrors[n_mirrors++] = (mirror_entry){.w = w, .n = n, .b = b, .fresh = 0};
    return 1;
}

void cllm_bf16_mirror_stale(const float *block, size_t n) {
    for (int i = 0; i < n_mirrors; i++)
        if (mirrors[i].w < block + n && block < mirrors[i].w + mirrors[i].n) mirrors[i].fresh = 0;
}

uint16_t *cllm_bf16_mirror_claim(const float *x, size_t n) {
    uint16_t *claimed = NULL;
    for (int i = 0; i < n_mirrors; i++) {
        mirror_entry *e = &mirrors[i];
        if (!(e->w < x + n && x < e->w + e->n)) continue;
        const int inside = x >= e->w && x + n <= e->w + e->n;
        if (inside && !claimed && (e->fresh || (x == e->w && n == e->n))) {
            e->fresh = 1;
            claimed = e->b + (x - e->w);
        } else {
            e->fresh = 0;
        }
    }
    return claimed;
}

void cllm_bf16_mirror_clear(void) {
    for (int i = 0; i < n_mirrors; i++) free(mirrors[i].b);
    free(mirrors);
    mirrors = NULL;
    n_mirrors = cap_mirrors = 0;
}

size_t cllm_bf16_mirror_bytes(void) {
    size_t bytes = 0;
    for (int i = 0; i < n_mirrors; i++) bytes += mirrors[i].n * sizeof(uint16_t);
    return bytes;
}

/* The bf16 copy of x[0 .. extent) when it lies inside a mirrored tensor that
 * is fresh (or can be refreshed here: not inside a parallel region, where
 * two threads could refresh the same entry); NULL otherwise. */
static const uint16_t *mirror_find(const float *x, size_t extent) {
    for (int i = 0; i < n_mirrors; i++) {
        mirror_entry *e = &mirrors[i];
        if (x < e->w || x + extent > e->w + e->n) continue;
        if (!e->fresh) {
            if (omp_in_parallel()) return NULL;
            round_parallel(e->w, e->b, e->n);
            e->fresh = 1;
        }
        return e->b + (x - e->w);
    }
    return NULL;
}

/* ---- the products -------------------------------------------------------------- */

/* rows x cols f32 (row stride ld) rounded into y (row stride cols). */
static void round_matrix(const float *x, int ld, int rows, int cols, uint16_t *y) {
    if (ld == cols) {
        round_parallel(x, y, (size_t)rows * (size_t)cols);
        return;
    }
#pragma omp parallel for schedule(static) if ((size_t)rows * (size_t)cols >= ((size_t)1 << 16))
    for (int r = 0; r < rows; r++)
        cllm_bf16_round_span(x + (size_t)r * (size_t)ld, y + (size_t)r * (size_t)cols, (size_t)cols);
}

/* An operand stored as rows x cols with row stride ld: its bf16 form from the
 * mirror (same stride) or rounded into scratch slot (row stride cols). */
static const uint16_t *bf16_operand(const float *x, int ld, int rows, int cols, cllm_scratch_slot slot, int *ld_out) {
    const size_t extent = (size_t)(rows - 1) * (size_t)ld + (size_t)cols;
    const uint16_t *m = mirror_find(x, extent);
    if (m) {
        *ld_out = ld;
        return m;
    }
    uint16_t *y = cllm_thread_scratch(slot, (size_t)rows * (size_t)cols * sizeof *y);
    if (!y) return NULL;
    round_matrix(x, ld, rows, cols, y);
    *ld_out = cols;
    return y;
}

void cllm_gemm_bf16_reference(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                              const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++) {
                const float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                const float b = trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += (double)cllm_bf16_to_fp32(cllm_fp32_to_bf16(a)) *
                       (double)cllm_bf16_to_fp32(cllm_fp32_to_bf16(b));
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * acc) + (beta == 0.0f ? 0.0f : beta * *c);
        }
}

void cllm_gemm_bf16(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc) {
    CLLM_ASSERT(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0) return;
    if (K == 0 || cllm_kernels_get()->reference) {
        cllm_gemm_bf16_reference(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int la, lb;
    /* stored shapes: A is M x K (K x M transposed), B is K x N (N x K transposed) */
    const uint16_t *a = bf16_operand(A, lda, trans_a ? K : M, trans_a ? M : K, CLLM_SCRATCH_BF16_A, &la);
    const uint16_t *b = a ? bf16_operand(B, ldb, trans_b ? N : K, trans_b ? K : N, CLLM_SCRATCH_BF16_B, &lb) : NULL;
    if (a && b && cllm_kernels_gemm_bf16_onednn(trans_a, trans_b, M, N, K, alpha, a, la, b, lb, beta, C, ldc)) return;
    /* no scratch, or no bf16 matmul in this oneDNN: same numbers, slowly */
    cllm_gemm_bf16_reference(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void cllm_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc) {
    if (matmul_precision == CLLM_PRECISION_BF16)
        cllm_gemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        cllm_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
