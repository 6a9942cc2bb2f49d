/* {{id}}: posts each message as JSON to the configured URL, and reads the provider's receipts. */

#include <stdlib.h>
#include <string.h>

#include "kith.h"

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
        const char *after = kith_http_header(&response, "retry-after");
        char *end = NULL;
        long seconds = after ? strtol(after, &end, 10) : -1;
        ret->tag = KITH_PLUGIN_TYPES_DELIVERY_RETRY_AFTER;
        ret->val.retry_after = (after && end != after && seconds >= 0) ? (uint32_t)seconds : 30;
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
        kith_json_string(status, &text);
        return kith_error(err, KITH_INVALID, "unknown status `%.*s`: expected delivered, failed or pending", (int)text.len, (const char *)text.ptr);
    }
    receipt->detail.is_some = kith_json_string(kith_json_get(body, "detail"), &receipt->detail.val);
    return true;
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
    ret->len = 0;
    ret->ptr = calloc(count ? count : 1, sizeof *ret->ptr);
    for (size_t i = 0; i < count; i++) {
        kith_json item = type == KITH_JSON_ARRAY ? kith_json_at(body, i) : body;
        if (!read_receipt(item, &ret->ptr[i], err)) {
            return false;
        }
        ret->len = i + 1;
    }
    return true;
}
