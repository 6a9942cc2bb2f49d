/* {{id}}: a point per `unit` (minor units) of each paid order; the order id is the source key,
 * so an event delivered twice awards once. */

#include <stdlib.h>

#include "kith.h"

bool exports_plugin_on_events(plugin_shop_context_t *context, plugin_list_subject_t *batch, plugin_list_decision_t *ret,
                              plugin_error_t *err) {
    (void)context;
    (void)err;
    *ret = (plugin_list_decision_t){0};
    int64_t unit = kith_config_int("unit", 100);
    if (unit < 1) {
        unit = 1;
    }
    for (size_t i = 0; i < batch->len; i++) {
        const plugin_subject_t *subject = &batch->ptr[i];
        if (!subject->event.is_some || !kith_str_eq(&subject->event.val.event_type, "order.paid") || !subject->order.is_some) {
            continue;
        }
        const kith_plugin_types_order_t *order = &subject->order.val;
        int64_t points = order->amount / unit;
        if (points > 0) {
            int id_len = (int)order->id.len;
            const char *id = (const char *)order->id.ptr;
            kith_buf source_key = {0};
            kith_buf_addf(&source_key, "order:%.*s", id_len, id);
            kith_award_points(ret, subject->customer.id, points, source_key.ptr, 0, "order %.*s paid", id_len, id);
            free(source_key.ptr);
        }
    }
    return true;
}

bool exports_plugin_review(plugin_shop_context_t *context, plugin_list_customer_t *batch, plugin_list_decision_t *ret,
                           plugin_error_t *err) {
    (void)context;
    (void)batch;
    (void)err;
    *ret = (plugin_list_decision_t){0};
    return true;
}
