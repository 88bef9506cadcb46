/*
 * presets.c: named model shapes (GPT-2 family, Llama-style, tiny test models).
 *
 * GPT-2 shapes are Radford et al. 2019 (vocab 50257, context 1024, tied
 * embeddings, biases, learned positions, LayerNorm, GELU). Llama-style shapes
 * use RoPE, RMSNorm (eps 1e-5), SwiGLU with H about 8/3*C, no biases; the
 * names give the approximate parameter count at the preset's vocabulary
 * (llama-110m is llama2.c's stories110M shape, llama-1b TinyLlama's). Only
 * shapes live here; no training hyperparameters.
 */
#include <string.h>

#include "cllm/model/model.h"

typedef struct {
    const char *name, *description;
    int V, ctx, L, NH, NKV, C, H;
    int llama; /* 1: rope + rmsnorm + swiglu + no bias; 2: that plus q/k/v biases and NEOX
                  rope pairs (Qwen2); 0: GPT-2 style */
    int tied, bias;
    int window; /* sliding window (Mistral); 0 (omitted): none */
} preset;

static const preset presets[] = {
    {"gpt2", "GPT-2 small, 124M", 50257, 1024, 12, 12, 12, 768, 3072, 0, 1, 1, 0},
    {"gpt2-medium", "GPT-2 medium, 350M", 50257, 1024, 24, 16, 16, 1024, 4096, 0, 1, 1, 0},
    {"gpt2-large", "GPT-2 large, 774M", 50257, 1024, 36, 20, 20, 1280, 5120, 0, 1, 1, 0},
    {"gpt2-xl", "GPT-2 XL, 1.5B", 50257, 1024, 48, 25, 25, 1600, 6400, 0, 1, 1, 0},
    {"llama-1m", "Llama-style ~1M (vocab 512, GQA 8/4)", 512, 256, 5, 8, 4, 128, 352, 1, 1, 0, 0},
    {"llama-10m", "Llama-style ~10M (vocab 4096, GQA 8/4)", 4096, 512, 12, 8, 4, 256, 688, 1, 1, 0, 0},
    {"llama-30m", "Llama-style ~31M (vocab 32000, GQA 6/2)", 32000, 1024, 12, 6, 2, 384, 1024, 1, 1, 0, 0},
    {"llama-110m", "Llama-style ~110M (llama2.c stories110M shape)", 32000, 1024, 12, 12, 12, 768, 2048, 1, 1, 0, 0},
    {"llama-350m", "Llama-style ~350M (GQA 16/8, untied)", 32000, 2048, 24, 16, 8, 1024, 2816, 1, 0, 0, 0},
    {"llama-1b", "Llama-style ~1.1B (TinyLlama shape, GQA 32/4, untied)", 32000, 2048, 22, 32, 4, 2048, 5632, 1, 0, 0, 0},
    {"nanogpt-shakespeare", "nanoGPT CPU recipe at byte level: 4 layers, 4 heads, 128 wide, context 64", 256, 64, 4, 4, 4, 128, 512, 0, 1, 0, 0},
    {"tiny-gpt2", "test model: GPT-2 style, 2 layers, 32 wide, vocab 64", 64, 16, 2, 4, 4, 32, 128, 0, 1, 1, 0},
    {"tiny-llama", "test model: Llama style, 2 layers, 32 wide, GQA 4/2, vocab 64", 64, 16, 2, 4, 2, 32, 64, 1, 0, 0, 0},
    {"qwen2-0.5b", "Qwen2/Qwen2.5 0.5B shape (q/k/v biases, GQA 14/2, tied, rope_theta 1e6)", 151936, 32768, 24, 14, 2, 896, 4864, 2, 1, 0, 0},
    {"mistral-7b", "Mistral 7B v0.1 shape (GQA 32/8, untied, sliding window 4096)", 32000, 32768, 32, 32, 8, 4096, 14336, 1, 0, 0, 4096},
    {"tiny-mistral", "test model: Mistral style (sliding window 4), 2 layers, 32 wide, GQA 4/2, vocab 64", 64, 16, 2, 4, 2, 32, 64, 1, 0, 0, 4},
    {"tiny-qwen2", "test model: Qwen2 style (q/k/v biases, NEOX rope), 2 layers, 32 wide, GQA 4/2, vocab 64", 64, 16, 2, 4, 2, 32, 64, 2, 0, 0, 0},
};
enum { N_PRESETS = sizeof presets / sizeof presets[0] };

int cllm_model_preset_count(void) { return N_PRESETS; }
const char *cllm_model_preset_name(int i) { return i >= 0 && i < N_PRESETS ? presets[i].name : NULL; }
const char *cllm_model_preset_description(int i) {
    return i >= 0 && i < N_PRESETS ? presets[i].description : NULL;
}

cllm_status cllm_model_preset(const char *name, cllm_model_config *cfg, cllm_error *err) {
    for (int i = 0; name && i < N_PRESETS; i++) {
        const preset *p = &presets[i];
        if (strcmp(name, p->name)) continue;
        cllm_model_config c = cllm_model_default_config();
        c.vocab_size = p->V;
        c.context_length = p->ctx;
        c.n_layer = p->L;
        c.n_head = p->NH;
        c.n_kv_head = p->NKV;
        c.n_embd = p->C;
        c.ffn_hidden = p->H;
        c.tied_embeddings = p->tied;
        c.bias = p->bias;
        c.sliding_window = p->window;
        if (p->llama) {
            c.pos = CLLM_POS_ROPE;
            c.norm = CLLM_NORM_RMSNORM;
            c.mlp = CLLM_MLP_SWIGLU;
        }
        if (p->llama == 2) {
            c.qkv_bias = 1;
            c.rope_neox = 1;
            c.rope_theta = 1000000.0f;
            c.norm_eps = 1e-6f;
        }
        *cfg = c;
        return CLLM_OK;
    }
    char list[1024] = "";
    for (int i = 0; i < N_PRESETS; i++) {
        if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, presets[i].name, sizeof list - strlen(list) - 1);
    }
    return cllm_error_set(err, CLLM_ERR_ARG, "unknown model preset '%s' (known: %s)",
                          name ? name : "(null)", list);
}
