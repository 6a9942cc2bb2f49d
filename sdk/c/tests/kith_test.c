/* The C SDK's unit tests, run natively: the host's imports the SDK calls (config, log) are faked
 * here. Built against the tag rule's bindings with -DKITH_WORLD_TAG_RULE by kith's unit test
 * (kernel/kith/src/plugin/c.rs), or by hand:
 *
 *   kith plugin new t --kind tag-rule --lang c && (cd t && kith plugin build)
 *   cc -std=c11 -Wall -Wextra -DKITH_WORLD_TAG_RULE -I sdk/c/src -I t/target/kith/c \
 *      sdk/c/src/kith.c sdk/c/tests/kith_test.c -o kith_test && ./kith_test
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kith.h"

/* ---- The fake host ------------------------------------------------------------------------ */

static const char *fake_config = "{}";
static char last_log[512];
static kith_plugin_log_level_t last_level;

bool kith_plugin_config_get(plugin_string_t *ret, kith_plugin_config_error_t *err) {
    (void)err;
    *ret = kith_str(fake_config);
    return true;
}

bool kith_plugin_log_write(kith_plugin_log_level_t level, plugin_string_t *message, kith_plugin_log_error_t *err) {
    (void)err;
    last_level = level;
    snprintf(last_log, sizeof last_log, "%.*s", (int)message->len, (const char *)message->ptr);
    return true;
}

/* ---- A little harness --------------------------------------------------------------------- */

static int failures, checks;

