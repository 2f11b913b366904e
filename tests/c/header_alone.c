#include "roost.h"
/*
 * roost.h stands alone: it is the first thing this file includes, so the translation
 * unit compiles only if the header brings every type it uses itself. Built twice by
 * the Makefile: as C11 and as C++17 (-x c++), which checks cbindgen's cpp_compat
 * (extern "C", no C-only constructs). Both with -Wall -Werror -pedantic.
 *
 * The standard headers below come after roost.h and only serve the printing.
 *
 * Every function is assigned to a pointer of the exact prototype this test expects,
 * so a changed signature fails to compile; then each is called through that pointer
 * with a NULL server, which every function must refuse without touching anything.
 */
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
#define STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#define LANGUAGE "C++"
#else
#define STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#define LANGUAGE "C"
#endif

/* The enumerator values are ABI: consumers persist and compare them. */
STATIC_ASSERT(ROOST_OK == 0, "ROOST_OK");
STATIC_ASSERT(ROOST_WOULD_BLOCK == 1, "ROOST_WOULD_BLOCK");
STATIC_ASSERT(ROOST_CLOSED == 2, "ROOST_CLOSED");
STATIC_ASSERT(ROOST_NOT_FOUND == 3, "ROOST_NOT_FOUND");
STATIC_ASSERT(ROOST_INVALID_ARGUMENT == 4, "ROOST_INVALID_ARGUMENT");
STATIC_ASSERT(ROOST_INVALID_STATE == 5, "ROOST_INVALID_STATE");
STATIC_ASSERT(ROOST_IO == 6, "ROOST_IO");
STATIC_ASSERT(ROOST_PANIC == 7, "ROOST_PANIC");
STATIC_ASSERT(ROOST_EVENT_CONNECT == 1, "ROOST_EVENT_CONNECT");
STATIC_ASSERT(ROOST_EVENT_TEXT == 2, "ROOST_EVENT_TEXT");
STATIC_ASSERT(ROOST_EVENT_BINARY == 3, "ROOST_EVENT_BINARY");
STATIC_ASSERT(ROOST_EVENT_DISCONNECT == 4, "ROOST_EVENT_DISCONNECT");
STATIC_ASSERT(ROOST_EVENT_WRITABLE == 5, "ROOST_EVENT_WRITABLE");
/* The integer types the header promises (usize_is_size_t, fixed-width fields). */
STATIC_ASSERT(sizeof(((roost_event *)0)->data_len) == sizeof(size_t), "data_len is size_t");
STATIC_ASSERT(sizeof(((roost_event *)0)->connection) == 8, "connection is 64-bit");
STATIC_ASSERT(sizeof(((roost_event *)0)->close_code) == 2, "close_code is 16-bit");
STATIC_ASSERT(sizeof(((roost_header *)0)->name_len) == sizeof(size_t), "name_len is size_t");
STATIC_ASSERT(sizeof(((roost_options *)0)->max_message_size) == 8, "max_message_size is 64-bit");
STATIC_ASSERT(ROOST_SLOW_CONSUMER_CLOSE == 0, "ROOST_SLOW_CONSUMER_CLOSE (the default)");
STATIC_ASSERT(ROOST_SLOW_CONSUMER_SKIP == 1, "ROOST_SLOW_CONSUMER_SKIP");
STATIC_ASSERT(ROOST_NO_CONNECTION == 0, "ROOST_NO_CONNECTION");
STATIC_ASSERT(ROOST_MAX_TOPIC_LENGTH == 1024, "ROOST_MAX_TOPIC_LENGTH");
STATIC_ASSERT(sizeof(((roost_stats *)0)->size) == 4, "roost_stats.size is 32-bit, like roost_options.size");
STATIC_ASSERT(sizeof(((roost_stats *)0)->deliveries_skipped) == 8, "stats counters are 64-bit");

