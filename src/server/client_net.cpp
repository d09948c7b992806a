// client_network: see client_net.hpp. Addresses are parsed with config::parse_ip (inet_pton).
#include "server/client_net.hpp"

#include <arpa/inet.h>

#include <algorithm>

#include "config/config.hpp"

namespace mailward::server {

std::string client_network(std::string_view ip, unsigned ipv4_prefix, unsigned ipv6_prefix) {
    auto bytes = config::parse_ip(ip);
    if (!bytes) return {};
    auto& b = *bytes;
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (b.size() == 16 && std::equal(kMapped, kMapped + 12, b.begin())) b.erase(b.begin(), b.begin() + 12);
    const unsigned bits = static_cast<unsigned>(b.size()) * 8;
    const unsigned prefix = std::min(bits, b.size() == 4 ? ipv4_prefix : ipv6_prefix);
    for (unsigned i = 0; i < b.size(); ++i) {
        const unsigned keep = prefix > i * 8 ? std::min(8u, prefix - i * 8) : 0;
        b[i] &= static_cast<unsigned char>(keep == 0 ? 0 : 0xff << (8 - keep));
    }
    char text[INET6_ADDRSTRLEN] = {};
    if (inet_ntop(b.size() == 4 ? AF_INET : AF_INET6, b.data(), text, sizeof text) == nullptr) return {};
    return std::string(text) + "/" + std::to_string(prefix);
}

}  // namespace mailward::server
