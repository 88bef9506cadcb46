/*
 * dispatch.c: CPU feature detection, THE kernel dispatch table and thread
 * control.
 *
 * This is the one seam between the library and its kernels: every
 * primitive with more than one implementation (fp32 GEMM, elementwise
 * math, the AdamW update and sum of squares, the quantized-inference
 * table of quant.h, KV cache attention) is chosen here, once, into
 * cllm_kernels_table (cllm/kernels/kernels.h); the public entry points call through
 * it. A GPU (or any other) backend plugs in here: fill the table's entries
 * with its implementations in dispatch_init, and nothing above src/kernels/
 * changes. The implementations stay in their per-ISA files (*_avx2.c,
 * *_avx512.c, quant_amx.c, gemm_onednn.c), each beside a scalar reference.
 *
 * Does: detect features once (CPUID plus XGETBV, so a feature the OS does not
 * save in its context counts as absent; AMX also needs Linux's permission,
 * requested here), pick each primitive's implementation
 * once (CLLM_KERNELS=reference forces the scalar ones; CLLM_CPU_DISABLE=amx,...
 * hides features, to run an older CPU's paths), set the OpenMP thread
 * count shared with oneDNN.
 * Does not: run any kernel itself, or change OpenMP's wait policy (libgomp
 * reads that from the environment at load time; see cllm/kernels/kernels.h).
 */
#include <cpuid.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.h>

#include "cllm/kernels/kernels.h"
#include "kernels_internal.h"
#include "quant_internal.h"

/* Feature names, as reports print them and CLLM_CPU_DISABLE takes them. */
static const struct {
    unsigned bit;
    const char *name;
} feature_names[] = {{CLLM_CPU_AVX2, "avx2"},           {CLLM_CPU_AVX512, "avx512"},
                     {CLLM_CPU_AVX512_BF16, "avx512_bf16"}, {CLLM_CPU_AVX512_VNNI, "avx512_vnni"},
                     {CLLM_CPU_AMX, "amx_bf16"},        {CLLM_CPU_AMX_INT8, "amx_int8"}};

static cllm_kernels_table table;
/* Every quantized-inference table this CPU can run (tests compare each with
 * the reference); table.quant points at the best one. */
static cllm_quant_kernels quant_tables[CLLM_QUANT_COUNT];
static int quant_available[CLLM_QUANT_COUNT];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static uint64_t dispatch_xgetbv(unsigned idx) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(idx));
    return ((uint64_t)hi << 32) | lo;
}

static unsigned dispatch_detect(void) {
    unsigned a, b, c, d, feat = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return 0;
    uint64_t xcr0 = dispatch_xgetbv(0);
    int os_avx = (xcr0 & 0x6) == 0x6;              /* XMM + YMM state */
    int os_avx512 = (xcr0 & 0xe6) == 0xe6;         /* + opmask, ZMM_Hi256, Hi16_ZMM */
    int os_amx = (xcr0 & 0x60000) == 0x60000;      /* XTILECFG + XTILEDATA */
    if (!os_avx || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    unsigned b7 = b, c7 = c, d7 = d;
    if (((b7 >> 5) & 1) && fma) feat |= CLLM_CPU_AVX2;
    int f = (b7 >> 16) & 1, dq = (b7 >> 17) & 1, bw = (b7 >> 30) & 1, vl = (b7 >> 31) & 1;
    if (os_avx512 && f && dq && bw && vl) {
        feat |= CLLM_CPU_AVX512;
        if ((c7 >> 11) & 1) feat |= CLLM_CPU_AVX512_VNNI;
        unsigned a1, b1, c1, d1;
        if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 5) & 1))
            feat |= CLLM_CPU_AVX512_BF16;
    }
    /* AMX tile data is a dynamically enabled state: Linux (5.16+) faults its first use unless the
     * process asked for it (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA = 18) */
    if (os_amx && ((d7 >> 24) & 1) && (feat & CLLM_CPU_AVX512) &&
        syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18) == 0) {
        if ((d7 >> 22) & 1) feat |= CLLM_CPU_AMX;
        if ((d7 >> 25) & 1) feat |= CLLM_CPU_AMX_INT8;
    }
    return feat;
}

