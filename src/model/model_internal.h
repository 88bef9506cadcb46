/*
 * model_internal.h: the cllm_model struct and per-layer views, shared by the
 * files of src/model/ only (not installed, not public API).
 *
 * Lifetime groups, each one 64-byte-aligned allocation:
 *   params  [num_params]            the tensor table's data (tensors.c)
 *   grads   [num_params]            same layout (training only)
 *   acts    activations + scratch   sized for max_batch x max_seq (plan in tensors.c)
 *   consts  sinusoidal table        [context_length, C] (sinusoidal models only)
 *   kv      K/V cache + decode scratch (kv_slots > 0 only)
 */
#ifndef CLLM_MODEL_INTERNAL_H
#define CLLM_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/formats/gguf.h"
#include "cllm/layers/layers.h"
#include "cllm/model/model.h"

/* Tensor roles inside one block, and global ones. */
enum {
    ROLE_ATTN_NORM_W = 0, ROLE_ATTN_NORM_B, ROLE_QKV_W, ROLE_QKV_B, ROLE_ATTN_OUT_W,
    ROLE_ATTN_OUT_B, ROLE_FFN_NORM_W, ROLE_FFN_NORM_B, ROLE_FFN_UP_W, ROLE_FFN_UP_B,
    ROLE_FFN_DOWN_W, ROLE_FFN_DOWN_B, ROLE_LAYER_COUNT
};
enum { GROLE_TOK_EMBD = 0, GROLE_POS_EMBD, GROLE_OUT_NORM_W, GROLE_OUT_NORM_B, GROLE_OUTPUT, GROLE_COUNT };

#define MODEL_NO_TENSOR ((size_t)-1)

/* One block's weights (or gradients: same view over the grads block).
 * NULL where the config has no such tensor (biases off, RMSNorm bias). */
typedef struct {
    float *attn_norm_w, *attn_norm_b; /* [C] */
    float *qkv_w, *qkv_b;             /* [QKV, C], [QKV] */
    float *attn_out_w, *attn_out_b;   /* [C, C], [C] */
    float *ffn_norm_w, *ffn_norm_b;   /* [C] */
    float *ffn_up_w, *ffn_up_b;       /* [Hu, C], [Hu]; Hu = H (gelu) or 2H (swiglu: gate rows, up rows) */
    float *ffn_down_w, *ffn_down_b;   /* [C, H], [C] */
} model_layer_weights;

typedef struct {
    float *tok_embd;           /* [V, C] */
    float *pos_embd;           /* [context_length, C] learned only, else NULL */
    float *out_norm_w, *out_norm_b; /* [C] */
    float *output;             /* [V, C]: output.weight, or tok_embd when tied */
} model_global_weights;

/* One block's saved activations for B*T <= max rows (N = B*T). In a model
 * created without training, every layer shares layer 0's buffers. */
typedef struct {
    float *ln1;                 /* [N, C] attention norm output */
    float *ln1_mean, *ln1_rstd; /* [N] (mean only for LayerNorm) */
    float *qkv;                 /* [N, QKV] after RoPE */
    float *att;                 /* [B, NH, T, T] softmax probabilities */
    float *atty;                /* [N, C] attention output before the projection */
    float *res2;                /* [N, C] residual after the attention branch */
    float *ln2;                 /* [N, C] */
    float *ln2_mean, *ln2_rstd; /* [N] */
    float *fch;                 /* [N, Hu] up projection */
    float *fact;                /* [N, H] activation output */
    float *res3;                /* [N, C] block output */
    uint8_t *mask_attn, *mask_mlp; /* [N*C] dropout masks (NULL without dropout or training) */
} model_layer_acts;

