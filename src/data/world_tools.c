/*
 * world_tools.c: the practice world's tools (agent.h's built-ins): the
 * shop's order and stock table, the tool definitions the model is shown,
 * and the questions whose answer needs a tool: arithmetic on numbers of up
 * to four digits (the calculator) and order status / stock questions (the
 * shop). Each generator gives the question, the call's arguments (JSON),
 * the tool's result (what agent.c computes for them: the world tests
 * recompute every one through the built-ins) and the final answer.
 * Results are written as agent.c's built-ins print them (compact JSON), so
 * training shows the model exactly what it reads at run time. Splits and
 * files are world.c's.
 */
#include <stdio.h>
#include <string.h>

#include "cllm/core/hash.h"
#include "world_internal.h"

/* ---- the table ---------------------------------------------------------------- */

static const char *const statuses[] = {"being packed", "on its way", "delivered", "cancelled",
                                       "waiting for payment"};

void w_shop_build(uint64_t seed, int n_orders, w_shop *shop) {
    memset(shop, 0, sizeof *shop);
    CLLM_ASSERT(w_n_things <= W_COUNT(shop->stock));
    cllm_rng r;
    cllm_rng_seed(&r, cllm_mix64(seed) ^ 0x5ca1ab1e5eedULL);
    if (n_orders > W_SHOP_MAX_ORDERS) n_orders = W_SHOP_MAX_ORDERS;
    /* ids 1000..9999, each at most once: a random start and an odd stride modulo 9000 */
    uint64_t start = cllm_rng_below(&r, 9000), stride = 1 + 2 * cllm_rng_below(&r, 4000);
    while (stride % 3 == 0 || stride % 5 == 0) stride += 2; /* coprime with 9000 = 2^3 3^2 5^3 */
    for (int i = 0; i < n_orders; i++) {
        shop->order_id[i] = 1000 + (int)((start + (uint64_t)i * stride) % 9000);
        shop->order_item[i] = w_pick_thing(&r, W_FOOD | W_TOY | W_THING);
        shop->order_status[i] = (int)cllm_rng_below(&r, (uint64_t)W_COUNT(statuses));
    }
    shop->n_orders = n_orders;
    for (int t = 0; t < w_n_things; t++)
        shop->stock[t] = cllm_rng_below(&r, 4) == 0 ? 0 : 1 + (int)cllm_rng_below(&r, 60);
}

static int sold(int thing) { return (w_things[thing].kinds & (W_FOOD | W_TOY | W_THING)) != 0; }

void w_shop_json(const w_shop *shop, wbuf *out) {
    wb_puts(out, "{\"orders\": {");
    for (int i = 0; i < shop->n_orders; i++) {
        wb_printf(out, "%s\"%d\": {\"item\": ", i ? ", " : "", shop->order_id[i]);
        wb_json_str(out, w_things[shop->order_item[i]].en);
        wb_printf(out, ", \"status\": \"%s\"}", statuses[shop->order_status[i]]);
    }
    wb_puts(out, "},\n \"stock\": {");
    int first = 1;
    for (int t = 0; t < w_n_things; t++) {
        if (!sold(t)) continue;
        wb_puts(out, first ? "" : ", ");
        wb_json_str(out, w_things[t].en);
        wb_printf(out, ": %d", shop->stock[t]);
        first = 0;
    }
    wb_puts(out, "}}\n");
}

void w_tools_json(wbuf *out, int builtin) {
    static const struct {
        const char *name, *description, *arg, *builtin;
    } tools[] = {
        {"calculator", "Arithmetic.", "expression", "calculator"},
        {"order_status", "An order's status.", "order", "shop_order"},
        {"stock", "How many the shop has.", "item", "shop_stock"},
    };
    for (int i = 0; i < W_COUNT(tools); i++) {
        wb_printf(out, "%s{\"type\": \"function\", \"function\": {\"name\": \"%s\", \"description\": \"%s\", "
                       "\"parameters\": {\"type\": \"object\", \"properties\": {\"%s\": {\"type\": \"string\"}}, "
                       "\"required\": [\"%s\"], \"additionalProperties\": false}}",
                  i ? ", " : "[", tools[i].name, tools[i].description, tools[i].arg, tools[i].arg);
        if (builtin) wb_printf(out, ", \"x-cllm-builtin\": \"%s\"", tools[i].builtin);
        if (builtin && i > 0) wb_puts(out, ", \"x-cllm-table\": \"shop.json\"");
        wb_puts(out, "}");
    }
    wb_puts(out, "]");
}

/* ---- calculator questions ------------------------------------------------------------ */

/* An operand of 1-4 digits, the longer ones more often. */
static int operand(cllm_rng *r) {
    static const int lo[] = {0, 10, 100, 1000, 1000}, span[] = {10, 90, 900, 9000, 9000};
    int k = (int)cllm_rng_below(r, 5);
    return lo[k] + (int)cllm_rng_below(r, (uint64_t)span[k]);
}

