/*
 * infer_linear.c: the inference linear layer and embedding lookup of every
 * model (model_infer_linear, model_infer_embed): an ordinary model's f32
 * parameters through cllm_sgemm, or the weight views of a model whose
 * matrices stay in a memory-mapped GGUF file in their own ggml types
 * (model/mapped.h).
 *
 * Does: bind every tensor of the file to the model's tensor table (split
 * attn_q/k/v and ffn_gate/up become parts of one view), widen the 1-D
 * tensors and position_embd into the f32 parameter block, and run the
 * linear layers and the embedding lookup of cllm_model_decode on the views:
 * q8_0/q4_0 through the integer GEMM on q8_0 activations (any number of
 * tokens), on a copy repacked at load into quant.h's x16 layout; q4_1,
 * q5_0, q5_1 and the k-quants through their dot kernels on q8_0 / q8_K
 * activations when decoding and dequantized row blocks + fp32 GEMM for
 * prompt chunks, as f16; bf16 on
 * the x16 kernel (AVX512-BF16) or, on CPUs with AMX, prompts through
 * oneDNN's bf16 matmul (options.bf16_prompt); f32/f16/bf16 otherwise
 * through matrix-vector kernels for 1-2 tokens and dequantized row blocks +
 * fp32 GEMM for longer prompt chunks (one parallel region per product,
 * row blocks handed out dynamically). Unless keep_file_layout, every matrix
 * is copied (or repacked) at load into one huge-page arena in decoding order
 * and the map's pages of it are released. All scratch is allocated at load.
 * Also the training linear layer (model_linear_forward/backward) of
 * forward.c/backward.c: f32 models through layers.h, a mapped model loaded
 * for QLoRA (training with a frozen base, lora.h) through dequantized row
 * blocks + fp32 GEMM, backward giving only dX = dY W.
 * Does not: write files, or quantize anything (quantize.c, ggml_types.c).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/formats/gguf.h"
#include "cllm/kernels/kernels.h"
#include "cllm/layers/layers.h"
#include "cllm/model/gguf_io.h"
#include "cllm/model/mapped.h"
#include "cllm/kernels/quant.h"
#include "model_internal.h"

#define LIN_ROW_BLOCK 256   /* rows dequantized per GEMM in prompt processing */
#define LIN_MATVEC_MAX_N 2  /* float-type chunks up to this many tokens use matrix-vector products */
#define LIN_PAR_MIN (1 << 22) /* multiply-adds below which a float-type prompt GEMM stays on one thread */
#define LIN_DECODE_PAR_MIN (1 << 19) /* weights x tokens from which a decode product splits over the threads */
#define LIN_DECODE_CHUNKS_PER_THREAD 4
#define LIN_DECODE_MAX_CHUNKS 64
#define LIN_TOK_BLOCK 256   /* tokens whose q8_0 activations are quantized and multiplied at once */

typedef struct {
    uint32_t type;        /* ggml type of these rows */
    const uint8_t *data;  /* [rows * row_bytes] in the map, borrowed (f16/bf16/f32: in the arena once copied) */
    size_t row_bytes;
    int rows;
    uint8_t *x16;         /* q8_0/q4_0: rows 0 .. 16 * x16_groups - 1 repacked (quant.h) in the arena; or NULL */
    int x16_groups;
} model_qpart;

typedef struct {
    int n_parts;          /* 1..3; parts stack their rows in order */
    int cols;             /* IC */
    model_qpart part[MODEL_GGUF_MAX_PARTS];
} model_qmat;

struct model_infer_views {
    cllm_gguf *g;                 /* the mapped file, owned */
    const cllm_quant_kernels *k;
    model_qmat *layer;            /* [L * LIN_LAYER_COUNT] */
    model_qmat tok_embd, output;  /* output == tok_embd views when tied */
    uint8_t *xq;                  /* [LIN_TOK_BLOCK, max_cols / 32 * 34] q8_0 activations */
    uint8_t *xk;                  /* [LIN_MATVEC_MAX_N, max_cols / 256 * 292] q8_K activations (decode) */
    float *deq;                   /* [deq_slots, LIN_ROW_BLOCK, max_cols] dequantized rows, one slot per thread */
    int deq_slots;                /* OpenMP threads at load */
    size_t max_cols;              /* max(C, ffn_hidden) */
    size_t weight_bytes;          /* what one decoded token reads */
    size_t n_views;               /* entries of layer[] */
    uint8_t *arena;               /* the copied / repacked matrices, in decoding order (NULL: none) */
    int bf16_onednn;              /* bf16 prompt chunks through oneDNN (options.bf16_prompt resolved) */
};

/* ---- binding the file ------------------------------------------------------ */

/* Finds a file tensor and checks it is [rows, cols] (GGUF dims {cols, rows})
 * in a supported type. */
