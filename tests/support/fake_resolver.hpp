// FakeResolver, a test double for dns::Resolver: answers from tables the test fills, NXDOMAIN for
// names not in them, every query recorded in order. Test-support only: never linked into mailward.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "dns/resolver.hpp"

namespace mailward::dns {

// Answers from tables filled by the test; names not in a table give nxdomain.
class FakeResolver : public Resolver {
  public:
    std::map<std::string, Result<MxAnswer>> mx_answers;
    std::map<std::string, Result<AddressAnswer>> a_answers;
    std::map<std::string, Result<AddressAnswer>> aaaa_answers;
    std::map<std::string, Result<TlsaAnswer>> tlsa_answers;
    std::map<std::string, Result<TxtAnswer>> txt_answers;
    std::vector<std::string> queries;  // "MX example.org", in order

    boost::asio::awaitable<Result<MxAnswer>> mx(std::string domain) override;
    boost::asio::awaitable<Result<AddressAnswer>> a(std::string host) override;
    boost::asio::awaitable<Result<AddressAnswer>> aaaa(std::string host) override;
    boost::asio::awaitable<Result<TlsaAnswer>> tlsa(std::string name) override;
    boost::asio::awaitable<Result<TxtAnswer>> txt(std::string name) override;
};

}  // namespace mailward::dns
