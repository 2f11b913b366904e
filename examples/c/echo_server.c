/*
 * A WebSocket server in C on top of roost.h alone.
 *
 *   echo_server PORT [HOST [MAX_MESSAGE_SIZE]]
 *
 * /ws    answers each text message with "Echo: <message>" (binary is echoed as is)
 * /echo  echoes each message unchanged: text as text, binary as binary
 * /chat  broadcasts each message to every /chat client, the sender included
 * /sub?topic=T  subscribes the client to topic T; what it sends is ignored
 * /pub?topic=T  publishes each message the client sends to topic T (text as text,
 *               binary as binary), the sender excluded
 *
 * T is taken from the raw query string as is (not percent-decoded), 1 to
 * ROOST_MAX_TOPIC_LENGTH bytes; a /sub or /pub client without one is closed with 1008.
 *
 * MAX_MESSAGE_SIZE (bytes) raises or lowers both the message and the frame limit of
 * the core (default 1 MiB each); the Autobahn conformance run uses 16 MiB.
 *
 * Two environment variables spread the server over several processes or hosts:
 *   ROOST_BACKPLANE=redis://host:port  carries /chat broadcasts and /pub publishes to
 *                                      every server using that Redis (pub/sub); a URL
 *                                      the core refuses exits with status 1
 *   ROOST_REUSE_PORT=1                 listens with SO_REUSEPORT, so that several
 *                                      servers share PORT (each with its own clients)
 *   ROOST_INLINE_IO=1                  runs the core on this program's thread, inside
 *                                      roost_server_poll (roost_options.inline_io):
 *                                      for a process with one core to itself
 * and one turns on compression:
 *   ROOST_COMPRESSION=deflate          speaks permessage-deflate with clients that
 *                                      offer it (roost_options.compression), each
 *                                      message compressed on its own;
 *                   =deflate-per-connection  the same, each connection keeping its
 *                                      compression context between messages
 *
 * Two more make it serve TLS (wss://), both needed:
 *   ROOST_TLS_CERT=PATH                PEM file of the certificate chain
 *   ROOST_TLS_KEY=PATH                 PEM file of its private key (not encrypted);
 *                                      a file that cannot be read, or a certificate
 *                                      or key the core refuses, exits with status 1
 *
 * One thread: poll(2) on the server's ready descriptor, drain events, repeat.
 * SIGINT or SIGTERM stops the server gracefully (every client gets close 1001).
 *
 * A client that does not read its replies fills its send queue: a send then gives
 * ROOST_WOULD_BLOCK. The reply is kept, reading from that client is paused (so at most
 * a few more messages arrive), and the kept replies go out in order on its
 * ROOST_EVENT_WRITABLE event. Nothing is dropped and memory stays bounded.
 * Broadcasts and publishes never block: a recipient that cannot keep up is closed
 * with 1008 (the default slow_consumer policy).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "roost.h"

#define BATCH 256
#define ECHO_PREFIX "Echo: "

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int signo) {
    (void)signo;
    stop_requested = 1;
}

static int fail(const char *what, roost_status status) {
    fprintf(stderr, "echo_server: %s failed (status %d): %s\n", what, (int)status,
            roost_last_error());
    return 1;
}

/* The whole of the file at `path` (malloc'd; free it) and its length in `*len`; NULL,
 * with a message naming the file, when it cannot be read. */
static uint8_t *read_file(const char *path, size_t *len) {
    FILE *file = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t size = 0, capacity = 0;
    if (file != NULL) {
        for (;;) {
            if (size == capacity) {
                capacity = capacity ? capacity * 2 : 4096;
                uint8_t *grown = realloc(data, capacity);
                if (grown == NULL) break;
                data = grown;
            }
            size_t n = fread(data + size, 1, capacity - size, file);
            size += n;
            if (n == 0) break;
        }
    }
    if (file == NULL || ferror(file) || size == capacity) {
        fprintf(stderr, "echo_server: cannot read %s: %s\n", path,
                file == NULL ? strerror(errno) : "read error");
        if (file != NULL) fclose(file);
        free(data);
        return NULL;
    }
    fclose(file);
    *len = size;
    return data;
}

/* A reply that could not be sent yet (its connection's send queue was full). */
typedef struct pending {
    struct pending *next;
    uint64_t connection;
    int binary;
    size_t len;
    unsigned char data[];
} pending;

static pending *pending_head = NULL;

