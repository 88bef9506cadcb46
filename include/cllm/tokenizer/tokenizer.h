/*
 * tokenizer.h: byte-level BPE: pre-tokenization, encoding, decoding,
 * training, and loading/saving vocabularies.
 *
 * Model: a vocabulary of V ids, each either an ordinary token (a byte string),
 * a special (control) token, or a hole (an unused id, e.g. cl100k's 100256).
 * Every one of the 256 single bytes is an ordinary token, so any byte string
 * encodes (no unknown token) and decode(encode(x)) == x for any x.
 *
 * Encoding: text -> pre-tokens (a PCRE2 split pattern: GPT-2, cl100k, o200k,
 * a custom regex, or none) -> byte-pair merges inside each pre-token. Merge
 * priority comes from one of two rules, fixed when the vocabulary is loaded:
 *   - ranks (tiktoken): the adjacent pair whose concatenation is the token of
 *     lowest id merges first, and a pre-token that is itself a token is
 *     emitted whole. tiktoken files, GPT-2 files and cllm-trained vocabularies.
 *   - merges (Hugging Face): an explicit ordered merge list; only listed pairs
 *     merge, the earliest first. tokenizer.json files.
 * Ties go to the leftmost pair in both rules, as in tiktoken and tokenizers.
 *
 * Special tokens are only recognised in text when the caller allows them
 * (cllm_special_set); by default their text is encoded as ordinary bytes, so
 * user text never turns into control tokens.
 *
 * SentencePiece vocabularies (llama.cpp's "llama" GGUF tokenizers: Llama 1/2,
 * Mistral 7B v0.1, TinyLlama) are read from GGUF only and encode exactly as
 * llama.cpp's SPM tokenizer does: spaces become U+2581, a leading one is added
 * (add_space_prefix), UTF-8 characters merge by highest piece score, and
 * characters outside the vocabulary fall back to <0xXX> byte tokens. There
 * control and unknown tokens are the special ones (matched when allowed, as
 * llama.cpp's parse_special); user-defined tokens are always matched; decode
 * drops the space the encoder added before the first token. See
 * docs/FORMATS.md, "SentencePiece vocabularies".

 * Not here: chat templates (src/infer), Unicode normalisation (byte-level BPE
 * does none), SentencePiece unigram models.
 *
 * Threading: a finished cllm_tokenizer is immutable and may be shared by any
 * number of threads; the trainer is single-owner.
 */
#ifndef CLLM_TOKENIZER_H
#define CLLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "cllm/core/status.h"

/* ---- pre-tokenization ----------------------------------------------------- */

typedef enum {
    CLLM_PRETOK_NONE = 0, /* the whole text is one pre-token */
    CLLM_PRETOK_GPT2,     /* GPT-2 / r50k / p50k split */
    CLLM_PRETOK_CL100K,   /* GPT-4 (cl100k_base) split; name "gpt4" or "cl100k" */
    CLLM_PRETOK_O200K,    /* GPT-4o (o200k_base) split */
    CLLM_PRETOK_CUSTOM,   /* a caller-supplied PCRE2 regex */
    CLLM_PRETOK_CL100K_DIGITS, /* cl100k with every digit a pre-token of its own (as Llama 3 /
                                  DeepSeek split numbers); name "gpt4-digits" */
    /* The splits llama.cpp runs for GGUF tokenizer.ggml.pre families (some are
     * sequences of regexes: see pretok.c); names as cllm_pretok_name gives. */
    CLLM_PRETOK_LLAMA3,         /* "llama3": llama-bpe, dbrx, smaug-bpe, ... */
    CLLM_PRETOK_QWEN2,          /* "qwen2": qwen2, stablelm2, ... */
    CLLM_PRETOK_QWEN35,         /* "qwen35" */
    CLLM_PRETOK_DEEPSEEK_LLM,   /* "deepseek-llm" (6 stages) */
    CLLM_PRETOK_DEEPSEEK_CODER, /* "deepseek-coder" (5 stages) */
    CLLM_PRETOK_STARCODER,      /* "starcoder": digits, then GPT-2 (smollm, refact, command-r, ...) */
    CLLM_PRETOK_FALCON,         /* "falcon" (3 stages) */
    CLLM_PRETOK_LLAMA_DEFAULT,  /* "llama-default": llama.cpp's "default" (4 stages) */
    CLLM_PRETOK_TEKKEN,         /* "tekken": Mistral's Tekken (Mistral Nemo, Pixtral 12B) */
    CLLM_PRETOK_COUNT
} cllm_pretok_kind;