void w_task_tool_arith(cllm_rng *r, wbuf *question, wbuf *expression, long long *answer, uint64_t *key) {
    int x = operand(r), y = operand(r), op = (int)cllm_rng_below(r, 3);
    if (op == 1 && x < y) { int s = x; x = y; y = s; }
    static const char sym[] = {'+', '-', '*'};
    static const char *const word[] = {"plus", "minus", "times"};
    switch (cllm_rng_below(r, 6)) {
    case 0: wb_printf(question, "What is %d %c %d?", x, sym[op], y); break;
    case 1: wb_printf(question, "What is %d %s %d?", x, word[op], y); break;
    case 2: wb_printf(question, "Calculate %d %c %d.", x, sym[op], y); break;
    case 3: wb_printf(question, "How much is %d %s %d?", x, word[op], y); break;
    case 4: wb_printf(question, "%d %c %d = ?", x, sym[op], y); break;
    default: wb_printf(question, "Please work out %d %c %d.", x, sym[op], y); break;
    }
    wb_printf(expression, "%d %c %d", x, sym[op], y);
    *answer = op == 0 ? (long long)x + y : op == 1 ? (long long)x - y : (long long)x * y;
    *key = cllm_mix64(((uint64_t)x << 32) ^ ((uint64_t)y << 2) ^ (uint64_t)op); /* a sum in one split only */
}

/* ---- shop questions ------------------------------------------------------------------ */

void w_task_tool_shop(cllm_rng *r, const w_shop *shop, wbuf *question, const char **tool, wbuf *args, wbuf *result,
                      wbuf *answer, uint64_t *key) {
    if (cllm_rng_below(r, 2) == 0) {
        /* an order: most are in the table, some are not (the model must read the result) */
        int known = cllm_rng_below(r, 6) != 0, i = (int)cllm_rng_below(r, (uint64_t)shop->n_orders), id;
        if (known) {
            id = shop->order_id[i];
        } else {
            int taken;
            do {
                id = 1000 + (int)cllm_rng_below(r, 9000);
                taken = 0;
                for (int k = 0; k < shop->n_orders && !taken; k++) taken = shop->order_id[k] == id;
            } while (taken);
        }
        switch (cllm_rng_below(r, 6)) {
        case 0: wb_printf(question, "Where is my order %d?", id); break;
        case 1: wb_printf(question, "What is the status of order %d?", id); break;
        case 2: wb_printf(question, "Can you check my order %d?", id); break;
        case 3: wb_printf(question, "Has order %d arrived yet?", id); break;
        case 4: wb_printf(question, "My order number is %d. What is happening with it?", id); break;
        default: wb_printf(question, "Any news about order %d?", id); break;
        }
        *tool = "order_status";
        wb_printf(args, "{\"order\": \"%d\"}", id);
        if (known) {
            const char *item = w_things[shop->order_item[i]].en, *st = statuses[shop->order_status[i]];
            wb_printf(result, "{\"order\":\"%d\",\"item\":", id);
            wb_json_str(result, item);
            wb_printf(result, ",\"status\":\"%s\"}", st);
            wb_printf(answer, "Your order %d (%s %s) is %s.", id, w_article(item), item, st);
        } else {
            wb_printf(result, "{\"order\":\"%d\",\"error\":\"no such order\"}", id);
            wb_printf(answer, "I cannot find order %d. Please check the number.", id);
        }
        *key = cllm_mix64(0x0de7ULL ^ (uint64_t)id); /* an order in one split only */
        return;
    }
    int t = w_pick_thing(r, W_FOOD | W_TOY | W_THING), n = shop->stock[t];
    const w_thing *th = &w_things[t];
    switch (cllm_rng_below(r, 5)) {
    case 0: wb_printf(question, "Do you have %s in stock?", th->en_pl); break;
    case 1: wb_printf(question, "How many %s do you have?", th->en_pl); break;
    case 2: wb_printf(question, "Are there any %s left?", th->en_pl); break;
    case 3: wb_printf(question, "Can I buy %s %s at your shop?", w_article(th->en), th->en); break;
    default: wb_printf(question, "Is the %s in stock?", th->en); break;
    }
    *tool = "stock";
    wb_puts(args, "{\"item\": ");
    wb_json_str(args, th->en);
    wb_puts(args, "}");
    wb_puts(result, "{\"item\":");
    wb_json_str(result, th->en);
    wb_printf(result, ",\"stock\":%d}", n);
    if (n > 0) wb_printf(answer, "Yes, we have %d %s in stock.", n, n == 1 ? th->en : th->en_pl);
    else wb_printf(answer, "Sorry, the %s %s out of stock.", th->en_pl, "are");
    *key = 0; /* by the question's text: the table's items are few */
}
