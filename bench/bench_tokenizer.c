/*
 * bench_tokenizer.c: encode throughput of cllm's tokenizer (compiled and run
 * by bench/bench_tokenizer.sh). Prints one JSON object: load time, and the
 * best of R runs of encode MB/s on 1 thread and on all threads.
 * Usage: bench_tokenizer RANKFILE PATTERN TEXTFILE [REPEATS]
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "cllm/core/fileio.h"
#include "cllm/core/progress.h"
#include "cllm/tokenizer/tokenizer.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_tokenizer RANKFILE PATTERN TEXTFILE [REPEATS]\n");
        return 2;
    }
    int reps = argc > 4 ? atoi(argv[4]) : 3;
    cllm_error err;
    cllm_pretok_kind kind;
    if (cllm_pretok_parse(argv[2], &kind, &err) != CLLM_OK) return fprintf(stderr, "%s\n", err.msg), 1;
    double t0 = cllm_now_seconds();
    cllm_tokenizer *t;
    if (cllm_tokenizer_load_any(argv[1], kind, &t, &err) != CLLM_OK) return fprintf(stderr, "%s\n", err.msg), 1;
    double load_s = cllm_now_seconds() - t0;
    cllm_mmap map;
    if (cllm_mmap_open(&map, argv[3], &err) != CLLM_OK) return fprintf(stderr, "%s\n", err.msg), 1;
    int threads[2] = {1, omp_get_max_threads()};
    double best[2] = {0, 0};
    size_t n_tokens = 0;
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < reps; r++) {
            cllm_tokens toks = {0};
            double s = cllm_now_seconds();
            if (cllm_tokenizer_encode_parallel(t, map.data, map.size, NULL, threads[k], &toks, &err) != CLLM_OK)
                return fprintf(stderr, "%s\n", err.msg), 1;
            double mbps = (double)map.size / 1e6 / (cllm_now_seconds() - s);
            if (mbps > best[k]) best[k] = mbps;
            n_tokens = toks.n;
            cllm_tokens_free(&toks);
        }
    printf("{\"bytes\": %zu, \"tokens\": %zu, \"load_s\": %.3f, \"mbps_1\": %.2f, \"threads\": %d, "
           "\"mbps_all\": %.2f}\n",
           map.size, n_tokens, load_s, best[0], threads[1], best[1]);
    cllm_mmap_close(&map);
    cllm_tokenizer_destroy(t);
    return 0;
}
