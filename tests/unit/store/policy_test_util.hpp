// Helpers of the learned policy tests (policy_contract_test.cpp on both backends, policy_store_test.cpp
// on SQLite, pg_policy_test.cpp on PostgreSQL): per-MX evidence consistent with its level, incidents.
#pragma once

#include <string>
#include <utility>

#include "store/policy_store.hpp"
#include "store_test_util.hpp"

namespace mailward::store::test {

inline const TimePoint kPolicyT0 = ms(1'800'000'000'000);

// What an address at level would show (STARTTLS from encrypt up, a valid chain from verify up).
inline MxEvidence ev(std::string host, std::string address, std::string level, std::string spki = "aa11") {
    MxEvidence e;
    e.host = std::move(host);
    e.address = std::move(address);
    e.level = std::move(level);
    e.starttls = e.level != "none" && e.level != "may";
    e.protocol = e.starttls ? "TLSv1.3" : "";
    e.cipher = e.starttls ? "TLS_AES_256_GCM_SHA384" : "";
    e.chain_valid = e.level == "verify" || e.level == "dane";
    e.name_matched = e.chain_valid;
    e.spki_sha256 = e.starttls ? std::move(spki) : "";
    e.dane_matched = e.level == "dane";
    e.seen_at = kPolicyT0;
    return e;
}

inline PolicyIncident incident(std::string domain, TimePoint at, std::string kind, std::string detail) {
    PolicyIncident i;
    i.domain = std::move(domain);
    i.at = at;
    i.kind = std::move(kind);
    i.detail = std::move(detail);
    return i;
}

}  // namespace mailward::store::test
