/*
 * test_gguf.c: the GGUF reader/writer and the ggml type table.
 *
 * - round trips of every key/value type and tensor type (metadata equal,
 *   bytes equal, and write -> read -> write gives the identical file);
 * - a table of handcrafted malformed files (RELIABILITY.md "Model and
 *   checkpoint files"), each rejected with a message naming the file and the
 *   field at fault, plus every truncation and single-byte mutations of a
 *   valid file (no crash, under ASan/UBSan too);
 * - typed getters' type and range checks, writer argument checks;
 * - fp16/bf16 conversion and q8_0/q4_0 block layouts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cllm/core/fileio.h"
#include "cllm/formats/ggml_types.h"
#include "cllm/formats/gguf.h"
#include "test.h"

static char tmpdir[256];

/* ---- a raw byte builder for handcrafted files ------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_bytes(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void b_le(buf *b, uint64_t v, int n) {
    uint8_t t[8];
    for (int i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    b_bytes(b, t, (size_t)n);
}
static void b_u32(buf *b, uint64_t v) { b_le(b, v, 4); }
static void b_u64(buf *b, uint64_t v) { b_le(b, v, 8); }
static void b_str(buf *b, const char *s) {
    b_u64(b, strlen(s));
    b_bytes(b, s, strlen(s));
}
static void b_pad(buf *b, size_t a) {
    while (b->n % a) b_le(b, 0, 1);
}
static void b_fill(buf *b, size_t n) {
    for (size_t i = 0; i < n; i++) b_le(b, (uint8_t)(i * 7 + 1), 1);
}
static void hdr(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b_bytes(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void kv_u32(buf *b, const char *key, uint32_t v) {
    b_str(b, key);
    b_u32(b, CLLM_GGUF_UINT32);
    b_u32(b, v);
}
static void kv_str(buf *b, const char *key, const char *v) {
    b_str(b, key);
    b_u32(b, CLLM_GGUF_STRING);
    b_str(b, v);
}
static void tinfo(buf *b, const char *name, uint32_t n_dims, const uint64_t *dims, uint32_t type,
                  uint64_t offset) {
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) b_u64(b, dims[i]);
    b_u32(b, type);
    b_u64(b, offset);
}

/* The valid base file the malformed cases are variations of:
 * 3 kvs, tensor t0 f32 [32,2] (256 bytes at 0), t1 q8_0 [32] (34 bytes at 256). */
static const uint64_t d_t0[2] = {32, 2}, d_t1[1] = {32};
static void base_kvs(buf *b) {
    kv_str(b, "general.architecture", "llama");
    kv_u32(b, "a.u32", 7);
    b_str(b, "arr");
    b_u32(b, CLLM_GGUF_ARRAY);
    b_u32(b, CLLM_GGUF_INT32);
    b_u64(b, 3);
    b_u32(b, 1), b_u32(b, 2), b_u32(b, 3);
}
static void base_data(buf *b, size_t align) {
    b_pad(b, align);
    b_fill(b, 256);
    b_fill(b, 34);
    b_pad(b, align);
}
static void build_valid(buf *b) {
    hdr(b, 3, 2, 3);
    base_kvs(b);
    tinfo(b, "t0", 2, d_t0, CLLM_GGML_F32, 0);
    tinfo(b, "t1", 1, d_t1, CLLM_GGML_Q8_0, 256);
    base_data(b, 32);
}
/* Same, with the two tensor infos given by the caller (offsets, types...). */
static void build_tensors(buf *b, const char *n0, uint32_t nd0, const uint64_t *dims0, uint32_t ty0,
                          uint64_t off0, uint64_t off1) {
    hdr(b, 3, 2, 3);
    base_kvs(b);
    tinfo(b, n0, nd0, dims0, ty0, off0);
    tinfo(b, "t1", 1, d_t1, CLLM_GGML_Q8_0, off1);
    base_data(b, 32);
}
static void build_one_kv(buf *b, void (*kv)(buf *)) {
    hdr(b, 3, 0, 1);
    kv(b);
}

/* ---- malformed-file builders ------------------------------------------ */

