/*
 * cmd_version.c: `cllm version`: the build version and detected CPU features.
 */
#include <stdio.h>

#include "cli.h"

#ifndef CLLM_VERSION
#define CLLM_VERSION "0.1.0-dev"
#endif

int cllm_cmd_version(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("Usage: cllm version\n\nPrints the cllm version and the CPU features it detected.\n");
            return CLI_EXIT_OK;
        }
        return cli_usage_error("version", "unknown argument '%s'", argv[i]);
    }
    __builtin_cpu_init();
    printf("cllm %s\n", CLLM_VERSION);
    printf("cpu: avx2=%d fma=%d avx512f=%d avx512bw=%d\n", !!__builtin_cpu_supports("avx2"),
           !!__builtin_cpu_supports("fma"), !!__builtin_cpu_supports("avx512f"),
           !!__builtin_cpu_supports("avx512bw"));
    return CLI_EXIT_OK;
}
