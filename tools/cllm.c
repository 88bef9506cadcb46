/*
 * cllm.c: the `cllm` program: dispatch to a subcommand, nothing else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "cllm/train/dist.h"

#define CLLM_COMMAND(name, fn, summary) int fn(int argc, char **argv);
#include "commands.h"
#undef CLLM_COMMAND

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_entry;

static const command_entry commands[] = {
#define CLLM_COMMAND(name, fn, summary) {name, fn, summary},
#include "commands.h"
#undef CLLM_COMMAND
};

static void print_usage(FILE *out) {
    fprintf(out,
            "cllm: train, align, run and serve language models, in C.\n\n"
            "Usage: cllm <command> [options]   (cllm --version: the version and CPU features)\n\nCommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'cllm <command> --help' for the options of one command.\n");
}

/* The two cores of the machines cllm targets are often shared. libgomp's
 * default lets idle threads spin for ~300k iterations at every barrier, which
 * slows a two-thread run 5-14x when another process holds a core. libgomp
 * reads its settings once, when it is loaded, so the only way to bound the
 * spin for our own process is to set GOMP_SPINCOUNT and re-execute ourselves
 * once. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is respected. */
static void bound_openmp_spinning(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("GOMP_SPINCOUNT", "20000", 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with libgomp's defaults. */
}

int main(int argc, char **argv) {
    bound_openmp_spinning(argv);
    /* Model files and shards stay mapped while a command runs (a server for
     * days): a file truncated under us reads as zeros and is reported by the
     * next check (cllm_model_check_file) instead of killing us with SIGBUS. */
    cllm_mmap_guard_enable();
    if (argc < 2) {
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli_is_help(argv[1]) || !strcmp(argv[1], "help")) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) argv[1] = "version"; /* as `cllm version` */
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return cllm_dist_exit(commands[i].run(argc - 1, argv + 1));
    fprintf(stderr, "cllm: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return CLI_EXIT_USAGE;
}
