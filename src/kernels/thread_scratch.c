/*
 * thread_scratch.c: per-thread scratch buffers for the kernels, one per
 * purpose (kernels_internal.h's cllm_scratch_slot), grown as needed and
 * kept, so steady-state decoding allocates nothing. A buffer is freed when
 * its thread exits (a pthread key destructor); the __thread pointers keep
 * the main thread's reachable until process exit.
 */
#include <pthread.h>
#include <stdlib.h>

#include "kernels_internal.h"

static __thread void *buf[CLLM_SCRATCH_COUNT];
static __thread size_t cap[CLLM_SCRATCH_COUNT];
static pthread_key_t keys[CLLM_SCRATCH_COUNT];
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void keys_create(void) {
    for (int i = 0; i < CLLM_SCRATCH_COUNT; i++)
        if (pthread_key_create(&keys[i], free) != 0) abort();
}

void *cllm_thread_scratch(cllm_scratch_slot slot, size_t bytes) {
    if (bytes <= cap[slot]) return buf[slot];
    pthread_once(&keys_once, keys_create);
    void *p = realloc(buf[slot], bytes);
    if (!p) return NULL;
    buf[slot] = p;
    cap[slot] = bytes;
    pthread_setspecific(keys[slot], p);
    return p;
}