/* The quantized-inference tables of every backend feature set f allows,
 * and the best one (the reference when forced). */
static void quant_init(unsigned f, int reference) {
    cllm_quant_fill_reference(&quant_tables[CLLM_QUANT_REFERENCE]);
    quant_available[CLLM_QUANT_REFERENCE] = 1;
    if (f & CLLM_CPU_AVX2) {
        cllm_quant_fill_avx2(&quant_tables[CLLM_QUANT_AVX2]);
        quant_available[CLLM_QUANT_AVX2] = 1;
    }
    if (f & CLLM_CPU_AVX512) {
        cllm_quant_fill_avx512(&quant_tables[CLLM_QUANT_AVX512], 0);
        quant_available[CLLM_QUANT_AVX512] = 1;
        if (f & CLLM_CPU_AVX512_VNNI) {
            cllm_quant_fill_avx512(&quant_tables[CLLM_QUANT_AVX512_VNNI], 1);
            quant_available[CLLM_QUANT_AVX512_VNNI] = 1;
        }
        if (f & CLLM_CPU_AVX512_BF16)
            for (int b = CLLM_QUANT_AVX512; b <= CLLM_QUANT_AVX512_VNNI; b++) {
                quant_tables[b].gemm_x16_bf16 = cllm_quant_gemm_x16_bf16_avx512;
                quant_tables[b].round_bf16 = cllm_quant_round_bf16_avx512;
            }
        if ((f & CLLM_CPU_AVX512_VNNI) && (f & CLLM_CPU_AMX_INT8)) { /* VNNI's table, prompts on tiles */
            quant_tables[CLLM_QUANT_AMX] = quant_tables[CLLM_QUANT_AVX512_VNNI];
            quant_tables[CLLM_QUANT_AMX].backend = CLLM_QUANT_AMX;
            quant_tables[CLLM_QUANT_AMX].name = "amx";
            quant_tables[CLLM_QUANT_AMX].gemm_x16 = cllm_quant_gemm_x16_amx;
            quant_available[CLLM_QUANT_AMX] = 1;
        }
    }
    cllm_quant_backend best = CLLM_QUANT_REFERENCE;
    if (!reference)
        for (int b = CLLM_QUANT_COUNT - 1; b > 0; b--)
            if (quant_available[b]) {
                best = (cllm_quant_backend)b;
                break;
            }
    table.quant = &quant_tables[best];
}

/* CLLM_CPU_DISABLE=name,name,...: features to treat as absent (a feature
 * that needs a disabled one goes too), so the paths of older CPUs can be
 * run and tested here; oneDNN is capped to match, before its first kernel. */
static unsigned disabled_features(void) {
    const char *env = getenv("CLLM_CPU_DISABLE");
    unsigned off = 0;
    for (const char *p = env; p && *p;) {
        size_t len = strcspn(p, ", ");
        for (size_t i = 0; i < sizeof feature_names / sizeof feature_names[0]; i++)
            if (len == strlen(feature_names[i].name) && !strncmp(p, feature_names[i].name, len))
                off |= feature_names[i].bit;
        if (len == 3 && !strncmp(p, "amx", 3)) off |= CLLM_CPU_AMX | CLLM_CPU_AMX_INT8;
        p += len;
        p += strspn(p, ", ");
    }
    if (off & CLLM_CPU_AVX2) off |= CLLM_CPU_AVX512;
    if (off & CLLM_CPU_AVX512) off |= CLLM_CPU_AVX512_BF16 | CLLM_CPU_AVX512_VNNI | CLLM_CPU_AMX | CLLM_CPU_AMX_INT8;
    return off;
}