/* The regex of a built-in kind (NULL for NONE and CUSTOM). */
const char *cllm_pretok_pattern(cllm_pretok_kind kind);
/* Canonical name: "none", "gpt2", "cl100k", "o200k", "custom", "gpt4-digits",
 * or a llama.cpp family's ("llama3", "qwen2", ...). */
const char *cllm_pretok_name(cllm_pretok_kind kind);
/* Parses "none", "gpt2", "gpt4"/"cl100k", "gpt4o"/"o200k", "gpt4-digits". */
cllm_status cllm_pretok_parse(const char *name, cllm_pretok_kind *kind, cllm_error *err);

/* A compiled split pattern (PCRE2, UTF + Unicode properties + JIT, invalid
 * UTF-8 allowed: bytes that are not valid UTF-8 never match and come out as
 * pre-tokens of their own, so every input byte lands in exactly one piece). */
typedef struct cllm_pretok cllm_pretok;

/* regex NULL means CLLM_PRETOK_NONE. A sequence of regexes applied one
 * after another (each later one to every piece of the one before, as
 * llama.cpp does) is written joined by U+001F. */
cllm_status cllm_pretok_create(cllm_pretok **out, const char *regex, cllm_error *err);
void cllm_pretok_destroy(cllm_pretok *pt);

/* Called once per pre-token in text order; return non-zero to stop early. */
typedef int (*cllm_piece_fn)(void *ctx, const uint8_t *piece, size_t len);

/* Splits text[begin, end) into pre-tokens. Lookaheads see all of text[0,len),
 * so splitting [0,p) and [p,len) equals splitting [0,len) whenever p is a
 * pre-token boundary (cllm_pretok_safe_split finds such points). */
cllm_status cllm_pretok_split(const cllm_pretok *pt, const uint8_t *text, size_t len, size_t begin,
                              size_t end, cllm_piece_fn fn, void *ctx, cllm_error *err);

/* Smallest p in [from, len) that is a pre-token boundary for the GPT-2,
 * cl100k and o200k patterns ("\n" then an ASCII letter, or an ASCII letter,
 * a space, an ASCII letter: the boundary is before the letter resp. space);
 * returns len if none. Not valid for custom patterns or NONE. */
size_t cllm_pretok_safe_split(const uint8_t *text, size_t len, size_t from);

/* ---- the tokenizer ------------------------------------------------------- */

typedef struct cllm_tokenizer cllm_tokenizer;

typedef enum {
    CLLM_BPE_RANKS = 0, /* tiktoken rule (see top) */
    CLLM_BPE_MERGES,    /* Hugging Face merge-list rule */
    CLLM_BPE_COUNT
} cllm_bpe_rule;

typedef enum {
    CLLM_TOKEN_NORMAL = 0,
    CLLM_TOKEN_SPECIAL, /* control token: only from allowed text or by id */
    CLLM_TOKEN_UNUSED,  /* a hole in the id space; never produced, decode fails */
    CLLM_TOKEN_KIND_COUNT
} cllm_token_kind;

void cllm_tokenizer_destroy(cllm_tokenizer *t);

uint32_t cllm_tokenizer_n_vocab(const cllm_tokenizer *t); /* V: every id is < V */
uint32_t cllm_tokenizer_n_merges(const cllm_tokenizer *t);
cllm_bpe_rule cllm_tokenizer_rule(const cllm_tokenizer *t);
cllm_pretok_kind cllm_tokenizer_pretok_kind(const cllm_tokenizer *t);
/* The split regex (NULL for NONE); borrowed. */
const char *cllm_tokenizer_pattern(const cllm_tokenizer *t);
cllm_token_kind cllm_tokenizer_token_kind(const cllm_tokenizer *t, uint32_t id);
/* Bytes of token id (borrowed); fails for ids >= V or holes. */
cllm_status cllm_tokenizer_token_bytes(const cllm_tokenizer *t, uint32_t id, const uint8_t **bytes,
                                       size_t *len, cllm_error *err);
/* Merge number r (0 = highest priority) as (left id, right id, result id). */
void cllm_tokenizer_merge(const cllm_tokenizer *t, uint32_t r, uint32_t *left, uint32_t *right,
                          uint32_t *result);
