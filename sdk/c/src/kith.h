/*
 * kith.h: the Kith plugin SDK for C (kith:plugin@0.2.0).
 *
 * `kith plugin build` generates the bindings of the project's kind into target/kith/c/plugin.h
 * (wit-bindgen c, the world renamed `plugin`: `plugin_string_t`, `exports_plugin_evaluate`, …) and
 * compiles this SDK with the project. The bindings give the WIT's types and imports as they are;
 * this SDK adds what a plugin needs besides and the bindings lack:
 *
 *   - strings: from C strings and printf formats, compared with C strings (kith_str, kith_strf, kith_str_eq);
 *   - a growing text buffer, with JSON string escaping (kith_buf);
 *   - a small JSON reader over the configuration, kv values and HTTP bodies (kith_json);
 *   - the shop's configuration by key, with defaults (kith_config_int, …);
 *   - log lines with printf formats (kith_log_info, …);
 *   - decisions appended to a call's list (kith_add_tag, kith_set_score, …) and errors (kith_error);
 *   - for channel connectors, one blocking HTTP request (kith_http_request, in kith_http.c).
 *
 * `kith plugin build` defines the kind's macro: KITH_WORLD_TAG_RULE, KITH_WORLD_SCORING_MODEL,
 * KITH_WORLD_LOYALTY_SCHEME or KITH_WORLD_CHANNEL_CONNECTOR. Decisions are for the first three,
 * HTTP for the last.
 *
 * Memory. Every call runs in a fresh instance that is dropped after it, so a plugin need not free
 * what it allocates; the functions below allocate with malloc and say what they return. What an
 * export returns must be allocated (the bindings free it after the call): the constructors here
 * copy the strings they are given.
 */
#ifndef KITH_H
#define KITH_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Memory ------------------------------------------------------------------------------- */

/* `count` zeroed elements of `size` bytes, never NULL: out of memory (or a size past memory) fails
 * the call with a trap, which the kernel retries. Use it for what an export returns (`ret->ptr`):
 * in wasm a write through NULL does not trap, it overwrites the module's own data. */
void *kith_calloc(size_t count, size_t size);

/* ---- Strings ------------------------------------------------------------------------------ */