static int has_pending(uint64_t connection) {
    for (pending *p = pending_head; p != NULL; p = p->next)
        if (p->connection == connection) return 1;
    return 0;
}

static void keep_pending(uint64_t connection, int binary, const unsigned char *prefix,
                         size_t prefix_len, const uint8_t *data, size_t len) {
    pending *p = malloc(sizeof *p + prefix_len + len);
    if (p == NULL) return;
    p->next = NULL;
    p->connection = connection;
    p->binary = binary;
    p->len = prefix_len + len;
    if (prefix_len > 0) memcpy(p->data, prefix, prefix_len);
    if (len > 0) memcpy(p->data + prefix_len, data, len);
    pending **tail = &pending_head;
    while (*tail != NULL) tail = &(*tail)->next;
    *tail = p;
}

static roost_status send_one(roost_server *server, uint64_t connection, int binary,
                             const unsigned char *data, size_t len) {
    return binary ? roost_connection_send_binary(server, connection, data, len)
                  : roost_connection_send_text(server, connection, data, len);
}

/* Sends the kept replies of `connection` in order; resumes reading once all are out.
 * With `drop` set (the client left) it only frees them. */
static void flush_pending(roost_server *server, uint64_t connection, int drop) {
    pending **link = &pending_head;
    int blocked = 0;
    while (*link != NULL) {
        pending *p = *link;
        if (p->connection != connection) {
            link = &p->next;
            continue;
        }
        if (!drop && !blocked &&
            send_one(server, connection, p->binary, p->data, p->len) == ROOST_WOULD_BLOCK) {
            blocked = 1;
        }
        if (blocked) {
            link = &p->next;
            continue;
        }
        *link = p->next;
        free(p);
    }
    if (!drop && !blocked) roost_connection_pause_reading(server, connection, false);
}

/* ---- topics --------------------------------------------------------------------- */

/* The value of parameter `name` in a raw query string ("a=1&topic=news"), not
 * decoded, and its length; NULL when it is absent. */
