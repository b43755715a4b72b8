/*
 * A small HTTP/1.1 client for the whr tools (send, probe), on libevent
 * with OpenSSL for https. PLACEHOLDER: issue 3 fills it in.
 */
#ifndef WHR_CMD_HTTP_CLIENT_H
#define WHR_CMD_HTTP_CLIENT_H

#endif /* WHR_CMD_HTTP_CLIENT_H */
