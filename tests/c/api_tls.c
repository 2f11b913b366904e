/*
 * TLS through roost.h: a server made with a certificate chain and private key as PEM
 * (tls-cert.pem and tls-key.pem in the working directory, made for the run by the
 * Makefile) starts and counts a plain client's failed TLS handshake in roost_stats;
 * the PEM is copied (the program's buffers are wiped before start); a malformed
 * certificate or key, a key of another certificate, one half without the other, and a
 * NULL pointer with a length each fail roost_server_new with ROOST_INVALID_ARGUMENT and
 * a message saying which and why, leaving the out-parameter alone.
 */
#define _POSIX_C_SOURCE 200809L

#include "roost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "ws_client.h"

#define PROGRAM "api_tls"
#define BYTES(s) ((const uint8_t *)(s))

/* The whole file, NUL-terminated (malloc'd), its length in `*len`; NULL on failure. */
static char *read_file(const char *path, size_t *len) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) return NULL;
    char *data = malloc(65536);
    size_t n = data ? fread(data, 1, 65535, file) : 0;
    fclose(file);
    if (data == NULL || n == 0) {
        free(data);
        return NULL;
    }
    data[n] = '\0';
    *len = n;
    return data;
}

static roost_options tls_options(const char *cert, size_t cert_len, const char *key, size_t key_len) {
    roost_options options;
    ROOST_OPTIONS_INIT(&options);
    options.ping_interval_ms = 0;
    options.tls_certificate_chain = BYTES(cert);
    options.tls_certificate_chain_len = cert_len;
    options.tls_private_key = BYTES(key);
    options.tls_private_key_len = key_len;
    return options;
}

/* roost_server_new refuses `options` with ROOST_INVALID_ARGUMENT and a message
 * containing `words`, and leaves the out-parameter as it was. */
static void refused(const roost_options *options, const char *words, const char *label) {
    roost_server *sentinel = (roost_server *)&sentinel;
    roost_server *server = sentinel;
    check_status(roost_server_new(options, &server), ROOST_INVALID_ARGUMENT, "%s: status", label);
    const char *message = roost_last_error();
    check(strstr(message, words) != NULL, "%s: message '%s' says '%s'", label, message, words);
    check(server == sentinel, "%s: out-parameter untouched", label);
}

static void serves_tls_and_counts_a_plain_client(char *cert, size_t cert_len, char *key, size_t key_len) {
    printf("# a TLS server starts; a plain client's failed handshake is counted\n");
    roost_options options = tls_options(cert, cert_len, key, key_len);
    roost_server *server = NULL;
    if (!check_status(roost_server_new(&options, &server), ROOST_OK, "roost_server_new with PEM")) return;
    /* The server holds its own copy from here on. */
    memset(cert, 0, cert_len);
    memset(key, 0, key_len);
    uint32_t route = 0;
    uint16_t port = 0;
    check_status(roost_server_add_route(server, BYTES("/ws"), 3, &route), ROOST_OK, "add_route");
    if (!check_status(roost_server_start(server, BYTES("127.0.0.1"), 9, 0, &port), ROOST_OK, "start")) {
        roost_server_free(server);
        return;
    }
    int fd = ws_connect(port, 5000);
    check(fd >= 0, "connect");
    if (fd >= 0) {
        char response[1024];
        int status = ws_handshake(fd, "/ws", NULL, response, sizeof response);
        check(status != 101, "a plain upgrade on the TLS port is not upgraded (got %d)", status);
        close(fd);
    }
    roost_stats stats;
    int64_t deadline = now_ms() + 5000;
    do {
        sleep_ms(10);
        check_status(roost_server_stats(server, &stats, sizeof stats), ROOST_OK, "stats");
    } while (stats.tls_handshakes_failed == 0 && now_ms() < deadline);
    check(stats.tls_handshakes_failed == 1, "one failed TLS handshake counted (%llu)",
          (unsigned long long)stats.tls_handshakes_failed);
    check(stats.connections == 0, "no connection from it");
    check_status(roost_server_free(server), ROOST_OK, "free");
}

static void bad_pem_is_refused(const char *cert, size_t cert_len, const char *key, size_t key_len,
                               const char *other_key, size_t other_key_len) {
    printf("# bad certificates and keys are refused, saying which and why\n");
    const char *garbage = "not PEM at all\n";
    roost_options o = tls_options(garbage, strlen(garbage), key, key_len);
    refused(&o, "certificate chain has no CERTIFICATE", "garbage certificate");
    o = tls_options(cert, cert_len, garbage, strlen(garbage));
    refused(&o, "private key has no PRIVATE KEY", "garbage key");
    o = tls_options(cert, cert_len, cert, cert_len);
    refused(&o, "private key", "a certificate as the key");
    o = tls_options(cert, cert_len, other_key, other_key_len);
    refused(&o, "does not belong", "a key of another certificate");
    o = tls_options(cert, cert_len, key, 0);
    refused(&o, "TLS needs both", "certificate without key");
    o = tls_options(cert, 0, key, key_len);
    refused(&o, "TLS needs both", "key without certificate");
    o = tls_options(NULL, 10, key, key_len);
    refused(&o, "tls_certificate_chain is NULL", "NULL certificate with a length");
}

int main(void) {
    install_watchdog(30, PROGRAM);
    setvbuf(stdout, NULL, _IOLBF, 0);
    size_t cert_len = 0, key_len = 0, other_len = 0;
    char *cert = read_file("tls-cert.pem", &cert_len);
    char *key = read_file("tls-key.pem", &key_len);
    char *other = read_file("tls-other-key.pem", &other_len);
    if (!check(cert && key && other, "the test's PEM files (made by tests/c/Makefile) are readable")) {
        free(cert);
        free(key);
        free(other);
        return check_summary(PROGRAM);
    }
    bad_pem_is_refused(cert, cert_len, key, key_len, other, other_len);
    serves_tls_and_counts_a_plain_client(cert, cert_len, key, key_len);
    free(cert);
    free(key);
    free(other);
    return check_summary(PROGRAM);
}
