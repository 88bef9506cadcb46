/*
 * spm_vocab.c: makes a SentencePiece vocabulary GGUF for the interop test
 * (tests/interop/spm_llama.sh) out of a cllm BPE vocabulary: every ordinary
 * token that is whole UTF-8 becomes a piece (spaces as U+2581) with score
 * -id (earlier merges first, as SentencePiece scores run), after <unk> <s>
 * </s> and the 256 <0xXX> byte tokens; then the control tokens
 * <|im_start|> <|im_end|> and the user-defined <tool>. The file carries
 * llama hyper-parameters and no tensors, which llama.cpp loads vocab-only
 * (llama-tokenize does).
 * With a third argument "no-newline", pieces holding a newline are left out
 * (so cllm encodes line by line, see spm.c).
 * Usage: spm_vocab BPE_TOKENIZER OUT.gguf [no-newline]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/formats/gguf.h"
#include "cllm/tokenizer/tokenizer.h"

/* Length of valid UTF-8 (no overlongs, surrogates or > U+10FFFF), or 0. */
static int valid_utf8(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if ((p[i + j] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[i + 1] < 0xA0) return 0;
        if (c == 0xED && p[i + 1] > 0x9F) return 0;
        if (c == 0xF0 && p[i + 1] < 0x90) return 0;
        if (c == 0xF4 && p[i + 1] > 0x8F) return 0;
        i += k;
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3 && !(argc == 4 && !strcmp(argv[3], "no-newline"))) {
        fprintf(stderr, "usage: %s BPE_TOKENIZER OUT.gguf [no-newline]\n", argv[0]);
        return 2;
    }
    int no_newline = argc == 4;
    cllm_error err;
    cllm_tokenizer *bpe;
    if (cllm_tokenizer_load(argv[1], &bpe, &err) != CLLM_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    uint32_t V = cllm_tokenizer_n_vocab(bpe), cap = V + 300, n = 0;
    char **strs = calloc(cap, sizeof *strs);
    float *scores = calloc(cap, sizeof *scores);
    int32_t *types = calloc(cap, sizeof *types);
    if (!strs || !scores || !types) return 1;
#define ADD(s, sc, ty) (strs[n] = (s), scores[n] = (sc), types[n] = (ty), n++)
    ADD(strdup("<unk>"), 0, 2);
    ADD(strdup("<s>"), 0, 3);
    ADD(strdup("</s>"), 0, 3);
    for (int b = 0; b < 256; b++) {
        char *s = malloc(8);
        snprintf(s, 8, "<0x%02X>", b);
        ADD(s, 0, 6);
    }
    for (uint32_t id = 0; id < V; id++) {
        const uint8_t *p;
        size_t len;
        if (cllm_tokenizer_token_kind(bpe, id) != CLLM_TOKEN_NORMAL) continue;
        if (cllm_tokenizer_token_bytes(bpe, id, &p, &len, &err) != CLLM_OK || !valid_utf8(p, len)) continue;
        if (len == 1 && (p[0] < 0x20 || p[0] == 0x7f)) continue; /* control characters stay byte tokens */
        if (no_newline && memchr(p, '\n', len)) continue;
        char *s = malloc(3 * len + 1);
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
            if (p[i] == ' ') {
                memcpy(s + o, "\xe2\x96\x81", 3);
                o += 3;
            } else {
                s[o++] = (char)p[i];
            }
        }
        s[o] = '\0';
        int dup = 0; /* piece texts must stay unique: byte tokens, specials, and a token
                        holding a literal U+2581 next to the one for a space */
        for (uint32_t k = 0; k < n && !dup; k++) dup = !strcmp(strs[k], s);
        if (dup) {
            free(s);
            continue;
        }
        ADD(s, -(float)id, 1);
    }
    ADD(strdup("<|im_start|>"), 0, 3);
    ADD(strdup("<|im_end|>"), 0, 3);
    ADD(strdup("<tool>"), 0, 4);
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    int ok = w && cllm_gguf_set_str(w, "general.architecture", "llama", &err) == CLLM_OK &&
             cllm_gguf_set_str(w, "general.name", "cllm spm interop vocabulary", &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "llama.context_length", 256, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "llama.embedding_length", 64, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "llama.block_count", 1, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "llama.feed_forward_length", 128, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "llama.attention.head_count", 4, &err) == CLLM_OK &&
             cllm_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &err) == CLLM_OK &&
             cllm_gguf_set_str(w, "tokenizer.ggml.model", "llama", &err) == CLLM_OK &&
             cllm_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)strs, NULL, n, &err) == CLLM_OK &&
             cllm_gguf_set_arr(w, "tokenizer.ggml.scores", CLLM_GGUF_FLOAT32, scores, n, &err) == CLLM_OK &&
             cllm_gguf_set_arr(w, "tokenizer.ggml.token_type", CLLM_GGUF_INT32, types, n, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2, &err) == CLLM_OK &&
             cllm_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0, &err) == CLLM_OK &&
             cllm_gguf_writer_write(w, argv[2], &err) == CLLM_OK;
    if (!ok) fprintf(stderr, "%s: %s\n", argv[2], err.msg);
    else printf("%u pieces (%u from %u BPE tokens)\n", n, n - 262, V);
    cllm_gguf_writer_destroy(w);
    for (uint32_t i = 0; i < n; i++) free(strs[i]);
    free(strs);
    free(scores);
    free(types);
    cllm_tokenizer_destroy(bpe);
    return ok ? 0 : 1;
}
