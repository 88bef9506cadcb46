/*
 * quantize.c: cllm_quantize_gguf (cllm/infer/quantize.h): copy a GGUF file's
 * metadata, convert its matrices to the target ggml type row by row (rows
 * split over OpenMP threads), and write the result atomically.
 *
 * Does not: choose mixed per-tensor types (llama.cpp's k-quant recipes), use
 * an importance matrix, or load a model: it works on the file's tensors
 * directly, so any GGUF with f32/f16/bf16/q8_0/q4_0 tensors converts.
 */
#include <stdlib.h>
#include <string.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/formats/gguf.h"
#include "cllm/infer/quantize.h"

#define QUANT_VERSION 2 /* ggml's GGML_QNT_VERSION for the current q4_0/q8_0 layouts */

int cllm_quantize_file_type(uint32_t type) {
    switch (type) {
    case CLLM_GGML_F32: return 0;  /* LLAMA_FTYPE_ALL_F32 */
    case CLLM_GGML_F16: return 1;  /* LLAMA_FTYPE_MOSTLY_F16 */
    case CLLM_GGML_Q4_0: return 2; /* LLAMA_FTYPE_MOSTLY_Q4_0 */
    case CLLM_GGML_Q8_0: return 7; /* LLAMA_FTYPE_MOSTLY_Q8_0 */
    case CLLM_GGML_BF16: return 32;/* LLAMA_FTYPE_MOSTLY_BF16 */
    default: return -1;
    }
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
    cllm_quantize_stats st_local;
    cllm_quantize_stats *s = stats ? stats : &st_local;
    memset(s, 0, sizeof *s);
    if (cllm_quantize_file_type(type) < 0)
        return cllm_error_set(err, CLLM_ERR_ARG,
                              "quantize: target type %s is not one of f32, f16, bf16, q8_0, q4_0",
                              cllm_ggml_type_name(type));
    cllm_gguf *g = NULL;
    cllm_status st = cllm_gguf_open(&g, in_path, err);
    if (st != CLLM_OK) return st;
    const uint64_t nt = cllm_gguf_n_tensors(g);
    uint8_t **bufs = calloc(nt ? nt : 1, sizeof *bufs);
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    if (!bufs || !w) {
        st = cllm_error_set(err, CLLM_ERR_NOMEM, "quantize: out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < cllm_gguf_n_kv(g); i++)
        if ((st = cllm_gguf_set_kv(w, cllm_gguf_kv_at(g, i), err)) != CLLM_OK) goto done;
    if ((st = cllm_gguf_set_u32(w, "general.file_type", (uint32_t)cllm_quantize_file_type(type), err)) != CLLM_OK)
        goto done;
    if ((type == CLLM_GGML_Q8_0 || type == CLLM_GGML_Q4_0) &&
        (st = cllm_gguf_set_u32(w, "general.quantization_version", QUANT_VERSION, err)) != CLLM_OK)
        goto done;
    for (uint64_t i = 0; i < nt; i++) {
        const cllm_gguf_tensor *t = cllm_gguf_tensor_at(g, i);
        s->bytes_in += t->nbytes;
        uint32_t dst = t->type;
        if (t->n_dims >= 2 && strcmp(t->name, "position_embd.weight") != 0) {
            dst = type;
            size_t probe;
            if (!cllm_ggml_row_size(dst, t->dims[0], &probe)) {
                dst = CLLM_GGML_F16; /* rows not a multiple of the block: llama.cpp's f16 fallback */
                s->n_fallback++;
            }
        }
        const void *data = t->data;
        size_t nbytes = t->nbytes;
        if (dst != t->type) {
            if (!cllm_ggml_type_get(t->type) || !cllm_ggml_type_get(t->type)->has_kernels) {
                st = cllm_error_set(err, CLLM_ERR_FORMAT,
                                    "quantize: %s: tensor '%s' has type %s, which cllm cannot convert",
                                    in_path, t->name, cllm_ggml_type_name(t->type));
                goto done;
            }
            size_t row = 0;
            cllm_ggml_row_size(dst, t->dims[0], &row);
            const uint64_t rows = (uint64_t)(t->n_elements / t->dims[0]);
            nbytes = row * rows;
            if (!(bufs[i] = malloc(nbytes ? nbytes : 1))) {
                st = cllm_error_set(err, CLLM_ERR_NOMEM, "quantize: out of memory converting '%s' (%zu bytes)",
                                    t->name, nbytes);
                goto done;
            }
            if (convert_rows(t, dst, bufs[i], row) != 0) {
                st = cllm_error_set(err, CLLM_ERR_NOMEM, "quantize: converting '%s' failed (out of memory)", t->name);
                goto done;
            }
            data = bufs[i];
            if (dst == type) s->n_converted++;
        } else {
            s->n_kept++;
        }
        s->bytes_out += nbytes;
        if ((st = cllm_gguf_add_tensor(w, t->name, dst, t->n_dims, t->dims, data, nbytes, err)) != CLLM_OK)
            goto done;
        s->n_tensors++;
    }
    st = cllm_gguf_writer_write(w, out_path, err);
done:
    cllm_gguf_writer_destroy(w);
    for (uint64_t i = 0; bufs && i < nt; i++) free(bufs[i]);
    free(bufs);
    cllm_gguf_close(g);
    return st;
}