/* One pointer per function, typed with the prototype this test expects. */
struct roost_api {
    const char *(*version)(void);
    const char *(*last_error)(void);
    roost_status (*options_init)(roost_options *, size_t);
    roost_status (*server_new)(const roost_options *, roost_server **);
    roost_status (*server_free)(roost_server *);
    roost_status (*server_add_route)(roost_server *, const uint8_t *, size_t, uint32_t *);
    roost_status (*server_start)(roost_server *, const uint8_t *, size_t, uint16_t, uint16_t *);
    roost_status (*server_ready_fd)(roost_server *, int *);
    roost_status (*server_poll)(roost_server *, roost_event *, size_t, size_t, size_t *);
    roost_status (*connection_send_text)(roost_server *, uint64_t, const uint8_t *, size_t);
    roost_status (*connection_send_binary)(roost_server *, uint64_t, const uint8_t *, size_t);
    roost_status (*server_broadcast_text)(roost_server *, uint32_t, const uint8_t *, size_t, size_t *);
    roost_status (*server_broadcast_binary)(roost_server *, uint32_t, const uint8_t *, size_t,
                                            size_t *);
    roost_status (*connection_close)(roost_server *, uint64_t, uint16_t, const uint8_t *, size_t);
    roost_status (*connection_pause_reading)(roost_server *, uint64_t, bool);
    roost_status (*server_stop)(roost_server *, uint32_t);
    roost_status (*server_connection_count)(roost_server *, size_t *);
    roost_status (*connection_subscribe)(roost_server *, uint64_t, const uint8_t *, size_t, bool *);
    roost_status (*connection_unsubscribe)(roost_server *, uint64_t, const uint8_t *, size_t, bool *);
    roost_status (*connection_topics)(roost_server *, uint64_t, roost_topic_visitor, void *, size_t *);
    roost_status (*server_publish_text)(roost_server *, const uint8_t *, size_t, const uint8_t *, size_t, uint64_t,
                                        size_t *);
    roost_status (*server_publish_binary)(roost_server *, const uint8_t *, size_t, const uint8_t *, size_t, uint64_t,
                                          size_t *);
    roost_status (*server_subscriber_count)(roost_server *, const uint8_t *, size_t, size_t *);
    roost_status (*server_stats)(roost_server *, roost_stats *, size_t);
};

/* The visitor's exact type. */
static void visit(void *context, const uint8_t *topic, size_t topic_len) {
    (void)context;
    (void)topic;
    (void)topic_len;
}
static const roost_topic_visitor visitor = visit;

static const struct roost_api api = {
    roost_version,
    roost_last_error,
    roost_options_init,
    roost_server_new,
    roost_server_free,
    roost_server_add_route,
    roost_server_start,
    roost_server_ready_fd,
    roost_server_poll,
    roost_connection_send_text,
    roost_connection_send_binary,
    roost_server_broadcast_text,
    roost_server_broadcast_binary,
    roost_connection_close,
    roost_connection_pause_reading,
    roost_server_stop,
    roost_server_connection_count,
    roost_connection_subscribe,
    roost_connection_unsubscribe,
    roost_connection_topics,
    roost_server_publish_text,
    roost_server_publish_binary,
    roost_server_subscriber_count,
    roost_server_stats,
};

static int checks = 0;
static int failed = 0;

static void check(int ok, const char *what, roost_status got) {
    checks++;
    if (!ok) failed++;
    printf("%s %d - [%s] %s (status %d)\n", ok ? "ok  " : "FAIL", checks, LANGUAGE, what, (int)got);
}

/* Expects `got` to be ROOST_INVALID_ARGUMENT with a message. */
static void refused(const char *what, roost_status got) {
    const char *message = api.last_error();
    check(got == ROOST_INVALID_ARGUMENT && message != NULL && message[0] != '\0', what, got);
}

