/* kith.c: the Kith plugin SDK for C; see kith.h. */

#include "kith.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Allocation --------------------------------------------------------------------------- */

/* Out of memory in a plugin: the call fails with a trap, which the kernel retries. */
static void *kith_alloc(void *ptr, size_t size) {
    void *p = realloc(ptr, size ? size : 1);
    if (!p) {
        abort();
    }
    return p;
}

void *kith_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) {
        abort();
    }
    return p;
}

/* ---- Strings ------------------------------------------------------------------------------ */

static plugin_string_t string_of(const void *bytes, size_t len) {
    plugin_string_t s = {NULL, 0};
    if (len == 0) {
        return s;
    }
    s.ptr = kith_alloc(NULL, len);
    memcpy(s.ptr, bytes, len);
    s.len = len;
    return s;
}

plugin_string_t kith_str(const char *s) {
    return s ? string_of(s, strlen(s)) : string_of(NULL, 0);
}

static plugin_string_t vstrf(const char *format, va_list args) {
    kith_buf buf = {0};
    va_list copy;
    va_copy(copy, args);
    int len = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    if (len > 0) {
        buf.cap = (size_t)len + 1;
        buf.ptr = kith_alloc(NULL, buf.cap);
        vsnprintf(buf.ptr, buf.cap, format, args);
        buf.len = (size_t)len;
    }
    return kith_buf_take(&buf);
}

plugin_string_t kith_strf(const char *format, ...) {
    va_list args;
    va_start(args, format);
    plugin_string_t s = vstrf(format, args);
    va_end(args);
    return s;
}

char *kith_cstr(const plugin_string_t *s) {
    char *c = kith_alloc(NULL, s->len + 1);
    if (s->len) {
        memcpy(c, s->ptr, s->len);
    }
    c[s->len] = '\0';
    return c;
}

bool kith_str_eq(const plugin_string_t *s, const char *c) {
    size_t len = strlen(c);
    return s->len == len && (len == 0 || memcmp(s->ptr, c, len) == 0);
}

/* ---- A growing text buffer ---------------------------------------------------------------- */

static void buf_reserve(kith_buf *buf, size_t more) {
    if (buf->len + more + 1 <= buf->cap) {
        return;
    }
    size_t cap = buf->cap ? buf->cap * 2 : 64;
    while (cap < buf->len + more + 1) {
        cap *= 2;
    }
    buf->ptr = kith_alloc(buf->ptr, cap);
    buf->cap = cap;
}

void kith_buf_add_bytes(kith_buf *buf, const void *bytes, size_t len) {
    buf_reserve(buf, len);
    if (len) {
        memcpy(buf->ptr + buf->len, bytes, len);
    }
    buf->len += len;
    buf->ptr[buf->len] = '\0';
}

void kith_buf_add(kith_buf *buf, const char *s) {
    kith_buf_add_bytes(buf, s, strlen(s));
}

void kith_buf_addf(kith_buf *buf, const char *format, ...) {
    va_list args;
    va_start(args, format);
    plugin_string_t s = vstrf(format, args);
    va_end(args);
    kith_buf_add_bytes(buf, s.ptr, s.len);
    free(s.ptr);
}

void kith_buf_add_json_string(kith_buf *buf, const void *bytes, size_t len) {
    const unsigned char *p = bytes;
    kith_buf_add(buf, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        switch (c) {
        case '"': kith_buf_add(buf, "\\\""); break;
        case '\\': kith_buf_add(buf, "\\\\"); break;
        case '\n': kith_buf_add(buf, "\\n"); break;
        case '\r': kith_buf_add(buf, "\\r"); break;
        case '\t': kith_buf_add(buf, "\\t"); break;
        default:
            if (c < 0x20) {
                kith_buf_addf(buf, "\\u%04x", c);
            } else {
                kith_buf_add_bytes(buf, &c, 1);
            }
        }
    }
    kith_buf_add(buf, "\"");
}

plugin_string_t kith_buf_take(kith_buf *buf) {
    plugin_string_t s = {(uint8_t *)buf->ptr, buf->len};
    if (buf->len == 0) {
        free(buf->ptr);
        s.ptr = NULL;
    }
    buf->ptr = NULL;
    buf->len = buf->cap = 0;
    return s;
}

/* ---- Reading JSON ------------------------------------------------------------------------- */

