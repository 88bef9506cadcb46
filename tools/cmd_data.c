/*
 * cmd_data.c: `cllm data world`: writes the built-in practice world (stories
 * for pre-training, task sets with references, preference pairs, manifest)
 * into a directory. The generator is include/cllm/data/world.h; this file only
 * parses flags and prints what was written.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cllm/data/world.h"

#define CMD "data"

static void usage(FILE *out) {
    fprintf(out,
            "Usage: cllm data world --out DIR [--seed S] [--size small|full] [--stories N]\n\n"
            "Generates the practice world, deterministically from the seed: simple English\n"
            "stories with Korean renderings (stories.{train,val}.txt), task sets with exact\n"
            "references split train/val/test with no shared inputs (<task>.{train,val,test}.jsonl,\n"
            "TRL \"messages\" format plus \"task\", \"metrics\" and \"reference\"), preference pairs\n"
            "(preferences.{train,val}.jsonl: prompt / chosen / rejected) and manifest.json.\n"
            "Tasks: translate_en_ko, translate_ko_en, summary, sentiment, faq, arithmetic, and\n"
            "conversations: 1-3 turns of those questions, half after a system message, with\n"
            "reworded instructions (e.g. \"다음 문장을 한국어로 번역하세요: ...\").\n\n"
            "Options:\n"
            "  -o, --out DIR    output directory (created if missing; files replaced atomically)\n"
            "  --seed S         generator seed (default 1)\n"
            "  --size NAME      small (CI, ~1.5 MB of stories) or full (~15 MB); default small\n"
            "  --stories N      number of pre-training stories (default: the size's)\n"
            "  -h, --help       this help\n");
}

int cllm_cmd_data(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "world") != 0) return cli_usage_error(CMD, "unknown subcommand '%s' (expected 'world')", argv[1]);
    cllm_world_params p = cllm_world_default_params();
    const char *out = NULL, *v;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--out") || !strcmp(a, "-o")) {
            if (!(out = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--seed")) {
            int64_t s;
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_i64(CMD, a, v, 0, INT64_MAX, &s)) return CLI_EXIT_USAGE;
            p.seed = (uint64_t)s;
        } else if (!strcmp(a, "--stories")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 10000000, &p.n_stories))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--size")) {
            if (!(v = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
            int s = cllm_world_size_parse(v);
            if (s < 0) return cli_usage_error(CMD, "--size must be small or full, got '%s'", v);
            p.size = (cllm_world_size)s;
        } else {
            return cli_unknown_flag(CMD, a);
        }
    }
    if (!out) return cli_usage_error(CMD, "missing --out DIR");
    cllm_error err;
    cllm_world w;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (cllm_world_build(&p, &w, &err) != CLLM_OK) return cli_fail(CMD, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (cllm_world_write(&w, out, &err) != CLLM_OK) {
        cllm_world_free(&w);
        return cli_fail(CMD, &err);
    }
    size_t total = 0;
    printf("%-32s %9s %11s\n", "file", "records", "bytes");
    for (int i = 0; i < w.n_files; i++) {
        printf("%-32s %9zu %11zu\n", w.files[i].name, w.files[i].n_records, w.files[i].len);
        total += w.files[i].len;
    }
    printf("world seed %llu, size %s: %zu bytes in %d files under %s (generated in %.2f s)\n",
           (unsigned long long)p.seed, cllm_world_size_name(p.size), total, w.n_files, out,
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    cllm_world_free(&w);
    return CLI_EXIT_OK;
}
