// Endpoint ("127.0.0.1:2525", "[::1]:2525") and network ("10.0.0.0/8", "::1/128") parsing and
// matching. Input is untrusted config text; addresses are IP literals only (inet_pton), never
// names. IPv4 addresses are compared in their IPv4-mapped IPv6 form (RFC 4291 2.5.5.2), so a v4
// network matches a v4 peer seen on a dual-stack socket as ::ffff:a.b.c.d.
#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "common/gcc_wrestrict.hpp"
#include "config/config.hpp"
#include "config/net_detail.hpp"

namespace mailward::config {
namespace {

using Bytes = std::vector<unsigned char>;

// 4 or 16 bytes -> 16 bytes; a v4 address becomes ::ffff:a.b.c.d.
std::array<unsigned char, 16> as_v6(const Bytes& ip) {
    std::array<unsigned char, 16> out{};
    if (ip.size() == 4) {
        out[10] = 0xff;
        out[11] = 0xff;
        std::memcpy(out.data() + 12, ip.data(), 4);
    } else {
        std::memcpy(out.data(), ip.data(), 16);
    }
    return out;
}

std::string v4_text(const unsigned char* b) {
    return std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) + "." + std::to_string(b[3]);
}

// RFC 5952 text: lower-case hex, no leading zeros, the longest run (>= 2) of zero groups as "::"
// (the first such run on a tie), and IPv4-mapped addresses with a dotted tail (section 5).
// glibc's inet_ntop also prints deprecated IPv4-compatible addresses dotted ("::0.1.0.83").
std::string canonical(const Bytes& ip) {
    if (ip.size() == 4) return v4_text(ip.data());
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(ip.data(), kMapped, 12) == 0) return "::ffff:" + v4_text(ip.data() + 12);
    unsigned groups[8];
    for (int i = 0; i < 8; ++i) groups[i] = (ip[2 * i] << 8) | ip[2 * i + 1];
    int best = -1;
    int best_len = 1;
    for (int i = 0; i < 8;) {
        if (groups[i] != 0) {
            ++i;
            continue;
        }
        int j = i;
        while (j < 8 && groups[j] == 0) ++j;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    std::string out;
    char buf[8];
    for (int i = 0; i < 8; ++i) {
        if (i == best) {
            out += "::";
            i += best_len - 1;
            continue;
        }
        if (!out.empty() && out.back() != ':') out += ':';
        std::snprintf(buf, sizeof buf, "%x", groups[i]);
        out += buf;
    }
    return out;
}

std::optional<unsigned> parse_decimal(std::string_view s, unsigned max) {
    if (s.empty() || s.size() > 5) return std::nullopt;
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || ptr != s.data() + s.size() || v > max) return std::nullopt;
    return v;
}

bool parse_port(std::string_view s, unsigned short& port, std::string& why) {
    if (s.empty()) {
        why = "the port is missing";
        return false;
    }
    for (char c : s) {
        if (c < '0' || c > '9') {
            why = "port '" + std::string(s) + "' is not a number";
            return false;
        }
    }
    auto v = parse_decimal(s, 65535);
    if (!v || *v == 0) {
        why = "port " + std::string(s) + " is out of range";
        return false;
    }
    port = static_cast<unsigned short>(*v);
    return true;
}

}  // namespace

std::optional<Bytes> parse_ip(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    const std::string s(text);  // inet_pton needs a terminated string
    unsigned char buf[16];
    if (s.find(':') == std::string::npos) {
        if (::inet_pton(AF_INET, s.c_str(), buf) != 1) return std::nullopt;
        return Bytes(buf, buf + 4);
    }
    if (::inet_pton(AF_INET6, s.c_str(), buf) != 1) return std::nullopt;
    return Bytes(buf, buf + 16);
}

std::string Endpoint::to_string() const {
    const std::string p = std::to_string(port);
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + p;
    return host + ":" + p;
}