#define CHECK(cond)                                                               \
    do {                                                                          \
        checks++;                                                                 \
        if (!(cond)) {                                                            \
            failures++;                                                           \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                         \
    } while (0)

static bool str_is(plugin_string_t s, const char *c) {
    return kith_str_eq(&s, c);
}

static kith_json parse(const char *text) {
    return kith_json_parse(text, strlen(text));
}

/* ---- Tests -------------------------------------------------------------------------------- */

static void strings(void) {
    CHECK(str_is(kith_str("abc"), "abc"));
    CHECK(kith_str(NULL).len == 0 && kith_str("").len == 0);
    CHECK(str_is(kith_strf("%d customers, %s", 3, "ok"), "3 customers, ok"));
    CHECK(kith_strf("%s", "").len == 0);
    plugin_string_t s = kith_str("tea");
    char *c = kith_cstr(&s);
    CHECK(strcmp(c, "tea") == 0);
    CHECK(!kith_str_eq(&s, "te") && !kith_str_eq(&s, "teas"));
}

static void buffers(void) {
    kith_buf buf = {0};
    kith_buf_add(&buf, "{\"name\":");
    kith_buf_add_json_string(&buf, "Li \"Lei\"\\\n\x01 张", strlen("Li \"Lei\"\\\n\x01 张"));
    kith_buf_addf(&buf, ",\"n\":%d}", 42);
    CHECK(strcmp(buf.ptr, "{\"name\":\"Li \\\"Lei\\\"\\\\\\n\\u0001 张\",\"n\":42}") == 0);
    /* What was escaped reads back the same. */
    plugin_string_t name;
    CHECK(kith_json_string(kith_json_get(kith_json_parse(buf.ptr, buf.len), "name"), &name));
    CHECK(str_is(name, "Li \"Lei\"\\\n\x01 张"));
    for (int i = 0; i < 1000; i++) {
        kith_buf_add(&buf, "x");
    }
    CHECK(buf.len == strlen(buf.ptr) && buf.cap > buf.len);
    plugin_string_t taken = kith_buf_take(&buf);
    CHECK(taken.len > 1000 && buf.ptr == NULL && buf.len == 0);
}

/* Sums an array's integers until one is 0; counts the calls. */
struct summed {
    int64_t sum;
    int calls;
};

static bool sum_until_zero(kith_json key, kith_json value, void *state) {
    struct summed *summed = state;
    int64_t n = 0;
    summed->calls++;
    summed->sum += kith_json_int(value, &n) ? n : 1000;
    return key.ptr == NULL && n == 0;
}

static bool stop_at_b(kith_json key, kith_json value, void *state) {
    (void)value;
    (void)state;
    return kith_json_string_eq(key, "b");
}

static void each(void) {
    struct summed summed = {0, 0};
    kith_json stopped = kith_json_each(parse("[1, 2, 0, 4]"), sum_until_zero, &summed);
    CHECK(summed.sum == 3 && summed.calls == 3 && stopped.ptr && stopped.len == 1 && stopped.ptr[0] == '0');
    summed = (struct summed){0, 0};
    CHECK(kith_json_each(parse("[5, 6]"), sum_until_zero, &summed).ptr == NULL && summed.sum == 11 && summed.calls == 2);
    int64_t b = 0;
    CHECK(kith_json_int(kith_json_each(parse("{\"a\": 1, \"b\": 2}"), stop_at_b, NULL), &b) && b == 2);
    CHECK(kith_json_each(parse("7"), stop_at_b, NULL).ptr == NULL);
    /* kith_calloc: zeroed, and a count of 0 still a pointer. */
    int *zeroed = kith_calloc(4, sizeof *zeroed);
    CHECK(zeroed && zeroed[0] == 0 && zeroed[3] == 0 && kith_calloc(0, sizeof *zeroed) != NULL);
}

static void json(void) {
    kith_json doc = parse(" {\"a\": 1, \"b\": [true, false, null, \"x\"], \"c\": {\"d\": -2.5e1}, \"e\\u0020f\": \"\\u00e9\\ud83d\\ude00\"} ");
    CHECK(kith_json_type_of(doc) == KITH_JSON_OBJECT);
    CHECK(kith_json_count(doc) == 4);
    int64_t a = 0;
    CHECK(kith_json_int(kith_json_get(doc, "a"), &a) && a == 1);
    kith_json b = kith_json_get(doc, "b");
    CHECK(kith_json_type_of(b) == KITH_JSON_ARRAY && kith_json_count(b) == 4);
    bool flag = false;
    CHECK(kith_json_bool(kith_json_at(b, 0), &flag) && flag);
    CHECK(kith_json_bool(kith_json_at(b, 1), &flag) && !flag);
    CHECK(kith_json_type_of(kith_json_at(b, 2)) == KITH_JSON_NULL);
    CHECK(kith_json_string_eq(kith_json_at(b, 3), "x"));
    CHECK(kith_json_at(b, 4).ptr == NULL);
    double d = 0;
    CHECK(kith_json_number(kith_json_get(kith_json_get(doc, "c"), "d"), &d) && d == -25.0);
    CHECK(!kith_json_int(kith_json_get(kith_json_get(doc, "c"), "d"), &a) && a == 1);
    /* Keys are compared unescaped; \u escapes (surrogate pairs too) become UTF-8. */
    plugin_string_t e;
    CHECK(kith_json_string(kith_json_get(doc, "e f"), &e) && str_is(e, "é😀"));
    CHECK(kith_json_get(doc, "missing").ptr == NULL);
    CHECK(kith_json_get(b, "a").ptr == NULL);
    CHECK(kith_json_type_of(kith_json_get(doc, "missing")) == KITH_JSON_NONE);
    /* Types are not converted. */
    CHECK(!kith_json_int(kith_json_at(b, 3), &a));
    CHECK(!kith_json_string(kith_json_get(doc, "a"), &e));
    /* Integers within int64, exactly. */
    CHECK(kith_json_int(parse("9223372036854775807"), &a) && a == INT64_MAX);
    CHECK(kith_json_int(parse("-9223372036854775808"), &a) && a == INT64_MIN);
    CHECK(!kith_json_int(parse("9223372036854775808"), &a));
    CHECK(!kith_json_int(parse("1.0"), &a));
    /* Not JSON. */
    const char *bad[] = {"", "{", "{\"a\" 1}", "[1,]x", "{\"a\":1}}", "tru", "\"open", "[1 2]", "-", "{1:2}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(kith_json_parse(bad[i], strlen(bad[i])).ptr == NULL);
    }
    CHECK(kith_json_count(parse("[]")) == 0 && kith_json_count(parse("{}")) == 0 && kith_json_count(parse("3")) == 0);
    /* Deep nesting is refused rather than recursed into without bound. */
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    CHECK(kith_json_parse(deep, sizeof deep).ptr == NULL);
}

static void config(void) {
    fake_config = "{\"min_spent\": 50000, \"rate\": 0.5, \"on\": true, \"url\": \"https://x.test/a\", \"odd\": \"7\"}";
    CHECK(kith_config_int("min_spent", 1) == 50000);
    CHECK(kith_config_int("missing", 100000) == 100000);
    CHECK(kith_config_int("odd", 3) == 3);
    CHECK(kith_config_number("rate", 1.0) == 0.5);
    CHECK(kith_config_number("min_spent", 1.0) == 50000.0);
    CHECK(kith_config_bool("on", false) && !kith_config_bool("off", false));
    plugin_option_string_t url = kith_config_string("url", NULL);
    CHECK(url.is_some && str_is(url.val, "https://x.test/a"));
    CHECK(!kith_config_string("none", NULL).is_some);
    plugin_option_string_t fallback = kith_config_string("none", "dflt");
    CHECK(fallback.is_some && str_is(fallback.val, "dflt"));
}

static void logging(void) {
    kith_log_info("evaluated %zu customers", (size_t)3);
    CHECK(strcmp(last_log, "evaluated 3 customers") == 0 && last_level == KITH_PLUGIN_LOG_LEVEL_INFO);
    kith_log_warn("%s", "careful");
    CHECK(strcmp(last_log, "careful") == 0 && last_level == KITH_PLUGIN_LOG_LEVEL_WARN);
}

static void decisions(void) {
    plugin_list_decision_t ret = {0};
    kith_add_tag(&ret, 1, "big", "spent %d (at least %d)", 120000, 100000);
    kith_remove_tag(&ret, 2, "big", "spent less");
    kith_set_score(&ret, 3, "model", 2.4, "high", "%.2fx", 2.4);
    kith_set_score(&ret, 4, "model", 0.5, NULL, "no label");
    kith_award_points(&ret, 5, 123, "order:T1", 0, "order %s paid", "T1");
    kith_claw_back_points(&ret, 5, 23, "refund:T1", "refunded");
    kith_change_tier(&ret, 6, "gold", "spent enough");
    kith_emit_event(&ret, -1, "plugin.done", "{}");
    CHECK(ret.len == 8);
    CHECK(ret.ptr[0].tag == KITH_PLUGIN_TYPES_DECISION_ADD_TAG && ret.ptr[0].val.add_tag.customer_id == 1 &&
          str_is(ret.ptr[0].val.add_tag.tag, "big") && str_is(ret.ptr[0].val.add_tag.reason, "spent 120000 (at least 100000)"));
    CHECK(ret.ptr[1].tag == KITH_PLUGIN_TYPES_DECISION_REMOVE_TAG && str_is(ret.ptr[1].val.remove_tag.reason, "spent less"));
    CHECK(ret.ptr[2].tag == KITH_PLUGIN_TYPES_DECISION_SET_SCORE && ret.ptr[2].val.set_score.value == 2.4 &&
          ret.ptr[2].val.set_score.label.is_some && str_is(ret.ptr[2].val.set_score.label.val, "high") &&
          str_is(ret.ptr[2].val.set_score.explanation, "2.40x"));
    CHECK(!ret.ptr[3].val.set_score.label.is_some);
    CHECK(ret.ptr[4].tag == KITH_PLUGIN_TYPES_DECISION_AWARD_POINTS && ret.ptr[4].val.award_points.points == 123 &&
          str_is(ret.ptr[4].val.award_points.source_key, "order:T1") && !ret.ptr[4].val.award_points.expires_at.is_some);
    CHECK(ret.ptr[5].tag == KITH_PLUGIN_TYPES_DECISION_CLAW_BACK_POINTS && ret.ptr[5].val.claw_back_points.points == 23);
    CHECK(ret.ptr[6].tag == KITH_PLUGIN_TYPES_DECISION_CHANGE_TIER && str_is(ret.ptr[6].val.change_tier.tier, "gold"));
    CHECK(ret.ptr[7].tag == KITH_PLUGIN_TYPES_DECISION_EMIT_EVENT && !ret.ptr[7].val.emit_event.customer_id.is_some &&
          str_is(ret.ptr[7].val.emit_event.event_type, "plugin.done"));
    /* The list grows past any small capacity, keeping what it holds. */
    for (int i = 0; i < 1000; i++) {
        kith_add_tag(&ret, 100 + i, "t", "r%d", i);
    }
    CHECK(ret.len == 1008 && ret.ptr[1007].val.add_tag.customer_id == 1099 && str_is(ret.ptr[1007].val.add_tag.reason, "r999"));
    CHECK(str_is(ret.ptr[0].val.add_tag.tag, "big"));
}

static void errors_and_tags(void) {
    plugin_error_t err;
    CHECK(!kith_error(&err, KITH_INVALID, "min_spent is %d", -1));
    CHECK(err.tag == KITH_PLUGIN_TYPES_ERROR_INVALID && str_is(err.val.invalid, "min_spent is -1"));
    CHECK(!kith_error(&err, KITH_ACCESS_DENIED, "no"));
    CHECK(str_is(*kith_error_message(&err), "no") && str_is(err.val.access_denied, "no"));

    kith_plugin_types_tag_t tags[2] = {{kith_str("vip"), kith_str("manual")}, {kith_str("big"), kith_str("big")}};
    kith_plugin_types_customer_t customer;
    memset(&customer, 0, sizeof customer);
    customer.tags.ptr = tags;
    customer.tags.len = 2;
    CHECK(kith_has_tag(&customer, "big") && kith_has_tag(&customer, "vip") && !kith_has_tag(&customer, "bi"));
}

int main(void) {
    strings();
    buffers();
    json();
    each();
    config();
    logging();
    decisions();
    errors_and_tags();
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
