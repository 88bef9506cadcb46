/*
 * fuzz_tokenizer_files.c: the foreign vocabulary formats, chosen by the
 * input's first byte: tiktoken rank files, Hugging Face tokenizer.json, and
 * GPT-2's encoder.json + vocab.bpe pair (split at the first NUL byte), and
 * a SentencePiece .model (protobuf) when the first byte is 0xFF.
 * A loaded vocabulary encodes a fixed text once.
 */
#include <string.h>

#include "cllm/tokenizer/tokenizer.h"
#include "fuzz.h"

static void exercise(cllm_tokenizer *tok) {
    static const char text[] = "The cat sat. 고양이가 앉았다! <|endoftext|> 42";
    cllm_tokens ids = {0};
    cllm_error err;
    cllm_special_set all = {1, NULL, 0};
    (void)cllm_tokenizer_encode(tok, text, sizeof text - 1, NULL, &ids, &err);
    (void)cllm_tokenizer_encode(tok, text, sizeof text - 1, &all, &ids, &err);
    cllm_tokens_free(&ids);
    cllm_tokenizer_destroy(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char path[64], path2[64];
    cllm_error err;
    cllm_tokenizer *tok = NULL;
    int which = data[0] == 0xFF ? 3 : data[0] % 3;
    data++, size--;
    if (which == 2) { /* GPT-2 pair */
        const uint8_t *nul = memchr(data, 0, size);
        size_t n1 = nul ? (size_t)(nul - data) : size;
        size_t n2 = nul ? size - n1 - 1 : 0;
        int fd1 = fuzz_file_open(data, n1, path, sizeof path);
        int fd2 = fuzz_file_open(nul ? nul + 1 : data, n2, path2, sizeof path2);
        if (fd1 >= 0 && fd2 >= 0 && cllm_tokenizer_load_gpt2(path, path2, &tok, &err) == CLLM_OK) exercise(tok);
        fuzz_file_close(fd1);
        fuzz_file_close(fd2);
        return 0;
    }
    int fd = fuzz_file_open(data, size, path, sizeof path);
    if (fd < 0) return 0;
    cllm_status st = which == 0   ? cllm_tokenizer_load_tiktoken(path, CLLM_PRETOK_CL100K, NULL, NULL, 0, &tok, &err)
                     : which == 1 ? cllm_tokenizer_load_hf(path, &tok, &err)
                                  : cllm_tokenizer_load_spm_model(path, &tok, &err);
    if (st == CLLM_OK) exercise(tok);
    fuzz_file_close(fd);
    return 0;
}
