// What the addons share: N-API error reporting and the JS function their libuv callbacks call.
// The including file defines ADDON, its name, first.
#ifndef TRACKER_NAPI_COMMON_H
#define TRACKER_NAPI_COMMON_H
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                   \
  do {                                                \
    if ((call) != napi_ok) {                          \
      napi_throw_error(env, NULL, ADDON ": " #call); \
      return NULL;                                    \
    }                                                 \
  } while (0)

// Throws "what: strerror(err)" with a code JS can test (EADDRINUSE, EACCES, EADDRNOTAVAIL, else EIO).
static inline napi_value throw_errno(napi_env env, const char *what, int err) {
  char text[256];
  snprintf(text, sizeof text, "%s: %s", what, strerror(err));
  napi_value msg, code, error;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, err == EADDRINUSE ? "EADDRINUSE" : err == EACCES ? "EACCES" : err == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : "EIO", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_throw(env, error);
  return NULL;
}

// The JS function an addon's libuv callbacks call, with the addon's JS object as `this`. Both
// are kept alive until js_callback_free.
typedef struct {
  napi_ref self;
  napi_ref fn;
  napi_async_context context;
} JsCallback;

static inline napi_status js_callback_init(napi_env env, JsCallback *cb, napi_value self, napi_value fn, const char *name) {
  napi_value resource_name;
  napi_status status;
  if ((status = napi_create_reference(env, fn, 1, &cb->fn)) != napi_ok) return status;
  if ((status = napi_create_reference(env, self, 1, &cb->self)) != napi_ok) return status;
  if ((status = napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name)) != napi_ok) return status;
  return napi_async_init(env, NULL, resource_name, &cb->context);
}

// Calls the function with `arg`, inside the caller's handle scope. make_callback runs microtasks
// afterwards and an exception is reported as uncaught, as libuv callbacks do. Returns 0 when the
// call failed.
static inline int js_callback_call(napi_env env, JsCallback *cb, int32_t arg) {
  napi_value fn, recv, argv[1], result;
  napi_get_reference_value(env, cb->fn, &fn);
  napi_get_reference_value(env, cb->self, &recv);
  napi_create_int32(env, arg, &argv[0]);
  if (napi_make_callback(env, cb->context, recv, fn, 1, argv, &result) == napi_ok) return 1;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
  return 0;
}

static inline void js_callback_free(napi_env env, JsCallback *cb) {
  napi_delete_reference(env, cb->fn);
  napi_delete_reference(env, cb->self);
  napi_async_destroy(env, cb->context);
}

#endif
