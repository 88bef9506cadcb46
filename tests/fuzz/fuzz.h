/*
 * fuzz.h: what every libFuzzer target in tests/fuzz/ shares.
 *
 * Each target is one parser fed arbitrary bytes (LLVMFuzzerTestOneInput). A
 * parser may reject the input with a status (that is its job); the fuzzer
 * looks for crashes, sanitizer reports, leaks and runaway allocations
 * (libFuzzer's -rss_limit_mb / -malloc_limit_mb). Parsers that only take a
 * path read the bytes through an anonymous in-memory file (memfd), so
 * nothing touches the disk.
 *
 * Built and run by `make fuzz` (Makefile: clang, -fsanitize=fuzzer plus
 * ASan + UBSan) with seed corpora from tests/fuzz/corpus/<target>/.
 */
#ifndef CLLM_TESTS_FUZZ_H
#define CLLM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes data into a fresh memfd and returns its /proc path in `path`
 * (valid until fuzz_file_close). Returns the fd, or -1 (the target then
 * skips the input: a failure of the harness, not of the parser). */
static inline int fuzz_file_open(const uint8_t *data, size_t size, char *path, size_t cap) {
    int fd = memfd_create("cllm-fuzz", 0);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

static inline void fuzz_file_close(int fd) {
    if (fd >= 0) close(fd);
}

#endif