static void m_empty(buf *b) { (void)b; }
static void m_len1(buf *b) { build_valid(b); b->n = 1; }
static void m_len2(buf *b) { build_valid(b); b->n = 2; }
static void m_len3(buf *b) { build_valid(b); b->n = 3; }
static void m_len4(buf *b) { build_valid(b); b->n = 4; }
static void m_len5(buf *b) { build_valid(b); b->n = 5; }
static void m_len6(buf *b) { build_valid(b); b->n = 6; }
static void m_len7(buf *b) { build_valid(b); b->n = 7; }
static void m_magic(buf *b) { build_valid(b); memcpy(b->p, "GGML", 4); }
static void m_v0(buf *b) { build_valid(b); b->p[4] = 0; }
static void m_v1(buf *b) { build_valid(b); b->p[4] = 1; }
static void m_v4(buf *b) { build_valid(b); b->p[4] = 4; }
static void m_header_cut(buf *b) { build_valid(b); b->n = 20; }
static void m_ntensors_max(buf *b) { hdr(b, 3, UINT64_MAX, 3); base_kvs(b); }
static void m_nkv_max(buf *b) { hdr(b, 3, 0, UINT64_MAX); base_kvs(b); }
static void m_nkv_too_many(buf *b) { hdr(b, 3, 0, 1000); base_kvs(b); }
static void m_ntensors_too_many(buf *b) { hdr(b, 3, 100, 3); base_kvs(b); tinfo(b, "t1", 1, d_t1, CLLM_GGML_Q8_0, 0); }
static void m_key_len_huge(buf *b) { hdr(b, 3, 0, 1); b_u64(b, UINT64_MAX); b_fill(b, 40); }
static void kv_strlen_huge(buf *b) { b_str(b, "k"); b_u32(b, CLLM_GGUF_STRING); b_u64(b, 1ull << 40); b_fill(b, 16); }
static void m_str_len_huge(buf *b) { build_one_kv(b, kv_strlen_huge); }
static void kv_arr_huge(buf *b) { b_str(b, "k"); b_u32(b, CLLM_GGUF_ARRAY); b_u32(b, CLLM_GGUF_UINT32); b_u64(b, UINT64_MAX); b_fill(b, 16); }
static void m_arr_len_huge(buf *b) { build_one_kv(b, kv_arr_huge); }
static void kv_strarr_huge(buf *b) { b_str(b, "k"); b_u32(b, CLLM_GGUF_ARRAY); b_u32(b, CLLM_GGUF_STRING); b_u64(b, 1ull << 62); b_fill(b, 64); }
static void m_strarr_len_huge(buf *b) { build_one_kv(b, kv_strarr_huge); }
static void kv_strarr_elem_huge(buf *b) { b_str(b, "k"); b_u32(b, CLLM_GGUF_ARRAY); b_u32(b, CLLM_GGUF_STRING); b_u64(b, 2); b_str(b, "ok"); b_u64(b, 1000); b_fill(b, 10); }
static void m_strarr_elem_huge(buf *b) { build_one_kv(b, kv_strarr_elem_huge); }
static void kv_nested(buf *b) { b_str(b, "k"); b_u32(b, CLLM_GGUF_ARRAY); b_u32(b, CLLM_GGUF_ARRAY); b_u64(b, 1); b_u32(b, CLLM_GGUF_UINT8); b_u64(b, 1); b_fill(b, 1); }
static void m_nested(buf *b) { build_one_kv(b, kv_nested); }
static void kv_bad_type(buf *b) { b_str(b, "k"); b_u32(b, 13); b_u32(b, 0); }
static void m_value_type(buf *b) { build_one_kv(b, kv_bad_type); }
static void kv_bad_elem_type(buf *b) { b_str(b, "k"); b_u32(b, CLLM_GGUF_ARRAY); b_u32(b, 99); b_u64(b, 1); b_u32(b, 0); }
static void m_elem_type(buf *b) { build_one_kv(b, kv_bad_elem_type); }
static void kv_bool2(buf *b) { b_str(b, "k"); b_u32(b, CLLM_GGUF_BOOL); b_le(b, 2, 1); }
static void m_bool(buf *b) { build_one_kv(b, kv_bool2); }
static void kv_boolarr(buf *b) { b_str(b, "k"); b_u32(b, CLLM_GGUF_ARRAY); b_u32(b, CLLM_GGUF_BOOL); b_u64(b, 3); b_le(b, 1, 1); b_le(b, 0, 1); b_le(b, 7, 1); }
static void m_bool_arr(buf *b) { build_one_kv(b, kv_boolarr); }
static void kv_empty_key(buf *b) { kv_u32(b, "", 1); }
static void m_empty_key(buf *b) { build_one_kv(b, kv_empty_key); }
static void kv_nul_key(buf *b) { b_u64(b, 3); b_bytes(b, "a\0b", 3); b_u32(b, CLLM_GGUF_UINT8); b_le(b, 1, 1); }
static void m_nul_key(buf *b) { build_one_kv(b, kv_nul_key); }
static void m_dup_key(buf *b) { hdr(b, 3, 0, 2); kv_u32(b, "a.b", 1); kv_str(b, "a.b", "x"); }
static void m_cut_in_kv(buf *b) { hdr(b, 3, 0, 2); kv_u32(b, "a.b", 1); b_str(b, "a.c"); b_le(b, CLLM_GGUF_UINT32, 2); }
static void m_cut_in_value(buf *b) { hdr(b, 3, 0, 2); kv_u32(b, "a.b", 1); b_str(b, "a.c"); b_u32(b, CLLM_GGUF_UINT64); b_u32(b, 5); }
static void kv_long_key(buf *b) {
    b_u64(b, 70000);
    for (int i = 0; i < 70000; i++) b_le(b, 'k', 1);
    b_u32(b, CLLM_GGUF_UINT8);
    b_le(b, 1, 1);
}
static void m_key_too_long(buf *b) { build_one_kv(b, kv_long_key); }
static void with_alignment(buf *b, uint32_t type, uint64_t v) {
    hdr(b, 3, 2, 4);
    base_kvs(b);
    b_str(b, "general.alignment");
    b_u32(b, type);
    b_le(b, v, type == CLLM_GGUF_UINT64 ? 8 : 4);
    tinfo(b, "t0", 2, d_t0, CLLM_GGML_F32, 0);
    tinfo(b, "t1", 1, d_t1, CLLM_GGML_Q8_0, 256);
    base_data(b, 32);
}
static void m_align0(buf *b) { with_alignment(b, CLLM_GGUF_UINT32, 0); }
static void m_align3(buf *b) { with_alignment(b, CLLM_GGUF_UINT32, 3); }
static void m_align_huge(buf *b) { with_alignment(b, CLLM_GGUF_UINT32, 1u << 31); }
static void m_align_u64(buf *b) { with_alignment(b, CLLM_GGUF_UINT64, 32); }
static void m_ndims5(buf *b) { static const uint64_t d[5] = {32, 1, 1, 1, 2}; build_tensors(b, "t0", 5, d, CLLM_GGML_F32, 0, 256); }
static void m_ndims0(buf *b) { build_tensors(b, "t0", 0, d_t0, CLLM_GGML_F32, 0, 256); }
static void m_dim0(buf *b) { static const uint64_t d[2] = {32, 0}; build_tensors(b, "t0", 2, d, CLLM_GGML_F32, 0, 256); }
static void m_dim_neg(buf *b) { static const uint64_t d[2] = {32, (uint64_t)-2}; build_tensors(b, "t0", 2, d, CLLM_GGML_F32, 0, 256); }
static void m_dims_overflow(buf *b) { static const uint64_t d[2] = {INT64_MAX, 2}; build_tensors(b, "t0", 2, d, CLLM_GGML_F32, 0, 256); }
static void m_bytes_overflow(buf *b) { static const uint64_t d[2] = {1ull << 32, 1ull << 29}; build_tensors(b, "t0", 2, d, CLLM_GGML_F32, 0, 256); }
static void m_type_removed(buf *b) { build_tensors(b, "t0", 2, d_t0, 4, 0, 256); }
static void m_type_unknown(buf *b) { build_tensors(b, "t0", 2, d_t0, 1000, 0, 256); }
static void m_type_negative(buf *b) { build_tensors(b, "t0", 2, d_t0, 0xFFFFFFFFu, 0, 256); }
static void m_row_block(buf *b) { static const uint64_t d[2] = {33, 2}; build_tensors(b, "t0", 2, d, CLLM_GGML_Q8_0, 0, 256); }
/* k-quants: rows of 128 cannot hold 256-element super-blocks; a q6_K tensor
 * of 2 rows is 420 bytes, which this short file does not hold */
static void m_row_block_k(buf *b) { static const uint64_t d[2] = {128, 2}; build_tensors(b, "t0", 2, d, CLLM_GGML_Q4_K, 0, 256); }
static void m_q6_K_short(buf *b) { static const uint64_t d[2] = {256, 2}; build_tensors(b, "t0", 2, d, CLLM_GGML_Q6_K, 0, 416); }
static void m_off_unaligned(buf *b) { build_tensors(b, "t0", 2, d_t0, CLLM_GGML_F32, 0, 257); }
static void m_off_overlap(buf *b) { build_tensors(b, "t0", 2, d_t0, CLLM_GGML_F32, 0, 224); }
static void m_off_order(buf *b) { build_tensors(b, "t0", 2, d_t0, CLLM_GGML_F32, 64, 0); }
static void m_off_gap(buf *b) { build_tensors(b, "t0", 2, d_t0, CLLM_GGML_F32, 0, 288); }
static void m_off_huge(buf *b) { build_tensors(b, "t0", 2, d_t0, CLLM_GGML_F32, 0, UINT64_MAX - 31); }
static void m_truncated_data(buf *b) { build_valid(b); b->n -= 40; }
static void m_no_data_section(buf *b) {
    hdr(b, 3, 2, 3);
    base_kvs(b);
    tinfo(b, "t0", 2, d_t0, CLLM_GGML_F32, 0);
    tinfo(b, "t1", 1, d_t1, CLLM_GGML_Q8_0, 256); /* ends at 205: data would start at 224 */
}
static void m_dup_tensor(buf *b) { build_tensors(b, "t1", 2, d_t0, CLLM_GGML_F32, 0, 256); }
static void m_name64(buf *b) {
    char n[65];
    memset(n, 'x', 64);
    n[64] = 0;
    build_tensors(b, n, 2, d_t0, CLLM_GGML_F32, 0, 256);
}
static void m_name65(buf *b) {
    char n[66];
    memset(n, 'y', 65);
    n[65] = 0;
    build_tensors(b, n, 2, d_t0, CLLM_GGML_F32, 0, 256);
}
static void m_name_empty(buf *b) { build_tensors(b, "", 2, d_t0, CLLM_GGML_F32, 0, 256); }
static void m_cut_in_tinfo(buf *b) { hdr(b, 3, 2, 3); base_kvs(b); b_str(b, "t0"); b_u32(b, 2); b_u64(b, 32); }

typedef struct {
    const char *name;
    void (*build)(buf *);
    const char *expect; /* substring of the message: the field at fault */
} bad_case;

