// kith:plugin/types has no functions.
