/*
 * test_safetensors.c: the safetensors reader (formats/safetensors.h) on
 * hand-built files: valid variants give the right views without a copy,
 * every malformed header is refused with a message naming the tensor or
 * field, every truncation is refused, and a shard set validates its index.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cllm/formats/ggml_types.h"
#include "cllm/formats/safetensors.h"
#include "test.h"

static char tmpdir[128];

/* header JSON + data -> a file image (8-byte length, header, data) in buf; returns its size. */
static size_t image(uint8_t *buf, size_t cap, const char *json, const void *data, size_t n) {
    size_t h = strlen(json);
    if (8 + h + n > cap) abort();
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, json, h);
    if (n) memcpy(buf + 8 + h, data, n);
    return 8 + h + n;
}

static cllm_status open_img(const char *json, const void *data, size_t n, cllm_safetensors **s, cllm_error *err) {
    static uint8_t buf[1 << 16];
    size_t sz = image(buf, sizeof buf, json, data, n);
    return cllm_safetensors_open_memory(s, buf, sz, "t.safetensors", err);
}

static void test_safetensors_valid_views(void) {
    float a[4] = {1, 2, 3, 4};
    uint8_t data[22];
    memcpy(data, a, 16);
    uint16_t b[3] = {0x3f80, 0x4000, 0xc000}; /* bf16 1, 2, -2 */
    memcpy(data + 16, b, 6);
    static uint8_t buf[4096];
    const char *json = "{\"__metadata__\": {\"format\": \"pt\"}, \"b\": {\"dtype\": \"BF16\", \"shape\": [3], "
                       "\"data_offsets\": [16, 22]}, \"a\": {\"dtype\": \"F32\", \"shape\": [2, 2], "
                       "\"data_offsets\": [0, 16]}}   ";
    size_t sz = image(buf, sizeof buf, json, data, sizeof data);
    cllm_safetensors *s = NULL;
    cllm_error err;
    CHECK(cllm_safetensors_open_memory(&s, buf, sz, "t.safetensors", &err) == CLLM_OK, "%s", err.msg);
    if (!s) return;
    CHECK(cllm_safetensors_n_tensors(s) == 2, "2 tensors");
    const cllm_safetensors_tensor *ta = cllm_safetensors_find(s, "a"), *tb = cllm_safetensors_find(s, "b");
    CHECK(ta && ta->type == CLLM_GGML_F32 && ta->n_dims == 2 && ta->shape[0] == 2 && ta->shape[1] == 2 &&
              ta->n_elements == 4 && ta->nbytes == 16,
          "a's header");
    CHECK(ta && ta->data == buf + 8 + strlen(json), "a is a view into the buffer (no copy)");
    CHECK(tb && tb->type == CLLM_GGML_BF16 && tb->nbytes == 6 && tb->data == buf + 8 + strlen(json) + 16, "b's view");
    CHECK(cllm_safetensors_tensor_at(s, 0) == ta, "name order");
    CHECK(!cllm_safetensors_find(s, "c") && !cllm_safetensors_find(s, "__metadata__"), "absent names");
    cllm_safetensors_close(s);
    /* a 0-d scalar and an empty tensor */
    uint16_t one = 0x3c00;
    CHECK(open_img("{\"x\": {\"dtype\": \"F16\", \"shape\": [], \"data_offsets\": [0, 2]}, \"e\": {\"dtype\": \"F32\", "
                   "\"shape\": [0, 3], \"data_offsets\": [2, 2]}}",
                   &one, 2, &s, &err) == CLLM_OK,
          "scalar + empty: %s", err.msg);
    if (s) CHECK(cllm_safetensors_find(s, "x")->n_elements == 1 && cllm_safetensors_find(s, "e")->nbytes == 0, "sizes");
    cllm_safetensors_close(s);
    /* no tensors at all (a fuzz finding: the empty table reached qsort as NULL) */
    CHECK(open_img("{\"__metadata__\": {\"format\": \"pt\"}}", NULL, 0, &s, &err) == CLLM_OK && s &&
              cllm_safetensors_n_tensors(s) == 0 && !cllm_safetensors_find(s, "a"),
          "metadata only: %s", err.msg);
    cllm_safetensors_close(s);
}

static void test_safetensors_rejects_malformed(void) {
    static const struct {
        const char *json;
        size_t n;
        const char *want;
    } cases[] = {
        {"{\"a\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", 8, "dtype 'I64' is not supported"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8, "tensor 'a': shape x F32 size"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", "
         "\"shape\": [2], \"data_offsets\": [4, 12]}}", 12, "overlap"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, "unused"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8, "cover 4 of the data area's 8"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8, "end past the data area"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], \"data_offsets\": [0, 8]}}", 8,
         "overflows"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 8]}}", 8, "shape[0]"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 8]}}", 8, "shape[0]"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8, "data_offsets"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]}}", 8, "data_offsets"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8, "data_offsets"},
        {"{\"a\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8, "dtype missing"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8], \"x\": 1}}", 8, "unknown field 'x'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,2], \"data_offsets\": [0, 8]}}", 8, "more than 8"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, \"a\": {\"dtype\": \"F32\", "
         "\"shape\": [1], \"data_offsets\": [4, 8]}}", 8, "'a' appears twice"},
        {"{\"__metadata__\": {\"k\": 1}}", 0, "__metadata__.k is not a string"},
        {"{\"a\": 5}", 0, "entry is not an object"},
        {"[1, 2]", 0, "not a JSON object"},
        {"{\"a\": {} } x", 0, "bytes after the header"},
        {"{ ", 0, "not a JSON object"},
    };
    uint8_t data[16] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cllm_safetensors *s = NULL;
        cllm_error err = {0};
        cllm_status st = open_img(cases[i].json, data, cases[i].n, &s, &err);
        CHECK(st == CLLM_ERR_FORMAT && !s && strstr(err.msg, cases[i].want) && strstr(err.msg, "t.safetensors"),
              "case %zu: status %d, '%s' (want '%s')", i, (int)st, err.msg, cases[i].want);
        cllm_safetensors_close(s);
    }
    /* header length larger than the file, and over the cap */
    uint8_t buf[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    cllm_safetensors *s = NULL;
    cllm_error err;
    CHECK(cllm_safetensors_open_memory(&s, buf, 10, "t.safetensors", &err) == CLLM_ERR_FORMAT &&
              strstr(err.msg, "header length 65535 but only 2 bytes follow"),
          "%s", err.msg);
    buf[4] = 1;
    CHECK(cllm_safetensors_open_memory(&s, buf, 10, "t.safetensors", &err) == CLLM_ERR_FORMAT &&
              strstr(err.msg, "exceeds"),
          "%s", err.msg);
    CHECK(cllm_safetensors_open_memory(&s, buf, 5, "t.safetensors", &err) == CLLM_ERR_FORMAT, "5 bytes");
}

