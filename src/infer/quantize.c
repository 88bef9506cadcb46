/*
 * quantize.c: cllm_quantize_gguf (cllm/infer/quantize.h): copy a GGUF file's
 * metadata, convert its matrices to the target ggml type row by row (rows
 * split over OpenMP threads), and write the result atomically.
 *
 * With a mix (Q3_K_M, Q4_K_M, Q5_K_M), the type of each matrix follows
 * llama-quantize's rules (mix_type below, stated in quantize.h).
 *
 * Does not: use an importance matrix, handle mixture-of-experts or Falcon
 * special cases of llama-quantize, or load a model: it works on the file's
 * tensors directly, so any GGUF whose tensors have types with kernels
 * converts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/formats/gguf.h"
#include "cllm/infer/quantize.h"

#define QUANT_VERSION 2 /* ggml's GGML_QNT_VERSION for the current block layouts */

int cllm_quantize_file_type(uint32_t type) {
    switch (type) {
    case CLLM_GGML_F32: return 0;  /* LLAMA_FTYPE_ALL_F32 */
    case CLLM_GGML_F16: return 1;  /* LLAMA_FTYPE_MOSTLY_F16 */
    case CLLM_GGML_Q4_0: return 2; /* LLAMA_FTYPE_MOSTLY_Q4_0 */
    case CLLM_GGML_Q8_0: return 7; /* LLAMA_FTYPE_MOSTLY_Q8_0 */
    case CLLM_GGML_BF16: return 32;/* LLAMA_FTYPE_MOSTLY_BF16 */
    case CLLM_GGML_Q4_1: return 3; /* LLAMA_FTYPE_MOSTLY_Q4_1 */
    case CLLM_GGML_Q5_0: return 8;
    case CLLM_GGML_Q5_1: return 9;
    case CLLM_GGML_Q2_K: return 10;
    case CLLM_GGML_Q3_K: return 12; /* llama-quantize's "Q3_K" is an alias of Q3_K_M */
    case CLLM_GGML_Q4_K: return 15; /* Q4_K_M */
    case CLLM_GGML_Q5_K: return 17; /* Q5_K_M */
    case CLLM_GGML_Q6_K: return 18;
    default: return -1;
    }
}

static const struct {
    const char *name;
    cllm_quantize_mix mix;
    uint32_t base;
} mixes[] = {
    {"q3_k_m", CLLM_QUANTIZE_Q3_K_M, CLLM_GGML_Q3_K},
    {"q4_k_m", CLLM_QUANTIZE_Q4_K_M, CLLM_GGML_Q4_K},
    {"q5_k_m", CLLM_QUANTIZE_Q5_K_M, CLLM_GGML_Q5_K},
};

int cllm_quantize_parse_target(const char *name, uint32_t *type, cllm_quantize_mix *mix) {
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++)
        if (!strcasecmp(name, mixes[i].name)) {
            *type = mixes[i].base;
            *mix = mixes[i].mix;
            return 0;
        }
    cllm_ggml_type t;
    if (cllm_ggml_type_parse(name, &t) != 0) return -1;
    *type = t;
    *mix = CLLM_QUANTIZE_PURE;
    return 0;
}

/* ---- llama-quantize's choice of type per tensor ------------------------------ */

/* A type whose block does not divide the rows: llama.cpp's fallback chain. */
static uint32_t fallback_type(uint32_t type, int64_t cols) {
    size_t probe;
    if (cllm_ggml_row_size(type, cols, &probe)) return type;
    switch (type) {
    case CLLM_GGML_Q2_K: case CLLM_GGML_Q3_K: type = CLLM_GGML_Q4_0; break;
    case CLLM_GGML_Q4_K: type = CLLM_GGML_Q5_0; break;
    case CLLM_GGML_Q5_K: type = CLLM_GGML_Q5_1; break;
    case CLLM_GGML_Q6_K: type = CLLM_GGML_Q8_0; break;
    default: break;
    }
    return cllm_ggml_row_size(type, cols, &probe) ? type : CLLM_GGML_F16;
}