static const bad_case bad_cases[] = {
    {"empty", m_empty, "empty"},
    {"len1", m_len1, "too short"},
    {"len2", m_len2, "too short"},
    {"len3", m_len3, "too short"},
    {"len4", m_len4, "version at offset 4"},
    {"len5", m_len5, "version at offset 4"},
    {"len6", m_len6, "version at offset 4"},
    {"len7", m_len7, "version at offset 4"},
    {"wrong_magic", m_magic, "magic at offset 0"},
    {"version0", m_v0, "version at offset 4 is 0"},
    {"version1", m_v1, "version at offset 4 is 1"},
    {"version4", m_v4, "version at offset 4 is 4"},
    {"header_cut", m_header_cut, "n_kv at offset 16"},
    {"n_tensors_2^64-1", m_ntensors_max, "n_tensors at offset 8"},
    {"n_kv_2^64-1", m_nkv_max, "n_kv at offset 16"},
    {"n_kv_more_than_bytes", m_nkv_too_many, "n_kv at offset 16 is 1000"},
    {"n_tensors_more_than_bytes", m_ntensors_too_many, "n_tensors at offset 8 is 100"},
    {"key_length_huge", m_key_len_huge, "key of kv[0] at offset 24"},
    {"string_length_huge", m_str_len_huge, "value of 'k' at offset"},
    {"array_length_huge", m_arr_len_huge, "elements of type uint32"},
    {"string_array_length_huge", m_strarr_len_huge, "elements of type string"},
    {"string_array_element_huge", m_strarr_elem_huge, "element 1 at offset"},
    {"nested_array", m_nested, "array of arrays"},
    {"unknown_value_type", m_value_type, "value type of 'k' at offset"},
    {"unknown_array_elem_type", m_elem_type, "unknown element type 99"},
    {"bool_value_2", m_bool, "bool with value 2"},
    {"bool_array_value_7", m_bool_arr, "element 2 at offset"},
    {"empty_key", m_empty_key, "key of kv[0] at offset 24 is empty"},
    {"key_with_nul", m_nul_key, "NUL byte"},
    {"key_too_long", m_key_too_long, "the limit is 65535"},
    {"duplicate_key", m_dup_key, "duplicate key 'a.b' in kv[1]"},
    {"truncated_in_kv_type", m_cut_in_kv, "value type of 'a.c' at offset"},
    {"truncated_in_kv_value", m_cut_in_value, "value of 'a.c' at offset"},
    {"alignment_0", m_align0, "general.alignment at offset"},
    {"alignment_3", m_align3, "is 3; it must be a power of two"},
    {"alignment_2^31", m_align_huge, "is 2147483648; it must be"},
    {"alignment_wrong_type", m_align_u64, "it must be uint32"},
    {"n_dims_5", m_ndims5, "'t0' n_dims at offset"},
    {"n_dims_0", m_ndims0, "'t0' n_dims at offset"},
    {"dim_zero", m_dim0, "'t0' dims[1] at offset"},
    {"dim_negative", m_dim_neg, "is -2 (negative as int64)"},
    {"dims_product_overflow", m_dims_overflow, "element count overflows int64"},
    {"byte_size_overflow", m_bytes_overflow, "byte size"},
    {"type_removed_id_4", m_type_removed, "'t0' type at offset"},
    {"type_unknown_1000", m_type_unknown, "is 1000, not a known ggml type"},
    {"type_negative", m_type_negative, "is -1 (negative)"},
    {"row_not_block_multiple", m_row_block, "not a multiple of q8_0's block size 32"},
    {"row_not_k_block_multiple", m_row_block_k, "'t0': row length dims[0] = 128 is not a multiple of q4_K's block size 256"},
    {"q6_K_bytes_short", m_q6_K_short, "tensor 't0' data [0, +420) at file offset 224 extends past the end"},
    {"offset_unaligned", m_off_unaligned, "'t1' offset 257 is not a multiple"},
    {"offset_overlapping", m_off_overlap, "'t1' offset 224 overlaps"},
    {"offset_out_of_order", m_off_order, "'t0' offset 64 leaves a gap"},
    {"offset_gap", m_off_gap, "'t1' offset 288 leaves a gap"},
    {"offset_huge", m_off_huge, "'t1' offset"},
    {"truncated_data", m_truncated_data, "extends past the end"},
    {"no_data_section", m_no_data_section, "data section would start"},
    {"duplicate_tensor_name", m_dup_tensor, "duplicate tensor name 't1'"},
    {"tensor_name_64_bytes", m_name64, "is 64 bytes long; the limit is 63"},
    {"tensor_name_65_bytes", m_name65, "is 65 bytes long; the limit is 63"},
    {"tensor_name_empty", m_name_empty, "name of tensor[0] at offset"},
    {"truncated_in_tensor_info", m_cut_in_tinfo, "'t0' dims[1] at offset"},
};

static void test_gguf_rejects_malformed_files(void) {
    size_t n = sizeof bad_cases / sizeof bad_cases[0];
    CHECK(n >= 30, "only %zu cases", n);
    for (size_t i = 0; i < n; i++) {
        buf b = {0};
        bad_cases[i].build(&b);
        char path[512];
        snprintf(path, sizeof path, "%s/bad_%s.gguf", tmpdir, bad_cases[i].name);
        cllm_error err = {0};
        CHECK(cllm_file_write_atomic(path, b.p, b.n, &err) == CLLM_OK, "%s", err.msg);
        cllm_gguf *g = (cllm_gguf *)1;
        cllm_status st = cllm_gguf_open(&g, path, &err);
        CHECK(st == CLLM_ERR_FORMAT, "%s: status %s (%s)", bad_cases[i].name, cllm_status_name(st), err.msg);
        CHECK(g == NULL, "%s: handle not NULL on failure", bad_cases[i].name);
        CHECK(strstr(err.msg, path) != NULL, "%s: message lacks the file name: %s", bad_cases[i].name, err.msg);
        CHECK(strstr(err.msg, bad_cases[i].expect) != NULL, "%s: message '%s' lacks '%s'", bad_cases[i].name,
              err.msg, bad_cases[i].expect);
        if (st == CLLM_OK) cllm_gguf_close(g);
        /* the in-memory entry point gives the same verdict */
        g = NULL;
        st = cllm_gguf_open_memory(&g, b.p, b.n, "mem", &err);
        CHECK(st == CLLM_ERR_FORMAT && strstr(err.msg, bad_cases[i].expect), "%s (memory): %s",
              bad_cases[i].name, err.msg);
        cllm_gguf_close(g);
        unlink(path);
        free(b.p);
    }
}

/* Positive controls: the base file and near-misses of the bad cases load. */
static void test_gguf_accepts_valid_variants(void) {
    cllm_error err;
    cllm_gguf *g = NULL;
    buf b = {0};
    build_valid(&b);
    CHECK(cllm_gguf_open_memory(&g, b.p, b.n, "base", &err) == CLLM_OK, "%s", err.msg);
    if (g) {
        CHECK(cllm_gguf_n_tensors(g) == 2 && cllm_gguf_n_kv(g) == 3, "counts");
        const cllm_gguf_tensor *t1 = cllm_gguf_find_tensor(g, "t1");
        CHECK(t1 && t1->type == CLLM_GGML_Q8_0 && t1->nbytes == 34 && t1->offset == 256, "t1 info");
        CHECK(t1 && (const uint8_t *)t1->data == b.p + cllm_gguf_data_offset(g) + 256, "t1 data pointer");
        CHECK(cllm_gguf_data_offset(g) % 32 == 0, "data section aligned");
        CHECK(cllm_gguf_find_tensor(g, "t2") == NULL && cllm_gguf_find_kv(g, "nope") == NULL, "absent");
    }
    cllm_gguf_close(g);
    /* version 2 has the same layout */
    b.p[4] = 2;
    CHECK(cllm_gguf_open_memory(&g, b.p, b.n, "v2", &err) == CLLM_OK, "v2: %s", err.msg);
    cllm_gguf_close(g);
    /* trailing bytes after the last tensor are tolerated */
    b.p[4] = 3;
    b_fill(&b, 5);
    CHECK(cllm_gguf_open_memory(&g, b.p, b.n, "trailing", &err) == CLLM_OK, "trailing: %s", err.msg);
    cllm_gguf_close(g);
    free(b.p);
    /* a 63-byte name is the longest llama.cpp accepts */
    char n63[64];
    memset(n63, 'z', 63);
    n63[63] = 0;
    b = (buf){0};
    build_tensors(&b, n63, 2, d_t0, CLLM_GGML_F32, 0, 256);
    CHECK(cllm_gguf_open_memory(&g, b.p, b.n, "n63", &err) == CLLM_OK, "63-byte name: %s", err.msg);
    CHECK(g && cllm_gguf_find_tensor(g, n63) != NULL, "63-byte name found");
    cllm_gguf_close(g);
    free(b.p);
    /* no tensors, no kvs, and no padding at all */
    b = (buf){0};
    hdr(&b, 3, 0, 0);
    CHECK(cllm_gguf_open_memory(&g, b.p, b.n, "bare", &err) == CLLM_OK, "bare header: %s", err.msg);
    cllm_gguf_close(g);
    free(b.p);
    /* alignment 64 with data placed accordingly */
    b = (buf){0};
    hdr(&b, 3, 2, 4);
    base_kvs(&b);
    kv_u32(&b, "general.alignment", 64);
    tinfo(&b, "t0", 2, d_t0, CLLM_GGML_F32, 0);
    tinfo(&b, "t1", 1, d_t1, CLLM_GGML_Q8_0, 256);
    base_data(&b, 64);
    CHECK(cllm_gguf_open_memory(&g, b.p, b.n, "a64", &err) == CLLM_OK, "alignment 64: %s", err.msg);
    CHECK(g && cllm_gguf_alignment(g) == 64 && cllm_gguf_data_offset(g) % 64 == 0, "alignment honoured");
    cllm_gguf_close(g);
    free(b.p);
}

