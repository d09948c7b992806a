// What `mailward config check` reports about a certificate file and its key (OpenSSL 3): the
// chain parses, the leaf's names and validity period, whether the private key is the leaf's, and
// whether the leaf covers a host name or IP address (RFC 6125 matching, as clients verify).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mailward::tls {

struct CertInfo {
    std::string error;               // non-empty: the file could not be read or holds no certificate
    std::size_t count = 0;           // certificates in the file (a chain, or a CA bundle)
    std::string subject;             // the first certificate's subject, one line
    std::vector<std::string> names;  // its subjectAltName DNS names and IP addresses
    std::chrono::system_clock::time_point not_before{}, not_after{};
    std::vector<bool> covers;         // per name asked for: the first certificate is valid for it
    std::optional<bool> key_matches;  // set when a key file was given and read
    std::string key_error;            // the key file could not be read (key_matches unset)
};

// Reads the PEM certificates of cert_path; with key_path, the PEM private key too, and compares
// it with the first certificate's public key. names: host names or IP literals to match.
CertInfo inspect_certificate(const std::filesystem::path& cert_path, const std::filesystem::path& key_path = {},
                             const std::vector<std::string>& names = {});

}  // namespace mailward::tls