static const char *skip_space(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* The end of the string starting at `p` (its opening quote), or NULL. */
static const char *skip_string(const char *p, const char *end) {
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
        } else if (*p == '"') {
            return p + 1;
        } else if ((unsigned char)*p < 0x20) {
            return NULL;
        }
    }
    return NULL;
}

static const char *skip_literal(const char *p, const char *end, const char *word) {
    size_t len = strlen(word);
    return (size_t)(end - p) >= len && memcmp(p, word, len) == 0 ? p + len : NULL;
}

static const char *skip_number(const char *p, const char *end) {
    if (p < end && *p == '-') {
        p++;
    }
    const char *digits = p;
    while (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-')) {
        p++;
    }
    return p > digits && digits[0] >= '0' && digits[0] <= '9' ? p : NULL;
}

/* The end of the value starting at `p` (no space before it), or NULL when it is not one. */
static const char *skip_value(const char *p, const char *end, int depth) {
    if (p >= end || depth > 64) {
        return NULL;
    }
    switch (*p) {
    case '"': return skip_string(p, end);
    case 't': return skip_literal(p, end, "true");
    case 'f': return skip_literal(p, end, "false");
    case 'n': return skip_literal(p, end, "null");
    case '[':
    case '{': {
        char close = *p == '[' ? ']' : '}';
        bool object = *p == '{';
        p = skip_space(p + 1, end);
        if (p < end && *p == close) {
            return p + 1;
        }
        for (;;) {
            if (object) {
                if (p >= end || *p != '"' || !(p = skip_string(p, end))) {
                    return NULL;
                }
                p = skip_space(p, end);
                if (p >= end || *p != ':') {
                    return NULL;
                }
                p = skip_space(p + 1, end);
            }
            if (!(p = skip_value(p, end, depth + 1))) {
                return NULL;
            }
            p = skip_space(p, end);
            if (p < end && *p == ',') {
                p = skip_space(p + 1, end);
            } else if (p < end && *p == close) {
                return p + 1;
            } else {
                return NULL;
            }
        }
    }
    default: return skip_number(p, end);
    }
}

static const kith_json NONE = {NULL, 0};

kith_json kith_json_parse(const void *text, size_t len) {
    if (!text) {
        return NONE;
    }
    const char *start = text, *end = start + len;
    const char *p = skip_space(start, end);
    const char *after = skip_value(p, end, 0);
    if (!after || skip_space(after, end) != end) {
        return NONE;
    }
    kith_json value = {p, (size_t)(after - p)};
    return value;
}

kith_json_type kith_json_type_of(kith_json value) {
    if (!value.ptr || value.len == 0) {
        return KITH_JSON_NONE;
    }
    switch (value.ptr[0]) {
    case 'n': return KITH_JSON_NULL;
    case 't':
    case 'f': return KITH_JSON_BOOL;
    case '"': return KITH_JSON_STRING;
    case '[': return KITH_JSON_ARRAY;
    case '{': return KITH_JSON_OBJECT;
    default: return KITH_JSON_NUMBER;
    }
}

/* Calls `each` on the members (key and value) or elements (key NONE) of a container until it returns true. */
static kith_json each_item(kith_json container, bool (*each)(kith_json key, kith_json value, void *state), void *state) {
    kith_json_type type = kith_json_type_of(container);
    if (type != KITH_JSON_ARRAY && type != KITH_JSON_OBJECT) {
        return NONE;
    }
    const char *end = container.ptr + container.len - 1; /* at the closing bracket */
    const char *p = skip_space(container.ptr + 1, end);
    while (p < end) {
        kith_json key = NONE;
        if (type == KITH_JSON_OBJECT) {
            const char *after = skip_string(p, end);
            key.ptr = p;
            key.len = (size_t)(after - p);
            p = skip_space(skip_space(after, end) + 1, end); /* past the colon */
        }
        const char *after = skip_value(p, end, 0);
        kith_json value = {p, (size_t)(after - p)};
        if (each(key, value, state)) {
            return value;
        }
        p = skip_space(after, end);
        if (p < end && *p == ',') {
            p = skip_space(p + 1, end);
        }
    }
    return NONE;
}

static bool match_key(kith_json key, kith_json value, void *state) {
    (void)value;
    return kith_json_string_eq(key, state);
}

kith_json kith_json_get(kith_json object, const char *key) {
    if (kith_json_type_of(object) != KITH_JSON_OBJECT) {
        return NONE;
    }
    return each_item(object, match_key, (void *)key);
}