/* llama-quantize's "use more bits" layers: the first and last eighth, and every third layer between. */
static int more_bits(int layer, int n_layer) {
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

/* What the mix writes a quantizable matrix `name` (rows of cols) in, before
 * the fallback. n_v: attn_v / attn_qkv tensors in the file; n_layer: the
 * block count; tied: the file has no output.weight. llama-quantize counts
 * attn_v and ffn_down tensors in its (layer-sorted) order; with one per
 * layer the count is the layer number, which is what is used here. */
static uint32_t mix_type(cllm_quantize_mix mix, uint32_t base, const char *name, int64_t cols, int n_v, int n_layer,
                         int tied) {
    if (mix == CLLM_QUANTIZE_PURE) return base;
    int layer = -1;
    sscanf(name, "blk.%d.", &layer);
    const int is_output = !strcmp(name, "output.weight"), is_embd = !strcmp(name, "token_embd.weight");
    if (is_output || (tied && is_embd)) {
        size_t probe;
        return cllm_ggml_row_size(base, cols, &probe) ? CLLM_GGML_Q6_K : CLLM_GGML_Q8_0;
    }
    if (is_embd) return base;
    if (strstr(name, "attn_qkv.weight") || strstr(name, "attn_v.weight")) {
        if (mix == CLLM_QUANTIZE_Q3_K_M) return layer < 2 ? CLLM_GGML_Q5_K : CLLM_GGML_Q4_K;
        return more_bits(layer, n_v) ? CLLM_GGML_Q6_K : base;
    }
    if (strstr(name, "ffn_down")) {
        if (mix == CLLM_QUANTIZE_Q3_K_M) return layer < n_layer / 16 ? CLLM_GGML_Q5_K : CLLM_GGML_Q4_K;
        return more_bits(layer, n_layer) ? CLLM_GGML_Q6_K : base;
    }
    if (strstr(name, "attn_output.weight") && mix == CLLM_QUANTIZE_Q3_K_M) return CLLM_GGML_Q4_K;
    return base;
}

/* llama-quantize quantizes tensors of 2+ dims whose name ends in "weight",
 * except norms and the positional embedding (the other exclusions are
 * tensors of architectures cllm does not have). */
static int quantizable(const cllm_gguf_tensor *t) {
    const size_t len = strlen(t->name);
    return t->n_dims >= 2 && len >= 6 && !strcmp(t->name + len - 6, "weight") && !strstr(t->name, "_norm.weight") &&
           strcmp(t->name, "position_embd.weight") != 0;
}

/* Converts one tensor's rows from src_type to dst_type through f32. */
static int convert_rows(const cllm_gguf_tensor *t, uint32_t dst_type, uint8_t *dst, size_t dst_row) {
    const int64_t cols = t->dims[0], rows = t->n_elements / cols;
    size_t src_row = 0;
    cllm_ggml_row_size(t->type, cols, &src_row);
    const uint8_t *src = t->data;
    int bad = 0;
#pragma omp parallel reduction(|| : bad)
    {
        float *tmp = malloc(sizeof(float) * (size_t)cols);
        if (!tmp) bad = 1;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            if (!tmp) continue;
            if (cllm_ggml_to_f32(t->type, src + (size_t)r * src_row, tmp, cols) != 0 ||
                cllm_ggml_from_f32(dst_type, tmp, dst + (size_t)r * dst_row, cols) != 0)
                bad = 1;
        }
        free(tmp);
    }
    return bad ? -1 : 0;
}

cllm_status cllm_quantize_gguf(const char *in_path, const char *out_path, uint32_t type,
                               cllm_quantize_stats *stats, cllm_error *err) {
    return cllm_quantize_gguf_mix(in_path, out_path, type, CLLM_QUANTIZE_PURE, stats, err);
}

