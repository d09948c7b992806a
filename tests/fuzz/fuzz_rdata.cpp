// libFuzzer target for DNS rdata decoding (dns/rdata.hpp: RFC 1035 names, MX, A, AAAA, TXT; RFC
// 6698 TLSA; RFC 7505 null MX) as a hostile or broken authoritative server could send it through the
// resolver. Invariants: no read past the data; a decoded name is printable lower-case ASCII of at
// most 253 octets and encodes back to the wire bytes (lower-cased); addresses convert back to the
// same octets; TXT never yields more than the data held.
#include <arpa/inet.h>

#include <string>

#include "dns/rdata.hpp"
#include "fuzz_common.hpp"

using namespace mailward;

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string wire_of(const std::string& name) {
    std::string out;
    std::size_t pos = 0;
    while (pos < name.size()) {
        std::size_t dot = name.find('.', pos);
        if (dot == std::string::npos) dot = name.size();
        out += static_cast<char>(dot - pos);
        out += name.substr(pos, dot - pos);
        pos = dot + 1;
    }
    out += '\0';
    return out;
}

void check_name(const std::string& n, std::string_view wire) {
    fuzz::check(n.size() <= 253, "name length");
    for (char c : n) {
        const auto u = static_cast<unsigned char>(c);
        fuzz::check(u > 0x20 && u < 0x7f && !(c >= 'A' && c <= 'Z'), "name is printable lower case");
    }
    fuzz::check(n.empty() || (n.front() != '.' && n.back() != '.' && n.find("..") == std::string::npos),
                "no empty label");
    fuzz::check(wire_of(n) == lower(wire), "name encodes back to its wire form");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);

    std::size_t pos = 0;
    if (auto n = dns::rdata::name(bytes, pos)) {
        fuzz::check(pos <= bytes.size(), "name stays inside the data");
        check_name(*n, bytes.substr(0, pos));
    }
    if (auto mx = dns::rdata::mx(bytes)) {
        fuzz::check(mx->preference == ((static_cast<unsigned>(data[0]) << 8) | data[1]), "MX preference");
        check_name(mx->exchange, bytes.substr(2));
    }
    if (auto a = dns::rdata::a(bytes)) {
        unsigned char back[4];
        fuzz::check(
            inet_pton(AF_INET, a->c_str(), back) == 1 && std::string_view(reinterpret_cast<char*>(back), 4) == bytes,
            "A round trip");
    }
    if (auto a = dns::rdata::aaaa(bytes)) {
        unsigned char back[16];
        fuzz::check(
            inet_pton(AF_INET6, a->c_str(), back) == 1 && std::string_view(reinterpret_cast<char*>(back), 16) == bytes,
            "AAAA round trip");
    }
    if (auto t = dns::rdata::tlsa(bytes)) {
        fuzz::check(t->data.size() + 3 == bytes.size(), "TLSA data is the rest");
        fuzz::check(t->usage == data[0] && t->selector == data[1] && t->matching_type == data[2], "TLSA fields");
    }
    if (auto t = dns::rdata::txt(bytes))
        fuzz::check(t->size() < bytes.size() || bytes.empty(), "TXT shorter than data");
    return 0;
}
