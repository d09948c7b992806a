// FakeResolver (fake_resolver.hpp): answers from tables the test fills; anything else is NXDOMAIN.
// Records queries.
#include "support/fake_resolver.hpp"

namespace mailward::dns {
namespace {
template <class T>
Result<T> lookup(const std::map<std::string, Result<T>>& table, const std::string& name) {
    auto it = table.find(name);
    if (it == table.end()) return DnsErrc::nxdomain;
    return it->second;
}
}  // namespace

boost::asio::awaitable<Result<MxAnswer>> FakeResolver::mx(std::string domain) {
    queries.push_back("MX " + domain);
    co_return lookup(mx_answers, domain);
}
boost::asio::awaitable<Result<AddressAnswer>> FakeResolver::a(std::string host) {
    queries.push_back("A " + host);
    co_return lookup(a_answers, host);
}
boost::asio::awaitable<Result<AddressAnswer>> FakeResolver::aaaa(std::string host) {
    queries.push_back("AAAA " + host);
    co_return lookup(aaaa_answers, host);
}
boost::asio::awaitable<Result<TlsaAnswer>> FakeResolver::tlsa(std::string name) {
    queries.push_back("TLSA " + name);
    co_return lookup(tlsa_answers, name);
}
boost::asio::awaitable<Result<TxtAnswer>> FakeResolver::txt(std::string name) {
    queries.push_back("TXT " + name);
    co_return lookup(txt_answers, name);
}

}  // namespace mailward::dns
