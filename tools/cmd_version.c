/*
 * cmd_version.c: `cllm version`: the build version, the CPU features cllm
 * detected and the kernel each kind of work runs on here.
 */
#include <stdio.h>

#include "cli.h"
#include "cllm/kernels/kernels.h"

#ifndef CLLM_VERSION
#define CLLM_VERSION "0.1.0-dev"
#endif

int cllm_cmd_version(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("Usage: cllm version\n\nPrints the cllm version, the CPU features it detected and the kernels\n"
                   "it runs on them (CLLM_KERNELS=reference and CLLM_CPU_DISABLE=amx,... change them).\n");
            return CLI_EXIT_OK;
        }
        return cli_usage_error("version", "unknown argument '%s'", argv[i]);
    }
    const cllm_kernels_table *k = cllm_kernels_get();
    char features[256];
    cllm_kernels_features_string(features, sizeof features);
    cllm_error err;
    const int bf16 = cllm_precision_check(CLLM_PRECISION_BF16, &err) == CLLM_OK;
    printf("cllm %s\n", CLLM_VERSION);
    printf("cpu features:        %s%s\n", features, k->reference ? " (CLLM_KERNELS=reference: not used)" : "");
    printf("fp32 GEMM:           %s\n", cllm_kernels_gemm_name());
    printf("elementwise, AdamW:  %s\n", cllm_kernels_vec_name());
    printf("quantized inference: %s\n", k->quant->name);
    printf("KV cache attention:  %s\n", k->kv_attend_name);
    printf("bf16 training:       %s\n", bf16 ? cllm_precision_bf16_path() : "unavailable (--precision bf16 refused)");
    return CLI_EXIT_OK;
}
