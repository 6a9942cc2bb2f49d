/* {{id}}: tags customers who spent at least `min_spent` (minor units), and removes the tag from
 * those who no longer have (after a refund). */

#include "kith.h"

#define TAG "{{id}}"

bool exports_plugin_evaluate(plugin_shop_context_t *context, plugin_list_subject_t *batch, plugin_list_decision_t *ret,
                             plugin_error_t *err) {
    (void)context;
    (void)err;
    *ret = (plugin_list_decision_t){0};
    int64_t min = kith_config_int("min_spent", 100000);
    for (size_t i = 0; i < batch->len; i++) {
        const kith_plugin_types_customer_t *customer = &batch->ptr[i].customer;
        long long total = customer->stats.total_spent;
        bool tagged = kith_has_tag(customer, TAG);
        if (total >= min && !tagged) {
            kith_add_tag(ret, customer->id, TAG, "spent %lld (at least %lld)", total, (long long)min);
        } else if (total < min && tagged) {
            kith_remove_tag(ret, customer->id, TAG, "spent %lld (less than %lld)", total, (long long)min);
        }
    }
    kith_log_info("evaluated %zu customers", batch->len);
    return true;
}
