/*
 * cmd_attention.c: `cllm attention -m MODEL "text" --out attn.svg`: runs one
 * forward pass over the text and draws each head's attention weights of one
 * layer as a grid of heat maps (query tokens down the side, key tokens along
 * the top), like the self-attention pictures in transformer guides. The
 * model is loaded with training = 1 so every layer keeps its probabilities
 * (cllm_model_attention). Tokenizer: --tokenizer, else the model file's,
 * else bytes for a 256-token vocabulary. Does not rasterise (SVG only).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cllm/core/fileio.h"
#include "cllm/kernels/kernels.h"
#include "cllm/model/model.h"
#include "cllm/load/model_file.h"
#include "cllm/model/gguf_io.h"
#include "cllm/tokenizer/tokenizer.h"
#include "tok_common.h"

#define CMD "attention"
#define MAX_TOKENS 96  /* more would make unreadable pictures */
#define LABEL_CHARS 12 /* longest token label drawn */

static void usage(FILE *out) {
    fprintf(out,
            "Usage: cllm attention -m MODEL.gguf \"text\" --out attn.svg [--layer L]\n\n"
            "Draws the attention weights of every head of one layer over the tokens of\n"
            "TEXT as an SVG grid: row = the query token, column = the key token it looks\n"
            "at, darker = more weight (the upper triangle is masked: causal attention).\n\n"
            "Options:\n"
            "  -m, --model FILE  a GGUF model (required)\n"
            "  -o, --out FILE    the SVG to write (required)\n"
            "  --layer L         layer to draw, 0-based (default: the last)\n"
            "  --threads N       CPU threads (default: all cores)\n"
            TOK_SOURCE_HELP
            "  -h, --help        this help\n"
            "At most %d tokens.\n",
            MAX_TOKENS);
}

/* XML-escaped, visible label of a token's bytes (space as U+2423 OPEN BOX,
 * newline as \\n, other control or non-UTF-8 bytes as \\xNN). */