static void cap_onednn(unsigned f) {
    dnnl_cpu_isa_t isa = dnnl_cpu_isa_all;
    if (!(f & CLLM_CPU_AMX)) isa = dnnl_cpu_isa_avx512_core_bf16;
    if (!(f & CLLM_CPU_AVX512_BF16)) isa = dnnl_cpu_isa_avx512_core_vnni;
    if (!(f & CLLM_CPU_AVX512_VNNI)) isa = dnnl_cpu_isa_avx512_core;
    if (!(f & CLLM_CPU_AVX512)) isa = dnnl_cpu_isa_avx2;
    if (!(f & CLLM_CPU_AVX2)) isa = dnnl_cpu_isa_sse41;
    dnnl_set_max_cpu_isa(isa); /* fails harmlessly when the CPU is below the cap */
}

static void dispatch_init(void) {
    const char *env = getenv("CLLM_KERNELS");
    const unsigned off = disabled_features();
    table.cpu_features = dispatch_detect() & ~off;
    if (off) cap_onednn(table.cpu_features);
    table.reference = env && strcmp(env, "reference") == 0;
    const unsigned f = table.reference ? 0 : table.cpu_features; /* what the SIMD choices may use */
    /* fp32 GEMM: oneDNN has its own JIT for every x86-64 level (SSE4.1 up),
     * so it is the fast path on any CPU this code targets. */
    table.gemm_backend = table.reference ? CLLM_GEMM_REFERENCE : CLLM_GEMM_ONEDNN;
    table.sgemm = table.reference ? cllm_sgemm_reference : cllm_kernels_sgemm_onednn;
    /* elementwise math, the optimizer and KV cache attention: one ISA level for all */
    if (f & CLLM_CPU_AVX512) {
        table.vec_backend = CLLM_VEC_AVX512;
        table.vmax = cllm_kernels_vmax_avx512;
        table.vexp_shift_sum = cllm_kernels_vexp_shift_sum_avx512;
        table.vtanh = cllm_kernels_vtanh_avx512;
        table.vadamw = cllm_kernels_vadamw_avx512;
        table.vsumsq = cllm_kernels_vsumsq_avx512;
        table.kv_attend_q8_0 = cllm_kv_attend_q8_0_avx512;
        table.kv_attend_f16 = cllm_kv_attend_f16_avx512;
        table.kv_attend_f32 = cllm_kv_attend_f32_avx512;
    } else if (f & CLLM_CPU_AVX2) {
        table.vec_backend = CLLM_VEC_AVX2;
        table.vmax = cllm_kernels_vmax_avx2;
        table.vexp_shift_sum = cllm_kernels_vexp_shift_sum_avx2;
        table.vtanh = cllm_kernels_vtanh_avx2;
        table.vadamw = cllm_kernels_vadamw_avx2;
        table.vsumsq = cllm_kernels_vsumsq_avx2;
        table.kv_attend_q8_0 = cllm_kv_attend_q8_0_avx2;
        table.kv_attend_f16 = cllm_kv_attend_f16_avx2;
        table.kv_attend_f32 = cllm_kv_attend_f32_avx2;
    } else {
        table.vec_backend = CLLM_VEC_REFERENCE;
        table.vmax = cllm_vmax_reference;
        table.vexp_shift_sum = cllm_vexp_shift_sum_reference;
        table.vtanh = cllm_vtanh_reference;
        table.vadamw = cllm_vadamw_reference;
        table.vsumsq = cllm_vsumsq_reference;
        table.kv_attend_q8_0 = cllm_kv_attend_q8_0_reference;
        table.kv_attend_f16 = cllm_kv_attend_f16_reference;
        table.kv_attend_f32 = cllm_kv_attend_f32_reference;
    }
    static const char *const isa_names[CLLM_VEC_COUNT] = {
        [CLLM_VEC_REFERENCE] = "reference", [CLLM_VEC_AVX2] = "avx2", [CLLM_VEC_AVX512] = "avx512"};
    table.kv_attend_name = isa_names[table.vec_backend];
    quant_init(table.cpu_features, table.reference);
}

const cllm_kernels_table *cllm_kernels_get(void) {
    pthread_once(&table_once, dispatch_init);
    return &table;
}

const cllm_quant_kernels *cllm_quant_kernels_get(void) { return cllm_kernels_get()->quant; }