/* A copy of the C string `s` (NULL: the empty string). */
plugin_string_t kith_str(const char *s);
/* A new string from a printf format. */
plugin_string_t kith_strf(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* A NUL-terminated copy of `s`, to pass to C functions. */
char *kith_cstr(const plugin_string_t *s);
/* Whether `s` holds exactly the C string `c`. */
bool kith_str_eq(const plugin_string_t *s, const char *c);

/* ---- A growing text buffer ---------------------------------------------------------------- */

/* Zero-initialise (`kith_buf b = {0};`); `ptr` is NUL-terminated once anything was added. */
typedef struct kith_buf {
    char *ptr;
    size_t len;
    size_t cap;
} kith_buf;

void kith_buf_add(kith_buf *buf, const char *s);
void kith_buf_add_bytes(kith_buf *buf, const void *bytes, size_t len);
void kith_buf_addf(kith_buf *buf, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* `bytes` as a JSON string: quoted, with `"`, `\` and control characters escaped. */
void kith_buf_add_json_string(kith_buf *buf, const void *bytes, size_t len);
/* The buffer's text as a string (the buffer is left empty). */
plugin_string_t kith_buf_take(kith_buf *buf);

/* ---- Reading JSON ------------------------------------------------------------------------- */

/* One JSON value inside a text: a view, never a copy. `ptr` is NULL when there is none (a key
 * that is not there, an element past the end, text that is not JSON). */
typedef struct kith_json {
    const char *ptr;
    size_t len;
} kith_json;

typedef enum kith_json_type {
    KITH_JSON_NONE,
    KITH_JSON_NULL,
    KITH_JSON_BOOL,
    KITH_JSON_NUMBER,
    KITH_JSON_STRING,
    KITH_JSON_ARRAY,
    KITH_JSON_OBJECT,
} kith_json_type;

/* The JSON value that is the whole of `text` (whitespace around it allowed). */
kith_json kith_json_parse(const void *text, size_t len);
kith_json_type kith_json_type_of(kith_json value);
/* The member `key` of an object. */
kith_json kith_json_get(kith_json object, const char *key);
/* The element `index` of an array. */
kith_json kith_json_at(kith_json array, size_t index);
/* The number of elements of an array, or members of an object; 0 for other values. */
size_t kith_json_count(kith_json value);
/* Call `each` on every element of an array (with a key whose `ptr` is NULL) or member of an object
 * (with its key as a JSON string), in order, until it returns true; returns the value it stopped
 * at, or one whose `ptr` is NULL. One pass over the text, where kith_json_at in a loop is quadratic. */
typedef bool (*kith_json_visit)(kith_json key, kith_json value, void *state);
kith_json kith_json_each(kith_json container, kith_json_visit each, void *state);
/* Each reads a value of its type into `out` and says whether it was one; `out` is left as it was
 * otherwise. An integer is a number without fraction or exponent within int64. */
bool kith_json_int(kith_json value, int64_t *out);
bool kith_json_number(kith_json value, double *out);
bool kith_json_bool(kith_json value, bool *out);
/* A string's text, unescaped, into a new string. */
bool kith_json_string(kith_json value, plugin_string_t *out);
/* Whether `value` is a string equal to `c` (escapes compared unescaped). */
bool kith_json_string_eq(kith_json value, const char *c);

/* ---- The shop's configuration (capability `config`) ---------------------------------------- */

/* The configuration's JSON text, read from the host once per call; `{}` when the plugin lacks the
 * capability or the shop gave none. */
kith_json kith_config(void);
/* A top-level member of the configuration, or `fallback` when it is absent or of another type. */
int64_t kith_config_int(const char *key, int64_t fallback);
double kith_config_number(const char *key, double fallback);
bool kith_config_bool(const char *key, bool fallback);
/* A new string; `fallback` (copied) when absent, and NULL as fallback gives `is_some == false`. */
plugin_option_string_t kith_config_string(const char *key, const char *fallback);

/* ---- Logging (capability `log`) ----------------------------------------------------------- */

void kith_log(kith_plugin_log_level_t level, const char *format, ...) __attribute__((format(printf, 2, 3)));
#define kith_log_debug(...) kith_log(KITH_PLUGIN_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define kith_log_info(...) kith_log(KITH_PLUGIN_LOG_LEVEL_INFO, __VA_ARGS__)
#define kith_log_warn(...) kith_log(KITH_PLUGIN_LOG_LEVEL_WARN, __VA_ARGS__)
#define kith_log_error(...) kith_log(KITH_PLUGIN_LOG_LEVEL_ERROR, __VA_ARGS__)

/* ---- Customers ---------------------------------------------------------------------------- */

/* Whether the customer holds the tag `name`. */
bool kith_has_tag(const kith_plugin_types_customer_t *customer, const char *name);

/* ---- Decisions (tag rules, scoring models, loyalty schemes) -------------------------------- */

#ifndef KITH_WORLD_CHANNEL_CONNECTOR

/* The list an export returns (`plugin_list_decision_t *ret`): each call appends one decision;
 * reasons and explanations are printf formats. The bindings hand `ret` uninitialised: start the
 * export with `*ret = (plugin_list_decision_t){0};`. */
typedef kith_plugin_types_decision_t kith_decision;

void kith_add_tag(plugin_list_decision_t *ret, int64_t customer_id, const char *tag, const char *reason, ...)
    __attribute__((format(printf, 4, 5)));
void kith_remove_tag(plugin_list_decision_t *ret, int64_t customer_id, const char *tag, const char *reason, ...)
    __attribute__((format(printf, 4, 5)));
/* `label` may be NULL. */
void kith_set_score(plugin_list_decision_t *ret, int64_t customer_id, const char *model, double value, const char *label,
                    const char *explanation, ...) __attribute__((format(printf, 6, 7)));
/* `expires_at_ms` 0: the points do not expire. */
void kith_award_points(plugin_list_decision_t *ret, int64_t customer_id, int64_t points, const char *source_key,
                       int64_t expires_at_ms, const char *reason, ...) __attribute__((format(printf, 6, 7)));
void kith_claw_back_points(plugin_list_decision_t *ret, int64_t customer_id, int64_t points, const char *source_key,
                           const char *reason, ...) __attribute__((format(printf, 5, 6)));
void kith_change_tier(plugin_list_decision_t *ret, int64_t customer_id, const char *tier, const char *reason, ...)
    __attribute__((format(printf, 4, 5)));
/* `customer_id` < 0: an event of no customer; `payload_json` a JSON object. */
void kith_emit_event(plugin_list_decision_t *ret, int64_t customer_id, const char *event_type, const char *payload_json);
/* Append a decision built by hand (its strings allocated). */
void kith_push_decision(plugin_list_decision_t *ret, kith_decision decision);
#endif

/* ---- Errors ------------------------------------------------------------------------------- */

/* Fill an export's `err` with the error of that kind and a message; returns false, for
 * `return kith_error(err, KITH_INVALID, "min_spent is %lld", x);`. */
#define KITH_ACCESS_DENIED KITH_PLUGIN_TYPES_ERROR_ACCESS_DENIED
#define KITH_NOT_FOUND KITH_PLUGIN_TYPES_ERROR_NOT_FOUND
#define KITH_QUOTA_EXCEEDED KITH_PLUGIN_TYPES_ERROR_QUOTA_EXCEEDED
#define KITH_INVALID KITH_PLUGIN_TYPES_ERROR_INVALID
#define KITH_FAILED KITH_PLUGIN_TYPES_ERROR_FAILED
bool kith_error(kith_plugin_types_error_t *err, uint8_t kind, const char *format, ...) __attribute__((format(printf, 3, 4)));
/* The error's message (each kind carries one). */
plugin_string_t *kith_error_message(kith_plugin_types_error_t *err);

/* ---- HTTP (channel connectors: capability `http`; kith_http.c) ------------------------------ */

#ifdef KITH_WORLD_CHANNEL_CONNECTOR

typedef struct kith_http_response {
    uint16_t status;
    /* Header names lowercase, as the host gives them. */
    size_t header_count;
    plugin_string_t *header_names;
    plugin_string_t *header_values;
    /* The body, NUL-terminated beyond `len`. */
    kith_buf body;
} kith_http_response;

/* Send a request and wait for the whole answer: `headers` are name and value pairs ending in
 * NULL (`(const char *[]){"content-type", "application/json", NULL}`), or NULL. False with `err`
 * filled when there is no answer: `access-denied` for a host the shop did not grant, `invalid` for
 * a URL that is not http(s)://host/path, `failed` otherwise. Any answer, whatever its status, is true. */
bool kith_http_request(const char *method, const char *url, const char *const *headers, const void *body, size_t body_len,
                       kith_http_response *response, kith_plugin_types_error_t *err);
/* The first value of a response header (`name` lowercase), NUL-terminated, or NULL. */
const char *kith_http_header(const kith_http_response *response, const char *name);
#endif

#ifdef __cplusplus
}
#endif

#endif
