// Wire-format rdata decoding with bounds checks: see rdata.hpp.
#include "dns/rdata.hpp"

#include <arpa/inet.h>

namespace mailward::dns::rdata {

std::optional<std::string> name(std::string_view data, std::size_t& pos) {
    std::string out;
    for (int labels = 0; labels < 128; ++labels) {
        if (pos >= data.size()) return std::nullopt;
        const auto len = static_cast<unsigned char>(data[pos++]);
        if (len == 0) return out;
        if (len > 63) return std::nullopt;  // compression pointers and extended labels do not belong here
        if (pos + len > data.size()) return std::nullopt;
        if (!out.empty()) out.push_back('.');
        for (std::size_t i = 0; i < len; ++i) {
            const auto u = static_cast<unsigned char>(data[pos + i]);
            // A '.' inside a label, blanks, control and non-ASCII octets have no unambiguous text form.
            if (u <= 0x20 || u >= 0x7f || u == '.') return std::nullopt;
            char c = static_cast<char>(u);
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            out.push_back(c);
        }
        pos += len;
        if (out.size() > 253) return std::nullopt;
    }
    return std::nullopt;
}

std::optional<MxRecord> mx(std::string_view data) {
    if (data.size() < 3) return std::nullopt;
    MxRecord r;
    r.preference = (static_cast<unsigned char>(data[0]) << 8) | static_cast<unsigned char>(data[1]);
    std::size_t pos = 2;
    auto n = name(data, pos);
    if (!n || pos != data.size()) return std::nullopt;
    r.exchange = *n;
    return r;
}

std::optional<std::string> a(std::string_view data) {
    if (data.size() != 4) return std::nullopt;
    char buf[INET_ADDRSTRLEN];
    if (!inet_ntop(AF_INET, data.data(), buf, sizeof buf)) return std::nullopt;
    return std::string(buf);
}

std::optional<std::string> aaaa(std::string_view data) {
    if (data.size() != 16) return std::nullopt;
    char buf[INET6_ADDRSTRLEN];
    if (!inet_ntop(AF_INET6, data.data(), buf, sizeof buf)) return std::nullopt;
    return std::string(buf);
}

std::optional<TlsaRecord> tlsa(std::string_view data) {
    if (data.size() < 4) return std::nullopt;
    TlsaRecord r;
    r.usage = static_cast<std::uint8_t>(data[0]);
    r.selector = static_cast<std::uint8_t>(data[1]);
    r.matching_type = static_cast<std::uint8_t>(data[2]);
    r.data.assign(data.begin() + 3, data.end());
    return r;
}

std::optional<std::string> txt(std::string_view data) {
    std::string out;
    std::size_t pos = 0;
    while (pos < data.size()) {
        const auto len = static_cast<unsigned char>(data[pos++]);
        if (pos + len > data.size()) return std::nullopt;
        out.append(data.substr(pos, len));
        pos += len;
    }
    return out;
}

}  // namespace mailward::dns::rdata
