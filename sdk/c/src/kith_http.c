/* kith_http.c: one blocking HTTP request over wasi:http, for channel connectors. Their world alone
 * imports wasi:http/outgoing-handler: `kith plugin build` compiles this file for every kind, and
 * it is empty unless KITH_WORLD_CHANNEL_CONNECTOR is defined. */

#include "kith.h"

#ifdef KITH_WORLD_CHANNEL_CONNECTOR

#include <stdlib.h>
#include <string.h>

/* The cases of wasi:http's error-code, in the WIT's order (wit/v0.2/deps/http.wit). */
static const char *const ERROR_CODES[] = {
    "DNS-timeout", "DNS-error", "destination-not-found", "destination-unavailable", "destination-IP-prohibited",
    "destination-IP-unroutable", "connection-refused", "connection-terminated", "connection-timeout",
    "connection-read-timeout", "connection-write-timeout", "connection-limit-reached", "TLS-protocol-error",
    "TLS-certificate-error", "TLS-alert-received", "HTTP-request-denied", "HTTP-request-length-required",
    "HTTP-request-body-size", "HTTP-request-method-invalid", "HTTP-request-URI-invalid", "HTTP-request-URI-too-long",
    "HTTP-request-header-section-size", "HTTP-request-header-size", "HTTP-request-trailer-section-size",
    "HTTP-request-trailer-size", "HTTP-response-incomplete", "HTTP-response-header-section-size",
    "HTTP-response-header-size", "HTTP-response-body-size", "HTTP-response-trailer-section-size",
    "HTTP-response-trailer-size", "HTTP-response-transfer-coding", "HTTP-response-content-coding",
    "HTTP-response-timeout", "HTTP-upgrade-failed", "HTTP-protocol-error", "loop-detected", "configuration-error",
    "internal-error",
};
_Static_assert(sizeof ERROR_CODES / sizeof ERROR_CODES[0] == WASI_HTTP_TYPES_ERROR_CODE_INTERNAL_ERROR + 1,
               "one name for each case of wasi:http's error-code");

static bool fail(kith_plugin_types_error_t *err, wasi_http_types_error_code_t *code) {
    if (code->tag == WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_DENIED) {
        return kith_error(err, KITH_ACCESS_DENIED, "the kernel denied the request: host not granted");
    }
    if (code->tag < sizeof ERROR_CODES / sizeof ERROR_CODES[0]) {
        return kith_error(err, KITH_FAILED, "HTTP request failed: %s", ERROR_CODES[code->tag]);
    }
    return kith_error(err, KITH_FAILED, "HTTP request failed: error code %d", code->tag);
}

static bool method_of(const char *name, wasi_http_types_method_t *method) {
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    memset(method, 0, sizeof *method);
    for (uint8_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(name, known[i]) == 0) {
            method->tag = i;
            return true;
        }
    }
    method->tag = WASI_HTTP_TYPES_METHOD_OTHER;
    method->val.other = kith_str(name);
    return true;
}

/* Write the whole body to the request's stream, then finish it. */
static bool write_body(wasi_http_types_own_outgoing_body_t outgoing, const void *body, size_t len, kith_plugin_types_error_t *err) {
    wasi_http_types_own_output_stream_t stream;
    if (!wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(outgoing), &stream)) {
        wasi_http_types_outgoing_body_drop_own(outgoing);
        return kith_error(err, KITH_FAILED, "request body stream already taken");
    }
    const uint8_t *p = body;
    for (size_t at = 0; at < len; at += 4096) {
        plugin_list_u8_t chunk = {(uint8_t *)p + at, len - at < 4096 ? len - at : 4096};
        wasi_io_streams_stream_error_t stream_err;
        if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(wasi_io_streams_borrow_output_stream(stream), &chunk,
                                                                           &stream_err)) {
            wasi_io_streams_output_stream_drop_own(stream);
            /* Dropped unfinished: the host ends the request at once instead of at its timeout. */
            wasi_http_types_outgoing_body_drop_own(outgoing);
            return kith_error(err, KITH_FAILED, "writing the request body failed");
        }
    }
    wasi_io_streams_output_stream_drop_own(stream);
    wasi_http_types_error_code_t code;
    if (!wasi_http_types_static_outgoing_body_finish(outgoing, NULL, &code)) {
        return fail(err, &code);
    }
    return true;
}