static bool count_down(kith_json key, kith_json value, void *state) {
    (void)key;
    (void)value;
    size_t *left = state;
    return (*left)-- == 0;
}

kith_json kith_json_at(kith_json array, size_t index) {
    if (kith_json_type_of(array) != KITH_JSON_ARRAY) {
        return NONE;
    }
    return each_item(array, count_down, &index);
}

kith_json kith_json_each(kith_json container, kith_json_visit each, void *state) {
    return each_item(container, each, state);
}

static bool count_up(kith_json key, kith_json value, void *state) {
    (void)key;
    (void)value;
    (*(size_t *)state)++;
    return false;
}

size_t kith_json_count(kith_json value) {
    size_t count = 0;
    each_item(value, count_up, &count);
    return count;
}

bool kith_json_int(kith_json value, int64_t *out) {
    if (kith_json_type_of(value) != KITH_JSON_NUMBER) {
        return false;
    }
    const char *p = value.ptr, *end = value.ptr + value.len;
    bool negative = *p == '-';
    if (negative) {
        p++;
    }
    if (p == end) {
        return false;
    }
    uint64_t n = 0;
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') {
            return false; /* a fraction or an exponent */
        }
        uint64_t digit = (uint64_t)(*p - '0');
        if (n > (limit - digit) / 10) {
            return false;
        }
        n = n * 10 + digit;
    }
    *out = negative ? (int64_t)(0 - n) : (int64_t)n;
    return true;
}

bool kith_json_number(kith_json value, double *out) {
    if (kith_json_type_of(value) != KITH_JSON_NUMBER) {
        return false;
    }
    char text[64];
    if (value.len >= sizeof text) {
        return false;
    }
    memcpy(text, value.ptr, value.len);
    text[value.len] = '\0';
    char *rest;
    double n = strtod(text, &rest);
    if (*rest != '\0') {
        return false;
    }
    *out = n;
    return true;
}

bool kith_json_bool(kith_json value, bool *out) {
    if (kith_json_type_of(value) != KITH_JSON_BOOL) {
        return false;
    }
    *out = value.ptr[0] == 't';
    return true;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(const char *p, const char *end, uint32_t *out) {
    if (end - p < 4) {
        return false;
    }
    uint32_t n = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0) {
            return false;
        }
        n = n * 16 + (uint32_t)d;
    }
    *out = n;
    return true;
}

static void add_utf8(kith_buf *buf, uint32_t c) {
    unsigned char b[4];
    size_t n;
    if (c < 0x80) {
        b[0] = (unsigned char)c, n = 1;
    } else if (c < 0x800) {
        b[0] = (unsigned char)(0xC0 | c >> 6), b[1] = (unsigned char)(0x80 | (c & 0x3F)), n = 2;
    } else if (c < 0x10000) {
        b[0] = (unsigned char)(0xE0 | c >> 12), b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)), b[2] = (unsigned char)(0x80 | (c & 0x3F)), n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | c >> 18), b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F)), b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F)),
        b[3] = (unsigned char)(0x80 | (c & 0x3F)), n = 4;
    }
    kith_buf_add_bytes(buf, b, n);
}

/* A JSON string's text unescaped into `buf`; false when it is not a string. */
static bool unescape(kith_json value, kith_buf *buf) {
    if (kith_json_type_of(value) != KITH_JSON_STRING) {
        return false;
    }
    const char *p = value.ptr + 1, *end = value.ptr + value.len - 1;
    kith_buf_add_bytes(buf, "", 0);
    while (p < end) {
        if (*p != '\\') {
            const char *run = p;
            while (p < end && *p != '\\') {
                p++;
            }
            kith_buf_add_bytes(buf, run, (size_t)(p - run));
            continue;
        }
        p++;
        char c = p < end ? *p++ : '\0';
        switch (c) {
        case '"': kith_buf_add(buf, "\""); break;
        case '\\': kith_buf_add(buf, "\\"); break;
        case '/': kith_buf_add(buf, "/"); break;
        case 'b': kith_buf_add(buf, "\b"); break;
        case 'f': kith_buf_add(buf, "\f"); break;
        case 'n': kith_buf_add(buf, "\n"); break;
        case 'r': kith_buf_add(buf, "\r"); break;
        case 't': kith_buf_add(buf, "\t"); break;
        case 'u': {
            uint32_t code;
            if (!read_hex4(p, end, &code)) {
                return false;
            }
            p += 4;
            uint32_t low;
            if (code >= 0xD800 && code < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u' && read_hex4(p + 2, end, &low) &&
                low >= 0xDC00 && low < 0xE000) {
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                p += 6;
            } else if (code >= 0xD800 && code < 0xE000) {
                code = 0xFFFD; /* a lone surrogate */
            }
            add_utf8(buf, code);
            break;
        }
        default: return false;
        }
    }
    return true;
}