typedef struct {
    float *emb;                 /* [N, C] embeddings (after dropout): block 0 input */
    uint8_t *mask_emb;          /* [N*C] */
    float *lnf;                 /* [N, C] final norm output */
    float *lnf_mean, *lnf_rstd; /* [N] */
    float *logits;              /* [N, V]; dlogits after backward (computed in place) */
    float *row_max, *row_rsum;  /* [N] softmax statistics per row (cross-entropy backward) */
    float *losses;              /* [N] */
    float *proj, *drop;         /* [N, C] scratch: projection outputs, dropout outputs */
    /* backward scratch (training only) */
    float *dres;                /* [N, C] gradient of the residual stream */
    float *dln;                 /* [N, C] gradient of a norm output */
    float *dqkv;                /* [N, QKV] */
    float *datt;                /* [B, NH, T, T] */
    float *datty;               /* [N, C] */
    float *dfch;                /* [N, Hu] */
    float *dfact;               /* [N, H] */
    float *dproj;               /* [N, C] gradient of a projection output through dropout */
} model_global_acts;

/* Bytes of one cached K (or V) position: NKV*HS floats, or NKV*HS/32 q8_0
 * blocks (tensors.c). */
size_t model_kv_row_bytes(const cllm_model *m);

/* Decode (KV cache) buffers, for one chunk of n <= max_seq tokens. */
typedef struct {
    float *k, *v;               /* [L, slots, kv_context, NKV*HS] (kv_type f32, else NULL) */
    uint8_t *kq, *vq;           /* [L, slots, kv_context, row] rows in kv_type: NKV*HS/32 q8_0 blocks or
                                   NKV*HS fp16 values (kv_type f32: NULL, k/v hold the rows) */
    uint8_t *qq;                /* [max_seq, NH*HS/32] q8_0 blocks: the queries (kv_type q8_0) */
    float *kdq, *vdq;           /* [kv_context, HS] one KV head widened to f32 for a chunk (q8_0, f16) */
    float *x;                   /* [n, C] residual stream */
    float *h;                   /* [n, C] norm output */
    float *mean, *rstd;         /* [n] */
    float *qkv;                 /* [n, QKV] */
    float *atty;                /* [n, C] */
    float *proj;                /* [n, C] */
    float *fch;                 /* [n, Hu] */
    float *fact;                /* [n, H] */
    float *scores;              /* [max(NH, max_seq), kv_context]: per-head rows, or a chunk's rows */
    float *logits;              /* [n, V] */
} model_kv;

struct cllm_model {
    cllm_model_config cfg;
    cllm_model_options opts;
    int HS, QKV, Hu;            /* head size, fused qkv width, up-projection width */

    cllm_tensor *tensors;       /* [n_tensors], owned */
    int n_tensors;
    void (*grad_ready)(void *ctx, int layer); /* cllm_model_set_grad_ready_hook */
    void *grad_ready_ctx;
    size_t n_params;
    size_t layer_off[CLLM_MODEL_MAX_LAYERS][ROLE_LAYER_COUNT]; /* MODEL_NO_TENSOR if absent */
    size_t global_off[GROLE_COUNT];

    float *params;              /* [n_params] */
    float *grads;               /* [n_params] or NULL */
    float *acts_mem;            /* activation block */
    float *consts;              /* [context_length, C] sinusoidal table or NULL */
    cllm_rope_params rope;      /* RoPE of the config (layers.h); rope.freq_div = rope_div */
    double rope_div[512];       /* per-pair frequency divisors (llama3 scaling; else unused) */
    float *kv_mem;              /* KV block or NULL */

    model_layer_acts *la;       /* [L] */
    model_global_acts ga;
    model_kv kv;
    int *kv_len;                /* [kv_slots] cached length per slot */

    int train_mode;
    uint64_t dropout_seed;
    int last_B, last_T;         /* of the last forward; 0 when none */
    int last_has_targets;
    int last_dropout;           /* 1 if the last forward applied dropout */
    int64_t last_num_targets;
    int backward_done;          /* logits overwritten by dlogits */
    float logit_scale;          /* 1 / logit temperature for forwards with targets; 0 = unset (1) */
    int32_t *tokens;            /* [max_batch * max_seq] copy of the last forward's tokens */
    int32_t *targets;           /* [max_batch * max_seq] copy of the last forward's targets */

    struct model_infer_views *views;  /* weight views of a mapped GGUF (infer_linear.c); NULL: f32 params */
    size_t params_map_bytes;    /* params was mmap'ed lazily (mapped models), else 0 */

