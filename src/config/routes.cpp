// [[delivery.routes]]: next hops by recipient domain (Postfix's transport_maps and relayhost are the
// model). A pattern is a domain ("example.com"), a suffix (".example.com": its subdomains, not
// itself) or "*"; the next hop "[host]:port" is used as is, "host:port" by the MX records of host
// (RFC 5321 5.1). Parsing is strict: the text comes from the config file.
#include <arpa/inet.h>

#include <charconv>

#include "common/ascii.hpp"
#include "common/domain.hpp"
#include "config/config.hpp"

namespace mailward::config {
namespace {

bool is_domain(std::string_view s) { return common::DomainName::parse(s, {.final_dot = false}).has_value(); }

bool is_ip(std::string_view s) {
    const std::string t(s);
    unsigned char buf[16];
    return ::inet_pton(AF_INET, t.c_str(), buf) == 1 || ::inet_pton(AF_INET6, t.c_str(), buf) == 1;
}

bool parse_port(std::string_view s, unsigned short& out) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535 || s.front() == '0') return false;
    out = static_cast<unsigned short>(v);
    return true;
}

}  // namespace

bool parse_next_hop(std::string_view text, RouteConfig& out) {
    std::string_view host = text, port;
    bool bracketed = false;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return false;
        host = text.substr(1, close - 1);
        const auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return false;
            port = rest.substr(1);
            if (port.empty()) return false;
        }
        bracketed = true;
    } else if (const auto colon = text.rfind(':'); colon != std::string_view::npos) {
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (port.empty()) return false;
    }
    if (host.empty() || !(is_domain(host) || (bracketed && is_ip(host)))) return false;
    unsigned short p = 25;
    if (!port.empty() && !parse_port(port, p)) return false;
    out.next_hop = std::string(text);
    out.host = common::ascii::lower(std::string(host));
    out.port = p;
    out.mx_lookup = !bracketed;
    return true;
}

const RouteConfig* find_route(const std::vector<RouteConfig>& routes, std::string_view domain) {
    const RouteConfig* best = nullptr;
    std::size_t best_len = 0;
    const RouteConfig* any = nullptr;
    for (const auto& r : routes) {
        for (const auto& p : r.domains) {
            if (p == "*") {
                if (!any) any = &r;
            } else if (p.front() == '.') {
                if (domain.size() > p.size() && domain.ends_with(p) && p.size() > best_len) {
                    best = &r;
                    best_len = p.size();
                }
            } else if (p == domain) {
                return &r;  // patterns are unique across routes: the exact one is the only one
            }
        }
    }
    return best ? best : any;
}

}  // namespace mailward::config