static cllm_status find_part(const cllm_gguf *g, const char *name, int64_t rows, int64_t cols, int ndim,
                             const cllm_gguf_tensor **out, cllm_error *err) {
    const cllm_gguf_tensor *ft = cllm_gguf_find_tensor(g, name);
    if (!ft)
        return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s' is missing", cllm_gguf_path(g), name);
    int ok = ndim == 1 ? ft->n_dims == 1 && ft->dims[0] == rows
                       : ft->n_dims == 2 && ft->dims[0] == cols && ft->dims[1] == rows;
    if (!ok)
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "%s: tensor '%s' has %u dims {%lld, %lld}, expected {%lld%s%lld}", cllm_gguf_path(g),
                              name, ft->n_dims, (long long)ft->dims[0], (long long)ft->dims[1],
                              (long long)(ndim == 1 ? rows : cols), ndim == 1 ? "" : ", ",
                              ndim == 1 ? 0LL : (long long)rows);
    if (!cllm_quant_type_supported(ft->type))
        return cllm_error_set(err, CLLM_ERR_FORMAT,
                              "%s: tensor '%s' has type %s; cllm runs f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, "
                              "q5_1 and q2_K..q6_K (requantize with `cllm quantize`)",
                              cllm_gguf_path(g), name, cllm_ggml_type_name(ft->type));
    *out = ft;
    return CLLM_OK;
}

/* Which view a model tensor becomes, or NULL for tensors widened to f32. */
static model_qmat *view_of(cllm_model *m, struct model_infer_views *views, const cllm_tensor *t) {
    if (t->ndim != 2) return NULL;
    if (!strcmp(t->name, "token_embd.weight")) return &views->tok_embd;
    if (!strcmp(t->name, "output.weight")) return &views->output;
    if (t->layer < 0) return NULL; /* position_embd */
    model_qmat *L = views->layer + (size_t)t->layer * LIN_LAYER_COUNT;
    if (strstr(t->name, ".attn_qkv.")) return &L[LIN_QKV];
    if (strstr(t->name, ".attn_output.")) return &L[LIN_ATTN_OUT];
    if (strstr(t->name, ".ffn_up.") || strstr(t->name, ".ffn_gate_up.")) return &L[LIN_FFN_UP];
    if (strstr(t->name, ".ffn_down.")) return &L[LIN_FFN_DOWN];
    (void)m;
    return NULL;
}

static size_t view_bytes(const model_qmat *v) {
    size_t b = 0;
    for (int i = 0; i < v->n_parts; i++) b += v->part[i].row_bytes * (size_t)v->part[i].rows;
    return b;
}

/* Refuses a tensor with a NaN or Inf anywhere (a q8_0/q4_0 block's fp16
 * scale included): such a model would only ever produce non-finite logits.
 * data NULL: the rows are already f32 in row[rows * cols]; else each row of
 * data is widened into row[cols] (scratch) and checked there. */
static cllm_status check_rows_finite(const cllm_gguf *g, const char *name, uint32_t type, const uint8_t *data,
                                     size_t row_bytes, int64_t rows, int64_t cols, float *row, cllm_error *err) {
    for (int64_t r = 0; r < rows; r++) {
        const float *x = data ? row : row + (size_t)r * (size_t)cols;
        if (data) cllm_ggml_to_f32(type, data + (size_t)r * row_bytes, row, cols);
        for (int64_t j = 0; j < cols; j++)
            if (!isfinite(x[j]))
                return cllm_error_set(err, CLLM_ERR_NUMERIC,
                                      "%s: tensor '%s' holds %g at row %lld, column %lld: the file is damaged or its "
                                      "training diverged (--no-check-weights loads it anyway)",
                                      cllm_gguf_path(g), name, (double)x[j], (long long)r, (long long)j);
    }
    return CLLM_OK;
}

