/*
 * gemm_bf16_onednn.c: bf16 weight rows times f32 activations through
 * oneDNN's bf16 matmul primitive (quant.h's cllm_quant_gemm_bf16_onednn),
 * the prompt route for bf16 weights on CPUs with AMX.
 *
 * Does: round the activations to bf16 (nearest even, as the x16 kernel and
 * llama.cpp do for bf16 weights), hand the weights to oneDNN where they lie
 * (the file layout: rows of K, described as a K x N matrix with strides
 * {1, row}), and run a matmul with an f32 result, f32 accumulation. oneDNN
 * picks its kernel from the CPU at run time: AMX tiles (brg:avx512_core_amx;
 * Debian's libdnnl 2.6 asks Linux for the tile-data permission itself, its
 * amx::is_available calls arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)) where
 * the CPU and the kernel offer them, else AVX512-BF16 (brg:avx512_core_bf16, the
 * project machine: ~220 GFLOP/s per core against ~110 for fp32), else
 * AVX-512 emulation; below AVX-512 it has no bf16 matmul and the call
 * reports 0 so the caller takes its own route. Primitives are cached per
 * (shape, strides, threads): creating one costs tens of microseconds, a
 * prompt chunk runs four products per layer.
 * Does not: keep or reorder weights (oneDNN copies the blocks it needs per
 * call, as our f16 path dequantizes), run inside a parallel region (oneDNN
 * threads with OpenMP itself), or handle other weight types.
 */
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/kernels/quant.h"
#include "kernels_internal.h"

#define BF16_CACHE_SLOTS 16 /* distinct shapes: 4 products per layer x a few chunk lengths */

typedef struct {
    int M, N, K, threads;
    size_t ldw, ldo;
    dnnl_primitive_t prim; /* NULL: empty slot */
    dnnl_memory_desc_t src, wei, dst;
} bf16_prim;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static bf16_prim cache[BF16_CACHE_SLOTS];
static int cache_next;          /* round-robin eviction */
static dnnl_engine_t engine;    /* created on first use, kept for the process */
static dnnl_stream_t stream;
static int unavailable;         /* 1 once oneDNN has refused a bf16 matmul on this CPU */
static char impl_name[64];      /* oneDNN's name for the kernel it chose, for reports */

/* The primitive for one shape (cache_lock held); NULL when oneDNN has none. */
static bf16_prim *primitive_for(int M, int N, int K, size_t ldw, size_t ldo, int threads) {
    for (int i = 0; i < BF16_CACHE_SLOTS; i++) {
        bf16_prim *e = &cache[i];
        if (e->prim && e->M == M && e->N == N && e->K == K && e->ldw == ldw && e->ldo == ldo &&
            e->threads == threads)
            return e;
    }
    if (!engine && (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
                    dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success))
        return NULL;
    bf16_prim e = {.M = M, .N = N, .K = K, .threads = threads, .ldw = ldw, .ldo = ldo};
    const dnnl_dims_t sd = {M, K}, wd = {K, N}, dd = {M, N};
    const dnnl_dims_t ss = {K, 1}, ws = {1, (dnnl_dim_t)ldw}, ds = {(dnnl_dim_t)ldo, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_memory_desc_init_by_strides(&e.src, 2, sd, dnnl_bf16, ss) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&e.wei, 2, wd, dnnl_bf16, ws) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&e.dst, 2, dd, dnnl_f32, ds) != dnnl_success ||
        dnnl_matmul_desc_init(&md, &e.src, &e.wei, NULL, &e.dst) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &md, NULL, engine, NULL) != dnnl_success)
        return NULL;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(impl_name, sizeof impl_name, "%s", impl);
    const dnnl_status_t st = dnnl_primitive_create(&e.prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return NULL;
    bf16_prim *slot = &cache[cache_next];
    cache_next = (cache_next + 1) % BF16_CACHE_SLOTS;
    if (slot->prim) dnnl_primitive_destroy(slot->prim);
    *slot = e;
    return slot;
}

/* y = x rounded to bf16, by token rows over the threads. */
static void round_rows(const cllm_quant_kernels *k, const float *x, uint16_t *y, int n, int cols) {
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)cols >= ((size_t)1 << 16))
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * (size_t)cols;
        uint16_t *yr = y + (size_t)t * (size_t)cols;
        if (k->round_bf16)
            k->round_bf16(xr, yr, cols);
        else
            for (int i = 0; i < cols; i++) yr[i] = cllm_fp32_to_bf16(xr[i]);
    }
}

int cllm_quant_gemm_bf16_onednn(const cllm_quant_kernels *k, const void *W, size_t row_bytes, int rows, int cols,
                                const float *x, int n, float *out, size_t ld_out) {
    if (!k) k = cllm_quant_kernels_get();
    CLLM_ASSERT(row_bytes % 2 == 0 && rows > 0 && cols > 0 && n > 0);
    if (omp_in_parallel()) return 0; /* oneDNN would run on one thread: the caller's route is better */
    uint16_t *xb = cllm_thread_scratch(CLLM_SCRATCH_PRODUCT_ACT, (size_t)n * (size_t)cols * sizeof(uint16_t));
    if (!xb) return 0;
    pthread_mutex_lock(&cache_lock);
    bf16_prim *e = unavailable ? NULL : primitive_for(n, rows, cols, row_bytes / 2, ld_out, omp_get_max_threads());
    if (!e) unavailable = 1;
    int done = 0;
    if (e) {
        round_rows(k, x, xb, n, cols);
        dnnl_memory_t ms = NULL, mw = NULL, md = NULL;
        /* oneDNN reads the weights and never writes them; its API takes a plain pointer */
        if (dnnl_memory_create(&ms, &e->src, engine, xb) == dnnl_success &&
            dnnl_memory_create(&mw, &e->wei, engine, (void *)(uintptr_t)W) == dnnl_success &&
            dnnl_memory_create(&md, &e->dst, engine, out) == dnnl_success) {
            const dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}};
            done = dnnl_primitive_execute(e->prim, stream, 3, args) == dnnl_success &&
                   dnnl_stream_wait(stream) == dnnl_success;
        }
        dnnl_memory_destroy(ms);
        dnnl_memory_destroy(mw);
        dnnl_memory_destroy(md);
    }
    pthread_mutex_unlock(&cache_lock);
    return done;
}

const char *cllm_quant_bf16_onednn_impl(void) { return impl_name[0] ? impl_name : "none"; }
