// Conversions between the store's rows (levels by name) and policy/'s types (tls::Level), typed
// store access, and downgrade detection against known evidence. Store rows are checked: a level
// name off the ladder is Errc::corrupt, never a guess.
#include "policy/learned.hpp"

#include <set>

namespace mailward::policy {
namespace {

std::string name(tls::Level l) { return std::string(tls::to_string(l)); }

const MxEvidence* find_address(const std::vector<MxEvidence>& known, const MxEvidence& e) {
    for (const auto& k : known)
        if (k.host == e.host && k.address == e.address) return &k;
    return nullptr;
}

std::string facts(const MxEvidence& e) {
    std::string s = "starttls=" + std::string(e.starttls ? "yes" : "no");
    if (!e.protocol.empty()) s += " protocol=" + e.protocol;
    if (!e.cipher.empty()) s += " cipher=" + e.cipher;
    s += " chain_valid=" + std::string(e.chain_valid ? "yes" : "no");
    s += " name_matched=" + std::string(e.name_matched ? "yes" : "no");
    if (!e.spki_sha256.empty()) s += " spki_sha256=" + e.spki_sha256;
    s += " dane_matched=" + std::string(e.dane_matched ? "yes" : "no");
    s += " level=" + e.level;
    return s;
}

}  // namespace

std::size_t LearnedPolicy::mx_hosts() const {
    std::set<std::string> hosts;
    for (const auto& e : evidence) hosts.insert(e.host);
    return hosts.size();
}

Result<LearnedPolicy> from_store(const store::LearnedPolicy& p) {
    auto level = tls::parse_level(p.level);
    if (!level) return common::Errc::corrupt;
    LearnedPolicy out;
    out.domain = p.domain;
    out.level = *level;
    out.first_seen = p.first_seen;
    out.last_confirmed = p.last_confirmed;
    out.last_probe = p.last_probe;
    out.evidence = p.mx;
    return out;
}

Result<Override> from_store(const store::Override& o) {
    auto level = tls::parse_level(o.level);
    if (!level) return common::Errc::corrupt;
    Override out;
    out.domain = o.domain;
    out.level = *level;
    out.reason = o.reason;
    out.expires = o.expires;
    out.set_at = o.set_at;
    out.set_by = o.set_by;
    return out;
}

Result<std::optional<LearnedPolicy>> load_learned(store::PolicyStore& s, const std::string& domain) {
    auto got = s.get(domain);
    if (!got) return got.error();
    if (!got->has_value()) return std::optional<LearnedPolicy>();
    auto p = from_store(**got);
    if (!p) return p.error();
    return std::optional<LearnedPolicy>(std::move(*p));
}

Result<std::optional<Override>> load_override(store::PolicyStore& s, const std::string& domain, TimePoint now) {
    auto got = s.active_override(domain, now);
    if (!got) return got.error();
    if (!got->has_value()) return std::optional<Override>();
    auto o = from_store(**got);
    if (!o) return o.error();
    return std::optional<Override>(std::move(*o));
}

Result<bool> raise(store::PolicyStore& s, const std::string& domain, tls::Level level,
                   const std::vector<MxEvidence>& mx, const std::string& report, TimePoint now) {
    return s.raise(domain, name(level), mx, report, now);
}

Result<void> record_probe(store::PolicyStore& s, const std::string& domain, tls::Level verdict,
                          const std::string& report, TimePoint now) {
    return s.record_probe(domain, name(verdict), report, now);
}

Result<void> set_override(store::PolicyStore& s, const std::string& domain, tls::Level level, const std::string& reason,
                          std::optional<TimePoint> expires, TimePoint now, const std::string& who) {
    return s.set_override(domain, name(level), reason, expires, now, who);
}

std::vector<Incident> downgrade_incidents(const LearnedPolicy& known, const std::vector<MxEvidence>& seen,
                                          TimePoint now) {
    std::vector<Incident> out;
    if (known.level < tls::Level::encrypt) return out;
    for (const auto& e : seen) {
        const auto level = tls::parse_level(e.level).value_or(tls::Level::none);
        // The key to compare with: this address's, else any learned for the same host name (an
        // interceptor may answer from a new address; a host's addresses share its keys).
        const MxEvidence* before = find_address(known.evidence, e);
        if (!before || before->spki_sha256.empty()) {
            before = nullptr;
            for (const auto& k : known.evidence) {
                if (k.host == e.host && !k.spki_sha256.empty()) before = &k;
            }
        }
        bool key_known = false;
        for (const auto& k : known.evidence) {
            if (k.host == e.host && !k.spki_sha256.empty() && k.spki_sha256 == e.spki_sha256) key_known = true;
        }
        Incident i;
        i.domain = known.domain;
        i.at = now;
        i.host = e.host;
        i.address = e.address;
        i.raw_evidence = facts(e);
        if (!e.starttls) {
            i.kind = store::to_string(store::IncidentKind::starttls_missing);
            i.detail = e.host + " [" + e.address + "]: STARTTLS not offered, but " + known.domain + " is learned at " +
                       name(known.level) + ": possible STARTTLS downgrade attack";
        } else if (e.spki_sha256.empty()) {
            // STARTTLS offered, but no TLS session came of it (refused with 454, handshake
            // failure): no certificate was presented, so nothing "changed".
            i.kind = store::to_string(store::IncidentKind::handshake_failed);
            i.detail = e.host + " [" + e.address + "]: STARTTLS offered but no TLS session could be " +
                       "established, and " + known.domain + " is learned at " + name(known.level) +
                       ": possible STARTTLS downgrade attack";
        } else if (before && !key_known && !(e.chain_valid && e.name_matched)) {
            i.kind = store::to_string(store::IncidentKind::certificate_changed);
            i.detail = e.host + " [" + e.address + "]: certificate changed (SPKI " + before->spki_sha256 + " -> " +
                       (e.spki_sha256.empty() ? std::string("none") : e.spki_sha256) +
                       ") and the new one has no valid chain naming the host";
            i.raw_evidence += " previous_spki_sha256=" + before->spki_sha256;
        } else if (level < known.level) {
            i.kind = store::to_string(store::IncidentKind::level_not_met);
            i.detail = e.host + " [" + e.address + "]: TLS meets only " + e.level + ", " + known.domain +
                       " is learned at " + name(known.level);
        } else {
            continue;
        }
        out.push_back(std::move(i));
    }
    return out;
}

}  // namespace mailward::policy