static cllm_status bind(cllm_model *m, struct model_infer_views *views, cllm_error *err) {
    const int check = !m->opts.skip_weight_check;
    const cllm_gguf *g = views->g;
    uint64_t used = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        cllm_tensor *t = &m->tensors[i];
        model_gguf_part pn[MODEL_GGUF_MAX_PARTS];
        const int np = model_gguf_parts(&m->cfg, t, pn);
        model_qmat *v = view_of(m, views, t);
        const int64_t cols = t->ndim == 2 ? t->shape[1] : 1;
        size_t row0 = 0;
        if (v) {
            v->n_parts = np;
            v->cols = (int)cols;
        }
        for (int p = 0; p < np; p++) {
            const cllm_gguf_tensor *ft = NULL;
            cllm_status st = find_part(g, pn[p].name, pn[p].rows, cols, t->ndim, &ft, err);
            if (st != CLLM_OK) return st;
            used++;
            if (v) {
                model_qpart *q = &v->part[p];
                q->type = ft->type;
                q->data = ft->data;
                q->rows = (int)pn[p].rows;
                cllm_ggml_row_size(ft->type, cols, &q->row_bytes);
                if (check && (st = check_rows_finite(g, pn[p].name, q->type, q->data, q->row_bytes, q->rows, cols,
                                                     views->deq, err)) != CLLM_OK)
                    return st;
            } else {
                /* 1-D tensor or position_embd: widen into the f32 block */
                const int64_t rows = pn[p].rows;
                size_t rb = 0;
                cllm_ggml_row_size(ft->type, cols, &rb);
                for (int64_t r = 0; r < rows; r++)
                    cllm_ggml_to_f32(ft->type, (const uint8_t *)ft->data + (size_t)r * rb,
                                     t->data + (row0 + (size_t)r) * (size_t)cols, cols);
                if (check && (st = check_rows_finite(g, pn[p].name, ft->type, NULL, rb, rows, cols,
                                                     t->data + row0 * (size_t)cols, err)) != CLLM_OK)
                    return st;
                if (t->ndim == 1) views->weight_bytes += (size_t)rows * sizeof(float);
            }
            row0 += (size_t)pn[p].rows;
        }
    }
    if (used != cllm_gguf_n_tensors(g)) {
        for (uint64_t i = 0; i < cllm_gguf_n_tensors(g); i++) {
            const char *name = cllm_gguf_tensor_at(g, i)->name;
            int known = model_gguf_extra_tensor(&m->cfg, name);
            for (int j = 0; j < m->n_tensors && !known; j++) {
                model_gguf_part pn[MODEL_GGUF_MAX_PARTS];
                int np = model_gguf_parts(&m->cfg, &m->tensors[j], pn);
                for (int p = 0; p < np; p++) known |= !strcmp(pn[p].name, name);
            }
            if (!known)
                return cllm_error_set(err, CLLM_ERR_FORMAT, "%s: tensor '%s' is not used by this model config",
                                      cllm_gguf_path(g), name);
        }
    }
    if (m->cfg.tied_embeddings) views->output = views->tok_embd;
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int r = 0; r < LIN_LAYER_COUNT; r++) views->weight_bytes += view_bytes(&views->layer[l * LIN_LAYER_COUNT + r]);
    views->weight_bytes += view_bytes(&views->output);
    return CLLM_OK;
}

static int part_is_q8(const model_qpart *q) { return q->type == CLLM_GGML_Q8_0 || q->type == CLLM_GGML_Q4_0; }

/* Drops this process's pages of a copied range of the file mapping (the
 * whole pages inside [p, p + n)): the copy is what runs, so RSS holds the
 * weights once; the pages stay in the page cache, and the map reads them
 * back if anything touches the range again. */
static void release_map_range(const uint8_t *p, size_t n) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + n) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Places the matrices of v in the arena at *off (arena NULL: only counts
 * the bytes): q8_0/q4_0 (VNNI) and bf16 (AVX512-BF16, unless its prompts
 * go through oneDNN, which reads the file layout) parts of at least 16
 * rows repacked into quant.h's x16 layout when the kernels have it (rows
 * past the last group of 16 stay in the map), every other part copied as
 * it is. */
static void repack_view(const struct model_infer_views *views, model_qmat *v, uint8_t *arena, size_t *off) {
    for (int p = 0; p < v->n_parts; p++) {
        model_qpart *q = &v->part[p];
        const int x16 = q->rows >= CLLM_QUANT_X16_ROWS &&
                        (part_is_q8(q) ? views->k->gemm_x16 != NULL
                                       : q->type == CLLM_GGML_BF16 && views->k->gemm_x16_bf16 && v->cols % 32 == 0 &&
                                             !views->bf16_onednn);
        if (x16) {
            const int groups = q->rows / CLLM_QUANT_X16_ROWS;
            if (arena) {
                q->x16_groups = groups;
                q->x16 = arena + *off;
                cllm_quant_x16_pack(q->type, q->data, q->row_bytes, groups, v->cols, q->x16);
                release_map_range(q->data, (size_t)groups * CLLM_QUANT_X16_ROWS * q->row_bytes);
            }
            *off += cllm_quant_x16_bytes(q->type, groups, v->cols); /* a multiple of 64 */
        } else {
            const size_t bytes = (size_t)q->rows * q->row_bytes;
            if (arena) {
                memcpy(arena + *off, q->data, bytes);
                release_map_range(q->data, bytes);
                q->data = arena + *off;
            }
            *off += (bytes + 63) / 64 * 64;
        }
    }
}

/* Copies every matrix the linear layers read into one arena, in the order
 * decoding reads them (layer by layer, then the head), 2 MiB-aligned and
 * advised as transparent huge pages. Decoding streams every weight once per
 * token: with the 4 KiB pages of the file's mapping it ran ~12% slower
 * (GPT-2 f16 and f32, one thread), and separate allocations per matrix made
 * every matrix a cold start for the hardware prefetcher (~20% slower). */