/* Every prefix of a valid file is rejected unless it still holds all
 * tensor bytes (only the last tensor's padding may be cut). */
static void test_gguf_every_truncation_rejected(void) {
    buf b = {0};
    build_valid(&b);
    cllm_gguf *g = NULL;
    cllm_error err;
    CHECK(cllm_gguf_open_memory(&g, b.p, b.n, "full", &err) == CLLM_OK, "%s", err.msg);
    size_t need = g ? (size_t)cllm_gguf_data_offset(g) + 256 + 34 : b.n;
    cllm_gguf_close(g);
    int wrong = 0;
    for (size_t len = 0; len <= b.n; len++) {
        /* copy so ASan sees reads past the prefix */
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, b.p, len);
        cllm_status st = cllm_gguf_open_memory(&g, copy, len, "cut", &err);
        if ((st == CLLM_OK) != (len >= need)) {
            if (!wrong++) CHECK(0, "length %zu of %zu: status %s (%s)", len, b.n, cllm_status_name(st), err.msg);
        }
        cllm_gguf_close(g);
        free(copy);
    }
    CHECK(wrong == 0, "%d truncation lengths judged wrongly", wrong);
    free(b.p);
}

/* Single-byte mutations anywhere in the header: never a crash; a success
 * must still describe tensors that lie inside the buffer. */
static void test_gguf_byte_mutations_never_crash(void) {
    buf b = {0};
    build_valid(&b);
    static const uint8_t vals[] = {0x00, 0xff, 0x80, 0x7f, 0x01, 0x40};
    int bad = 0, accepted = 0, rejected = 0;
    uint8_t *copy = malloc(b.n);
    size_t header_end = b.n - 256 - 34 - 30; /* mutate the structured part (and a bit of data) */
    for (size_t i = 0; i < header_end; i++) {
        for (size_t v = 0; v < sizeof vals + 1; v++) {
            memcpy(copy, b.p, b.n);
            copy[i] = v < sizeof vals ? vals[v] : (uint8_t)(b.p[i] ^ 1);
            cllm_gguf *g = NULL;
            cllm_error err;
            cllm_status st = cllm_gguf_open_memory(&g, copy, b.n, "mut", &err);
            if (st == CLLM_OK) {
                accepted++;
                for (uint64_t k = 0; k < cllm_gguf_n_tensors(g); k++) {
                    const cllm_gguf_tensor *t = cllm_gguf_tensor_at(g, k);
                    const uint8_t *d = t->data;
                    if (d < copy || d + t->nbytes > copy + b.n) bad++;
                }
            } else {
                rejected++;
                if (st != CLLM_ERR_FORMAT || strstr(err.msg, "mut: ") != err.msg) bad++;
            }
            cllm_gguf_close(g);
        }
    }
    CHECK(bad == 0, "%d mutations misjudged", bad);
    CHECK(accepted > 0 && rejected > 0, "accepted %d rejected %d", accepted, rejected);
    free(copy);
    free(b.p);
}

/* ---- round trip -------------------------------------------------------- */

static int file_bytes(const char *path, char **data, size_t *len) {
    cllm_error err;
    return cllm_file_read_all(path, 0, data, len, &err) == CLLM_OK;
}

