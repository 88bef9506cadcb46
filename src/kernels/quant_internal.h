/*
 * quant_internal.h: how quant.c fills its dispatch tables from the per-ISA
 * files (quant_avx2.c, quant_avx512.c). Private to src/kernels/.
 */
#ifndef CLLM_QUANT_INTERNAL_H
#define CLLM_QUANT_INTERNAL_H

#include "cllm/quant.h"

/* Fill t with the AVX2 implementation (call only when the CPU has AVX2+FMA+F16C). */
void cllm_quant_fill_avx2(cllm_quant_kernels *t);
/* Fill t with the AVX-512 implementation; vnni = 1 uses vpdpbusd for the
 * integer dots (call only when the CPU has those features). */
void cllm_quant_fill_avx512(cllm_quant_kernels *t, int vnni);

#endif
