// Certificates and keys that mailward makes itself: a self-signed certificate for a host name when
// the operator configured none (first start), written with 0600 permissions. OpenSSL 3 APIs.
#pragma once

#include <filesystem>
#include <string>

#include "common/result.hpp"

namespace mailward::tls {

struct KeyPairPem {
    std::string certificate;
    std::string private_key;
};

// A P-256 key and a self-signed X.509v3 certificate for hostname (CN and subjectAltName DNS),
// valid for days days.
Result<KeyPairPem> make_self_signed(const std::string& hostname, int days = 825);

// Ensures cert_path and key_path exist: when either is missing, makes a self-signed pair for
// hostname and writes both with mode 0600. Returns true when it created them.
Result<bool> ensure_self_signed(const std::filesystem::path& cert_path, const std::filesystem::path& key_path,
                                const std::string& hostname);

}  // namespace mailward::tls