static void test_gguf_roundtrip_all_types(void) {
    cllm_error err;
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    CHECK(w != NULL, "writer");
    if (!w) return;
    const uint8_t a_u8[3] = {0, 7, 255};
    const int8_t a_i8[3] = {-128, 0, 127};
    const uint16_t a_u16[2] = {0, 65535};
    const int16_t a_i16[2] = {-32768, 32767};
    const uint32_t a_u32[2] = {1, 0xffffffffu};
    const int32_t a_i32[4] = {INT32_MIN, -1, 0, INT32_MAX};
    const uint64_t a_u64[2] = {0, UINT64_MAX};
    const int64_t a_i64[2] = {INT64_MIN, INT64_MAX};
    const float a_f32[3] = {-1.5f, 0.0f, 3.25e30f};
    const double a_f64[2] = {1e-300, -2.5};
    const uint8_t a_bool[3] = {1, 0, 1};
    const char *strs[4] = {"hello", "", "\xe2\x82\xac", "a\0b"};
    const uint64_t lens[4] = {5, 0, 3, 3};
    int ok = 1;
    ok &= !cllm_gguf_set_str(w, "general.architecture", "llama", &err);
    ok &= !cllm_gguf_set_u8(w, "t.u8", 200, &err);
    ok &= !cllm_gguf_set_i8(w, "t.i8", -100, &err);
    ok &= !cllm_gguf_set_u16(w, "t.u16", 60000, &err);
    ok &= !cllm_gguf_set_i16(w, "t.i16", -30000, &err);
    ok &= !cllm_gguf_set_u32(w, "t.u32", 4000000000u, &err);
    ok &= !cllm_gguf_set_i32(w, "t.i32", -2000000000, &err);
    ok &= !cllm_gguf_set_u64(w, "t.u64", UINT64_MAX - 1, &err);
    ok &= !cllm_gguf_set_i64(w, "t.i64", INT64_MIN + 1, &err);
    ok &= !cllm_gguf_set_f32(w, "t.f32", 1e-5f, &err);
    ok &= !cllm_gguf_set_f64(w, "t.f64", 3.141592653589793, &err);
    ok &= !cllm_gguf_set_bool(w, "t.bool", true, &err);
    ok &= !cllm_gguf_set_str_n(w, "t.str", "bin\0ary", 7, &err);
    ok &= !cllm_gguf_set_arr(w, "a.u8", CLLM_GGUF_UINT8, a_u8, 3, &err);
    ok &= !cllm_gguf_set_arr(w, "a.i8", CLLM_GGUF_INT8, a_i8, 3, &err);
    ok &= !cllm_gguf_set_arr(w, "a.u16", CLLM_GGUF_UINT16, a_u16, 2, &err);
    ok &= !cllm_gguf_set_arr(w, "a.i16", CLLM_GGUF_INT16, a_i16, 2, &err);
    ok &= !cllm_gguf_set_arr(w, "a.u32", CLLM_GGUF_UINT32, a_u32, 2, &err);
    ok &= !cllm_gguf_set_arr(w, "a.i32", CLLM_GGUF_INT32, a_i32, 4, &err);
    ok &= !cllm_gguf_set_arr(w, "a.u64", CLLM_GGUF_UINT64, a_u64, 2, &err);
    ok &= !cllm_gguf_set_arr(w, "a.i64", CLLM_GGUF_INT64, a_i64, 2, &err);
    ok &= !cllm_gguf_set_arr(w, "a.f32", CLLM_GGUF_FLOAT32, a_f32, 3, &err);
    ok &= !cllm_gguf_set_arr(w, "a.f64", CLLM_GGUF_FLOAT64, a_f64, 2, &err);
    ok &= !cllm_gguf_set_arr(w, "a.bool", CLLM_GGUF_BOOL, a_bool, 3, &err);
    ok &= !cllm_gguf_set_arr(w, "a.empty", CLLM_GGUF_INT32, NULL, 0, &err);
    ok &= !cllm_gguf_set_arr_str(w, "a.str", strs, lens, 4, &err);
    ok &= !cllm_gguf_set_arr_str(w, "a.str_empty", NULL, NULL, 0, &err);
    ok &= !cllm_gguf_set_u32(w, "t.replaced", 1, &err);
    ok &= !cllm_gguf_set_str(w, "t.replaced", "second", &err); /* replaces in place */
    CHECK(ok, "setters: %s", err.msg);

    /* tensors: every type with kernels plus layouts we only carry */
    enum { NT = 8 };
    static const struct { const char *name; uint32_t type; uint32_t nd; int64_t dims[4]; } ts[NT] = {
        {"w.f32", CLLM_GGML_F32, 2, {5, 3, 1, 1}},
        {"w.f16", CLLM_GGML_F16, 1, {7, 1, 1, 1}},
        {"w.bf16", CLLM_GGML_BF16, 3, {3, 2, 2, 1}},
        {"w.q8_0", CLLM_GGML_Q8_0, 2, {64, 3, 1, 1}},
        {"w.q4_0", CLLM_GGML_Q4_0, 4, {32, 1, 2, 2}},
        {"w.q4_K", CLLM_GGML_Q4_K, 2, {256, 2, 1, 1}},
        {"w.i32", CLLM_GGML_I32, 1, {9, 1, 1, 1}},
        {"w.f64", CLLM_GGML_F64, 1, {1, 1, 1, 1}},
    };
    uint8_t *data[NT];
    size_t sizes[NT];
    for (int i = 0; i < NT; i++) {
        size_t row;
        CHECK(cllm_ggml_row_size(ts[i].type, ts[i].dims[0], &row), "row size %s", ts[i].name);
        sizes[i] = row * (size_t)(ts[i].dims[1] * ts[i].dims[2] * ts[i].dims[3]);
        data[i] = malloc(sizes[i]);
        for (size_t k = 0; k < sizes[i]; k++) data[i][k] = (uint8_t)(k * 31 + (size_t)i * 17 + 3);
        CHECK(cllm_gguf_add_tensor(w, ts[i].name, ts[i].type, ts[i].nd, ts[i].dims, data[i], sizes[i], &err) ==
                  CLLM_OK, "add %s: %s", ts[i].name, err.msg);
    }
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/rt1.gguf", tmpdir);
    snprintf(p2, sizeof p2, "%s/rt2.gguf", tmpdir);
    CHECK(cllm_gguf_writer_write(w, p1, &err) == CLLM_OK, "write: %s", err.msg);
    cllm_gguf_writer_destroy(w);

    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, p1, &err) == CLLM_OK, "open: %s", err.msg);
    if (!g) goto out;
    CHECK(cllm_gguf_version(g) == 3 && cllm_gguf_alignment(g) == 32, "version/alignment");
    CHECK(cllm_gguf_n_kv(g) == 28, "n_kv %llu", (unsigned long long)cllm_gguf_n_kv(g));
    CHECK(strcmp(cllm_gguf_kv_at(g, 0)->key, "general.architecture") == 0, "order kept");
    const cllm_gguf_kv *kv;
    kv = cllm_gguf_find_kv(g, "t.u8"); CHECK(kv && kv->type == CLLM_GGUF_UINT8 && kv->val.u64 == 200, "u8");
    kv = cllm_gguf_find_kv(g, "t.i8"); CHECK(kv && kv->type == CLLM_GGUF_INT8 && kv->val.i64 == -100, "i8");
    kv = cllm_gguf_find_kv(g, "t.u16"); CHECK(kv && kv->type == CLLM_GGUF_UINT16 && kv->val.u64 == 60000, "u16");
    kv = cllm_gguf_find_kv(g, "t.i16"); CHECK(kv && kv->type == CLLM_GGUF_INT16 && kv->val.i64 == -30000, "i16");
    kv = cllm_gguf_find_kv(g, "t.u32"); CHECK(kv && kv->type == CLLM_GGUF_UINT32 && kv->val.u64 == 4000000000u, "u32");
    kv = cllm_gguf_find_kv(g, "t.i32"); CHECK(kv && kv->type == CLLM_GGUF_INT32 && kv->val.i64 == -2000000000, "i32");
    kv = cllm_gguf_find_kv(g, "t.u64"); CHECK(kv && kv->type == CLLM_GGUF_UINT64 && kv->val.u64 == UINT64_MAX - 1, "u64");
    kv = cllm_gguf_find_kv(g, "t.i64"); CHECK(kv && kv->type == CLLM_GGUF_INT64 && kv->val.i64 == INT64_MIN + 1, "i64");
    kv = cllm_gguf_find_kv(g, "t.f32"); CHECK(kv && kv->type == CLLM_GGUF_FLOAT32 && kv->val.f64 == (double)1e-5f, "f32");
    kv = cllm_gguf_find_kv(g, "t.f64"); CHECK(kv && kv->type == CLLM_GGUF_FLOAT64 && kv->val.f64 == 3.141592653589793, "f64");
    kv = cllm_gguf_find_kv(g, "t.bool"); CHECK(kv && kv->type == CLLM_GGUF_BOOL && kv->val.b, "bool");
    kv = cllm_gguf_find_kv(g, "t.str");
    CHECK(kv && kv->type == CLLM_GGUF_STRING && kv->val.str.len == 7 && !memcmp(kv->val.str.data, "bin\0ary", 7), "str");
    kv = cllm_gguf_find_kv(g, "t.replaced");
    CHECK(kv && kv->type == CLLM_GGUF_STRING && kv->val.str.len == 6, "replaced key keeps the new value");
    CHECK(kv == cllm_gguf_kv_at(g, 27), "replaced key keeps its first position");
    struct { const char *k; cllm_gguf_type t; const void *d; size_t n, es; } arrs[] = {
        {"a.u8", CLLM_GGUF_UINT8, a_u8, 3, 1}, {"a.i8", CLLM_GGUF_INT8, a_i8, 3, 1},
        {"a.u16", CLLM_GGUF_UINT16, a_u16, 2, 2}, {"a.i16", CLLM_GGUF_INT16, a_i16, 2, 2},
        {"a.u32", CLLM_GGUF_UINT32, a_u32, 2, 4}, {"a.i32", CLLM_GGUF_INT32, a_i32, 4, 4},
        {"a.u64", CLLM_GGUF_UINT64, a_u64, 2, 8}, {"a.i64", CLLM_GGUF_INT64, a_i64, 2, 8},
        {"a.f32", CLLM_GGUF_FLOAT32, a_f32, 3, 4}, {"a.f64", CLLM_GGUF_FLOAT64, a_f64, 2, 8},
        {"a.bool", CLLM_GGUF_BOOL, a_bool, 3, 1}, {"a.empty", CLLM_GGUF_INT32, NULL, 0, 4},
    };
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
        kv = cllm_gguf_find_kv(g, arrs[i].k);
        CHECK(kv && kv->type == CLLM_GGUF_ARRAY && kv->arr_type == arrs[i].t && kv->arr_n == arrs[i].n &&
                  (arrs[i].n == 0 || !memcmp(kv->arr_data, arrs[i].d, arrs[i].n * arrs[i].es)),
              "array %s", arrs[i].k);
    }
    const cllm_gguf_str *sv = NULL;
    uint64_t sn = 0;
    CHECK(cllm_gguf_get_arr_str(g, "a.str", &sv, &sn, &err) == CLLM_OK && sn == 4, "string array: %s", err.msg);
    for (uint64_t i = 0; sv && i < sn && i < 4; i++)
        CHECK(sv[i].len == lens[i] && !memcmp(sv[i].data, strs[i], lens[i]), "string %llu", (unsigned long long)i);
    CHECK(cllm_gguf_get_arr_str(g, "a.str_empty", &sv, &sn, &err) == CLLM_OK && sn == 0, "empty string array");

    CHECK(cllm_gguf_n_tensors(g) == NT, "n_tensors");
    for (int i = 0; i < NT; i++) {
        const cllm_gguf_tensor *t = cllm_gguf_tensor_at(g, (uint64_t)i);
        CHECK(t && !strcmp(t->name, ts[i].name) && t->type == ts[i].type && t->n_dims == ts[i].nd, "info %s", ts[i].name);
        for (int d = 0; t && d < 4; d++) CHECK(t->dims[d] == ts[i].dims[d], "%s dims[%d]", ts[i].name, d);
        CHECK(t && t->nbytes == sizes[i] && !memcmp(t->data, data[i], sizes[i]), "%s bytes", ts[i].name);
        CHECK(t && t->offset % 32 == 0 && ((uintptr_t)t->data % 32) == 0, "%s aligned", ts[i].name);
    }

    /* write -> read -> write: the second file is byte-identical */
    cllm_gguf_writer *w2 = cllm_gguf_writer_create();
    for (uint64_t i = 0; i < cllm_gguf_n_kv(g); i++)
        CHECK(cllm_gguf_set_kv(w2, cllm_gguf_kv_at(g, i), &err) == CLLM_OK, "copy kv: %s", err.msg);
    for (uint64_t i = 0; i < cllm_gguf_n_tensors(g); i++) {
        const cllm_gguf_tensor *t = cllm_gguf_tensor_at(g, i);
        CHECK(cllm_gguf_add_tensor(w2, t->name, t->type, t->n_dims, t->dims, t->data, t->nbytes, &err) == CLLM_OK,
              "copy tensor: %s", err.msg);
    }
    CHECK(cllm_gguf_writer_write(w2, p2, &err) == CLLM_OK, "write 2: %s", err.msg);
    cllm_gguf_writer_destroy(w2);
    char *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    CHECK(file_bytes(p1, &b1, &l1) && file_bytes(p2, &b2, &l2), "read back");
    CHECK(l1 == l2 && b1 && b2 && memcmp(b1, b2, l1) == 0, "rewritten file differs (%zu vs %zu bytes)", l1, l2);
    CHECK(l1 % 32 == 0, "file ends padded to the alignment");
    free(b1);
    free(b2);
    cllm_gguf_close(g);
