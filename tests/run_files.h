/* run_files.h: reading a training run's files in tests (run_files.c). */
#ifndef CLLM_TESTS_RUN_FILES_H
#define CLLM_TESTS_RUN_FILES_H

#include <stddef.h>

/* The whole file (malloc'ed, caller frees), or NULL. */
char *slurp(const char *path, size_t *len);
/* RUN/train.csv without its last column (tokens_per_s is a wall-clock rate)
 * into out[cap]; *rows excludes the header. */
void csv_rows(const char *run, char *out, size_t cap, int *rows);
/* 1 when both files exist and are byte for byte equal. */
int same_file(const char *a, const char *b);

#endif