/* Id of the special token with exactly this text, or -1. */
int64_t cllm_tokenizer_special_id(const cllm_tokenizer *t, const char *text);
/* The document separator: "<|endoftext|>" if present (for a SentencePiece
 * vocabulary its eos token, "</s>"), else -1. */
int64_t cllm_tokenizer_eot_id(const cllm_tokenizer *t);
/* 1 for a SentencePiece vocabulary (GGUF tokenizer.ggml.model "llama"). */
int cllm_tokenizer_is_spm(const cllm_tokenizer *t);
/* The id a prompt starts with when the vocabulary asks for one (llama.cpp's
 * add_bos: true by default for SentencePiece), else -1. Encoding never adds it. */
int64_t cllm_tokenizer_prompt_bos(const cllm_tokenizer *t);
/* The id to append to a prompt when the vocabulary asks (add_eos_token), else -1. */
int64_t cllm_tokenizer_prompt_eos(const cllm_tokenizer *t);
/* 64-bit FNV-1a fingerprint of the vocabulary, merges, rule, pattern and
 * specials (what token shards and checkpoints record). */
uint64_t cllm_tokenizer_hash(const cllm_tokenizer *t);

/* ---- encoding ------------------------------------------------------------- */

/* A growable list of ids, owned by the caller; zero-initialise, then free. */
typedef struct {
    uint32_t *ids; /* [n], capacity cap */
    size_t n, cap;
} cllm_tokens;

void cllm_tokens_free(cllm_tokens *toks);
cllm_status cllm_tokens_push(cllm_tokens *toks, uint32_t id, cllm_error *err);

/* Which special tokens text may produce. NULL or {0} = none. */
typedef struct {
    int all;            /* 1: every special token of the vocabulary */
    const uint32_t *ids; /* [n] allowed special ids when all == 0 */
    size_t n;
} cllm_special_set;

/* Appends the ids of text[0,len) to out. Any bytes are accepted. */
cllm_status cllm_tokenizer_encode(const cllm_tokenizer *t, const void *text, size_t len,
                                  const cllm_special_set *allowed, cllm_tokens *out,
                                  cllm_error *err);

/* cllm_tokenizer_encode for text that follows token prev in one sequence
 * (prev < 0: none), where a token boundary lies between them: the ids that
 * encoding the two texts at once would give. SentencePiece vocabularies
 * (add_space_prefix) put their leading space only at the start of the text
 * and after a control, unknown or user-defined token, as llama.cpp does, so
 * text continuing ordinary text gets none; byte-level BPE is unaffected. */
cllm_status cllm_tokenizer_encode_after(const cllm_tokenizer *t, int64_t prev, const void *text, size_t len,
                                        const cllm_special_set *allowed, cllm_tokens *out, cllm_error *err);

/* Same result as cllm_tokenizer_encode, computed on n_threads threads
 * (<= 0: all OpenMP threads) over chunks cut at safe pre-token boundaries. */
cllm_status cllm_tokenizer_encode_parallel(const cllm_tokenizer *t, const void *text, size_t len,
                                           const cllm_special_set *allowed, int n_threads,
                                           cllm_tokens *out, cllm_error *err);

/* ---- decoding ------------------------------------------------------------- */

/* Concatenated bytes of ids (exact inverse of encode); *out is owned by the
 * caller, NUL-terminated one past *out_len. Fails on ids >= V or holes.
 * SentencePiece: as llama.cpp's detokenize with special tokens shown: one
 * leading space of the first token is dropped when add_space_prefix (so text
 * after an allowed special token keeps the space the encoder added there),
 * and unused ids decode to nothing. */
cllm_status cllm_tokenizer_decode(const cllm_tokenizer *t, const uint32_t *ids, size_t n,
                                  char **out, size_t *out_len, cllm_error *err);

/* Streaming decoder: emits only whole UTF-8 characters. Bytes that cannot be
 * part of valid UTF-8 are emitted as U+FFFD (EF BF BD), one per maximal
 * invalid subpart, as the Unicode standard recommends. */
typedef struct {
    uint8_t pending[4]; /* an incomplete but so far valid UTF-8 prefix */
    int n_pending;
} cllm_utf8_stream;

/* Appends the printable UTF-8 of token id to out[*out_len, cap) and advances
 * *out_len. cap - *out_len must be at least 3 * (token length + 4). */
