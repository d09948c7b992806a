// The text of OpenSSL's most recent error (and the queue cleared), for messages that name a file
// or a step. Internal to src/tls.
#pragma once

#include <openssl/err.h>

#include <string>

namespace mailward::tls::detail {

inline std::string openssl_error() {
    unsigned long e = ERR_get_error();
    if (e == 0) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

}  // namespace mailward::tls::detail