static cllm_status repack_all(struct model_infer_views *views, cllm_error *err) {
    size_t bytes = 0;
    for (size_t i = 0; i < views->n_views; i++) repack_view(views, &views->layer[i], NULL, &bytes);
    repack_view(views, &views->output, NULL, &bytes);
    if (!bytes) return CLLM_OK;
    const size_t huge = (size_t)2 << 20, alloc = (bytes + huge - 1) / huge * huge;
    views->arena = aligned_alloc(huge, alloc);
    if (!views->arena)
        return cllm_error_set(err, CLLM_ERR_NOMEM,
                              "model load: out of memory copying %zu bytes of weights (keep_file_layout = 1 / "
                              "--no-repack runs them from the file's mapping instead)", bytes);
    madvise(views->arena, alloc, MADV_HUGEPAGE);
    size_t off = 0;
    for (size_t i = 0; i < views->n_views; i++) repack_view(views, &views->layer[i], views->arena, &off);
    repack_view(views, &views->output, views->arena, &off);
    return CLLM_OK;
}

void model_infer_views_free(struct model_infer_views *views) {
    if (!views) return;
    free(views->arena);
    free(views->layer);
    free(views->xq);
    free(views->xk);
    free(views->deq);
    cllm_gguf_close(views->g);
    free(views);
}

static size_t xq_bytes(size_t max_cols) {
    return LIN_TOK_BLOCK * cllm_quant_q8_0_bytes((int64_t)(max_cols + 31) / 32 * 32) + 64;
}
static size_t xk_bytes(size_t max_cols) {
    return LIN_MATVEC_MAX_N * cllm_quant_q8_K_bytes((int64_t)(max_cols + 255) / 256 * 256) + 64;
}

size_t model_infer_scratch_bytes(const cllm_model_config *cfg) {
    const size_t max_cols = (size_t)(cfg->ffn_hidden > cfg->n_embd ? cfg->ffn_hidden : cfg->n_embd);
    const size_t slots = omp_get_max_threads() > 0 ? (size_t)omp_get_max_threads() : 1;
    return xq_bytes(max_cols) + xk_bytes(max_cols) + sizeof(float) * LIN_ROW_BLOCK * max_cols * slots;
}

cllm_status cllm_model_load_gguf_mapped(const char *path, const cllm_model_options *opts, cllm_model **out,
                                        cllm_error *err) {
    *out = NULL;
    cllm_gguf *g = NULL;
    cllm_status st = cllm_gguf_open(&g, path, err);
    if (st != CLLM_OK) return st;
    return cllm_model_from_gguf_mapped(g, opts, out, err);
}

cllm_status cllm_model_from_gguf_mapped(cllm_gguf *g, const cllm_model_options *opts, cllm_model **out,
                                        cllm_error *err) {
    *out = NULL;
    const char *path = cllm_gguf_path(g);
    cllm_status st;
    cllm_model_config cfg;
    if ((st = cllm_model_config_from_gguf(g, &cfg, err)) != CLLM_OK) {
        cllm_gguf_close(g);
        return st;
    }
    cllm_model_options o = opts ? *opts : cllm_model_default_options();
    if (!opts && o.max_seq > cfg.context_length) o.max_seq = cfg.context_length;
    if (o.training && !o.freeze_base) {
        cllm_error_set(err, CLLM_ERR_ARG,
                       "%s: a mapped model trains only adapters (training = 1 needs freeze_base = 1: QLoRA)", path);
        cllm_gguf_close(g); /* path is g's: the message first */
        return CLLM_ERR_ARG;
    }
    cllm_model *m = NULL;
    if ((st = model_create_impl(&cfg, &o, 1, &m, err)) != CLLM_OK) {
        cllm_gguf_close(g);
        return st;
    }
    struct model_infer_views *views = calloc(1, sizeof *views);
    if (!views) {
        cllm_gguf_close(g);
        cllm_model_destroy(m);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "model load: out of memory");
    }
    m->views = views; /* owned by m from here: destroy frees it and closes g */
    views->g = g;
    views->k = cllm_quant_kernels_get();
    const size_t max_cols = (size_t)(cfg.ffn_hidden > cfg.n_embd ? cfg.ffn_hidden : cfg.n_embd);
    views->n_views = (size_t)cfg.n_layer * LIN_LAYER_COUNT;
    views->layer = calloc(views->n_views, sizeof *views->layer);
    views->xq = malloc(xq_bytes(max_cols));
    views->xk = malloc(xk_bytes(max_cols));
    views->max_cols = max_cols;
    views->deq_slots = omp_get_max_threads() > 0 ? omp_get_max_threads() : 1;
    views->deq = malloc(sizeof(float) * LIN_ROW_BLOCK * max_cols * (size_t)views->deq_slots);
    if (!views->layer || !views->xq || !views->xk || !views->deq) {
        cllm_model_destroy(m);
        return cllm_error_set(err, CLLM_ERR_NOMEM, "model load: out of memory for decode scratch");
    }
    if ((st = bind(m, views, err)) != CLLM_OK) {
        cllm_model_destroy(m);
        return st;
    }
    /* AMX runs bf16 tiles only through oneDNN here (no hand-written tile kernel) */
    views->bf16_onednn = o.bf16_prompt == CLLM_BF16_PROMPT_ONEDNN ||
                      (o.bf16_prompt == CLLM_BF16_PROMPT_AUTO && (cllm_kernels_get()->cpu_features & CLLM_CPU_AMX));
    if (!o.keep_file_layout && !o.training) { /* training reads the file layout (model_linear_backward) */
        if ((st = repack_all(views, err)) != CLLM_OK) {
            cllm_model_destroy(m);
            return st;
        }
    }
    *out = m;
    return CLLM_OK;
}