cllm_status cllm_tokenizer_decode_stream(const cllm_tokenizer *t, cllm_utf8_stream *st,
                                         uint32_t id, char *out, size_t cap, size_t *out_len,
                                         cllm_error *err);
/* Ends a stream: a dangling incomplete prefix becomes one U+FFFD. out needs 3 bytes. */
size_t cllm_utf8_stream_flush(cllm_utf8_stream *st, char *out);
/* Feeds raw bytes (the core of decode_stream). Same capacity rule. */
size_t cllm_utf8_stream_feed(cllm_utf8_stream *st, const uint8_t *bytes, size_t len, char *out);

/* ---- building a vocabulary by hand (loaders and tests use this) -------- */

/* An empty tokenizer with V ids, all holes, split pattern `regex` (NULL = none). */
cllm_status cllm_tokenizer_new(cllm_tokenizer **out, uint32_t n_vocab, cllm_pretok_kind kind,
                               const char *regex, cllm_error *err);
/* Sets token id (NORMAL or SPECIAL) to bytes[len]; fails if already set. */
cllm_status cllm_tokenizer_set_token(cllm_tokenizer *t, uint32_t id, const void *bytes,
                                     size_t len, cllm_token_kind kind, cllm_error *err);
/* Appends a merge (merges rule only; order = priority). */
cllm_status cllm_tokenizer_add_merge(cllm_tokenizer *t, uint32_t left, uint32_t right,
                                     cllm_error *err);
/* Validates (every single byte present once, no duplicate ordinary tokens,
 * merges name known tokens whose concatenation is a token), builds the
 * lookup tables and the fingerprint. Must precede encode/decode. */
cllm_status cllm_tokenizer_finalize(cllm_tokenizer *t, cllm_bpe_rule rule, cllm_error *err);

/* The byte-level vocabulary of models pre-trained on raw bytes: 256 tokens,
 * id b is the single byte b, no merges, no split, no specials. */
cllm_status cllm_tokenizer_new_bytes(cllm_tokenizer **out, cllm_error *err);

/* ---- files ---------------------------------------------------------------- */

/* cllm's own tokenizer file (docs/FORMATS.md, "Tokenizer file"). */
cllm_status cllm_tokenizer_save(const cllm_tokenizer *t, const char *path, cllm_error *err);
cllm_status cllm_tokenizer_load(const char *path, cllm_tokenizer **out, cllm_error *err);
cllm_status cllm_tokenizer_parse(const char *data, size_t len, const char *name,
                                 cllm_tokenizer **out, cllm_error *err);

/* A special token to add to a tiktoken vocabulary. */
typedef struct {
    const char *text;
    uint32_t id;
} cllm_special_def;

/* tiktoken rank file ("<base64 token> <rank>" per line). Holes are allowed.
 * When kind is a built-in pattern and specials is NULL, n_specials is 0 and the
 * file is one of OpenAI's (recognised by size), OpenAI's specials are added. */
cllm_status cllm_tokenizer_load_tiktoken(const char *path, cllm_pretok_kind kind,
                                         const char *regex, const cllm_special_def *specials,
                                         size_t n_specials, cllm_tokenizer **out,
                                         cllm_error *err);
/* GPT-2: encoder.json (or vocab.json) + vocab.bpe (or merges.txt). The split
 * is GPT-2's; "<|endoftext|>" becomes special when present. */
cllm_status cllm_tokenizer_load_gpt2(const char *encoder_json, const char *merges_path,
                                     cllm_tokenizer **out, cllm_error *err);
/* Hugging Face tokenizer.json with a byte-level BPE model. */
cllm_status cllm_tokenizer_load_hf(const char *path, cllm_tokenizer **out, cllm_error *err);
/* A SentencePiece BPE model file (tokenizer.model, protobuf), read as the
 * GGUF vocabulary llama.cpp's converter makes of it (see docs/FORMATS.md). */
cllm_status cllm_tokenizer_load_spm_model(const char *path, cllm_tokenizer **out, cllm_error *err);
/* Chooses by name/content: a *.model file -> SentencePiece; *.json with "model" -> HF; "cllm-tokenizer" header
 * -> own; otherwise tiktoken with `kind` (GPT-2 pairs need load_gpt2). */
cllm_status cllm_tokenizer_load_any(const char *path, cllm_pretok_kind kind,
                                    cllm_tokenizer **out, cllm_error *err);

