/*
 * fileio.h: checked file I/O, read-only memory maps and atomic writes.
 *
 * Every reader here refuses directories, FIFOs and character devices (so
 * `/dev/zero` cannot make us read forever) and reports the path on failure.
 * The atomic writer never leaves a partial file under the final name: data goes
 * to "<path>.tmp.<pid>" in the same directory, is fsync'ed, renamed over the
 * final path, and the directory is fsync'ed. On any failure the temp file is
 * removed and the previous file at `path` is untouched.
 */
#ifndef CLLM_FILEIO_H
#define CLLM_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cllm/core/status.h"

/* Overflow-checked size arithmetic: return 0 and leave *out unchanged on overflow. */
static inline int cllm_size_mul(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) return 0;
    *out = r;
    return 1;
}
static inline int cllm_size_add(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_add_overflow(a, b, &r)) return 0;
    *out = r;
    return 1;
}

/* Fails unless `path` names an existing regular file; fills *size if non-NULL. */
cllm_status cllm_file_check_regular(const char *path, uint64_t *size, cllm_error *err);

/* Reads a whole regular file. *data is owned by the caller (free()), and is
 * NUL-terminated one byte past *len for convenience. max_len = 0 means no cap. */
cllm_status cllm_file_read_all(const char *path, uint64_t max_len, char **data,
                               size_t *len, cllm_error *err);

/* A read-only private memory map of a whole regular file. An empty file maps
 * to data == NULL, size == 0. Unmap with cllm_mmap_close (accepts zeroed).
 *
 * A file truncated or rewritten in place while mapped would kill the process
 * with SIGBUS at the next read past its new end (a model served for days, a
 * `cp` over it). With the guard enabled (cllm_mmap_guard_enable, once per
 * process, by the programs that keep models mapped), such a read does not
 * kill: the whole mapping is replaced by zero pages, marked damaged, and the
 * read goes on; the owner asks cllm_mmap_check between units of work
 * (a request, a generation) and stops with its error. A file replaced by
 * rename (mv, an editor's save) is harmless: the map keeps the old inode. */
typedef struct {
    const uint8_t *data; /* [size] bytes, borrowed until close */
    size_t size;
    int guard_slot;      /* 1 + index in the SIGBUS guard's table; 0 = not registered */
    uint64_t dev, ino;   /* identity of the mapped file at open */
    int64_t mtime_ns;
} cllm_mmap;

cllm_status cllm_mmap_open(cllm_mmap *map, const char *path, cllm_error *err);
void cllm_mmap_close(cllm_mmap *map);
/* Installs the SIGBUS handler described above (idempotent, thread-safe).
 * A SIGBUS outside every registered mapping still terminates the process. */
void cllm_mmap_guard_enable(void);
/* CLLM_ERR_IO naming path when a guarded read found the file shorter than
 * its map (the map now reads zeros) or when the mapped file was modified in
 * place since open (same inode, other size or modification time); CLLM_OK
 * otherwise, also when path now names another file (renamed over ours). */
cllm_status cllm_mmap_check(const cllm_mmap *map, const char *path, cllm_error *err);

/* Fails unless `dir` exists, is a directory and is writable by us. */
cllm_status cllm_dir_check_writable(const char *dir, cllm_error *err);

/* Creates `dir` (one level) if missing; fails if it exists and is not a dir. */
cllm_status cllm_dir_ensure(const char *dir, cllm_error *err);

/* Atomic file writer. Use: begin, any number of writes, then commit or abort.
 * All writes after a failed one are no-ops; commit reports the first failure. */
typedef struct {
    FILE *fp;
    char path[4096];     /* final destination */
    char tmp_path[4096]; /* where bytes go until commit */
    cllm_status status;  /* first failure, CLLM_OK while healthy */
    cllm_error error;    /* message for that failure */
    uint64_t bytes;      /* bytes written so far */
} cllm_atomic_file;

cllm_status cllm_atomic_begin(cllm_atomic_file *af, const char *path, cllm_error *err);
void cllm_atomic_write(cllm_atomic_file *af, const void *data, size_t len);
void cllm_atomic_printf(cllm_atomic_file *af, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Pads with zero bytes until bytes % alignment == 0. */
void cllm_atomic_pad(cllm_atomic_file *af, size_t alignment);
/* fsync, rename over af->path, fsync the directory. Removes the temp file on failure. */
cllm_status cllm_atomic_commit(cllm_atomic_file *af, cllm_error *err);
/* Closes and deletes the temp file; the destination is untouched. Safe after commit. */
void cllm_atomic_abort(cllm_atomic_file *af);

/* Convenience: atomically replace `path` with `len` bytes. */
cllm_status cllm_file_write_atomic(const char *path, const void *data, size_t len,
                                   cllm_error *err);

/* fsyncs the directory containing `path` (or `path` itself if it is a dir). */
cllm_status cllm_fsync_dir_of(const char *path, cllm_error *err);

#endif
