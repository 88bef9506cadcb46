/*
 * fuzz_convert.c: `cllm convert`'s reading of config.json: architecture,
 * hyperparameters, rope_scaling, the refusals, the tensor plan and its
 * check against a checkpoint. The input is config.json; the folder (made
 * once, under /tmp) holds a one-tensor model.safetensors, so a config that
 * parses goes on to the tensor check and stops there (missing or
 * mis-shaped tensors), before any tokenizer or output file.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cllm/infer/convert.h"
#include "fuzz.h"

static char dir[64];

static int write_all(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, n, f) == n;
    return (fclose(f) == 0) && ok;
}

static void cleanup(void) {
    static const char *const names[] = {"model.safetensors", "config.json", "out.gguf"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int setup(void) {
    if (dir[0]) return 1;
    char tmpl[] = "/tmp/cllm-fuzz-convert.XXXXXX";
    if (!mkdtemp(tmpl)) return 0;
    snprintf(dir, sizeof dir, "%s", tmpl);
    atexit(cleanup);
    static const char hdr[] = "{\"model.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    uint8_t buf[8 + sizeof hdr - 1 + 16] = {0};
    buf[0] = (uint8_t)(sizeof hdr - 1);
    memcpy(buf + 8, hdr, sizeof hdr - 1);
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    return write_all(path, buf, sizeof buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!setup()) return 0;
    char path[128], out[128];
    snprintf(path, sizeof path, "%s/config.json", dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    if (!write_all(path, data, size)) return 0;
    cllm_error err;
    cllm_convert_stats s;
    if (cllm_convert_hf(dir, out, NULL, &s, &err) == CLLM_OK) abort(); /* no tokenizer: can never succeed */
    return 0;
}