/* ---- GGUF (llama.cpp's layout for BPE and SentencePiece vocabularies) -----
 * Keys: tokenizer.ggml.model = "gpt2"; tokenizer.ggml.pre ("gpt-2",
 * "llama-bpe" for the cl100k split, "gpt-4o", "default"); tokenizer.ggml.tokens
 * (byte-level alphabet text; specials raw; holes "[PAD<id>]");
 * tokenizer.ggml.token_type (1 normal, 3 control, 5 unused);
 * tokenizer.ggml.merges ("<left> <right>" in priority order);
 * tokenizer.ggml.bos_token_id / eos_token_id (the end-of-text token);
 * tokenizer.chat_template when given; plus cllm.tokenizer.rule and
 * cllm.tokenizer.regex so cllm reads back exactly what it wrote.
 * SentencePiece: tokenizer.ggml.model = "llama"; tokens (pieces with U+2581
 * for spaces, "<0xXX>" byte tokens), scores (f32), token_type (1 normal,
 * 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), bos/eos/unknown/
 * padding_token_id (defaults 1, 2, 0, none), add_bos_token (default true),
 * add_eos_token (false), add_space_prefix (true). Such a tokenizer is written
 * back with the same keys; cllm's own tokenizer file cannot hold it. */
typedef struct cllm_gguf cllm_gguf;
typedef struct cllm_gguf_writer cllm_gguf_writer;

/* Adds the keys to a writer (model writers call this). chat_template may be NULL. */
cllm_status cllm_tokenizer_gguf_set(const cllm_tokenizer *t, cllm_gguf_writer *w,
                                    const char *chat_template, cllm_error *err);
/* The tokenizer.ggml.pre cllm_tokenizer_gguf_set writes for a byte-level
 * BPE tokenizer (llama.cpp's name of its split), NULL for SentencePiece;
 * *known = 0 when that name is "default" only because the split is a
 * regex llama.cpp has no name for (llama.cpp then splits differently). */
const char *cllm_tokenizer_gguf_pre(const cllm_tokenizer *t, int *known);
/* A GGUF file holding only the tokenizer keys, written atomically. */
cllm_status cllm_tokenizer_write_gguf(const cllm_tokenizer *t, const char *path,
                                      const char *chat_template, cllm_error *err);
/* Reads the keys from an opened GGUF file / a path. */
cllm_status cllm_tokenizer_from_gguf(const cllm_gguf *g, cllm_tokenizer **out, cllm_error *err);
cllm_status cllm_tokenizer_read_gguf(const char *path, cllm_tokenizer **out, cllm_error *err);

/* ---- training ------------------------------------------------------------- */

typedef struct {
    uint32_t vocab_size;         /* total V: 256 bytes + merges + specials */
    cllm_pretok_kind pretok;     /* split used while counting and encoding */
    const char *regex;           /* for CLLM_PRETOK_CUSTOM */
    const char *const *specials; /* [n_specials] texts appended after the merges */
    size_t n_specials;
    uint64_t min_pair_count;     /* stop early when the best pair is rarer (default 2) */
    int n_threads;               /* counting threads, <= 0: all */
    int progress;                /* 1: progress bar on stderr */
} cllm_bpe_train_params;

/* vocab 32768, cl100k split, specials <|endoftext|> <|im_start|> <|im_end|>. */
cllm_bpe_train_params cllm_bpe_train_default_params(void);

typedef struct cllm_bpe_trainer cllm_bpe_trainer;

/* The params struct is copied; the specials strings must outlive the trainer. */
cllm_status cllm_bpe_trainer_create(cllm_bpe_trainer **out, const cllm_bpe_train_params *p,
                                    cllm_error *err);
/* Counts the pre-tokens of text (may be called many times, e.g. per file or
 * document). Memory grows with the number of distinct pre-tokens only. */
cllm_status cllm_bpe_trainer_add(cllm_bpe_trainer *tr, const void *text, size_t len,
                                 cllm_error *err);
uint64_t cllm_bpe_trainer_n_unique(const cllm_bpe_trainer *tr);
/* Learns the merges and returns a finished tokenizer (ranks rule: ids 0..255
 * are bytes, 256.. merges in order, then the specials). */
cllm_status cllm_bpe_trainer_finish(cllm_bpe_trainer *tr, cllm_tokenizer **out, cllm_error *err);
void cllm_bpe_trainer_destroy(cllm_bpe_trainer *tr);

#endif
