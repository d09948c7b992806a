// DNS lookups the delivery engine needs (MX, A, AAAA, TLSA, TXT), each answer with its DNSSEC
// status (secure / insecure / bogus, RFC 4033-4035). The interface is asynchronous (Asio
// coroutines); the real implementation is libunbound (unbound_resolver.cpp), unit tests use
// FakeResolver (tests/support/fake_resolver.hpp). Error classes: NXDOMAIN is permanent; SERVFAIL and timeouts are
// temporary.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace boost::asio {
class io_context;
}
namespace mailward::config {
struct DnsConfig;
}

namespace mailward::dns {

enum class Security { insecure, secure, bogus };
std::string_view to_string(Security s);

enum class DnsErrc {
    ok = 0,
    nxdomain = 1,  // the name does not exist (permanent)
    servfail,      // the resolver could not get an answer (temporary)
    timeout,       // no answer in time (temporary)
    bogus,         // DNSSEC validation failed (temporary; never used as an answer)
    bad_response,  // an answer that could not be parsed (temporary)
    refused,       // the server refused the query (temporary)
};
const boost::system::error_category& dns_category() noexcept;
inline error_code make_error_code(DnsErrc e) noexcept { return {static_cast<int>(e), dns_category()}; }
// True for errors that may go away (retry later); false for nxdomain.
bool is_temporary(const error_code& ec);

struct MxRecord {
    unsigned preference = 0;
    std::string exchange;  // lower case, no trailing dot; "" for the null MX "." (RFC 7505)
};

// An empty record list with nodata=true means "the name exists but has no records of this type".
struct MxAnswer {
    std::vector<MxRecord> records;
    Security security = Security::insecure;
    bool nodata = false;
};

struct AddressAnswer {
    std::vector<std::string> addresses;  // textual IPv4 / IPv6 addresses
    Security security = Security::insecure;
    bool nodata = false;
};

struct TlsaRecord {
    std::uint8_t usage = 0, selector = 0, matching_type = 0;
    std::vector<std::uint8_t> data;
};

struct TlsaAnswer {
    std::vector<TlsaRecord> records;
    Security security = Security::insecure;
    bool nodata = false;
};

struct TxtAnswer {
    std::vector<std::string> texts;  // each TXT RR's strings concatenated
    Security security = Security::insecure;
    bool nodata = false;
};

class Resolver {
  public:
    virtual ~Resolver() = default;
    // Names are given without a trailing dot. Bogus answers come back as DnsErrc::bogus.
    virtual boost::asio::awaitable<Result<MxAnswer>> mx(std::string domain) = 0;
    virtual boost::asio::awaitable<Result<AddressAnswer>> a(std::string host) = 0;
    virtual boost::asio::awaitable<Result<AddressAnswer>> aaaa(std::string host) = 0;
    virtual boost::asio::awaitable<Result<TlsaAnswer>> tlsa(std::string name) = 0;  // "_25._tcp.mx.example"
    virtual boost::asio::awaitable<Result<TxtAnswer>> txt(std::string name) = 0;
};

// libunbound, validating, on io's thread(s). cfg.servers empty: /etc/resolv.conf; else forward
// every query (special-use names included) to those servers. cfg.trust_anchor_file empty: the
// root anchor; else that file replaces it. On failure error says why (file, server).
Result<std::unique_ptr<Resolver>> make_unbound_resolver(boost::asio::io_context& io, const config::DnsConfig& cfg,
                                                        std::string& error);

}  // namespace mailward::dns

namespace boost::system {
template <>
struct is_error_code_enum<mailward::dns::DnsErrc> : std::true_type {};
}  // namespace boost::system
