/* {{id}}: posts each message as JSON to the configured URL, and reads the provider's receipts. */

#include <stdlib.h>
#include <string.h>

#include "kith.h"

/* A Retry-After of whole seconds (surrounding spaces allowed) into `seconds`; left as it was
 * when absent or anything else ("1.5", "10abc", an HTTP date, past 32 bits). */
static void retry_after(const char *value, uint32_t *seconds) {
    if (!value) {
        return;
    }
    while (*value == ' ' || *value == '\t') {
        value++;
    }
    uint64_t n = 0;
    const char *p = value;
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (uint64_t)(*p - '0');
        if (n > UINT32_MAX) {
            return;
        }
    }
    const char *digits_end = p;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (digits_end != value && *p == '\0') {
        *seconds = (uint32_t)n;
    }
}

bool exports_plugin_deliver(plugin_shop_context_t *context, plugin_message_t *message, plugin_delivery_t *ret, plugin_error_t *err) {
    (void)context;
    plugin_option_string_t url = kith_config_string("url", NULL);
    if (!url.is_some) {
        return kith_error(err, KITH_INVALID, "the configuration has no url");
    }
    /* {"id": …, "to": …, "template": …, "variables": {…}} */
    kith_buf body = {0};
    kith_buf_add(&body, "{\"id\":");
    kith_buf_add_json_string(&body, message->id.ptr, message->id.len);
    kith_buf_add(&body, ",\"to\":");
    kith_buf_add_json_string(&body, message->recipient.ptr, message->recipient.len);
    kith_buf_add(&body, ",\"template\":");
    kith_buf_add_json_string(&body, message->template_.ptr, message->template_.len);
    kith_buf_add(&body, ",\"variables\":{");
    for (size_t i = 0; i < message->variables.len; i++) {
        const plugin_tuple2_string_string_t *variable = &message->variables.ptr[i];
        kith_buf_add(&body, i ? "," : "");
        kith_buf_add_json_string(&body, variable->f0.ptr, variable->f0.len);
        kith_buf_add(&body, ":");
        kith_buf_add_json_string(&body, variable->f1.ptr, variable->f1.len);
    }
    kith_buf_add(&body, "}}");

    const char *headers[] = {"content-type", "application/json", NULL};
    kith_http_response response;
    if (!kith_http_request("POST", kith_cstr(&url.val), headers, body.ptr, body.len, &response, err)) {
        return false;
    }
    memset(ret, 0, sizeof *ret);
    if (response.status >= 200 && response.status <= 299) {
        /* The provider's id for the message when it answers one, else ours. */
        ret->tag = KITH_PLUGIN_TYPES_DELIVERY_ACCEPTED;
        ret->val.accepted.is_some = true;
        kith_json answer = kith_json_parse(response.body.ptr, response.body.len);
        if (!kith_json_string(kith_json_get(answer, "id"), &ret->val.accepted.val)) {
            ret->val.accepted.val = kith_strf("%.*s", (int)message->id.len, (const char *)message->id.ptr);
        }
    } else if (response.status == 429 || response.status == 503) {
        uint32_t seconds = 30;
        retry_after(kith_http_header(&response, "retry-after"), &seconds);
        ret->tag = KITH_PLUGIN_TYPES_DELIVERY_RETRY_AFTER;
        ret->val.retry_after = seconds;
    } else {
        ret->tag = KITH_PLUGIN_TYPES_DELIVERY_REJECTED;
        ret->val.rejected = kith_strf("provider answered %d", response.status);
    }
    return true;
}

/* One receipt body: {"message_id": …, "status": "delivered" | "failed" | "pending", "detail": …}. */
static bool read_receipt(kith_json body, kith_plugin_types_receipt_t *receipt, plugin_error_t *err) {
    memset(receipt, 0, sizeof *receipt);
    if (!kith_json_string(kith_json_get(body, "message_id"), &receipt->message_id.val)) {
        return kith_error(err, KITH_INVALID, "expected a receipt or a list of receipts as JSON: a receipt needs message_id, a string");
    }
    receipt->message_id.is_some = true;
    kith_json status = kith_json_get(body, "status");
    if (kith_json_string_eq(status, "delivered")) {
        receipt->status = KITH_PLUGIN_TYPES_RECEIPT_STATUS_DELIVERED;
    } else if (kith_json_string_eq(status, "failed")) {
        receipt->status = KITH_PLUGIN_TYPES_RECEIPT_STATUS_FAILED;
    } else if (kith_json_string_eq(status, "pending")) {
        receipt->status = KITH_PLUGIN_TYPES_RECEIPT_STATUS_PENDING;
    } else {
        plugin_string_t text = {NULL, 0};
        if (!kith_json_string(status, &text)) {
            return kith_error(err, KITH_INVALID, "expected a receipt or a list of receipts as JSON: a receipt needs status, a string");
        }
        return kith_error(err, KITH_INVALID, "unknown status `%.*s`: expected delivered, failed or pending", (int)text.len, (const char *)text.ptr);
    }
    receipt->detail.is_some = kith_json_string(kith_json_get(body, "detail"), &receipt->detail.val);
    return true;
}

/* The receipts of a list, read in one pass over it. */
struct receipts {
    plugin_list_receipt_t *list;
    plugin_error_t *err;
    bool ok;
};

static bool read_one(kith_json key, kith_json item, void *state) {
    (void)key;
    struct receipts *receipts = state;
    if (!read_receipt(item, &receipts->list->ptr[receipts->list->len], receipts->err)) {
        receipts->ok = false;
        return true; /* stop */
    }
    receipts->list->len++;
    return false;
}

bool exports_plugin_parse_receipt(plugin_shop_context_t *context, plugin_inbound_request_t *request, plugin_list_receipt_t *ret,
                                  plugin_error_t *err) {
    (void)context;
    kith_json body = kith_json_parse(request->body.ptr, request->body.len);
    kith_json_type type = kith_json_type_of(body);
    if (type != KITH_JSON_ARRAY && type != KITH_JSON_OBJECT) {
        return kith_error(err, KITH_INVALID, "expected a receipt or a list of receipts as JSON");
    }
    size_t count = type == KITH_JSON_ARRAY ? kith_json_count(body) : 1;
    *ret = (plugin_list_receipt_t){kith_calloc(count, sizeof *ret->ptr), 0};
    if (type == KITH_JSON_OBJECT) {
        ret->len = 1;
        return read_receipt(body, &ret->ptr[0], err);
    }
    struct receipts receipts = {ret, err, true};
    kith_json_each(body, read_one, &receipts);
    return receipts.ok;
}
