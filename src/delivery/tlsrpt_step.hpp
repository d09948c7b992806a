// TLS-RPT (RFC 8460) at delivery: what the SMTP client reports about one new session (its
// SessionError and TlsFault, the TLS facts, whether STARTTLS was offered) mapped to the RFC's
// result types in ONE function, the policy a session was held to (sts, tlsa or no-policy-found),
// and the recorder seam the engine hands each outcome to (the store behind it; no SQL here).
// Only real TLS negotiations and the absence of STARTTLS are outcomes; a refused connection, a
// greeting or EHLO failure, and routed deliveries ([[delivery.routes]] next hops) are not.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "outbound/smtp_client.hpp"
#include "policy/decide.hpp"
#include "store/policy_store.hpp"
#include "tlsrpt/tlsrpt.hpp"

namespace boost::asio {
class thread_pool;
}

namespace mailward::delivery {

// Whether a session is an outcome at all, and which: counted with failure nullopt is a success.
struct TlsRptVerdict {
    bool counted = false;
    std::optional<tlsrpt::ResultType> failure;
};
// err: the connect() failure (nullptr: the session opened; then facts and starttls_offered are the
// client's). level: the level the session was held to.
TlsRptVerdict tlsrpt_verdict(const outbound::SessionError* err, const tls::PeerFacts* facts, bool starttls_offered,
                             tls::Level level);

// The policy of a domain's sessions: sts when an MTA-STS policy in enforce or testing mode applied,
// tlsa when the host was held to DANE with TLSA records, else no-policy-found.
tlsrpt::Policy tlsrpt_policy(const std::string& domain, const std::optional<policy::MtaStsPolicy>& sts,
                             const std::vector<dns::TlsaRecord>& tlsa, tls::Level level);

// The store's row for one session on the UTC day of at.
store::TlsRptCount tlsrpt_row(const tlsrpt::Session& s, std::chrono::system_clock::time_point at);

// The engine's seam: one call per outcome; must not block (the store write runs elsewhere).
class TlsRptRecorder {
  public:
    virtual ~TlsRptRecorder() = default;
    virtual void record(const tlsrpt::Session& s, std::chrono::system_clock::time_point at) = 0;
};

// Writes each outcome into the store (PolicyStore::add_tlsrpt) on pool; a failed write is logged.
std::shared_ptr<TlsRptRecorder> store_recorder(store::PolicyStore& ps, boost::asio::thread_pool& pool);

}  // namespace mailward::delivery