bool kith_json_string(kith_json value, plugin_string_t *out) {
    kith_buf buf = {0};
    if (!unescape(value, &buf)) {
        free(buf.ptr);
        return false;
    }
    *out = kith_buf_take(&buf);
    return true;
}

bool kith_json_string_eq(kith_json value, const char *c) {
    if (kith_json_type_of(value) != KITH_JSON_STRING) {
        return false;
    }
    size_t len = strlen(c);
    /* Without escapes the text is compared in place. */
    if (value.len == len + 2 && !memchr(value.ptr, '\\', value.len)) {
        return memcmp(value.ptr + 1, c, len) == 0;
    }
    kith_buf buf = {0};
    bool eq = unescape(value, &buf) && buf.len == len && memcmp(buf.ptr, c, len) == 0;
    free(buf.ptr);
    return eq;
}

/* ---- The shop's configuration ------------------------------------------------------------- */

static plugin_string_t config_text;
static bool config_read;

kith_json kith_config(void) {
    if (!config_read) {
        kith_plugin_config_error_t err;
        if (!kith_plugin_config_get(&config_text, &err)) {
            config_text = kith_str("{}");
        }
        config_read = true;
    }
    kith_json config = kith_json_parse(config_text.ptr, config_text.len);
    return config.ptr ? config : kith_json_parse("{}", 2);
}

int64_t kith_config_int(const char *key, int64_t fallback) {
    int64_t value = fallback;
    kith_json_int(kith_json_get(kith_config(), key), &value);
    return value;
}

double kith_config_number(const char *key, double fallback) {
    double value = fallback;
    kith_json_number(kith_json_get(kith_config(), key), &value);
    return value;
}

bool kith_config_bool(const char *key, bool fallback) {
    bool value = fallback;
    kith_json_bool(kith_json_get(kith_config(), key), &value);
    return value;
}

plugin_option_string_t kith_config_string(const char *key, const char *fallback) {
    plugin_option_string_t value = {false, {NULL, 0}};
    if (kith_json_string(kith_json_get(kith_config(), key), &value.val)) {
        value.is_some = true;
    } else if (fallback) {
        value.is_some = true;
        value.val = kith_str(fallback);
    }
    return value;
}

/* ---- Logging ------------------------------------------------------------------------------ */

void kith_log(kith_plugin_log_level_t level, const char *format, ...) {
    va_list args;
    va_start(args, format);
    plugin_string_t line = vstrf(format, args);
    va_end(args);
    kith_plugin_log_error_t err;
    /* Without the capability the line is dropped, as the other SDKs do. */
    kith_plugin_log_write(level, &line, &err);
    free(line.ptr);
}

/* ---- Customers ---------------------------------------------------------------------------- */

bool kith_has_tag(const kith_plugin_types_customer_t *customer, const char *name) {
    for (size_t i = 0; i < customer->tags.len; i++) {
        if (kith_str_eq(&customer->tags.ptr[i].name, name)) {
            return true;
        }
    }
    return false;
}

/* ---- Decisions ---------------------------------------------------------------------------- */

#ifndef KITH_WORLD_CHANNEL_CONNECTOR

void kith_push_decision(plugin_list_decision_t *ret, kith_decision decision) {
    /* The list grows by doubling: a capacity a power of two at least its length. */
    size_t len = ret->len;
    if (len == 0 || (len & (len - 1)) == 0) {
        ret->ptr = kith_alloc(ret->ptr, (len ? len * 2 : 1) * sizeof(kith_decision));
    }
    ret->ptr[len] = decision;
    ret->len = len + 1;
}

static void push_tag(plugin_list_decision_t *ret, uint8_t kind, int64_t customer_id, const char *tag, const char *reason, va_list args) {
    kith_decision d;
    memset(&d, 0, sizeof d);
    d.tag = kind;
    d.val.add_tag.customer_id = customer_id;
    d.val.add_tag.tag = kith_str(tag);
    d.val.add_tag.reason = vstrf(reason, args);
    kith_push_decision(ret, d);
}

