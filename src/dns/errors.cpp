// The DNS error category and the Security names.
#include "dns/resolver.hpp"

namespace mailward::dns {
namespace {
class Category final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "mailward.dns"; }
    std::string message(int ev) const override {
        switch (static_cast<DnsErrc>(ev)) {
            case DnsErrc::ok: return "ok";
            case DnsErrc::nxdomain: return "no such domain (NXDOMAIN)";
            case DnsErrc::servfail: return "DNS server failure (SERVFAIL)";
            case DnsErrc::timeout: return "DNS query timed out";
            case DnsErrc::bogus: return "DNSSEC validation failed (bogus answer)";
            case DnsErrc::bad_response: return "malformed DNS answer";
            case DnsErrc::refused: return "DNS query refused";
        }
        return "unknown DNS error";
    }
};
}  // namespace

const boost::system::error_category& dns_category() noexcept {
    static const Category c;
    return c;
}

bool is_temporary(const error_code& ec) { return ec && ec != DnsErrc::nxdomain; }

std::string_view to_string(Security s) {
    switch (s) {
        case Security::insecure: return "insecure";
        case Security::secure: return "secure";
        case Security::bogus: return "bogus";
    }
    return "?";
}

}  // namespace mailward::dns