int main(void) {
    const char *version = api.version();
    checks++;
    if (version == NULL || version[0] == '\0') failed++;
    printf("%s %d - [%s] roost_version() is \"%s\"\n", version && version[0] ? "ok  " : "FAIL",
           checks, LANGUAGE, version ? version : "(NULL)");

    const char *before = api.last_error();
    check(before != NULL && before[0] == '\0', "roost_last_error() is empty before any failure",
          ROOST_OK);

    roost_options options;
    memset(&options, 0, sizeof options);
    roost_status st = api.options_init(&options, sizeof options);
    check(st == ROOST_OK && options.max_message_size > 0 && options.worker_threads > 0,
          "roost_options_init fills the defaults", st);
    memset(&options, 0, sizeof options);
    st = ROOST_OPTIONS_INIT(&options);
    check(st == ROOST_OK && options.size == sizeof options && options.max_message_size > 0,
          "ROOST_OPTIONS_INIT passes the compiled size", st);
    check(roost_version_number() == ROOST_VERSION_NUMBER &&
              ROOST_VERSION_NUMBER == (ROOST_VERSION_MAJOR << 16 | ROOST_VERSION_MINOR << 8 | ROOST_VERSION_PATCH),
          "the library's version is the header's", ROOST_OK);

    roost_server *null_server = NULL;
    uint32_t route = 0;
    uint16_t port = 0;
    int fd = -1;
    size_t count = 0;
    roost_event events[1];
    const uint8_t path[] = {'/', 'w', 's'};

    refused("roost_server_new(options, NULL)", api.server_new(&options, NULL));
    refused("roost_server_add_route(NULL, ...)", api.server_add_route(null_server, path, 3, &route));
    refused("roost_server_start(NULL, ...)", api.server_start(null_server, path, 0, 0, &port));
    refused("roost_server_ready_fd(NULL, ...)", api.server_ready_fd(null_server, &fd));
    refused("roost_server_poll(NULL, ...)", api.server_poll(null_server, events, 1, sizeof events[0], &count));
    refused("roost_connection_send_text(NULL, ...)", api.connection_send_text(null_server, 1, path, 3));
    refused("roost_connection_send_binary(NULL, ...)",
            api.connection_send_binary(null_server, 1, path, 3));
    refused("roost_server_broadcast_text(NULL, ...)",
            api.server_broadcast_text(null_server, 0, path, 3, &count));
    refused("roost_server_broadcast_binary(NULL, ...)",
            api.server_broadcast_binary(null_server, 0, path, 3, &count));
    refused("roost_connection_close(NULL, ...)", api.connection_close(null_server, 1, 1000, NULL, 0));
    refused("roost_connection_pause_reading(NULL, ...)",
            api.connection_pause_reading(null_server, 1, true));
    refused("roost_server_stop(NULL, ...)", api.server_stop(null_server, 0));
    refused("roost_server_connection_count(NULL, ...)",
            api.server_connection_count(null_server, &count));
    bool flag = false;
    roost_stats stats;
    refused("roost_connection_subscribe(NULL, ...)", api.connection_subscribe(null_server, 1, path, 3, &flag));
    refused("roost_connection_unsubscribe(NULL, ...)", api.connection_unsubscribe(null_server, 1, path, 3, &flag));
    refused("roost_connection_topics(NULL, ...)", api.connection_topics(null_server, 1, visitor, NULL, &count));
    refused("roost_server_publish_text(NULL, ...)",
            api.server_publish_text(null_server, path, 3, path, 3, ROOST_NO_CONNECTION, &count));
    refused("roost_server_publish_binary(NULL, ...)",
            api.server_publish_binary(null_server, path, 3, path, 3, ROOST_NO_CONNECTION, &count));
    refused("roost_server_subscriber_count(NULL, ...)", api.server_subscriber_count(null_server, path, 3, &count));
    refused("roost_server_stats(NULL, ...)", api.server_stats(null_server, &stats, sizeof stats));
    st = api.server_free(null_server);
    check(st == ROOST_OK, "roost_server_free(NULL) does nothing", st);

    /* A whole life without a socket: new, ready descriptor, empty poll, free. */
    roost_server *server = NULL;
    st = api.server_new(NULL, &server);
    check(st == ROOST_OK && server != NULL, "roost_server_new(NULL options)", st);
    if (server != NULL) {
        st = api.server_ready_fd(server, &fd);
        check(st == ROOST_OK && fd >= 0, "roost_server_ready_fd before start", st);
        count = 99;
        st = api.server_poll(server, events, 1, sizeof events[0], &count);
        check(st == ROOST_OK && count == 0, "roost_server_poll before start is empty", st);
        memset(&stats, 0xff, sizeof stats);
        st = ROOST_SERVER_STATS(server, &stats);
        check(st == ROOST_OK && stats.size == sizeof stats && stats.connections == 0 && stats.topics == 0,
              "ROOST_SERVER_STATS passes the compiled size; nothing counted yet", st);
        st = api.server_free(server);
        check(st == ROOST_OK, "roost_server_free", st);
    }

    printf("header_alone [%s]: %d checks, %d failed\n", LANGUAGE, checks, failed);
    return failed == 0 ? 0 : 1;
}