int cllm_model_is_mapped(const cllm_model *m) { return m && m->views != NULL; }

cllm_status cllm_model_check_file(const cllm_model *m, cllm_error *err) {
    return m->views ? cllm_gguf_check_file(m->views->g, err) : CLLM_OK;
}

size_t cllm_model_decode_weight_bytes(const cllm_model *m) {
    if (m->views) return m->views->weight_bytes;
    size_t b = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, "token_embd.weight") != 0 || m->cfg.tied_embeddings)
            if (strcmp(m->tensors[i].name, "position_embd.weight") != 0) b += m->tensors[i].numel * sizeof(float);
    return b;
}

/* ---- compute ----------------------------------------------------------------- */

/* 1 when a part of v multiplies activations of type act (cllm_quant_act_type). */
static int view_needs_act(const model_qmat *v, uint32_t act) {
    for (int p = 0; p < v->n_parts; p++)
        if (cllm_quant_act_type(v->part[p].type) == act) return 1;
    return 0;
}

/* 1 when a part of v runs on the integer GEMM (q8_0, q4_0). */
static int view_has_q8(const model_qmat *v) {
    for (int p = 0; p < v->n_parts; p++)
        if (part_is_q8(&v->part[p])) return 1;
    return 0;
}

/* q8_0 / q4_0 parts of a prompt chunk (n > LIN_MATVEC_MAX_N): the
 * activations are quantized to q8_0 once per block of LIN_TOK_BLOCK tokens
 * and multiplied by the integer GEMM. */
static void qmat_forward_q8(struct model_infer_views *views, const model_qmat *v, float *out, const float *in, int n,
                            int IC, int OC) {
    const size_t xs = cllm_quant_q8_0_bytes(IC);
    for (int t0 = 0; t0 < n; t0 += LIN_TOK_BLOCK) {
        const int nt = n - t0 < LIN_TOK_BLOCK ? n - t0 : LIN_TOK_BLOCK;
        for (int i = 0; i < nt; i++) views->k->quantize_q8_0(in + (size_t)(t0 + i) * IC, views->xq + (size_t)i * xs, IC);
        size_t row0 = 0;
        for (int p = 0; p < v->n_parts; p++) {
            const model_qpart *q = &v->part[p];
            if (part_is_q8(q)) {
                const int x16 = q->x16 != NULL;
                const int done = x16 ? q->x16_groups * CLLM_QUANT_X16_ROWS : 0;
                float *o = out + (size_t)t0 * OC + row0;
                if (x16) cllm_quant_gemm_x16(views->k, q->type, q->x16, q->x16_groups, IC, views->xq, xs, nt, o, (size_t)OC);
                if (done < q->rows) /* rows past the last group of 16 (GPT-2's 50257-row head) */
                    cllm_quant_gemm(views->k, q->type, q->data + (size_t)done * q->row_bytes, q->row_bytes, q->rows - done,
                                    IC, views->xq, xs, nt, o + done, (size_t)OC);
            }
            row0 += (size_t)q->rows;
        }
    }
}

/* Chunks of `step` rows (a multiple of 64) that cover every part of v. */
static int decode_chunks(const model_qmat *v, int step) {
    int n = 0;
    for (int p = 0; p < v->n_parts; p++) n += (v->part[p].rows + step - 1) / step;
    return n;
}

/* Decoding (n <= LIN_MATVEC_MAX_N tokens): matrix-vector products (q8_0 and
 * q4_0 on the x16 copy when there is one) in ONE parallel region over row
 * chunks of every part of the view (Llama's separate q, k, v: each 768 x
 * 768 alone was under the library's threshold and ran on one thread, a
 * third of each layer's weights), chunks handed out dynamically; the
 * library calls inside run serially (nested regions are inactive). */