void kith_add_tag(plugin_list_decision_t *ret, int64_t customer_id, const char *tag, const char *reason, ...) {
    va_list args;
    va_start(args, reason);
    push_tag(ret, KITH_PLUGIN_TYPES_DECISION_ADD_TAG, customer_id, tag, reason, args);
    va_end(args);
}

void kith_remove_tag(plugin_list_decision_t *ret, int64_t customer_id, const char *tag, const char *reason, ...) {
    va_list args;
    va_start(args, reason);
    push_tag(ret, KITH_PLUGIN_TYPES_DECISION_REMOVE_TAG, customer_id, tag, reason, args);
    va_end(args);
}

void kith_set_score(plugin_list_decision_t *ret, int64_t customer_id, const char *model, double value, const char *label,
                    const char *explanation, ...) {
    kith_decision d;
    memset(&d, 0, sizeof d);
    d.tag = KITH_PLUGIN_TYPES_DECISION_SET_SCORE;
    d.val.set_score.customer_id = customer_id;
    d.val.set_score.model = kith_str(model);
    d.val.set_score.value = value;
    if (label) {
        d.val.set_score.label.is_some = true;
        d.val.set_score.label.val = kith_str(label);
    }
    va_list args;
    va_start(args, explanation);
    d.val.set_score.explanation = vstrf(explanation, args);
    va_end(args);
    kith_push_decision(ret, d);
}

static void push_points(plugin_list_decision_t *ret, uint8_t kind, int64_t customer_id, int64_t points, const char *source_key,
                        int64_t expires_at_ms, const char *reason, va_list args) {
    kith_decision d;
    memset(&d, 0, sizeof d);
    d.tag = kind;
    d.val.award_points.customer_id = customer_id;
    d.val.award_points.points = points;
    d.val.award_points.source_key = kith_str(source_key);
    d.val.award_points.reason = vstrf(reason, args);
    if (expires_at_ms) {
        d.val.award_points.expires_at.is_some = true;
        d.val.award_points.expires_at.val = expires_at_ms;
    }
    kith_push_decision(ret, d);
}

void kith_award_points(plugin_list_decision_t *ret, int64_t customer_id, int64_t points, const char *source_key,
                       int64_t expires_at_ms, const char *reason, ...) {
    va_list args;
    va_start(args, reason);
    push_points(ret, KITH_PLUGIN_TYPES_DECISION_AWARD_POINTS, customer_id, points, source_key, expires_at_ms, reason, args);
    va_end(args);
}

void kith_claw_back_points(plugin_list_decision_t *ret, int64_t customer_id, int64_t points, const char *source_key,
                           const char *reason, ...) {
    va_list args;
    va_start(args, reason);
    push_points(ret, KITH_PLUGIN_TYPES_DECISION_CLAW_BACK_POINTS, customer_id, points, source_key, 0, reason, args);
    va_end(args);
}

void kith_change_tier(plugin_list_decision_t *ret, int64_t customer_id, const char *tier, const char *reason, ...) {
    kith_decision d;
    memset(&d, 0, sizeof d);
    d.tag = KITH_PLUGIN_TYPES_DECISION_CHANGE_TIER;
    d.val.change_tier.customer_id = customer_id;
    d.val.change_tier.tier = kith_str(tier);
    va_list args;
    va_start(args, reason);
    d.val.change_tier.reason = vstrf(reason, args);
    va_end(args);
    kith_push_decision(ret, d);
}

void kith_emit_event(plugin_list_decision_t *ret, int64_t customer_id, const char *event_type, const char *payload_json) {
    kith_decision d;
    memset(&d, 0, sizeof d);
    d.tag = KITH_PLUGIN_TYPES_DECISION_EMIT_EVENT;
    if (customer_id >= 0) {
        d.val.emit_event.customer_id.is_some = true;
        d.val.emit_event.customer_id.val = customer_id;
    }
    d.val.emit_event.event_type = kith_str(event_type);
    d.val.emit_event.payload = kith_str(payload_json);
    kith_push_decision(ret, d);
}

#endif

/* ---- Errors ------------------------------------------------------------------------------- */

plugin_string_t *kith_error_message(kith_plugin_types_error_t *err) {
    /* Every kind carries a string, at the same place. */
    return &err->val.failed;
}

bool kith_error(kith_plugin_types_error_t *err, uint8_t kind, const char *format, ...) {
    memset(err, 0, sizeof *err);
    err->tag = kind;
    va_list args;
    va_start(args, format);
    *kith_error_message(err) = vstrf(format, args);
    va_end(args);
    return false;
}