static void test_safetensors_every_truncation_rejected(void) {
    static uint8_t buf[512];
    float v[3] = {1, 2, 3};
    size_t sz = image(buf, sizeof buf, "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 12]}}", v, 12);
    int bad = 0;
    for (size_t n = 0; n < sz; n++) {
        cllm_safetensors *s = NULL;
        cllm_error err;
        uint8_t *copy = malloc(n ? n : 1); /* exact-size heap copy: ASan sees any read past n */
        memcpy(copy, buf, n);
        if (cllm_safetensors_open_memory(&s, copy, n, "t", &err) == CLLM_OK) bad++;
        cllm_safetensors_close(s);
        free(copy);
    }
    CHECK(bad == 0, "%d truncations accepted", bad);
}

static int write_file(const char *path, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, n, f) == n;
    return (fclose(f) == 0) && ok;
}

static void test_safetensors_shards(void) {
    static uint8_t buf[1024];
    char path[256];
    float v[2] = {5, 6};
    size_t sz = image(buf, sizeof buf, "{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", v, 4);
    snprintf(path, sizeof path, "%s/s1.safetensors", tmpdir);
    CHECK(write_file(path, buf, sz), "write");
    sz = image(buf, sizeof buf, "{\"y\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", v + 1, 4);
    snprintf(path, sizeof path, "%s/s2.safetensors", tmpdir);
    CHECK(write_file(path, buf, sz), "write");
    static const struct {
        const char *index, *want;
    } cases[] = {
        {"{\"weight_map\": {\"x\": \"s1.safetensors\", \"y\": \"s2.safetensors\"}}", NULL},
        {"{\"weight_map\": {\"x\": \"s1.safetensors\", \"y\": \"s3.safetensors\"}}", "names shard s3.safetensors"},
        {"{\"weight_map\": {\"x\": \"s1.safetensors\", \"y\": \"s1.safetensors\"}}", "tensor 'y' is listed in weight_map"},
        {"{\"weight_map\": {\"x\": \"s1.safetensors\", \"y\": \"../s2.safetensors\"}}", "not a file name"},
        {"{\"weight_map\": {\"x\": \"s2.safetensors\", \"y\": \"s1.safetensors\"}}", "listed in shard"},
        {"{\"weight_map\": {\"x\": \"s1.safetensors\"}}", ""}, /* a set of one shard: valid, s2 unread */
        {"{\"metadata\": {}}", "no \"weight_map\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", tmpdir);
        CHECK(write_file(path, (const uint8_t *)cases[i].index, strlen(cases[i].index)), "write");
        cllm_safetensors *s = NULL;
        cllm_error err = {0};
        cllm_status st = cllm_safetensors_open_dir(&s, tmpdir, &err);
        if (!cases[i].want) {
            CHECK(st == CLLM_OK && s && cllm_safetensors_n_files(s) == 2 && cllm_safetensors_n_tensors(s) == 2,
                  "case %zu: %s", i, err.msg);
            const cllm_safetensors_tensor *y = s ? cllm_safetensors_find(s, "y") : NULL;
            float got = 0;
            if (y) memcpy(&got, y->data, 4);
            CHECK(y && got == 6 && strstr(y->file, "s2.safetensors"), "y from s2");
        } else if (!cases[i].want[0]) {
            CHECK(st == CLLM_OK && s && cllm_safetensors_n_tensors(s) == 1, "case %zu: %s", i, err.msg);
        } else {
            CHECK(st == CLLM_ERR_FORMAT && !s && strstr(err.msg, cases[i].want), "case %zu: '%s' (want '%s')", i,
                  err.msg, cases[i].want);
        }
        cllm_safetensors_close(s);
    }
    cllm_safetensors *s = NULL;
    cllm_error err;
    unlink(path);
    CHECK(cllm_safetensors_open_dir(&s, tmpdir, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "neither"), "%s", err.msg);
    snprintf(path, sizeof path, "%s/s1.safetensors", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/s2.safetensors", tmpdir);
    unlink(path);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cllm_test_safetensors_%ld", (long)getpid());
    mkdir(tmpdir, 0755);
    TEST_RUN(test_safetensors_valid_views);
    TEST_RUN(test_safetensors_rejects_malformed);
    TEST_RUN(test_safetensors_every_truncation_rejected);
    TEST_RUN(test_safetensors_shards);
    rmdir(tmpdir);
    return test_finish();
}