static void qmat_decode(struct model_infer_views *views, const model_qmat *v, float *out, const float *in, int n, int IC,
                        int OC) {
    const size_t xs = cllm_quant_q8_0_bytes(IC), ks = cllm_quant_q8_K_bytes(IC);
    if (view_needs_act(v, CLLM_GGML_Q8_0))
        for (int i = 0; i < n; i++) views->k->quantize_q8_0(in + (size_t)i * IC, views->xq + (size_t)i * xs, IC);
    if (view_needs_act(v, CLLM_GGML_Q8_K))
        for (int i = 0; i < n; i++) views->k->quantize_q8_K(in + (size_t)i * IC, views->xk + (size_t)i * ks, IC);
    int64_t rows = 0;
    for (int p = 0; p < v->n_parts; p++) rows += v->part[p].rows;
    const int nth = omp_get_max_threads();
    const int par = nth > 1 && rows * IC * n >= LIN_DECODE_PAR_MIN;
    /* ~LIN_DECODE_CHUNKS_PER_THREAD chunks per thread, multiples of 64 rows: the x16 decode kernel
     * runs four 16-row groups at a time (a 96-row chunk left two groups to the slower one-group path) */
    const int chunk = par ? (int)((rows + (int64_t)LIN_DECODE_CHUNKS_PER_THREAD * nth - 1) /
                                  ((int64_t)LIN_DECODE_CHUNKS_PER_THREAD * nth) + 63) / 64 * 64
                          : (int)rows;
    int step = chunk;
    while (decode_chunks(v, step) > LIN_DECODE_MAX_CHUNKS) step *= 2; /* parts with more rows than chunks */
    int part_of[LIN_DECODE_MAX_CHUNKS], row_of[LIN_DECODE_MAX_CHUNKS], nchunks = 0;
    size_t col0[MODEL_GGUF_MAX_PARTS], row0 = 0;
    for (int p = 0; p < v->n_parts; p++) {
        col0[p] = row0;
        row0 += (size_t)v->part[p].rows;
        for (int r = 0; r < v->part[p].rows; r += step) part_of[nchunks] = p, row_of[nchunks++] = r;
    }
#pragma omp parallel for schedule(dynamic, 1) if (par && nchunks > 1)
    for (int c = 0; c < nchunks; c++) {
        const model_qpart *q = &v->part[part_of[c]];
        const int r = row_of[c], nr = q->rows - r < step ? q->rows - r : step;
        const uint8_t *w = q->data + (size_t)r * q->row_bytes;
        float *o = out + col0[part_of[c]] + (size_t)r;
        /* chunks start on 16-row groups: the chunk's rows in the x16 copy (q8_0, q4_0, bf16), then
         * any rows past the last full group (GPT-2's 50257-row head) from the file layout */
        const int packed = q->x16 ? q->x16_groups * CLLM_QUANT_X16_ROWS : 0;
        const int nx = packed > r ? (packed - r < nr ? packed - r : nr) : 0;
        const uint8_t *P = nx > 0 ? q->x16 + cllm_quant_x16_bytes(q->type, r / CLLM_QUANT_X16_ROWS, IC) : NULL;
        if (part_is_q8(q)) {
            if (nx > 0)
                cllm_quant_gemm_x16(views->k, q->type, P, nx / CLLM_QUANT_X16_ROWS, IC, views->xq, xs, n, o, (size_t)OC);
            if (nx < nr)
                cllm_quant_gemm(views->k, q->type, w + (size_t)nx * q->row_bytes, q->row_bytes, nr - nx, IC, views->xq, xs,
                                n, o + nx, (size_t)OC);
        } else if (cllm_quant_act_type(q->type) != CLLM_GGML_F32) {
            /* q4_1, q5_0, q5_1, k-quants: one dot per row and token (no x16 copy) */
            const int k8 = cllm_quant_act_type(q->type) == CLLM_GGML_Q8_K;
            for (int i = 0; i < n; i++)
                cllm_quant_matvec(views->k, q->type, w, q->row_bytes, nr, IC, NULL,
                                  k8 ? views->xk + (size_t)i * ks : views->xq + (size_t)i * xs, o + (size_t)i * OC);
        } else {
            if (nx > 0) cllm_quant_gemm_x16_bf16(views->k, P, nx / CLLM_QUANT_X16_ROWS, IC, in, n, o, (size_t)OC);
            for (int i = 0; i < n && nx < nr; i++)
                cllm_quant_matvec(views->k, q->type, w + (size_t)nx * q->row_bytes, q->row_bytes, nr - nx, IC,
                                  in + (size_t)i * IC, NULL, o + (size_t)i * OC + nx);
        }
    }
}

/* Columns done .. done + rest of out[n, OC] (out already offset to part
 * q's first row) = in @ rows done .. done + rest of q^T: f16/bf16 and the block
 * types in one parallel region; blocks of LIN_ROW_BLOCK rows handed out
 * dynamically (a thread that loses its core on a shared machine does not
 * hold the others up), each dequantized into the taking thread's scratch
 * slot and multiplied by a one-thread GEMM (oneDNN runs serially inside a
 * parallel region): no fork/join per block, dequantization threaded. */