out:
    for (int i = 0; i < NT; i++) free(data[i]);
    unlink(p1);
    unlink(p2);
}

static void test_gguf_custom_alignment_roundtrip(void) {
    cllm_error err;
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    float a[3] = {1, 2, 3}, b[5] = {4, 5, 6, 7, 8};
    int64_t da[1] = {3}, db[1] = {5};
    CHECK(cllm_gguf_set_alignment(w, 256, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_gguf_add_tensor(w, "a", CLLM_GGML_F32, 1, da, a, sizeof a, &err) == CLLM_OK, "%s", err.msg);
    CHECK(cllm_gguf_add_tensor(w, "b", CLLM_GGML_F32, 1, db, b, sizeof b, &err) == CLLM_OK, "%s", err.msg);
    char p[512];
    snprintf(p, sizeof p, "%s/align.gguf", tmpdir);
    CHECK(cllm_gguf_writer_write(w, p, &err) == CLLM_OK, "%s", err.msg);
    cllm_gguf_writer_destroy(w);
    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, p, &err) == CLLM_OK, "%s", err.msg);
    if (g) {
        const cllm_gguf_tensor *t = cllm_gguf_find_tensor(g, "b");
        CHECK(cllm_gguf_alignment(g) == 256 && cllm_gguf_data_offset(g) % 256 == 0, "alignment 256");
        CHECK(t && t->offset == 256 && !memcmp(t->data, b, sizeof b), "b at the next 256 boundary");
    }
    cllm_gguf_close(g);
    unlink(p);
}

/* ---- getters ----------------------------------------------------------- */

static void test_gguf_typed_getters_check_type_and_range(void) {
    cllm_error err;
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    const int64_t arr64[3] = {1, -2, 3};
    const int64_t big64[1] = {(int64_t)1 << 40};
    const double f64s[2] = {0.5, 1e300};
    cllm_gguf_set_u8(w, "small", 9, &err);
    cllm_gguf_set_i32(w, "neg", -1, &err);
    cllm_gguf_set_u64(w, "big", 1ull << 33, &err);
    cllm_gguf_set_f64(w, "d", 0.25, &err);
    cllm_gguf_set_f64(w, "dhuge", 1e300, &err);
    cllm_gguf_set_str(w, "s", "hello", &err);
    cllm_gguf_set_bool(w, "b", false, &err);
    cllm_gguf_set_arr(w, "ai", CLLM_GGUF_INT64, arr64, 3, &err);
    cllm_gguf_set_arr(w, "abig", CLLM_GGUF_INT64, big64, 1, &err);
    cllm_gguf_set_arr(w, "af", CLLM_GGUF_FLOAT64, f64s, 2, &err);
    char p[512];
    snprintf(p, sizeof p, "%s/get.gguf", tmpdir);
    CHECK(cllm_gguf_writer_write(w, p, &err) == CLLM_OK, "%s", err.msg);
    cllm_gguf_writer_destroy(w);
    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, p, &err) == CLLM_OK, "%s", err.msg);
    if (!g) return;
    uint32_t u = 0;
    int32_t i = 0;
    uint64_t u64 = 0;
    float f = 0;
    bool bv = true;
    CHECK(cllm_gguf_get_u32(g, "small", &u, &err) == CLLM_OK && u == 9, "u8 widens to u32");
    CHECK(cllm_gguf_get_i32(g, "neg", &i, &err) == CLLM_OK && i == -1, "i32");
    CHECK(cllm_gguf_get_u32(g, "neg", &u, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "-1 does not fit in uint32"),
          "negative into u32: %s", err.msg);
    CHECK(cllm_gguf_get_u32(g, "big", &u, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "does not fit"), "2^33 into u32");
    CHECK(cllm_gguf_get_u64(g, "big", &u64, &err) == CLLM_OK && u64 == 1ull << 33, "u64");
    CHECK(cllm_gguf_get_u32(g, "s", &u, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "has type string; expected uint32") &&
              strstr(err.msg, p), "string as u32: %s", err.msg);
    CHECK(cllm_gguf_get_u32(g, "missing", &u, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "'missing' is missing"),
          "missing key: %s", err.msg);
    CHECK(u == 9, "output untouched on failure");
    CHECK(cllm_gguf_get_f32(g, "d", &f, &err) == CLLM_OK && f == 0.25f, "f64 into f32");
    CHECK(cllm_gguf_get_f32(g, "dhuge", &f, &err) == CLLM_ERR_FORMAT, "1e300 into f32");
    CHECK(cllm_gguf_get_f32(g, "small", &f, &err) == CLLM_ERR_FORMAT, "int as f32");
    CHECK(cllm_gguf_get_bool(g, "b", &bv, &err) == CLLM_OK && !bv, "bool");
    CHECK(cllm_gguf_get_bool(g, "small", &bv, &err) == CLLM_ERR_FORMAT, "u8 as bool");
    char sb[8];
    CHECK(cllm_gguf_get_str_buf(g, "s", sb, sizeof sb, &err) == CLLM_OK && !strcmp(sb, "hello"), "str_buf");
    CHECK(cllm_gguf_get_str_buf(g, "s", sb, 5, &err) == CLLM_ERR_LIMIT, "str_buf too small");
    int32_t ai[3];
    float af[2];
    CHECK(cllm_gguf_get_arr_i32(g, "ai", ai, 3, &err) == CLLM_OK && ai[0] == 1 && ai[1] == -2 && ai[2] == 3, "arr i32");
    CHECK(cllm_gguf_get_arr_i32(g, "ai", ai, 2, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "has 3 elements; expected 2"),
          "count mismatch: %s", err.msg);
    CHECK(cllm_gguf_get_arr_i32(g, "abig", ai, 1, &err) == CLLM_ERR_FORMAT, "2^40 into i32 array");
    CHECK(cllm_gguf_get_arr_f32(g, "af", af, 2, &err) == CLLM_ERR_FORMAT, "1e300 element into f32");
    CHECK(cllm_gguf_get_arr_f32(g, "ai", af, 3, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "expected floats"), "ints as floats");
    CHECK(cllm_gguf_get_arr_i32(g, "s", ai, 1, &err) == CLLM_ERR_FORMAT && strstr(err.msg, "expected array"), "scalar as array");
    cllm_gguf_type et;
    uint64_t n;
    CHECK(cllm_gguf_get_arr_n(g, "af", &et, &n, &err) == CLLM_OK && et == CLLM_GGUF_FLOAT64 && n == 2, "arr_n");
    cllm_gguf_close(g);
    unlink(p);
}

/* ---- writer argument checks ------------------------------------------- */