static void label(cllm_atomic_file *f, const uint8_t *b, size_t n) {
    int chars = 0;
    for (size_t i = 0; i < n && chars < LABEL_CHARS; chars++) {
        uint8_t c = b[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = (b[i + k] & 0xC0) == 0x80;
        if (!ok) {
            cllm_atomic_printf(f, "\\x%02x", c);
            i++;
            continue;
        }
        if (c == ' ') cllm_atomic_printf(f, "\xE2\x90\xA3");
        else if (c == '\n') cllm_atomic_printf(f, "\\n");
        else if (c < 0x20 || c == 0x7f) cllm_atomic_printf(f, "\\x%02x", c);
        else if (c == '&') cllm_atomic_printf(f, "&amp;");
        else if (c == '<') cllm_atomic_printf(f, "&lt;");
        else if (c == '>') cllm_atomic_printf(f, "&gt;");
        else if (c == '"') cllm_atomic_printf(f, "&quot;");
        else cllm_atomic_write(f, b + i, len);
        i += len;
    }
}

static cllm_status write_svg(const char *path, const float *att, int T, int NH, int layer, const cllm_tokenizer *tok,
                             const uint32_t *ids, cllm_error *err) {
    const int cell = T <= 16 ? 22 : T <= 32 ? 14 : T <= 64 ? 9 : 7;
    const int margin = 8 + 7 * LABEL_CHARS;   /* room for labels at ~7 px per character */
    const int panel = T * cell, gap = 36;
    const int cols = (int)ceil(sqrt((double)NH)), rows = (NH + cols - 1) / cols;
    const int pw = margin + panel + gap, ph = margin + panel + gap;
    const int W = cols * pw + 20, H = rows * ph + 50;
    const int font = cell < 12 ? cell : 11;
    cllm_atomic_file f;
    cllm_status st = cllm_atomic_begin(&f, path, err);
    if (st != CLLM_OK) return st;
    cllm_atomic_printf(&f,
                       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                       "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                       "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
                       "<text x=\"10\" y=\"24\" font-size=\"16\">Attention weights, layer %d: %d heads over %d tokens "
                       "(row = query, column = key; shade = sqrt of the weight)</text>\n",
                       W, H, W, H, layer, NH, T);
    for (int h = 0; h < NH; h++) {
        const int ox = 10 + (h % cols) * pw, oy = 40 + (h / cols) * ph;
        const int gx = ox + margin, gy = oy + margin;
        cllm_atomic_printf(&f, "<g>\n<text x=\"%d\" y=\"%d\" font-size=\"13\" font-weight=\"bold\">head %d</text>\n", ox,
                           oy + 14, h);
        cllm_atomic_printf(&f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#f4f4f4\" stroke=\"#888\"/>\n",
                           gx, gy, panel, panel);
        const float *a = att + (size_t)h * T * T;
        for (int i = 0; i < T; i++)
            for (int j = 0; j <= i; j++) {
                float p = a[(size_t)i * T + j];
                if (!(p >= 0)) p = 0;
                if (p > 1) p = 1;
                /* white (0) to dark blue (1) on a square-root scale, so the
                 * small weights of long rows stay visible; the tooltip has p */
                double s = sqrt((double)p);
                int r = (int)lround(255 - 222 * s), g = (int)lround(255 - 180 * s), b = (int)lround(255 - 80 * s);
                cllm_atomic_printf(&f,
                                   "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,%d)\"><title>%d&#8594;%d: "
                                   "%.3f</title></rect>\n",
                                   gx + j * cell, gy + i * cell, cell, cell, r, g, b, i, j, p);
            }
        for (int t = 0; t < T; t++) {
            const uint8_t *bytes;
            size_t n;
            cllm_error e2;
            int have = cllm_tokenizer_token_bytes(tok, ids[t], &bytes, &n, &e2) == CLLM_OK;
            /* row label (query), right-aligned left of the grid */
            cllm_atomic_printf(&f, "<text x=\"%d\" y=\"%d\" font-size=\"%d\" text-anchor=\"end\">", gx - 4,
                               gy + t * cell + cell / 2 + font / 3, font);
            if (have) label(&f, bytes, n);
            cllm_atomic_printf(&f, "</text>\n");
            /* column label (key), rotated above the grid */
            int cx = gx + t * cell + cell / 2 + font / 3, cy = gy - 4;
            cllm_atomic_printf(&f, "<text x=\"%d\" y=\"%d\" font-size=\"%d\" transform=\"rotate(-60 %d %d)\">", cx, cy,
                               font, cx, cy);
            if (have) label(&f, bytes, n);
            cllm_atomic_printf(&f, "</text>\n");
        }
        cllm_atomic_printf(&f, "</g>\n");
    }
    cllm_atomic_printf(&f, "</svg>\n");
    return cllm_atomic_commit(&f, err);
}

int cllm_cmd_attention(int argc, char **argv) {
    const char *model_path = NULL, *out = NULL, *text = NULL, *v;
    int layer = -1, threads = 0;
    tok_source ts;
    memset(&ts, 0, sizeof ts);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(model_path = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--out") || !strcmp(a, "-o")) {
            if (!(out = cli_value(CMD, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--layer")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 0, CLLM_MODEL_MAX_LAYERS - 1, &layer))
                return CLI_EXIT_USAGE;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = cli_value(CMD, argc, argv, &i)) || !cli_parse_int(CMD, a, v, 1, 1024, &threads))
                return CLI_EXIT_USAGE;
        } else {
            int r = tok_source_arg(CMD, &ts, argc, argv, &i);
            if (r < 0) return CLI_EXIT_USAGE;
            if (r > 0) continue;
            if (a[0] == '-' && a[1]) return cli_unknown_flag(CMD, a);
            if (text) return cli_usage_error(CMD, "unexpected argument '%s' (quote the text)", a);
            text = a;
        }
    }
    if (!model_path) return cli_usage_error(CMD, "a model is required: -m MODEL.gguf");
    if (!text) return cli_usage_error(CMD, "missing the text to look at");
    if (!out) return cli_usage_error(CMD, "missing --out FILE.svg");
    cllm_kernels_set_threads(threads);
    cllm_error err;
    cllm_model_file f = {0};
    cllm_model *m = NULL;
    cllm_tokens ids = {0};
    int32_t *tokens = NULL;
    int rc = CLI_EXIT_DATA;
    /* the loader's rules for the tokenizer; the model is made below once the
     * text's length is known (its attention buffers are T x T) */
    cllm_model_file_params fp = cllm_model_file_default_params();
    fp.load_model = 0;
    if (ts.path && (rc = tok_source_load(CMD, &ts, &fp.tokenizer)) != CLI_EXIT_OK) return rc;
    if (cllm_model_file_open(model_path, &fp, &f, &err) != CLLM_OK) goto fail;
    const cllm_model_config cfg = f.config;
    const cllm_tokenizer *tok = f.tok;
    if (layer >= cfg.n_layer) {
        rc = cli_usage_error(CMD, "--layer %d: the model has %d layers (0..%d)", layer, cfg.n_layer, cfg.n_layer - 1);
        goto out;
    }
    if (layer < 0) layer = cfg.n_layer - 1;
    if (cllm_tokenizer_encode(tok, text, strlen(text), NULL, &ids, &err) != CLLM_OK) goto fail;
    if (ids.n == 0) {
        cllm_error_set(&err, CLLM_ERR_ARG, "the text is empty");
        goto fail;
    }
    int cap = cfg.context_length < MAX_TOKENS ? cfg.context_length : MAX_TOKENS;
    if (ids.n > (size_t)cap) {
        cllm_error_set(&err, CLLM_ERR_LIMIT, "the text is %zu tokens; at most %d can be drawn (%s)", ids.n, cap,
                       cap == MAX_TOKENS ? "readability limit" : "the model's context");
        goto fail;
    }
    const int T = (int)ids.n;
    cllm_model_options o = cllm_model_default_options();
    o.training = 1; /* keeps every layer's attention probabilities */
    o.max_seq = T;
    if (cllm_model_create(&cfg, &o, &m, &err) != CLLM_OK || cllm_model_read_gguf(m, f.gguf, 1, &err) != CLLM_OK) goto fail;
    tokens = malloc((size_t)T * sizeof *tokens);
    if (!tokens) {
        cllm_error_set(&err, CLLM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)ids.ids[t];
    if (cllm_model_forward(m, tokens, NULL, 1, T, NULL, &err) != CLLM_OK) goto fail;
    int B, TT, NH;
    const float *att = cllm_model_attention(m, layer, &B, &TT, &NH);
    if (!att || TT != T) {
        cllm_error_set(&err, CLLM_ERR_INTERNAL, "no attention probabilities after the forward pass");
        goto fail;
    }
    if (write_svg(out, att, T, NH, layer, tok, ids.ids, &err) != CLLM_OK) goto fail;
    printf("wrote %s: layer %d of %d, %d heads, %d tokens\n", out, layer, cfg.n_layer, NH, T);
    rc = CLI_EXIT_OK;
    goto out;
fail:
    rc = cli_fail(CMD, &err);
out:
    free(tokens);
    cllm_tokens_free(&ids);
    cllm_model_destroy(m);
    cllm_model_file_close(&f);
    return rc;
}