static void deq_gemm_rows(struct model_infer_views *views, const model_qpart *q, int done, int rest, int n, int IC,
                          int OC, const float *in, float *out) {
    const int nth = omp_get_max_threads() < views->deq_slots ? omp_get_max_threads() : views->deq_slots;
    /* as many blocks as LIN_ROW_BLOCK needs, rounded up to a multiple of the
     * threads, of equal multiples of 16 rows: 768 rows were 3 blocks of 256,
     * one thread idle a third of the time on 2 threads */
    int nblk = (rest + LIN_ROW_BLOCK - 1) / LIN_ROW_BLOCK;
    nblk = (nblk + nth - 1) / nth * nth;
    const int blk = ((rest + nblk - 1) / nblk + 15) / 16 * 16;
    nblk = (rest + blk - 1) / blk;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth) if ((double)n * rest * IC >= LIN_PAR_MIN && nblk > 1)
    for (int bi = 0; bi < nblk; bi++) {
        const int r = done + bi * blk, rb = q->rows - r < blk ? q->rows - r : blk;
        float *deq = views->deq + (size_t)omp_get_thread_num() * LIN_ROW_BLOCK * views->max_cols;
        cllm_quant_dequant_rows(views->k, q->type, q->data + (size_t)r * q->row_bytes, q->row_bytes, rb, IC, deq,
                                (size_t)IC);
        /* out[:, r ..] = in[n, IC] @ deq[rb, IC]^T */
        cllm_sgemm(0, 1, n, rb, IC, 1.0f, in, IC, deq, IC, 0.0f, out + (size_t)r, OC);
    }
}

static void qmat_forward(struct model_infer_views *views, const model_qmat *v, float *out, const float *in, int n,
                         int IC, int OC) {
    CLLM_ASSERT(v->cols == IC);
    if (n <= LIN_MATVEC_MAX_N) {
        qmat_decode(views, v, out, in, n, IC, OC);
        return;
    }
    if (view_has_q8(v)) qmat_forward_q8(views, v, out, in, n, IC, OC);
    size_t row0 = 0;
    for (int p = 0; p < v->n_parts; p++) {
        const model_qpart *q = &v->part[p];
        if (part_is_q8(q)) {
            row0 += (size_t)q->rows;
            continue;
        }
        if (q->type == CLLM_GGML_F32) {
            /* f32 rows are used in place: one GEMM (threaded by oneDNN) covers the part;
             * out[:, row0 ..] = in[n, IC] @ W[rows, IC]^T (the map is 32-byte aligned) */
            cllm_sgemm(0, 1, n, q->rows, IC, 1.0f, in, IC, (const float *)(const void *)q->data, IC, 0.0f, out + row0,
                       OC);
            row0 += (size_t)q->rows;
            continue;
        }
        /* bf16 with an x16 copy: its groups through vdpbf16ps (activations rounded to
         * bf16, as llama.cpp does), then any rows past them below */
        const int done = q->x16 ? q->x16_groups * CLLM_QUANT_X16_ROWS : 0;
        if (q->x16) cllm_quant_gemm_x16_bf16(views->k, q->x16, q->x16_groups, IC, in, n, out + row0, (size_t)OC);
        int rest = q->rows - done;
        if (rest > 0 && q->type == CLLM_GGML_BF16 && views->bf16_onednn &&
            cllm_quant_gemm_bf16_onednn(views->k, q->data + (size_t)done * q->row_bytes, q->row_bytes, rest, IC, in, n,
                                        out + row0 + (size_t)done, (size_t)OC))
            rest = 0; /* else no bf16 matmul in oneDNN for this CPU: the dequantized route below */
        if (rest <= 0) {
            row0 += (size_t)q->rows;
            continue;
        }
        deq_gemm_rows(views, q, done, rest, n, IC, OC, in, out + row0);
        row0 += (size_t)q->rows;
    }
}

static const model_qmat *view_at(const cllm_model *m, int l, int role) {
    return l < 0 ? &m->views->output : &m->views->layer[(size_t)l * LIN_LAYER_COUNT + (size_t)role];
}

static void add_bias(float *out, const float *bias, int n, int OC) {
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * OC;
#pragma omp simd
        for (int j = 0; j < OC; j++) o[j] += bias[j]; /* left scalar at -O2 without the pragma */
    }
}

void model_infer_linear(cllm_model *m, int l, int role, float *out, const float *in, const float *w,
                        const float *bias, int n, int IC, int OC) {
    if (!m->views) {
        cllm_linear_forward(out, in, w, bias, n, IC, OC);
        if (m->lora) model_lora_forward(m, l, role, out, in, n, 0); /* adapters loaded at inference */
        return;
    }
    qmat_forward(m->views, view_at(m, l, role), out, in, n, IC, OC);
    if (bias) add_bias(out, bias, n, OC);
    if (m->lora) model_lora_forward(m, l, role, out, in, n, 0); /* adapters loaded at inference */
}