    struct model_lora *lora;    /* LoRA adapters (lora.c) or NULL */
    int32_t *seg;               /* [max_batch * max_seq] segment ids of a packed forward (segments.c) */
    int seg_pending;            /* 1: the next forward uses seg (set by cllm_model_forward_packed) */
    int last_seg;               /* 1: the last forward was packed (backward uses seg) */
};

/* ---- LoRA hooks (lora.c) ---------------------------------------------------
 * role is LIN_QKV, LIN_ATTN_OUT, LIN_FFN_UP or LIN_FFN_DOWN. Forward adds the
 * adapters of (layer l, role) to out[n, OC of the role] given the linear's
 * input in[n, IC]; save = 1 keeps x A^T for backward (training forward),
 * 0 uses scratch (decode). Backward accumulates adapter gradients and
 * din[n, IC] += ... from dout. Both do nothing for roles without adapters. */
void model_lora_forward(cllm_model *m, int l, int role, float *out, const float *in, int n, int save);
void model_lora_backward(cllm_model *m, int l, int role, const float *dout, const float *in, float *din, int n);
void model_lora_free(struct model_lora *lo);

/* ---- packed sequences (segments.c) -------------------------------------------
 * Positions restart at each run of equal seg ids in a row. */
void model_seg_add_pos(const cllm_model *m, float *x, const float *pos_table, int B, int T);
void model_seg_pos_backward(const cllm_model *m, float *dpos, const float *dx, int B, int T);
void model_seg_rope(const cllm_model *m, float *qkv, int B, int T, int backward);

/* Backward below the output head, from ga.dln = d(loss)/d(lnf) of the last
 * forward (backward.c); accumulates into the gradient block. */
void model_backward_from_lnf(cllm_model *m);
/* dlogits (in the logits buffer, rows x V) times the logit scale 1/T (heads.c). */
void model_scale_dlogits(cllm_model *m, size_t rows);

/* Views of block l over `base` (params or grads). */
void model_layer_view(const cllm_model *m, float *base, int l, model_layer_weights *w);
void model_global_view(const cllm_model *m, float *base, model_global_weights *w);

/* Norm dispatch: LayerNorm (mean used) or RMSNorm (mean ignored). */
void model_norm_forward(const cllm_model *m, float *out, float *mean, float *rstd, const float *inp,
                        const float *w, const float *b, int N);
/* RoPE on the q and k heads of qkv rows x[B,T,QKV-wide] (row stride `stride`)
 * at positions pos0 + t; backward = 1 applies the transpose (forward.c). */
void model_rope(const cllm_model *m, float *qkv, int B, int T, size_t stride, int pos0, int backward);

/* ---- the model <-> GGUF tensor mapping (gguf_io.c) ---------------------------
 * The model fuses q/k/v (attn_qkv) and gate/up (ffn_gate_up); llama.cpp's
 * `llama` arch stores q, k, v apart and both archs store gate, up apart.
 * model_gguf_parts writes the 1..MODEL_GGUF_MAX_PARTS file tensors of model
 * tensor t to out (rows stacked in order, row0 the first row of each in t)
 * and returns their count: the one copy of this table, used by saving,
 * loading and the mapped-model binding (infer_linear.c). */
#define MODEL_GGUF_MAX_PARTS 3
typedef struct {
    char name[CLLM_GGUF_MAX_NAME]; /* file tensor name, e.g. "blk.3.attn_q.weight" */
    int64_t row0;                  /* first row of the model tensor */
    int64_t rows;                  /* rows in this part (elements for 1-D) */
    int64_t cols;                  /* row length (1 for 1-D) */
    int ndim;                      /* 1 or 2 */
} model_gguf_part;
int model_gguf_parts(const cllm_model_config *cfg, const cllm_tensor *t, model_gguf_part *out);
/* Llama 3.1 RoPE divisors (llama.cpp's name); not a parameter: derived from
 * the config, checked against the file by cllm_model_config_from_gguf. */