static void test_gguf_writer_rejects_bad_arguments(void) {
    cllm_error err;
    cllm_gguf_writer *w = cllm_gguf_writer_create();
    float x[64] = {0};
    int64_t d1[1] = {4}, d33[1] = {33}, d0[2] = {4, 0};
    char n64[65];
    memset(n64, 'n', 64);
    n64[64] = 0;
    CHECK(cllm_gguf_set_u32(w, "", 1, &err) == CLLM_ERR_ARG, "empty key");
    CHECK(cllm_gguf_set_alignment(w, 3, &err) == CLLM_ERR_ARG, "alignment 3");
    CHECK(cllm_gguf_set_alignment(w, 0, &err) == CLLM_ERR_ARG, "alignment 0");
    CHECK(cllm_gguf_set_u64(w, "general.alignment", 32, &err) == CLLM_ERR_ARG, "alignment as u64");
    CHECK(cllm_gguf_set_arr(w, "k", CLLM_GGUF_STRING, x, 1, &err) == CLLM_ERR_ARG, "string via set_arr");
    CHECK(cllm_gguf_add_tensor(w, n64, CLLM_GGML_F32, 1, d1, x, 16, &err) == CLLM_ERR_ARG, "64-byte name");
    CHECK(cllm_gguf_add_tensor(w, "t", CLLM_GGML_F32, 2, d0, x, 0, &err) == CLLM_ERR_ARG, "zero dim");
    CHECK(cllm_gguf_add_tensor(w, "t", CLLM_GGML_F32, 5, d1, x, 16, &err) == CLLM_ERR_ARG, "5 dims");
    CHECK(cllm_gguf_add_tensor(w, "t", CLLM_GGML_Q8_0, 1, d33, x, 34, &err) == CLLM_ERR_ARG, "33 not a block multiple");
    CHECK(cllm_gguf_add_tensor(w, "t", 4, 1, d1, x, 16, &err) == CLLM_ERR_ARG, "unknown type");
    CHECK(cllm_gguf_add_tensor(w, "t", CLLM_GGML_F32, 1, d1, x, 12, &err) == CLLM_ERR_ARG &&
              strstr(err.msg, "needs 16 bytes"), "size mismatch: %s", err.msg);
    CHECK(cllm_gguf_add_tensor(w, "t", CLLM_GGML_F32, 1, d1, x, 16, &err) == CLLM_OK, "valid: %s", err.msg);
    CHECK(cllm_gguf_add_tensor(w, "t", CLLM_GGML_F32, 1, d1, x, 16, &err) == CLLM_ERR_ARG, "duplicate tensor");
    /* an unwritable destination: error, nothing created */
    char p[512];
    snprintf(p, sizeof p, "%s/no/such/dir/x.gguf", tmpdir);
    CHECK(cllm_gguf_writer_write(w, p, &err) == CLLM_ERR_IO && strstr(err.msg, p), "bad dir: %s", err.msg);
    cllm_gguf_writer_destroy(w);
}

static void test_gguf_open_refuses_non_regular_files(void) {
    cllm_error err;
    cllm_gguf *g = NULL;
    CHECK(cllm_gguf_open(&g, tmpdir, &err) != CLLM_OK && g == NULL && strstr(err.msg, "directory"), "dir: %s", err.msg);
    CHECK(cllm_gguf_open(&g, "/dev/zero", &err) != CLLM_OK && g == NULL, "/dev/zero");
    char p[512];
    snprintf(p, sizeof p, "%s/missing.gguf", tmpdir);
    CHECK(cllm_gguf_open(&g, p, &err) == CLLM_ERR_IO && strstr(err.msg, p), "missing: %s", err.msg);
}

/* ---- ggml types -------------------------------------------------------- */

static void test_gguf_type_table_sizes(void) {
    size_t s = 0;
    CHECK(cllm_ggml_row_size(CLLM_GGML_F32, 10, &s) && s == 40, "f32 row");
    CHECK(cllm_ggml_row_size(CLLM_GGML_F16, 10, &s) && s == 20, "f16 row");
    CHECK(cllm_ggml_row_size(CLLM_GGML_BF16, 10, &s) && s == 20, "bf16 row");
    CHECK(cllm_ggml_row_size(CLLM_GGML_Q8_0, 64, &s) && s == 68, "q8_0 row: 2 blocks of 34");
    CHECK(cllm_ggml_row_size(CLLM_GGML_Q4_0, 64, &s) && s == 36, "q4_0 row: 2 blocks of 18");
    CHECK(cllm_ggml_row_size(CLLM_GGML_Q6_K, 512, &s) && s == 420, "q6_K row");
    CHECK(!cllm_ggml_row_size(CLLM_GGML_Q8_0, 48, &s), "48 is not a q8_0 row");
    CHECK(!cllm_ggml_row_size(CLLM_GGML_F32, 0, &s) && !cllm_ggml_row_size(CLLM_GGML_F32, -4, &s), "non-positive n");
    CHECK(!cllm_ggml_row_size(CLLM_GGML_F32, INT64_MAX, &s), "overflow");
    CHECK(cllm_ggml_type_get(4) == NULL && cllm_ggml_type_get(5) == NULL && cllm_ggml_type_get(16) == NULL &&
              cllm_ggml_type_get(29) == NULL && cllm_ggml_type_get(31) == NULL, "unknown ids");
    cllm_ggml_type t;
    CHECK(cllm_ggml_type_parse("Q4_0", &t) == 0 && t == CLLM_GGML_Q4_0, "parse q4_0");
    CHECK(cllm_ggml_type_parse("bf16", &t) == 0 && t == CLLM_GGML_BF16, "parse bf16");
    CHECK(cllm_ggml_type_parse("q4_K", &t) == 0 && t == CLLM_GGML_Q4_K, "parse q4_K");
    CHECK(cllm_ggml_type_parse("Q6_k", &t) == 0 && t == CLLM_GGML_Q6_K, "parse q6_K in any case");
    CHECK(cllm_ggml_type_parse("q8_K", &t) == -1 && cllm_ggml_type_parse("q8_1", &t) == -1,
          "q8_K / q8_1 (activation types) have no file kernels");
    CHECK(!strcmp(cllm_ggml_type_name(CLLM_GGML_Q8_0), "q8_0") && !strcmp(cllm_ggml_type_name(77), "unknown"), "names");
}

static void test_gguf_fp16_conversion(void) {
    /* every half value (except NaN payloads) survives half -> float -> half */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = cllm_fp16_to_fp32((uint16_t)h);
        int is_nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
        if (is_nan) bad += !isnan(f);
        else bad += cllm_fp32_to_fp16(f) != h;
    }
    CHECK(bad == 0, "%d half values did not round-trip", bad);
    /* literal values: 1, -2, 65504 max, 2^-24 smallest subnormal, 2^-14 smallest normal */
    CHECK(cllm_fp32_to_fp16(1.0f) == 0x3c00 && cllm_fp32_to_fp16(-2.0f) == 0xc000, "1, -2");
    CHECK(cllm_fp32_to_fp16(65504.0f) == 0x7bff && cllm_fp32_to_fp16(65520.0f) == 0x7c00, "max and overflow");
    CHECK(cllm_fp32_to_fp16(65519.0f) == 0x7bff, "just below the overflow threshold");
    CHECK(cllm_fp32_to_fp16(ldexpf(1, -24)) == 0x0001 && cllm_fp32_to_fp16(ldexpf(1, -25)) == 0x0000, "subnormal, tie to even 0");
    CHECK(cllm_fp32_to_fp16(ldexpf(3, -25)) == 0x0002, "1.5 ulp ties to even 2");
    CHECK(cllm_fp32_to_fp16(ldexpf(1, -14)) == 0x0400, "smallest normal");
    CHECK(cllm_fp32_to_fp16(1.0f + ldexpf(1, -11)) == 0x3c00, "1 + half ulp ties to even");
    CHECK(cllm_fp32_to_fp16(1.0f + ldexpf(3, -11)) == 0x3c02, "1 + 1.5 ulp ties to even");
    CHECK(cllm_fp32_to_fp16(INFINITY) == 0x7c00 && cllm_fp32_to_fp16(-INFINITY) == 0xfc00, "inf");
    CHECK(isnan(cllm_fp16_to_fp32(cllm_fp32_to_fp16(NAN))), "nan");
#ifdef __FLT16_MAX__
    /* against the compiler's own correctly rounded conversion on many floats */
    int mism = 0;
    uint32_t x = 12345;
    for (int i = 0; i < 200000; i++) {
        x = x * 1664525u + 1013904223u;
        uint32_t bits = (x & 0x807fffffu) | ((96u + (x >> 24) % 48u) << 23); /* exponents 2^-31 .. 2^16 */
        float f;
        memcpy(&f, &bits, 4);
        _Float16 r = (_Float16)f;
        uint16_t rb;
        memcpy(&rb, &r, 2);
        mism += cllm_fp32_to_fp16(f) != rb;
    }
    CHECK(mism == 0, "%d of 200000 differ from _Float16", mism);