cllm_status cllm_quantize_add_tensors(cllm_gguf_writer *w, const cllm_gguf_tensor *ts, uint64_t nt, uint32_t type,
                                      cllm_quantize_mix mix, const char *src_name, void ***bufs_out,
                                      cllm_quantize_stats *stats, cllm_error *err) {
    cllm_quantize_stats st_local;
    cllm_quantize_stats *s = stats ? stats : &st_local;
    memset(s, 0, sizeof *s);
    *bufs_out = NULL;
    if ((int)mix < 0 || mix >= CLLM_QUANTIZE_MIX_COUNT)
        return cllm_error_set(err, CLLM_ERR_ARG, "quantize: unknown mix %d", (int)mix);
    if (mix != CLLM_QUANTIZE_PURE) type = mixes[mix - 1].base;
    if (cllm_quantize_file_type(type) < 0)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "quantize: target type %s is not one of f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, "
                              "q2_K, q3_K, q4_K, q5_K, q6_K",
                              cllm_ggml_type_name(type));
    uint8_t **bufs = calloc(nt ? nt : 1, sizeof *bufs);
    if (!bufs) return cllm_error_set(err, CLLM_ERR_NOMEM, "quantize: out of memory");
    *bufs_out = (void **)bufs;
    cllm_status st = cllm_gguf_set_u32(w, "general.file_type", (uint32_t)cllm_quantize_file_type(type), err);
    if (st != CLLM_OK) return st;
    if (cllm_ggml_type_get(type)->block_size > 1 &&
        (st = cllm_gguf_set_u32(w, "general.quantization_version", QUANT_VERSION, err)) != CLLM_OK)
        return st;
    int n_v = 0, n_layer = 0, tied = 1;
    for (uint64_t i = 0; i < nt; i++) { /* what the mix rules count */
        const char *name = ts[i].name;
        int layer = -1;
        if (sscanf(name, "blk.%d.", &layer) == 1 && layer + 1 > n_layer) n_layer = layer + 1;
        n_v += strstr(name, "attn_v.weight") != NULL || strstr(name, "attn_qkv.weight") != NULL;
        tied &= strcmp(name, "output.weight") != 0;
    }
    for (uint64_t i = 0; i < nt; i++) {
        const cllm_gguf_tensor *t = &ts[i];
        s->bytes_in += t->nbytes;
        uint32_t dst = t->type;
        if (quantizable(t)) {
            const uint32_t want = mix_type(mix, type, t->name, t->dims[0], n_v, n_layer, tied);
            dst = fallback_type(want, t->dims[0]); /* rows not a multiple of the block: llama.cpp's fallbacks */
            s->n_fallback += dst != want;
        }
        const void *data = t->data;
        size_t nbytes = t->nbytes;
        if (dst != t->type) {
            if (!cllm_ggml_type_get(t->type) || !cllm_ggml_type_get(t->type)->has_kernels)
                return cllm_error_set(err, CLLM_ERR_FORMAT,
                                      "quantize: %s: tensor '%s' has type %s, which cllm cannot convert", src_name,
                                      t->name, cllm_ggml_type_name(t->type));
            size_t row = 0;
            cllm_ggml_row_size(dst, t->dims[0], &row);
            const uint64_t rows = (uint64_t)(t->n_elements / t->dims[0]);
            nbytes = row * rows;
            if (!(bufs[i] = malloc(nbytes ? nbytes : 1)))
                return cllm_error_set(err, CLLM_ERR_NOMEM, "quantize: out of memory converting '%s' (%zu bytes)",
                                      t->name, nbytes);
            if (convert_rows(t, dst, bufs[i], row) != 0)
                return cllm_error_set(err, CLLM_ERR_NOMEM, "quantize: converting '%s' failed (out of memory)",
                                      t->name);
            data = bufs[i];
            if (dst == type || (mix != CLLM_QUANTIZE_PURE && dst == mix_type(mix, type, t->name, t->dims[0], n_v,
                                                                              n_layer, tied)))
                s->n_converted++;
        } else {
            s->n_kept++;
        }
        s->bytes_out += nbytes;
        if ((st = cllm_gguf_add_tensor(w, t->name, dst, t->n_dims, t->dims, data, nbytes, err)) != CLLM_OK)
            return st;
        s->n_tensors++;
    }
    return CLLM_OK;
}

void cllm_quantize_free_buffers(void **bufs, uint64_t n) {
    for (uint64_t i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs);
}

cllm_status cllm_quantize_gguf_mix(const char *in_path, const char *out_path, uint32_t type, cllm_quantize_mix mix,
                                   cllm_quantize_stats *stats, cllm_error *err) {
    cllm_gguf *g = NULL;
    cllm_status st = cllm_gguf_open(&g, in_path, err);
    if (st != CLLM_OK) return st;
    const uint64_t nt = cllm_gguf_n_tensors(g);
    cllm_gguf_tensor *ts = malloc((nt ? nt : 1) * sizeof *ts);
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    void **bufs = NULL;
    if (!ts || !w) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "quantize: out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < cllm_gguf_n_kv(g); i++)
        if ((st = cllm_gguf_set_kv(w, cllm_gguf_kv_at(g, i), err)) != CLLM_OK) goto done;
    for (uint64_t i = 0; i < nt; i++) ts[i] = *cllm_gguf_tensor_at(g, i);
    if ((st = cllm_quantize_add_tensors(w, ts, nt, type, mix, in_path, &bufs, stats, err)) != CLLM_OK) goto done;
    st = cllm_gguf_writer_write(w, out_path, err);
done:
    cllm_gguf_writer_destroy(w);
    cllm_quantize_free_buffers(bufs, nt);
    free(ts);
    cllm_gguf_close(g);
    return st;
}
