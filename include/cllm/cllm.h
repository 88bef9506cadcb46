/*
 * cllm.h: every public header of the library, grouped as src/ is (one
 * folder per stage of the pipeline; docs/ARCHITECTURE.md draws it). A
 * program may include this one header, or only the groups it uses.
 */
#ifndef CLLM_CLLM_H
#define CLLM_CLLM_H

/* core/: status, files, hashes, RNG, progress, plots, UTF-8 */
#include "cllm/core/byteorder.h"
#include "cllm/core/fileio.h"
#include "cllm/core/hash.h"
#include "cllm/core/plot.h"
#include "cllm/core/progress.h"
#include "cllm/core/rng.h"
#include "cllm/core/status.h"
#include "cllm/core/utf8.h"

/* kernels/: GEMM, SIMD and quantized kernels behind one dispatch table */
#include "cllm/kernels/kernels.h"
#include "cllm/kernels/kv_attn.h"
#include "cllm/kernels/quant.h"

/* layers/: forward/backward pairs */
#include "cllm/layers/layers.h"

/* model/: the transformer, its GGUF mapping, mapped inference models, LoRA */
#include "cllm/model/gguf_io.h"
#include "cllm/model/lora.h"
#include "cllm/model/mapped.h"
#include "cllm/model/model.h"

/* formats/: the GGUF container and ggml types */
#include "cllm/formats/ggml_types.h"
#include "cllm/formats/gguf.h"

/* tokenizer/: byte-level BPE */
#include "cllm/tokenizer/tokenizer.h"

/* load/: opening a model file */
#include "cllm/load/model_file.h"

/* data/: the practice world */
#include "cllm/data/world.h"

/* train/: data, optimizer, checkpoints, pre-training, SFT, RLHF */
#include "cllm/train/chat_data.h"
#include "cllm/train/checkpoint.h"
#include "cllm/train/dataloader.h"
#include "cllm/train/optim.h"
#include "cllm/train/pretrain.h"
#include "cllm/train/rlhf.h"
#include "cllm/train/sft.h"
#include "cllm/train/shard.h"

/* infer/: sampling, generation, chat templates, perplexity, quantization */
#include "cllm/infer/chat_template.h"
#include "cllm/infer/generate.h"
#include "cllm/infer/grammar.h"
#include "cllm/infer/jinja.h"
#include "cllm/infer/perplexity.h"
#include "cllm/infer/quantize.h"
#include "cllm/infer/sampler.h"
#include "cllm/infer/stop.h"

/* eval/: metrics and task evaluation */
#include "cllm/eval/eval.h"
#include "cllm/eval/metrics.h"

/* server/: the HTTP server */
#include "cllm/server/server.h"

#endif