#endif
}

static void test_gguf_bf16_conversion(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = cllm_bf16_to_fp32((uint16_t)h);
        if (isnan(f)) continue;
        bad += cllm_fp32_to_bf16(f) != h;
    }
    CHECK(bad == 0, "%d bf16 values did not round-trip", bad);
    CHECK(cllm_fp32_to_bf16(1.0f) == 0x3f80, "1");
    CHECK(cllm_fp32_to_bf16(1.0f + ldexpf(1, -8)) == 0x3f80, "half ulp ties to even (down)");
    CHECK(cllm_fp32_to_bf16(1.0f + ldexpf(3, -8)) == 0x3f82, "1.5 ulp ties to even (up)");
    CHECK(cllm_fp32_to_bf16(1.0f + ldexpf(5, -9)) == 0x3f81, "above half rounds up");
    CHECK(isnan(cllm_bf16_to_fp32(cllm_fp32_to_bf16(NAN))), "nan stays nan");
    CHECK(cllm_fp32_to_bf16(3.4028234e38f) == 0x7f80, "max float rounds to inf");
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static void test_gguf_q8_0_block_layout(void) {
    float x[32], y[32];
    uint8_t q[34];
    for (int j = 0; j < 32; j++) x[j] = (float)j;
    CHECK(cllm_ggml_from_f32(CLLM_GGML_Q8_0, x, q, 32) == 0, "quantize");
    /* d = 31/127 stored as fp16; q[j] = round(j * 127/31) */
    CHECK(rd16(q) == cllm_fp32_to_fp16(31.0f / 127.0f), "scale");
    CHECK(q[2 + 0] == 0 && q[2 + 1] == 4 && q[2 + 16] == 66 && q[2 + 31] == 127, "values %d %d %d %d", q[2], q[3],
          q[18], q[33]);
    for (int j = 0; j < 32; j++) x[j] = -(float)j;
    cllm_ggml_from_f32(CLLM_GGML_Q8_0, x, q, 32);
    CHECK((int8_t)q[2 + 31] == -127 && (int8_t)q[2 + 1] == -4, "negative values");
    /* random rows: error within half a step plus the fp16 rounding of d */
    uint32_t s = 7;
    float row[256];
    uint8_t qr[8 * 34];
    for (int i = 0; i < 256; i++) {
        s = s * 1664525u + 1013904223u;
        row[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 6.0f;
    }
    CHECK(cllm_ggml_from_f32(CLLM_GGML_Q8_0, row, qr, 256) == 0, "quantize 256");
    float back[256];
    CHECK(cllm_ggml_to_f32(CLLM_GGML_Q8_0, qr, back, 256) == 0, "dequantize");
    for (int b = 0; b < 8; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(row[b * 32 + j]));
        float d = amax / 127;
        for (int j = 0; j < 32; j++)
            /* |x - d q| <= d/2; fp16(d) differs from d by <= 2^-11 d, times |q| <= 127: +0.062 d */
            CHECK_NEAR(back[b * 32 + j], row[b * 32 + j], 0.57 * d, 0, "q8_0 element");
    }
    CHECK(cllm_ggml_to_f32(CLLM_GGML_Q8_0, q, y, 31) == -1, "31 elements is not a block");
    float z[32] = {0};
    cllm_ggml_from_f32(CLLM_GGML_Q8_0, z, q, 32);
    cllm_ggml_to_f32(CLLM_GGML_Q8_0, q, y, 32);
    CHECK(rd16(q) == 0 && y[5] == 0.0f, "all-zero block");
}

static void test_gguf_q4_0_block_layout(void) {
    float x[32];
    uint8_t q[18];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    CHECK(cllm_ggml_from_f32(CLLM_GGML_Q4_0, x, q, 32) == 0, "quantize");
    /* largest magnitude is -16 at j = 0, so d = -16 / -8 = 2 (fp16 0x4000);
     * nibble q = min(15, trunc(x/2 + 8.5)): element j low nibble of byte j,
     * element j + 16 high nibble of byte j. */
    CHECK(rd16(q) == 0x4000, "scale %04x", rd16(q));
    CHECK(q[2 + 0] == 0x80, "byte 0: q(0)=0, q(16)=8 -> 0x%02x", q[2]);
    CHECK(q[2 + 1] == 0x91, "byte 1: q(1)=1, q(17)=9 -> 0x%02x", q[3]);
    CHECK(q[2 + 15] == 0xf8, "byte 15: q(15)=8, q(31)=15 (capped) -> 0x%02x", q[17]);
    float y[32];
    CHECK(cllm_ggml_to_f32(CLLM_GGML_Q4_0, q, y, 32) == 0, "dequantize");
    CHECK(y[0] == -16.0f && y[16] == 0.0f && y[31] == 14.0f, "values %g %g %g", y[0], y[16], y[31]);
    uint32_t s = 99;
    float row[128], back[128];
    uint8_t qr[4 * 18];
    for (int i = 0; i < 128; i++) {
        s = s * 1664525u + 1013904223u;
        row[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 2.0f;
    }
    cllm_ggml_from_f32(CLLM_GGML_Q4_0, row, qr, 128);
    cllm_ggml_to_f32(CLLM_GGML_Q4_0, qr, back, 128);
    for (int b = 0; b < 4; b++) {
        float d = fabsf(cllm_fp16_to_fp32(rd16(qr + b * 18)));
        for (int j = 0; j < 32; j++)
            /* half a step, except values near +8 steps capped at 7: up to one step, + fp16 scale rounding */
            CHECK_NEAR(back[b * 32 + j], row[b * 32 + j], 1.01 * d, 0, "q4_0 element");
    }
}

static void test_gguf_f16_bf16_rows(void) {
    float x[5] = {1.0f, -0.5f, 3.140625f, 65504.0f, 1e-3f}, y[5];
    uint8_t h[10];
    CHECK(cllm_ggml_from_f32(CLLM_GGML_F16, x, h, 5) == 0 && cllm_ggml_to_f32(CLLM_GGML_F16, h, y, 5) == 0, "f16");
    CHECK(y[0] == 1.0f && y[1] == -0.5f && y[2] == 3.140625f && y[3] == 65504.0f, "f16 exact values");
    CHECK_NEAR(y[4], 1e-3, 0, 1.0 / 2048, "f16 relative rounding <= 2^-11");
    CHECK(cllm_ggml_from_f32(CLLM_GGML_BF16, x, h, 5) == 0 && cllm_ggml_to_f32(CLLM_GGML_BF16, h, y, 5) == 0, "bf16");
    CHECK(y[0] == 1.0f && y[1] == -0.5f && y[2] == 3.140625f, "bf16 exact values");
    CHECK_NEAR(y[4], 1e-3, 0, 1.0 / 256, "bf16 relative rounding <= 2^-8");
    CHECK(cllm_ggml_from_f32(CLLM_GGML_Q8_1, x, h, 5) == -1, "no kernels for q8_1");
    CHECK(cllm_ggml_from_f32(CLLM_GGML_Q4_K, x, h, 5) == -1, "5 is not a multiple of q4_K's 256");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cllm_test_gguf_%ld", (long)getpid());
    mkdir(tmpdir, 0755);
    TEST_RUN(test_gguf_rejects_malformed_files);
    TEST_RUN(test_gguf_accepts_valid_variants);
    TEST_RUN(test_gguf_every_truncation_rejected);
    TEST_RUN(test_gguf_byte_mutations_never_crash);
    TEST_RUN(test_gguf_roundtrip_all_types);
    TEST_RUN(test_gguf_custom_alignment_roundtrip);
    TEST_RUN(test_gguf_typed_getters_check_type_and_range);
    TEST_RUN(test_gguf_writer_rejects_bad_arguments);
    TEST_RUN(test_gguf_open_refuses_non_regular_files);
    TEST_RUN(test_gguf_type_table_sizes);
    TEST_RUN(test_gguf_fp16_conversion);
    TEST_RUN(test_gguf_bf16_conversion);
    TEST_RUN(test_gguf_q8_0_block_layout);
    TEST_RUN(test_gguf_q4_0_block_layout);
    TEST_RUN(test_gguf_f16_bf16_rows);
    rmdir(tmpdir);
    return test_finish();
}