bool Network::contains(const Bytes& ip) const {
    if ((ip.size() != 4 && ip.size() != 16) || (addr.size() != 4 && addr.size() != 16)) return false;
    const unsigned bits = addr.size() == 4 ? prefix + 96 : prefix;
    if (bits > 128) return false;
    const auto a = as_v6(addr);
    const auto b = as_v6(ip);
    const unsigned whole = bits / 8;
    if (std::memcmp(a.data(), b.data(), whole) != 0) return false;
    const unsigned rest = bits % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

namespace detail {

std::optional<Endpoint> parse_endpoint(std::string_view text, unsigned short default_port, std::string& why) {
    std::string_view host;
    std::string_view port;
    bool has_port = false;
    if (text.empty()) {
        why = "it is empty";
        return std::nullopt;
    }
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) {
            why = "'[' without ']'";
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        std::string_view tail = text.substr(close + 1);
        if (!tail.empty()) {
            if (tail.front() != ':') {
                why = "unexpected text after ']'";
                return std::nullopt;
            }
            port = tail.substr(1);
            has_port = true;
        }
        if (host.find(':') == std::string_view::npos) {
            why = "brackets are only for IPv6 addresses";
            return std::nullopt;
        }
    } else {
        const auto first = text.find(':');
        const auto last = text.rfind(':');
        if (first != last) {  // several colons: a bare IPv6 address, no port
            if (default_port == 0) {
                why = "an IPv6 address needs brackets, as in [::1]:2525";
                return std::nullopt;
            }
            host = text;
        } else if (first != std::string_view::npos) {
            host = text.substr(0, first);
            port = text.substr(first + 1);
            has_port = true;
        } else {
            host = text;
        }
    }
    auto ip = parse_ip(host);
    if (!ip) {
        MAILWARD_GCC_WRESTRICT_OFF  // GCC bug 105651: "'" + a temporary string
        why = "'" + std::string(host) + "' is not an IP address";
        MAILWARD_GCC_WRESTRICT_ON
        return std::nullopt;
    }
    Endpoint ep;
    ep.host = canonical(*ip);
    if (has_port) {
        if (!parse_port(port, ep.port, why)) return std::nullopt;
    } else if (default_port != 0) {
        ep.port = default_port;
    } else {
        why = "the port is missing";
        return std::nullopt;
    }
    return ep;
}

std::optional<Network> parse_network(std::string_view text, std::string& why) {
    const auto slash = text.find('/');
    const std::string_view addr_text = text.substr(0, slash);
    auto ip = parse_ip(addr_text);
    if (!ip) {
        MAILWARD_GCC_WRESTRICT_OFF  // GCC bug 105651: "'" + a temporary string
        why = "'" + std::string(addr_text) + "' is not an IP address";
        MAILWARD_GCC_WRESTRICT_ON
        return std::nullopt;
    }
    const unsigned max = ip->size() == 4 ? 32 : 128;
    Network net;
    net.text = std::string(text);
    net.prefix = max;
    if (slash != std::string_view::npos) {
        const std::string_view p = text.substr(slash + 1);
        bool digits = !p.empty();
        for (char c : p) digits = digits && c >= '0' && c <= '9';
        auto v = digits ? parse_decimal(p, max) : std::nullopt;
        if (!v) {
            why = "prefix length '" + std::string(p) + "' is not 0-" + std::to_string(max);
            return std::nullopt;
        }
        net.prefix = *v;
    }
    // Host bits must be zero: "10.1.2.3/8" is more likely a typo than a wish for 10.0.0.0/8.
    Bytes masked = *ip;
    for (unsigned i = 0; i < masked.size(); ++i) {
        const unsigned bit = i * 8;
        if (bit >= net.prefix) {
            masked[i] = 0;
        } else if (net.prefix - bit < 8) {
            masked[i] &= static_cast<unsigned char>(0xff << (8 - (net.prefix - bit)));
        }
    }
    if (masked != *ip) {
        why = "host bits are set after /" + std::to_string(net.prefix) + ", did you mean " + canonical(masked) + "/" +
              std::to_string(net.prefix) + "?";
        return std::nullopt;
    }
    net.addr = std::move(masked);
    return net;
}

}  // namespace detail

Result<Endpoint> parse_endpoint(std::string_view text, unsigned short default_port) {
    std::string why;
    auto ep = detail::parse_endpoint(text, default_port, why);
    if (!ep) return common::Errc::invalid_argument;
    return std::move(*ep);
}

Result<Network> parse_network(std::string_view text) {
    std::string why;
    auto net = detail::parse_network(text, why);
    if (!net) return common::Errc::invalid_argument;
    return std::move(*net);
}

}  // namespace mailward::config