bool kith_http_request(const char *method, const char *url, const char *const *headers, const void *body, size_t body_len,
                       kith_http_response *response, kith_plugin_types_error_t *err) {
    memset(response, 0, sizeof *response);
    /* scheme://authority/path?query */
    wasi_http_types_scheme_t scheme;
    memset(&scheme, 0, sizeof scheme);
    const char *rest;
    if (strncmp(url, "http://", 7) == 0) {
        scheme.tag = WASI_HTTP_TYPES_SCHEME_HTTP, rest = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        scheme.tag = WASI_HTTP_TYPES_SCHEME_HTTPS, rest = url + 8;
    } else {
        return kith_error(err, KITH_INVALID, "`%s` is not an http:// or https:// URL", url);
    }
    const char *slash = strchr(rest, '/');
    size_t authority_len = slash ? (size_t)(slash - rest) : strlen(rest);
    plugin_string_t authority = {(uint8_t *)rest, authority_len};
    plugin_string_t path = slash ? kith_str(slash) : kith_str("/");

    wasi_http_types_own_fields_t fields = wasi_http_types_constructor_fields();
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2) {
        plugin_string_t name = kith_str(headers[i]);
        for (size_t j = 0; j < name.len; j++) {
            if (name.ptr[j] >= 'A' && name.ptr[j] <= 'Z') {
                name.ptr[j] = (uint8_t)(name.ptr[j] - 'A' + 'a');
            }
        }
        wasi_http_types_field_value_t value = {(uint8_t *)headers[i + 1], strlen(headers[i + 1])};
        wasi_http_types_header_error_t header_err;
        if (!wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(fields), &name, &value, &header_err)) {
            return kith_error(err, KITH_INVALID, "header `%s` is refused", headers[i]);
        }
    }
    wasi_http_types_own_outgoing_request_t request = wasi_http_types_constructor_outgoing_request(fields);
    wasi_http_types_borrow_outgoing_request_t borrowed = wasi_http_types_borrow_outgoing_request(request);
    wasi_http_types_method_t wasi_method;
    method_of(method, &wasi_method);
    if (!wasi_http_types_method_outgoing_request_set_method(borrowed, &wasi_method) ||
        !wasi_http_types_method_outgoing_request_set_scheme(borrowed, &scheme) ||
        !wasi_http_types_method_outgoing_request_set_authority(borrowed, &authority) ||
        !wasi_http_types_method_outgoing_request_set_path_with_query(borrowed, &path)) {
        return kith_error(err, KITH_INVALID, "`%s` is refused as a request", url);
    }
    wasi_http_types_own_outgoing_body_t outgoing;
    if (!wasi_http_types_method_outgoing_request_body(borrowed, &outgoing)) {
        return kith_error(err, KITH_FAILED, "request body already taken");
    }
    wasi_http_outgoing_handler_own_future_incoming_response_t future;
    wasi_http_types_error_code_t code;
    if (!wasi_http_outgoing_handler_handle(request, NULL, &future, &code)) {
        return fail(err, &code);
    }
    kith_plugin_types_error_t write_err;
    bool written = write_body(outgoing, body, body_len, &write_err);

    wasi_http_types_borrow_future_incoming_response_t waiting = wasi_http_types_borrow_future_incoming_response(future);
    wasi_http_types_own_pollable_t ready = wasi_http_types_method_future_incoming_response_subscribe(waiting);
    wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
    wasi_io_poll_pollable_drop_own(ready);
    wasi_http_types_result_result_own_incoming_response_error_code_void_t got;
    bool some = wasi_http_types_method_future_incoming_response_get(waiting, &got);
    wasi_http_types_future_incoming_response_drop_own(future);
    if (!some || got.is_err) {
        return kith_error(err, KITH_FAILED, "no response");
    }
    if (got.val.ok.is_err) {
        return fail(err, &got.val.ok.val.err);
    }
    if (!written) {
        *err = write_err;
        return false;
    }
    wasi_http_types_own_incoming_response_t incoming = got.val.ok.val.ok;
    wasi_http_types_borrow_incoming_response_t answer = wasi_http_types_borrow_incoming_response(incoming);
    response->status = wasi_http_types_method_incoming_response_status(answer);

    wasi_http_types_own_headers_t answer_headers = wasi_http_types_method_incoming_response_headers(answer);
    plugin_list_tuple2_field_name_field_value_t entries;
    wasi_http_types_method_fields_entries(wasi_http_types_borrow_fields(answer_headers), &entries);
    wasi_http_types_fields_drop_own(answer_headers);
    response->header_count = entries.len;
    response->header_names = kith_calloc(entries.len, sizeof(plugin_string_t));
    response->header_values = kith_calloc(entries.len, sizeof(plugin_string_t));
    for (size_t i = 0; i < entries.len; i++) {
        response->header_names[i] = entries.ptr[i].f0;
        kith_buf value = {0};
        kith_buf_add_bytes(&value, entries.ptr[i].f1.ptr, entries.ptr[i].f1.len);
        free(entries.ptr[i].f1.ptr);
        /* Kept NUL-terminated for kith_http_header. */
        response->header_values[i].ptr = (uint8_t *)value.ptr;
        response->header_values[i].len = value.len;
    }
    free(entries.ptr);

    wasi_http_types_own_incoming_body_t incoming_body;
    if (!wasi_http_types_method_incoming_response_consume(answer, &incoming_body)) {
        return kith_error(err, KITH_FAILED, "response body already taken");
    }
    wasi_http_types_own_input_stream_t stream;
    if (!wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(incoming_body), &stream)) {
        return kith_error(err, KITH_FAILED, "response body stream already taken");
    }
    kith_buf_add_bytes(&response->body, "", 0);
    for (;;) {
        plugin_list_u8_t chunk;
        wasi_io_streams_stream_error_t stream_err;
        if (!wasi_io_streams_method_input_stream_blocking_read(wasi_io_streams_borrow_input_stream(stream), 64 * 1024, &chunk, &stream_err)) {
            if (stream_err.tag == WASI_IO_STREAMS_STREAM_ERROR_CLOSED) {
                break;
            }
            return kith_error(err, KITH_FAILED, "reading the response failed");
        }
        kith_buf_add_bytes(&response->body, chunk.ptr, chunk.len);
        free(chunk.ptr);
    }
    wasi_io_streams_input_stream_drop_own(stream);
    wasi_http_types_future_trailers_drop_own(wasi_http_types_static_incoming_body_finish(incoming_body));
    wasi_http_types_incoming_response_drop_own(incoming);
    return true;
}

const char *kith_http_header(const kith_http_response *response, const char *name) {
    for (size_t i = 0; i < response->header_count; i++) {
        if (kith_str_eq(&response->header_names[i], name)) {
            return response->header_values[i].ptr ? (const char *)response->header_values[i].ptr : "";
        }
    }
    return NULL;
}

#endif