#define MODEL_ROPE_FREQS "rope_freqs.weight"
/* 1 when a file tensor outside the table belongs to this config (rope_freqs). */
int model_gguf_extra_tensor(const cllm_model_config *cfg, const char *name);

/* ---- the inference linear layer (infer_linear.c) -------------------------- ----------------------------
 * Matrix roles of the decode path. */
enum { LIN_QKV = 0, LIN_ATTN_OUT, LIN_FFN_UP, LIN_FFN_DOWN, LIN_LAYER_COUNT };
#define LIN_OUTPUT (-1) /* pass as `role` with l = -1 for the output head */

/* out[n, OC] = in[n, IC] W^T + bias, where W is the f32 `w` for an ordinary
 * model or the weight view of (layer l, role) for a mapped one. */
void model_infer_linear(cllm_model *m, int l, int role, float *out, const float *in, const float *w,
                        const float *bias, int n, int IC, int OC);
/* The training forward/backward of a linear layer (forward.c, backward.c,
 * heads.c): an ordinary model's f32 `w` through cllm_linear_forward/backward;
 * a mapped model (QLoRA: frozen matrices in their ggml types) through row
 * blocks dequantized into per-thread scratch and the f32 GEMM, so the
 * product uses exactly the numbers a dequantized copy would hold (no
 * activation quantization). Backward of a mapped model computes only
 * dinp += dout W (dw and db must be NULL: the base is frozen). */
void model_linear_forward(cllm_model *m, int l, int role, float *out, const float *in, const float *w,
                          const float *bias, int n, int IC, int OC);
void model_linear_backward(cllm_model *m, int l, int role, float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, int n, int IC, int OC);
/* x[n, C] = token embedding rows (+ pos_table rows pos..pos+n-1 if not NULL). */
void model_infer_embed(cllm_model *m, float *x, const int32_t *tokens, const float *tok_embd,
                       const float *pos_table, int n, int pos);
/* Bytes of the scratch a mapped model of cfg allocates at load (q8_0/q8_K
 * activations and one dequantization block per OpenMP thread). */
size_t model_infer_scratch_bytes(const cllm_model_config *cfg);
/* Frees the views and unmaps the file (NULL-safe); called by cllm_model_destroy. */
void model_infer_views_free(struct model_infer_views *views);

/* cllm_model_create with the parameter block reserved lazily (mmap, pages
 * untouched until written) when lazy_params is 1. */
cllm_status model_create_impl(const cllm_model_config *cfg, const cllm_model_options *opts, int lazy_params,
                              cllm_model **out, cllm_error *err);

/* ---- the decode pass (decode.c) and the KV cache (kv_cache.c) ---------------
 * The rows of one decode pass: row i is a token of slot model_row_slot(r, i)
 * at position model_row_pos(r, i). Either per-row arrays (slots, pos) or,
 * with slots == NULL, one slot's chunk of consecutive positions (slot,
 * pos0 + i); n <= max_seq (checked by the entry points). */
typedef struct {
    int n;
    const int *slots, *pos; /* [n] each, or both NULL */
    int slot, pos0;         /* the chunk's slot and first position when slots == NULL */
} model_decode_rows;
static inline int model_row_slot(const model_decode_rows *r, int i) { return r->slots ? r->slots[i] : r->slot; }
static inline int model_row_pos(const model_decode_rows *r, int i) { return r->pos ? r->pos[i] : r->pos0 + i; }

/* Writes the key and value rows of one position: kvrow[2*NKV*HS] is K then V
 * (the tail of a qkv row after RoPE), stored in the cache's type. */
void model_kv_store(cllm_model *m, int l, int slot, int pos, const float *kvrow);
/* Attention of the rows' queries (qkv[n, QKV], query part used) against
 * their slots' cached positions 0..pos in layer l, whatever the cache type:
 * a chunk (slots == NULL, n > 1) through GEMMs, other rows through the
 * kv_attn.h kernels. out[n, NH*HS]. The rows' keys and values must have
 * been stored. */
void model_kv_attend(cllm_model *m, int l, float *out, const float *qkv, const model_decode_rows *rows);

#endif
