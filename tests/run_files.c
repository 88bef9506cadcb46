/*
 * run_files.c: reading a training run's files in tests (test_sft.c,
 * test_rlhf_resume.c): whole files, byte equality, train.csv rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cllm/core/fileio.h"
#include "run_files.h"

char *slurp(const char *path, size_t *len) {
    char *data = NULL;
    cllm_error err;
    if (cllm_file_read_all(path, 0, &data, len, &err) != CLLM_OK) return NULL;
    return data;
}

/* train.csv's first five columns (step, loss, val_loss, lr, grad_norm): the
 * ones after them are wall-clock (tokens_per_s, comm_s, rank_compute_s) or
 * the rank count. */
void csv_rows(const char *run, char *out, size_t cap, int *rows) {
    char path[700];
    snprintf(path, sizeof path, "%s/train.csv", run);
    size_t len = 0, n = 0;
    char *data = slurp(path, &len);
    *rows = -1; /* the header is not a row */
    out[0] = '\0';
    for (char *line = data; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t l = nl ? (size_t)(nl - line) : strlen(line);
        size_t keep = 0;
        for (int commas = 0; keep < l && !(line[keep] == ',' && ++commas == 5); keep++) {
        }
        if (n + keep + 2 < cap) {
            memcpy(out + n, line, keep);
            n += keep;
            out[n++] = '\n';
            out[n] = '\0';
        }
        (*rows)++;
        line = nl ? nl + 1 : line + l;
    }
    free(data);
}

int same_file(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}
