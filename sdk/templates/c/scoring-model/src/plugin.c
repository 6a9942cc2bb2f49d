/* {{id}}: each customer's total spent as a multiple of the shop's average spend per customer,
 * labelled `high` from 1x and `low` below. */

#include "kith.h"

#define MODEL "{{id}}"

bool exports_plugin_score(plugin_shop_context_t *context, plugin_list_customer_t *batch, plugin_list_decision_t *ret,
                          plugin_error_t *err) {
    (void)err;
    *ret = (plugin_list_decision_t){0};
    double average = context->monetary.average;
    for (size_t i = 0; i < batch->len; i++) {
        const kith_plugin_types_customer_t *customer = &batch->ptr[i];
        double ratio = average > 0.0 ? (double)customer->stats.total_spent / average : 0.0;
        const char *label = ratio >= 1.0 ? "high" : "low";
        kith_set_score(ret, customer->id, MODEL, ratio, label, "%.2fx the shop's average spend", ratio);
    }
    return true;
}