/* ---- training on the views (QLoRA) --------------------------------------------
 * A model loaded with training = 1 and freeze_base = 1 keeps its matrices in
 * the file's layout (no x16 copy) and multiplies them as f32: every part's
 * rows dequantized a block at a time, exactly the values a dequantized f32
 * copy of the file would hold. The quantized-activation kernels of decoding
 * are not used here: they would make the loss a step function of the
 * adapters (q8_0 activations), which gradients cannot follow. */

void model_linear_forward(cllm_model *m, int l, int role, float *out, const float *in, const float *w,
                          const float *bias, int n, int IC, int OC) {
    if (!m->views) {
        cllm_linear_forward(out, in, w, bias, n, IC, OC);
        return;
    }
    const model_qmat *v = view_at(m, l, role);
    CLLM_ASSERT(v->cols == IC);
    size_t row0 = 0;
    for (int p = 0; p < v->n_parts; p++) {
        const model_qpart *q = &v->part[p];
        if (q->type == CLLM_GGML_F32)
            cllm_sgemm(0, 1, n, q->rows, IC, 1.0f, in, IC, (const float *)(const void *)q->data, IC, 0.0f, out + row0,
                       OC);
        else
            deq_gemm_rows(m->views, q, 0, q->rows, n, IC, OC, in, out + row0);
        row0 += (size_t)q->rows;
    }
    CLLM_ASSERT(row0 == (size_t)OC);
    if (bias) add_bias(out, bias, n, OC);
}

void model_linear_backward(cllm_model *m, int l, int role, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, int n, int IC, int OC) {
    if (!m->views) {
        cllm_linear_backward(dinp, dw, db, dout, inp, w, n, IC, OC);
        return;
    }
    CLLM_ASSERT(!dw && !db); /* a mapped base is frozen */
    if (!dinp) return;
    struct model_infer_views *views = m->views;
    const model_qmat *v = view_at(m, l, role);
    CLLM_ASSERT(v->cols == IC);
    size_t row0 = 0;
    for (int p = 0; p < v->n_parts; p++) {
        const model_qpart *q = &v->part[p];
        if (q->type == CLLM_GGML_F32) {
            /* dinp[n, IC] += dout[:, row0 ..][n, rows] @ W[rows, IC] */
            cllm_sgemm(0, 0, n, IC, q->rows, 1.0f, dout + row0, OC, (const float *)(const void *)q->data, IC, 1.0f,
                       dinp, IC);
            row0 += (size_t)q->rows;
            continue;
        }
        /* blocks of LIN_ROW_BLOCK rows, one after another (they all add into dinp):
         * the block's rows dequantized by all threads into slot 0, then one
         * threaded GEMM */
        for (int r = 0; r < q->rows; r += LIN_ROW_BLOCK) {
            const int rb = q->rows - r < LIN_ROW_BLOCK ? q->rows - r : LIN_ROW_BLOCK, nsub = (rb + 15) / 16;
            float *deq = views->deq;
#pragma omp parallel for schedule(static) if ((size_t)rb * (size_t)IC >= (1u << 16) && nsub > 1)
            for (int s = 0; s < nsub; s++) {
                const int r0 = r + 16 * s, nr = rb - 16 * s < 16 ? rb - 16 * s : 16;
                cllm_quant_dequant_rows(views->k, q->type, q->data + (size_t)r0 * q->row_bytes, q->row_bytes, nr, IC,
                                        deq + (size_t)16 * s * IC, (size_t)IC);
            }
            cllm_sgemm(0, 0, n, IC, rb, 1.0f, dout + row0 + (size_t)r, OC, deq, IC, 1.0f, dinp, IC);
        }
        row0 += (size_t)q->rows;
    }
    CLLM_ASSERT(row0 == (size_t)OC);
    (void)inp;
    (void)w;
}

void model_infer_embed(cllm_model *m, float *x, const int32_t *tokens, const float *tok_embd,
                       const float *pos_table, int n, int pos) {
    if (!m->views) {
        cllm_embedding_forward(x, tokens, tok_embd, pos_table, 1, n, m->cfg.n_embd, pos);
        return;
    }
    const size_t C = (size_t)m->cfg.n_embd;
    const model_qmat *v = &m->views->tok_embd; /* one part: token_embd is never split */
    for (int i = 0; i < n; i++) {
        float *row = x + (size_t)i * C;
        cllm_quant_dequant_rows(m->views->k, v->part[0].type, v->part[0].data + (size_t)tokens[i] * v->part[0].row_bytes,
                                v->part[0].row_bytes, 1, (int)C, row, C);
        if (pos_table)
            for (size_t j = 0; j < C; j++) row[j] += pos_table[(size_t)(pos + i) * C + j];
    }
}