static const uint8_t *query_value(const uint8_t *query, size_t len, const char *name,
                                  size_t *value_len) {
    size_t name_len = strlen(name);
    const uint8_t *end = query + len;
    for (const uint8_t *p = query; p != NULL && p < end;) {
        const uint8_t *amp = memchr(p, '&', (size_t)(end - p));
        const uint8_t *stop = amp != NULL ? amp : end;
        if ((size_t)(stop - p) > name_len && memcmp(p, name, name_len) == 0 && p[name_len] == '=') {
            *value_len = (size_t)(stop - p) - name_len - 1;
            return p + name_len + 1;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return NULL;
}

/* The topic a /pub connection publishes to, kept from its CONNECT to its DISCONNECT
 * (the query string is only in the CONNECT event). A small hash table by id. */
typedef struct publisher {
    struct publisher *next;
    uint64_t connection;
    size_t topic_len;
    uint8_t topic[];
} publisher;

#define PUBLISHER_BUCKETS 1024
static publisher *publishers[PUBLISHER_BUCKETS];

/* The link that points to `connection`'s entry, or to the NULL ending its bucket. */
static publisher **find_publisher(uint64_t connection) {
    publisher **link = &publishers[connection % PUBLISHER_BUCKETS];
    while (*link != NULL && (*link)->connection != connection) link = &(*link)->next;
    return link;
}

static void forget_publisher(uint64_t connection) {
    publisher **link = find_publisher(connection);
    publisher *p = *link;
    if (p == NULL) return;
    *link = p->next;
    free(p);
}

/* A client connected to /sub or /pub: subscribe it, or remember its topic. */
static void topic_connect(roost_server *server, const roost_event *ev, int subscriber) {
    static const char usage[] = "give ?topic=NAME, 1 to 1024 bytes";
    size_t topic_len = 0;
    const uint8_t *topic = query_value(ev->query, ev->query_len, "topic", &topic_len);
    int ok = topic != NULL && topic_len >= 1 && topic_len <= ROOST_MAX_TOPIC_LENGTH;
    if (ok && subscriber) {
        /* Anything but ROOST_OK means the client is gone already. */
        roost_connection_subscribe(server, ev->connection, topic, topic_len, NULL);
    } else if (ok) {
        publisher *p = malloc(sizeof *p + topic_len);
        if (p == NULL) {
            roost_connection_close(server, ev->connection, 1011, NULL, 0);
            return;
        }
        p->connection = ev->connection;
        p->topic_len = topic_len;
        memcpy(p->topic, topic, topic_len);
        publisher **link = find_publisher(ev->connection);
        p->next = *link;
        *link = p;
    }
    if (!ok)
        roost_connection_close(server, ev->connection, 1008, (const uint8_t *)usage, strlen(usage));
}

/* A /pub client sent a message: publish it to its topic, to everyone but itself. */
static void publish(roost_server *server, const roost_event *ev) {
    const publisher *p = *find_publisher(ev->connection);
    if (p == NULL) return; /* refused at its CONNECT */
    if (ev->kind == ROOST_EVENT_BINARY)
        roost_server_publish_binary(server, p->topic, p->topic_len, ev->data, ev->data_len,
                                    ev->connection, NULL);
    else
        roost_server_publish_text(server, p->topic, p->topic_len, ev->data, ev->data_len,
                                  ev->connection, NULL);
}

/* ---- the event loop ------------------------------------------------------------- */

/* Sends "prefix + data" to one connection, keeping it for later when the connection's
 * send queue is full (or earlier replies still wait). */
static void reply(roost_server *server, uint64_t connection, int binary,
                  const unsigned char *prefix, size_t prefix_len, const uint8_t *data,
                  size_t len) {
    static unsigned char *buf = NULL;
    static size_t cap = 0;
    if (!has_pending(connection)) {
        const unsigned char *out = data;
        if (prefix_len > 0) {
            if (prefix_len + len > cap) {
                unsigned char *grown = realloc(buf, prefix_len + len);
                if (grown == NULL) return;
                buf = grown;
                cap = prefix_len + len;
            }
            memcpy(buf, prefix, prefix_len);
            if (len > 0) memcpy(buf + prefix_len, data, len);
            out = buf;
        }
        if (send_one(server, connection, binary, out, prefix_len + len) != ROOST_WOULD_BLOCK)
            return; /* sent, or the client is gone (CLOSED / NOT_FOUND) */
        roost_connection_pause_reading(server, connection, true);
    }
    keep_pending(connection, binary, prefix, prefix_len, data, len);
}

/* Route ids, in the order main adds them. */
enum { WS_ROUTE, ECHO_ROUTE, CHAT_ROUTE, SUB_ROUTE, PUB_ROUTE };

static void handle(roost_server *server, const roost_event *ev) {
    int binary = ev->kind == ROOST_EVENT_BINARY;
    switch (ev->kind) {
    case ROOST_EVENT_CONNECT:
        if (ev->route == SUB_ROUTE || ev->route == PUB_ROUTE)
            topic_connect(server, ev, ev->route == SUB_ROUTE);
        break;
    case ROOST_EVENT_TEXT:
    case ROOST_EVENT_BINARY:
        if (ev->route == CHAT_ROUTE) {
            /* Broadcast never blocks: a recipient that cannot keep up is closed (1008). */
            if (binary)
                roost_server_broadcast_binary(server, CHAT_ROUTE, ev->data, ev->data_len, NULL);
            else
                roost_server_broadcast_text(server, CHAT_ROUTE, ev->data, ev->data_len, NULL);
        } else if (ev->route == WS_ROUTE) {
            const char *prefix = binary ? "" : ECHO_PREFIX;
            reply(server, ev->connection, binary, (const unsigned char *)prefix, strlen(prefix),
                  ev->data, ev->data_len);
        } else if (ev->route == ECHO_ROUTE) {
            reply(server, ev->connection, binary, NULL, 0, ev->data, ev->data_len);
        } else if (ev->route == PUB_ROUTE) {
            publish(server, ev);
        }
        break;
    case ROOST_EVENT_WRITABLE:
        flush_pending(server, ev->connection, 0);
        break;
    case ROOST_EVENT_DISCONNECT:
        flush_pending(server, ev->connection, 1);
        if (ev->route == PUB_ROUTE) forget_publisher(ev->connection);
        break;
    default:
        break;
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [HOST [MAX_MESSAGE_SIZE]]\n", argv[0]);
        return 2;
    }
    char *end = NULL;
    long port = strtol(argv[1], &end, 10);
    if (*argv[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        fprintf(stderr, "echo_server: invalid port '%s'\n", argv[1]);
        return 2;
    }
    const char *host = argc > 2 ? argv[2] : "127.0.0.1";
    unsigned long long max_message_size = 0; /* 0: the core's default */
    if (argc > 3) {
        errno = 0;
        max_message_size = strtoull(argv[3], &end, 10);
        if (*argv[3] < '0' || *argv[3] > '9' || *end != '\0' || errno != 0 ||
            max_message_size == 0) {
            fprintf(stderr, "echo_server: invalid MAX_MESSAGE_SIZE '%s'\n", argv[3]);
            return 2;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    roost_options options;
    roost_status status = ROOST_OPTIONS_INIT(&options);
    if (status != ROOST_OK) return fail("roost_options_init", status);
    if (max_message_size > 0) {
        options.max_message_size = max_message_size;
    }
    const char *backplane = getenv("ROOST_BACKPLANE");
    if (backplane != NULL && *backplane != '\0') {
        options.backplane_url = (const uint8_t *)backplane;
        options.backplane_url_len = strlen(backplane);
    }
    const char *reuse_port = getenv("ROOST_REUSE_PORT");
    options.reuse_port = reuse_port != NULL && strcmp(reuse_port, "1") == 0;
    const char *inline_io = getenv("ROOST_INLINE_IO");
    options.inline_io = inline_io != NULL && strcmp(inline_io, "1") == 0;
    const char *compression = getenv("ROOST_COMPRESSION");
    if (compression != NULL && strcmp(compression, "deflate") == 0) {
        options.compression = ROOST_COMPRESSION_DEFLATE;
    } else if (compression != NULL && strcmp(compression, "deflate-per-connection") == 0) {
        options.compression = ROOST_COMPRESSION_DEFLATE_PER_CONNECTION;
    }
    const char *cert_path = getenv("ROOST_TLS_CERT");
    const char *key_path = getenv("ROOST_TLS_KEY");
    uint8_t *cert = NULL, *key = NULL;
    if (cert_path != NULL && *cert_path != '\0') {
        cert = read_file(cert_path, &options.tls_certificate_chain_len);
        if (cert == NULL) return 1;
        options.tls_certificate_chain = cert;
    }
    if (key_path != NULL && *key_path != '\0') {
        key = read_file(key_path, &options.tls_private_key_len);
        if (key == NULL) {
            free(cert);
            return 1;
        }
        options.tls_private_key = key;
    }
    roost_server *server = NULL;
    status = roost_server_new(&options, &server);
    /* The core copied the PEM. */
    free(cert);
    free(key);
    if (status != ROOST_OK) return fail("roost_server_new", status);

    /* Route ids count from 0 in the order added: WS_ROUTE, ECHO_ROUTE, ... */
    static const char *const paths[] = {"/ws", "/echo", "/chat", "/sub", "/pub"};
    for (uint32_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        uint32_t route = 0;
        status = roost_server_add_route(server, (const uint8_t *)paths[i], strlen(paths[i]), &route);
        if (status != ROOST_OK || route != i) {
            int rc = fail("roost_server_add_route", status);
            roost_server_free(server);
            return rc;
        }
    }
    uint16_t bound = 0;
    status = roost_server_start(server, (const uint8_t *)host, strlen(host), (uint16_t)port, &bound);
    if (status != ROOST_OK) {
        int rc = fail("roost_server_start", status);
        roost_server_free(server);
        return rc;
    }
    int fd = -1;
    roost_server_ready_fd(server, &fd);
    printf("echo_server listening on %s://%s:%u (/ws echo, /echo raw echo, /chat broadcast, "
           "/sub and /pub topics)\n",
           options.tls_certificate_chain_len > 0 ? "wss" : "ws", host, bound);
    fflush(stdout);

    static roost_event events[BATCH];
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (!stop_requested) {
        size_t n = 0;
        status = ROOST_SERVER_POLL(server, events, BATCH, &n);
        if (status != ROOST_OK) {
            fail("roost_server_poll", status);
            break;
        }
        for (size_t i = 0; i < n; i++) handle(server, &events[i]);
        if (n > 0) continue;
        /* The empty poll re-armed the descriptor: sleep until it says "poll me". */
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            perror("poll");
            break;
        }
    }

    printf("echo_server stopping\n");
    roost_server_stop(server, 2000);
    roost_server_free(server);
    while (pending_head != NULL) {
        pending *next = pending_head->next;
        free(pending_head);
        pending_head = next;
    }
    for (size_t i = 0; i < PUBLISHER_BUCKETS; i++)
        while (publishers[i] != NULL) forget_publisher(publishers[i]->connection);
    return 0;
}
