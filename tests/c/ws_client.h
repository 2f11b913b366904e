/*
 * A raw WebSocket client for the C tests: a blocking TCP socket to 127.0.0.1, the
 * HTTP upgrade written by hand, masked frames out, frames in. Deliberately small and
 * independent of Roost, so that it checks the server's bytes rather than trusting them.
 *
 * Every socket gets send and receive timeouts, so no call blocks for long.
 */
#ifndef ROOST_TESTS_WS_CLIENT_H
#define ROOST_TESTS_WS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* The key of RFC 6455 section 1.3 and the accept value it must produce. */
#define WS_SAMPLE_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_SAMPLE_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

#define WS_OP_CONT 0x0
#define WS_OP_TEXT 0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xA

/* Largest upgrade response head the client accepts. */
#define WS_RESPONSE_MAX 4096

/* One frame as read from the server. `payload` is malloc'd (NUL-terminated for
 * convenience, the NUL not counted in `len`); release it with ws_frame_free. */
typedef struct {
    int fin;
    int opcode;
    int masked;
    int rsv; /* the three RSV bits, 0 for a plain server */
    unsigned char *payload;
    size_t len;
} ws_frame;

/* Connects to 127.0.0.1:port with `timeout_ms` as send and receive timeout.
 * Returns the socket or -1. */
int ws_connect(uint16_t port, int timeout_ms);

/* As ws_connect, with the socket's receive buffer set to `rcvbuf` bytes before the
 * connection is made (so that the window is small from the start): a client that does
 * not read then pushes back on the server after little data. 0 leaves it as it is. */
int ws_connect_rcvbuf(uint16_t port, int timeout_ms, int rcvbuf);

/* Sends an upgrade request for `target` (path and optional query) with the sample key
 * and `extra_headers` (complete "Name: value\r\n" lines, or NULL), then reads the
 * response head byte by byte (so that no frame byte is consumed) into `response`
 * (NUL-terminated). Returns the HTTP status code, or -1 on an I/O error. */
int ws_handshake(int fd, const char *target, const char *extra_headers, char *response,
                 size_t response_cap);

/* Copies the value of header `name` (case-insensitive) of a response head into `out`,
 * trimmed. Returns 0 when found, -1 otherwise. */
int ws_response_header(const char *response, const char *name, char *out, size_t out_cap);

/* Writes one masked frame. Returns 0 or -1. */
int ws_send_frame(int fd, int fin, int opcode, const void *payload, size_t len);

/* Writes a masked close frame with `code` and `reason` (code 0: no payload at all). */
int ws_send_close(int fd, uint16_t code, const char *reason);

/* Reads one frame (unmasking it if masked). Returns 0, or -1 on EOF, timeout, I/O
 * error or a malformed header. */
int ws_read_frame(int fd, ws_frame *out);

/* Releases a frame's payload. */
void ws_frame_free(ws_frame *frame);

/* The close code of a close frame's payload (0 when it has none), and its reason. */
uint16_t ws_close_code(const ws_frame *frame);
const char *ws_close_reason(const ws_frame *frame);

/* Waits up to the socket's receive timeout for the server to close the TCP
 * connection, discarding what arrives. Returns 0 on EOF (or reset), -1 on timeout. */
int ws_wait_eof(int fd);

#endif /* ROOST_TESTS_WS_CLIENT_H */