const cllm_quant_kernels *cllm_quant_kernels_backend(cllm_quant_backend b) {
    cllm_kernels_get();
    if ((int)b < 0 || b >= CLLM_QUANT_COUNT || !quant_available[b]) return NULL;
    return &quant_tables[b];
}

/* A KV attention kernel of one ISA, or NULL when this CPU (or
 * CLLM_KERNELS=reference) rules it out: what the tests compare with the
 * reference. */
static int isa_allowed(unsigned feature) {
    const cllm_kernels_table *t = cllm_kernels_get();
    return !t->reference && (t->cpu_features & feature);
}
cllm_kv_attend_fn cllm_kv_attend_q8_0_avx512_get(void) {
    return isa_allowed(CLLM_CPU_AVX512) ? cllm_kv_attend_q8_0_avx512 : NULL;
}
cllm_kv_attend_fn cllm_kv_attend_q8_0_avx2_get(void) {
    return isa_allowed(CLLM_CPU_AVX2) ? cllm_kv_attend_q8_0_avx2 : NULL;
}
cllm_kv_attend_fn cllm_kv_attend_f16_avx512_get(void) {
    return isa_allowed(CLLM_CPU_AVX512) ? cllm_kv_attend_f16_avx512 : NULL;
}
cllm_kv_attend_fn cllm_kv_attend_f16_avx2_get(void) {
    return isa_allowed(CLLM_CPU_AVX2) ? cllm_kv_attend_f16_avx2 : NULL;
}
cllm_kv_attend_f32_fn cllm_kv_attend_f32_avx512_get(void) {
    return isa_allowed(CLLM_CPU_AVX512) ? cllm_kv_attend_f32_avx512 : NULL;
}
cllm_kv_attend_f32_fn cllm_kv_attend_f32_avx2_get(void) {
    return isa_allowed(CLLM_CPU_AVX2) ? cllm_kv_attend_f32_avx2 : NULL;
}

const char *cllm_kernels_gemm_name(void) {
    static const char *const names[CLLM_GEMM_COUNT] = {
        [CLLM_GEMM_REFERENCE] = "reference", [CLLM_GEMM_ONEDNN] = "onednn"};
    return names[cllm_kernels_get()->gemm_backend];
}

const char *cllm_kernels_vec_name(void) {
    static const char *const names[CLLM_VEC_COUNT] = {
        [CLLM_VEC_REFERENCE] = "reference", [CLLM_VEC_AVX2] = "avx2", [CLLM_VEC_AVX512] = "avx512"};
    return names[cllm_kernels_get()->vec_backend];
}

void cllm_kernels_features_string(char *buf, size_t cap) {
    unsigned feat = cllm_kernels_get()->cpu_features;
    size_t used = 0;
    if (cap == 0) return;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof feature_names / sizeof feature_names[0]; i++) {
        if (!(feat & feature_names[i].bit)) continue;
        int n = snprintf(buf + used, cap - used, "%s%s", used ? " " : "", feature_names[i].name);
        if (n < 0 || (size_t)n >= cap - used) break;
        used += (size_t)n;
    }
    if (used == 0) snprintf(buf, cap, "none");
}

int cllm_kernels_set_threads(int n) {
    if (n <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (int)cpus : 1;
    }
    omp_set_num_threads(n);
    return omp_get_max_threads();
}

int cllm_kernels_threads(void) { return omp_get_max_threads(); }

const char *cllm_kernels_wait_policy(void) {
    static char buf[160];
    const char *policy = getenv("OMP_WAIT_POLICY");
    const char *spin = getenv("GOMP_SPINCOUNT");
    if (!policy && !spin) return "default (libgomp spins about 300000 iterations, then sleeps)";
    snprintf(buf, sizeof buf, "%s%s%s%s%s", policy ? "OMP_WAIT_POLICY=" : "",
             policy ? policy : "", policy && spin ? " " : "", spin ? "GOMP_SPINCOUNT=" : "",
             spin ? spin : "");
    return buf;
}
